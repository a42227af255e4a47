"""The built-in offline renderer: a real H.264 MP4, with previews, made from the prompt.

This module streams frames to x264 and writes the files; what a frame shows is the job of
`scene.Scene` (with `text`, `fonts`, `reference` and `yuv` below it). Why the encoding loop
looks the way it does:

* Frames are handed to the encoder as planar YUV 4:2:0 straight from the scene's buffer, so no
  per-frame colour conversion is paid; the stream is tagged BT.709 limited range to match.
* Frames are streamed to the encoder one at a time; only the few frames sampled for the previews
  are kept, as small images.
* One encoder thread and fixed x264 options make the same spec encode to the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc
from PIL import Image

from vidrelay.media.previews import (
    THUMBNAIL_MAX_SIDE,
    fit_within,
    frame_to_image,
    make_tile,
    sample_indices,
    thumbnail_index,
    write_spritesheet,
    write_thumbnail,
)
from vidrelay.render.scene import Scene
from vidrelay.render.source import source_frames
from vidrelay.render.spec import RenderOutputs, RenderSpec, SourceUse
from vidrelay.render.yuv import Bytes, Planes

ProgressCallback = Callable[[int], None]

# One encoder thread per render: parallelism comes from running several renders in the pool,
# so a render costs about one core and `workers == cores` is the sizing rule.
ENCODER_THREADS = 1
# mbtree=0: x264's macroblock-tree pass reads uninitialised memory at some widths (720 is one),
# so its output drifted between runs; without it renders are bit-exact at every size tried.
# bframes=0 buys back the speed (no B-frame lookahead) and keeps timestamps trivially exact.
X264_OPTIONS = {"preset": "veryfast", "crf": "28", "x264-params": "mbtree=0:bframes=0"}
_AVCOL_SPC_BT709 = 1  # AVColorSpace; PyAV exposes no enum for it on the codec context
_ENCODING_SHARE = 95  # progress points spent encoding; the rest covers previews and the rename


def render_video(
    spec: RenderSpec, out_dir: Path, progress: ProgressCallback | None = None
) -> RenderOutputs:
    """Render `spec` into `out_dir` as video.mp4, thumbnail.webp and spritesheet.jpg.

    The MP4 is written under a temporary name and renamed last, so `video.mp4` existing means
    all three files are complete. `progress` receives increasing percentages, ending with 100.
    Raises InvalidReferenceImage if `spec.reference_image` cannot be decoded.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    report = _MonotonicProgress(progress)
    report(0)
    outputs = RenderOutputs(
        video=out_dir / "video.mp4",
        thumbnail=out_dir / "thumbnail.webp",
        spritesheet=out_dir / "spritesheet.jpg",
    )
    partial = out_dir / ".video.mp4.partial"
    try:
        scene = Scene(spec)
        samples = _encode(spec, scene, partial, report)
        write_thumbnail(samples.thumbnail, outputs.thumbnail)
        write_spritesheet(samples.tiles, outputs.spritesheet)
        report(99)
        os.replace(partial, outputs.video)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    report(100)
    return outputs


class _MonotonicProgress:
    """Forwards only increases, so callers never see progress go backwards or repeat."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1

    def __call__(self, percent: int) -> None:
        percent = min(100, max(0, percent))
        if self._callback is None or percent <= self._last:
            return
        self._last = percent
        self._callback(percent)


@dataclass
class _Samples:
    thumbnail: Image.Image
    tiles: list[Image.Image]


def _source_frames(spec: RenderSpec) -> Iterator[Bytes] | None:
    """The source's frames this render shows, decoded one at a time as they are needed."""
    source = spec.source
    if source is None:
        return None
    count = spec.prefix_frames if source.use is SourceUse.PREFIX else spec.frame_count
    return source_frames(source.path, spec.width, spec.height, spec.fps, count)


def _draw_frame(
    spec: RenderSpec, scene: Scene, copied: Iterator[Bytes] | None, index: int, planes: Planes
) -> None:
    """An extension shows its source's frames as they are, then new ones continuing its
    motion; an edit draws the new prompt over each of its source's frames."""
    if copied is None:
        scene.draw(index, planes)
    elif index < spec.prefix_frames:
        np.copyto(planes.packed, next(copied))
    elif spec.prefix_frames:
        scene.draw(index - spec.prefix_frames, planes)
    else:
        np.copyto(planes.packed, next(copied))
        scene.draw_overlays(index, planes)


def _encode(spec: RenderSpec, scene: Scene, path: Path, report: _MonotonicProgress) -> _Samples:
    frame_count = spec.frame_count
    tile_at = set(sample_indices(frame_count))
    thumbnail_at = thumbnail_index(frame_count)
    tiles: list[Image.Image] = []
    thumbnail: Image.Image | None = None
    planes = Planes.allocate(spec.width, spec.height)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream("libx264", rate=spec.fps, options=X264_OPTIONS)
        stream.width = spec.width
        stream.height = spec.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, spec.fps)
        codec = stream.codec_context
        codec.thread_count = ENCODER_THREADS
        codec.gop_size = 2 * spec.fps  # a keyframe every 2 s keeps scrubbing responsive
        codec.colorspace = _AVCOL_SPC_BT709
        codec.color_primaries = ColorPrimaries.BT709
        codec.color_trc = ColorTrc.BT709
        codec.color_range = ColorRange.MPEG
        copied = _source_frames(spec)
        for index in range(frame_count):
            _draw_frame(spec, scene, copied, index, planes)
            frame = av.VideoFrame.from_ndarray(planes.packed, format="yuv420p")
            frame.pts = index
            frame.colorspace = _AVCOL_SPC_BT709
            frame.color_range = ColorRange.MPEG
            if index in tile_at or index == thumbnail_at:
                image = frame_to_image(frame)
                if index in tile_at:
                    tiles.append(make_tile(image))
                if index == thumbnail_at:
                    thumbnail = fit_within(image, THUMBNAIL_MAX_SIDE)
            output.mux(stream.encode(frame))
            report((index + 1) * _ENCODING_SHARE // frame_count)
        output.mux(stream.encode(None))
    assert thumbnail is not None  # thumbnail_index is always within the clip
    return _Samples(thumbnail=thumbnail, tiles=tiles)
