"""Prompts in any script: glyphs, not boxes, whenever the machine has a font that can draw them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidrelay.render import fonts
from vidrelay.render.fonts import CJK_FONT_CANDIDATES, builtin_font_covers, prompt_font
from vidrelay.render.renderer import render_video
from vidrelay.render.spec import RenderSpec
from vidrelay.render.text import text_overlay
from vidrelay.render.yuv import Overlay

WIDTH, HEIGHT = 640, 360
LATIN_PROMPT = "A red fox running through a snowy birch forest at dawn"
# Same length, different characters: drawn as missing-glyph boxes both would look the same.
CHINESE_PROMPT = "一只红狐狸在雪地里奔跑"
OTHER_CHINESE_PROMPT = "霓虹水母漂浮在深海中央"

INSTALLED_CJK_FONT = next(
    (face.path for face in CJK_FONT_CANDIDATES if Path(face.path).is_file()), None
)
needs_cjk_font = pytest.mark.skipif(
    INSTALLED_CJK_FONT is None,
    reason="no CJK font file found on this machine (e.g. apt-get install fonts-wqy-zenhei)",
)


def panel(prompt: str, font_path: str | None = None) -> Overlay:
    drawn = text_overlay(prompt, WIDTH, HEIGHT, font_path)
    assert drawn is not None
    return drawn[0]


def same_pixels(first: Overlay, second: Overlay) -> bool:
    return first.y.shape == second.y.shape and all(
        np.array_equal(getattr(first, plane), getattr(second, plane))
        for plane in ("y", "y_inverse", "u", "v", "chroma_inverse")
    )


def test_the_builtin_font_covers_ascii_but_not_accents_or_chinese() -> None:
    assert builtin_font_covers(LATIN_PROMPT + " 0-9 “quoted” …")
    assert builtin_font_covers("zero\u200bwidth and\ttabs")  # invisible characters do not count
    assert not builtin_font_covers("café")
    assert not builtin_font_covers(CHINESE_PROMPT)


def test_without_a_cjk_font_chinese_prompts_are_identical_boxes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fonts, "CJK_FONT_CANDIDATES", ())
    assert same_pixels(panel(CHINESE_PROMPT), panel(OTHER_CHINESE_PROMPT))


@needs_cjk_font
def test_chinese_prompts_are_drawn_with_real_glyphs_from_a_system_cjk_font(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = panel(CHINESE_PROMPT), panel(OTHER_CHINESE_PROMPT)
    assert not same_pixels(first, second)
    monkeypatch.setattr(fonts, "CJK_FONT_CANDIDATES", ())
    assert not same_pixels(first, panel(CHINESE_PROMPT))  # not the built-in font's boxes


@needs_cjk_font
def test_a_latin_prompt_keeps_the_builtin_font_unless_a_font_path_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_cjk_installed = panel(LATIN_PROMPT)
    assert not same_pixels(with_cjk_installed, panel(LATIN_PROMPT, INSTALLED_CJK_FONT))
    monkeypatch.setattr(fonts, "CJK_FONT_CANDIDATES", ())
    assert same_pixels(with_cjk_installed, panel(LATIN_PROMPT))


@pytest.mark.parametrize("prompt", [LATIN_PROMPT, CHINESE_PROMPT], ids=["latin", "chinese"])
def test_an_unloadable_font_path_falls_back_as_if_none_were_given(
    prompt: str, tmp_path: Path
) -> None:
    not_a_font = tmp_path / "broken.ttf"
    not_a_font.write_bytes(b"this is not a font")
    fallback = panel(prompt)
    assert same_pixels(panel(prompt, font_path=str(not_a_font)), fallback)
    assert same_pixels(panel(prompt, font_path=str(tmp_path / "missing.ttf")), fallback)


def test_a_render_with_an_unloadable_font_path_still_succeeds(tmp_path: Path) -> None:
    spec = RenderSpec(
        prompt=CHINESE_PROMPT, width=320, height=180, seconds=1, font_path="/no/such/font.ttf"
    )
    outputs = render_video(spec, tmp_path)
    assert outputs.video.stat().st_size > 0


@needs_cjk_font
def test_loaded_fonts_are_cached_per_file_and_size() -> None:
    assert prompt_font(CHINESE_PROMPT, 20) is prompt_font(OTHER_CHINESE_PROMPT, 20)
    assert prompt_font(CHINESE_PROMPT, 20) is not prompt_font(CHINESE_PROMPT, 22)
    assert prompt_font(LATIN_PROMPT, 20) is prompt_font(LATIN_PROMPT, 20)
