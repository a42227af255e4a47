"""The local renderer as its users see it: real, exact, deterministic MP4s plus previews."""

from __future__ import annotations

import io
import itertools
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from vidrelay.media.previews import previews_from_mp4
from vidrelay.render.pool import RenderPool
from vidrelay.render.renderer import render_video
from vidrelay.render.spec import InvalidReferenceImage, RenderOutputs, RenderSpec

SECONDS = 4  # the shortest length the product offers
PROMPT = "A red fox running through a snowy birch forest at dawn"


@dataclass
class Rendered:
    spec: RenderSpec
    outputs: RenderOutputs
    progress: list[int]


def render(spec: RenderSpec, out_dir: Path) -> Rendered:
    progress: list[int] = []
    outputs = render_video(spec, out_dir, progress.append)
    return Rendered(spec, outputs, progress)


def decoded_frames(video: Path) -> list[NDArray[np.uint8]]:
    with av.open(str(video)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module", params=[(1280, 720), (720, 1280)], ids=["landscape", "portrait"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    width, height = request.param
    spec = RenderSpec(prompt=PROMPT, width=width, height=height, seconds=SECONDS)
    return render(spec, tmp_path_factory.mktemp("rendered"))


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    render_pool = RenderPool(workers=1)
    yield render_pool
    render_pool.shutdown()


def test_video_is_h264_of_the_exact_size_length_and_frame_count(rendered: Rendered) -> None:
    spec = rendered.spec
    with av.open(str(rendered.outputs.video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (spec.width, spec.height)
        assert stream.frames == spec.seconds * spec.fps
        assert container.duration is not None
        assert abs(container.duration / av.time_base - spec.seconds) <= 1 / spec.fps
        assert stream.duration is not None and stream.time_base is not None
        assert abs(float(stream.duration * stream.time_base) - spec.seconds) <= 1 / spec.fps
    frames = decoded_frames(rendered.outputs.video)
    assert len(frames) == spec.seconds * spec.fps
    assert frames[0].shape == (spec.height, spec.width, 3)


def test_video_is_fast_start_so_it_streams(rendered: Rendered) -> None:
    data = rendered.outputs.video.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


def test_the_same_spec_renders_identical_files_and_frames(
    rendered: Rendered, tmp_path: Path
) -> None:
    again = render(rendered.spec, tmp_path)
    first, second = decoded_frames(rendered.outputs.video), decoded_frames(again.outputs.video)
    for index in (0, len(first) // 2, len(first) - 1):
        assert np.array_equal(first[index], second[index])
    # x264 with one thread is bit-exact, so even the container bytes match.
    assert again.outputs.video.read_bytes() == rendered.outputs.video.read_bytes()


def test_the_frames_move(rendered: Rendered) -> None:
    frames = decoded_frames(rendered.outputs.video)
    change = np.abs(frames[0].astype(np.int16) - frames[-1].astype(np.int16)).mean()
    assert change > 5


def test_different_prompts_give_visibly_different_frames(
    rendered: Rendered, tmp_path: Path
) -> None:
    spec = rendered.spec
    other = RenderSpec(
        prompt="Neon jellyfish drifting in a dark ocean",
        width=spec.width,
        height=spec.height,
        seconds=spec.seconds,
    )
    first = decoded_frames(rendered.outputs.video)
    second = decoded_frames(render(other, tmp_path).outputs.video)
    for index in (0, len(first) // 2):
        difference = np.abs(first[index].astype(np.int16) - second[index].astype(np.int16))
        assert difference.mean() > 15
        assert np.abs(first[index].mean(axis=(0, 1)) - second[index].mean(axis=(0, 1))).max() > 8


def test_a_reference_image_is_cover_cropped_into_the_first_frame(tmp_path: Path) -> None:
    # Portrait image into a landscape frame: centred cover-crop keeps only the middle band,
    # so the green top and blue bottom must not show.
    image = Image.new("RGB", (400, 800), (200, 40, 30))
    image.paste((0, 200, 0), (0, 0, 400, 200))
    image.paste((0, 0, 220), (0, 600, 400, 800))
    spec = RenderSpec(
        prompt=PROMPT, width=1280, height=720, seconds=SECONDS, reference_image=png_bytes(image)
    )
    frames = decoded_frames(render(spec, tmp_path).outputs.video)
    first = frames[0].astype(np.int16)
    assert np.abs(first.mean(axis=(0, 1)) - (200, 40, 30)).max() < 4
    assert np.abs(first - np.array([200, 40, 30])).max() < 8  # no green or blue band anywhere
    assert np.abs(frames[-1].astype(np.int16) - first).mean() > 10  # the prompt takes over


def test_an_undecodable_reference_image_fails_and_leaves_no_video(tmp_path: Path) -> None:
    spec = RenderSpec(
        prompt=PROMPT, width=1280, height=720, seconds=SECONDS, reference_image=b"not an image"
    )
    with pytest.raises(InvalidReferenceImage):
        render_video(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_previews_are_a_webp_thumbnail_and_a_jpeg_spritesheet(rendered: Rendered) -> None:
    with Image.open(rendered.outputs.thumbnail) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert thumbnail.size == (rendered.spec.width, rendered.spec.height)
    with Image.open(rendered.outputs.spritesheet) as spritesheet:
        assert spritesheet.format == "JPEG"
        tile = (rendered.spec.width * 256 // 1280, rendered.spec.height * 256 // 1280)
        assert spritesheet.size == (4 * tile[0], 4 * tile[1])


def test_progress_never_decreases_and_ends_at_100(rendered: Rendered) -> None:
    progress = rendered.progress
    assert progress[0] == 0
    assert progress[-1] == 100
    assert progress == sorted(progress)
    assert max(later - earlier for earlier, later in itertools.pairwise(progress)) <= 5


def test_previews_from_an_existing_mp4_are_webp_and_jpeg(
    rendered: Rendered, tmp_path: Path
) -> None:
    thumbnail, spritesheet = tmp_path / "thumbnail.webp", tmp_path / "spritesheet.jpg"
    previews_from_mp4(rendered.outputs.video, thumbnail, spritesheet)
    with Image.open(thumbnail) as image:
        assert image.format == "WEBP"
        assert image.size == (rendered.spec.width, rendered.spec.height)
    with Image.open(spritesheet) as image:
        assert image.format == "JPEG"
    with Image.open(spritesheet) as ours, Image.open(rendered.outputs.spritesheet) as original:
        assert ours.size == original.size


async def test_pool_renders_in_a_child_process_and_reports_progress(
    pool: RenderPool, tmp_path: Path
) -> None:
    spec = RenderSpec(prompt=PROMPT, width=1280, height=720, seconds=SECONDS)
    task = pool.submit(spec, tmp_path)
    assert multiprocessing.active_children()
    seen = [task.progress()]
    assert seen[0] < 100
    outputs = await task.result()
    seen.append(task.progress())
    assert task.done
    assert seen == sorted(seen) and seen[-1] == 100
    assert outputs.video == tmp_path / "video.mp4"
    with av.open(str(outputs.video)) as container:
        assert container.streams.video[0].frames == SECONDS * spec.fps
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "spritesheet.jpg",
        "thumbnail.webp",
        "video.mp4",
    ]


async def test_pool_surfaces_the_workers_exception_from_result(
    pool: RenderPool, tmp_path: Path
) -> None:
    spec = RenderSpec(
        prompt=PROMPT, width=1280, height=720, seconds=SECONDS, reference_image=b"not an image"
    )
    task = pool.submit(spec, tmp_path)
    with pytest.raises(InvalidReferenceImage):
        await task.result()
    assert task.done
    assert task.progress() < 100
