"""The local renderer's remixes, extensions, edits and characters, as their frames show them."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from vidrelay.render.renderer import render_video
from vidrelay.render.spec import Cameo, RenderSpec, SourceClip, SourceUse

SIZE = (160, 120)


def frames(video: Path) -> list[NDArray[np.uint8]]:
    with av.open(str(video)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def source(tmp_path: Path, prompt: str = "a fox in snow", seconds: int = 1) -> Path:
    return render_video(RenderSpec(prompt, *SIZE, seconds), tmp_path / prompt).video


def test_an_extension_plays_its_source_then_as_many_new_seconds(tmp_path: Path) -> None:
    original = source(tmp_path)
    spec = RenderSpec(
        "the fox jumps", *SIZE, 2, source=SourceClip(str(original), 1, SourceUse.PREFIX)
    )
    extended = frames(render_video(spec, tmp_path / "extended").video)
    before = frames(original)
    assert len(extended) == len(before) + 2 * spec.fps  # 1 s of source + 2 new
    difference = np.abs(extended[10].astype(int) - before[10].astype(int)).mean()
    assert difference < 4  # the source's frame, re-encoded


def test_a_remix_keeps_its_sources_colours_and_motion_with_the_new_text(tmp_path: Path) -> None:
    original = frames(source(tmp_path))
    remix = RenderSpec("a wolf in snow", *SIZE, 1, palette_prompt="a fox in snow")
    remixed = frames(render_video(remix, tmp_path / "remix").video)
    other = frames(render_video(RenderSpec("a wolf in snow", *SIZE, 1), tmp_path / "o").video)
    top = slice(0, SIZE[1] // 3)  # above the text panel

    def distance(a: list[NDArray[np.uint8]]) -> float:
        return float(np.abs(a[12][top].astype(int) - original[12][top].astype(int)).mean())

    assert distance(remixed) < 3 < distance(other)


def test_an_edit_draws_over_its_sources_frames_and_a_character_is_drawn_in(
    tmp_path: Path,
) -> None:
    original = source(tmp_path, seconds=1)
    backdrop = SourceClip(str(original), 1, SourceUse.BACKDROP)
    plain = RenderSpec("at night", *SIZE, 1, source=backdrop)
    starring = RenderSpec(
        "at night", *SIZE, 1, source=backdrop, cameos=(Cameo("Mira", str(original)),)
    )
    edited = frames(render_video(plain, tmp_path / "edit").video)
    with_cameo = frames(render_video(starring, tmp_path / "cameo").video)
    before = frames(original)
    fresh = frames(render_video(RenderSpec("at night", *SIZE, 1), tmp_path / "fresh").video)
    assert len(edited) == len(before)

    def distance(a: list[NDArray[np.uint8]]) -> float:
        return float(np.abs(a[12].astype(int) - before[12].astype(int)).mean())

    assert distance(edited) < distance(fresh) / 2  # the source's frames, drawn over
    corner = (slice(0, SIZE[1] // 3), slice(0, SIZE[0] // 3))  # where the character goes
    changed = np.abs(with_cameo[5][corner].astype(int) - edited[5][corner].astype(int)).mean()
    assert changed > 10
