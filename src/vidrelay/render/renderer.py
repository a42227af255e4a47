"""The built-in offline renderer: a real H.264 MP4 made from the prompt.

Why it is built the way it is:

* Frames are composed directly in planar YUV 4:2:0 (the encoder's own format), so no per-frame
  RGB->YUV conversion is paid and half the bytes are touched. Colours are converted once, with
  BT.709 limited-range maths, and the stream is tagged BT.709 so decoders get the same colours.
* Everything costly is precomputed once per clip: a periodic background gradient that is only
  *sliced* per frame (scrolling), soft-disc sprites that are only *blended* per frame (moving),
  and the prompt's text, drawn once with Pillow and blended per frame with integer numpy maths.
* Frames are streamed to the encoder one at a time; only the few frames sampled for the previews
  are kept, as small images.
* Colours and motion come from a sha256 of the spec, so the same spec renders the same frames.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont, ImageOps

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
from vidrelay.render.spec import InvalidReferenceImage, RenderOutputs, RenderSpec

ProgressCallback = Callable[[int], None]
Bytes = NDArray[np.uint8]
Words = NDArray[np.uint16]
Floats = NDArray[np.floating[Any]]  # float32 in practice; numpy's stubs widen scalar maths

# One encoder thread per render: parallelism comes from running several renders in the pool,
# so a render costs about one core and `workers == cores` is the sizing rule.
ENCODER_THREADS = 1
# mbtree=0: x264's macroblock-tree pass reads uninitialised memory at some widths (720 is one),
# so its output drifted between runs; without it renders are bit-exact at every size tried.
# bframes=0 buys back the speed (no B-frame lookahead) and keeps timestamps trivially exact.
X264_OPTIONS = {"preset": "veryfast", "crf": "28", "x264-params": "mbtree=0:bframes=0"}
_AVCOL_SPC_BT709 = 1  # AVColorSpace; PyAV exposes no enum for it on the codec context
_ENCODING_SHARE = 95  # progress points spent encoding; the rest covers previews and the rename

_BLOB_COUNT = 6
_BACKGROUND_MIX = 0.4  # how far the prompt's gradient tints a reference image
_TEXT_PANEL_ALPHA = 150
_REFERENCE_FORMATS = ("JPEG", "PNG", "WEBP")


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
        scene = _Scene(spec)
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


def _encode(spec: RenderSpec, scene: _Scene, path: Path, report: _MonotonicProgress) -> _Samples:
    frame_count = spec.frame_count
    tile_at = set(sample_indices(frame_count))
    thumbnail_at = thumbnail_index(frame_count)
    tiles: list[Image.Image] = []
    thumbnail: Image.Image | None = None
    planes = _Planes.allocate(spec.width, spec.height)
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
        for index in range(frame_count):
            scene.draw(index, planes)
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


@dataclass
class _Planes:
    """One yuv420p frame: Y, U and V views over a single buffer PyAV can take as is."""

    packed: Bytes
    y: Bytes
    u: Bytes
    v: Bytes

    @classmethod
    def allocate(cls, width: int, height: int) -> _Planes:
        luma = width * height
        flat = np.zeros(luma * 3 // 2, dtype=np.uint8)
        return cls(
            packed=flat.reshape(height * 3 // 2, width),
            y=flat[:luma].reshape(height, width),
            u=flat[luma : luma * 5 // 4].reshape(height // 2, width // 2),
            v=flat[luma * 5 // 4 :].reshape(height // 2, width // 2),
        )

    def all(self) -> tuple[Bytes, Bytes, Bytes]:
        return self.y, self.u, self.v


@dataclass
class _Overlay:
    """A premultiplied YUV sprite: blending is `(dst * inverse + premultiplied) >> 8`.

    Alpha is on a 0..256 scale and the premultiplied planes carry a +128 rounding bias, so a
    blend is three integer numpy operations with no float maths per frame.
    """

    y: Words
    y_inverse: Words
    u: Words
    v: Words
    chroma_inverse: Words

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @classmethod
    def from_rgba(cls, rgb: Floats, alpha: Floats) -> _Overlay:
        """Build from straight RGB and alpha in 0..1; width and height must be even."""
        yuv = _rgb_to_yuv(rgb)
        weight = alpha * 256.0
        premultiplied = yuv * weight[..., None]
        chroma = _pool_2x2(premultiplied[..., 1:])
        chroma_weight = _pool_2x2(weight)
        return cls(
            y=_to_words(premultiplied[..., 0] + 128.0),
            y_inverse=_to_words(256.0 - weight),
            u=_to_words(chroma[..., 0] + 128.0),
            v=_to_words(chroma[..., 1] + 128.0),
            chroma_inverse=_to_words(256.0 - chroma_weight),
        )

    def composite(self, planes: _Planes, left: int, top: int) -> None:
        """Blend onto `planes` with the top-left corner at even (`left`, `top`), clipped."""
        frame_height, frame_width = planes.y.shape
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + self.width, frame_width), min(top + self.height, frame_height)
        if x0 >= x1 or y0 >= y1:
            return
        rows, columns = slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)
        _blend(planes.y[y0:y1, x0:x1], self.y[rows, columns], self.y_inverse[rows, columns])
        c_rows = slice(rows.start // 2, rows.stop // 2)
        c_columns = slice(columns.start // 2, columns.stop // 2)
        c_inverse = self.chroma_inverse[c_rows, c_columns]
        target = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
        _blend(planes.u[target], self.u[c_rows, c_columns], c_inverse)
        _blend(planes.v[target], self.v[c_rows, c_columns], c_inverse)


@dataclass(frozen=True)
class _Blob:
    """A soft disc on a Lissajous path; positions are fractions of the frame per axis."""

    sprite: _Overlay
    amplitude: tuple[float, float]
    frequency: tuple[float, float]  # cycles per second
    phase: tuple[float, float]

    def top_left(self, seconds: float, width: int, height: int) -> tuple[int, int]:
        centre_x = width * (0.5 + self.amplitude[0] * math.sin(self._angle(0, seconds)))
        centre_y = height * (0.5 + self.amplitude[1] * math.sin(self._angle(1, seconds)))
        return _even(centre_x - self.sprite.width / 2), _even(centre_y - self.sprite.height / 2)

    def _angle(self, axis: int, seconds: float) -> float:
        return 2.0 * math.pi * self.frequency[axis] * seconds + self.phase[axis]


class _Scene:
    """Everything precomputed for one spec; `draw` fills one frame cheaply."""

    def __init__(self, spec: RenderSpec) -> None:
        self._spec = spec
        seed = hashlib.sha256(
            f"{spec.prompt}\x00{spec.width}x{spec.height}\x00{spec.seconds}".encode()
        ).digest()
        rng = np.random.default_rng(int.from_bytes(seed, "big"))
        palette = _palette(rng)
        self._period = _even(spec.width)
        self._scroll_per_frame = self._period / (spec.fps * float(rng.uniform(6.0, 12.0)))
        self._gradient = _gradient_strip(palette.background, spec.width, spec.height, self._period)
        self._blobs = [_blob(rng, palette, spec.width, spec.height) for _ in range(_BLOB_COUNT)]
        self._text = _text_overlay(spec.prompt, spec.width, spec.height)
        self._reference = (
            None
            if spec.reference_image is None
            else _reference_planes(spec.reference_image, spec.width, spec.height)
        )
        self._fade_frames = max(1, round(min(3.0, max(1.0, spec.seconds / 4)) * spec.fps))
        self._snapshot = _Planes.allocate(spec.width, spec.height) if self._reference else None

    def draw(self, index: int, planes: _Planes) -> None:
        offset = _even(index * self._scroll_per_frame) % self._period
        width = self._spec.width
        gradient = [
            strip[:, offset // scale : offset // scale + width // scale]
            for strip, scale in zip(self._gradient.all(), (1, 2, 2), strict=True)
        ]
        if self._reference is None:
            for target, source in zip(planes.all(), gradient, strict=True):
                np.copyto(target, source)
            self._draw_overlays(index, planes)
            return
        # A reference image: frame 0 is the image; the prompt's gradient, shapes and text
        # fade in over it, and the gradient keeps tinting it afterwards.
        fade = _smoothstep(index / self._fade_frames)
        tint = round(256 * _BACKGROUND_MIX * fade)
        for target, image, source in zip(
            planes.all(), self._reference.all(), gradient, strict=True
        ):
            _mix(target, image, source, tint)
        if fade >= 1.0:
            self._draw_overlays(index, planes)
            return
        assert self._snapshot is not None
        np.copyto(self._snapshot.packed, planes.packed)
        self._draw_overlays(index, planes)
        planes_weight = round(256 * fade)
        _mix(planes.packed, self._snapshot.packed, planes.packed, planes_weight)

    def _draw_overlays(self, index: int, planes: _Planes) -> None:
        seconds = index / self._spec.fps
        for blob in self._blobs:
            left, top = blob.top_left(seconds, self._spec.width, self._spec.height)
            blob.sprite.composite(planes, left, top)
        if self._text is not None:
            overlay, left, top = self._text
            overlay.composite(planes, left, top)


# --- pixel maths -------------------------------------------------------------------------------


def _blend(target: Bytes, premultiplied: Words, inverse: Words) -> None:
    mixed = target * inverse  # uint8 * uint16 -> uint16; max 255 * 256 fits
    mixed += premultiplied
    mixed >>= 8
    target[...] = mixed


def _mix(target: Bytes, first: Bytes, second: Bytes, weight: int) -> None:
    """target = first * (256 - weight) / 256 + second * weight / 256, rounded; may alias."""
    if weight <= 0:
        np.copyto(target, first)
        return
    if weight >= 256:
        np.copyto(target, second)
        return
    mixed = np.multiply(first, 256 - weight, dtype=np.uint16)
    mixed += np.multiply(second, weight, dtype=np.uint16)
    mixed += 128
    mixed >>= 8
    target[...] = mixed


def _rgb_to_yuv(rgb: Floats) -> Floats:
    """BT.709 limited range, matching the stream's colour tags; input 0..1, output 0..255."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    yuv = np.empty(rgb.shape, dtype=np.float32)
    yuv[..., 0] = 16.0 + 219.0 * luma
    yuv[..., 1] = 128.0 + 224.0 * (blue - luma) / 1.8556
    yuv[..., 2] = 128.0 + 224.0 * (red - luma) / 1.5748
    return yuv


def _pool_2x2(values: Floats) -> Floats:
    height, width = values.shape[:2]
    blocks = values.reshape(height // 2, 2, width // 2, 2, *values.shape[2:])
    pooled: Floats = blocks.mean(axis=(1, 3), dtype=np.float32)
    return pooled


def _to_words(values: Floats) -> Words:
    return np.rint(values).astype(np.uint16)


def _to_bytes(values: Floats) -> Bytes:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _planes_from_rgb(rgb: Floats) -> _Planes:
    height, width = rgb.shape[:2]
    planes = _Planes.allocate(width, height)
    planes.y[...] = _to_bytes(_rgb_to_yuv(rgb)[..., 0])
    chroma = _rgb_to_yuv(_pool_2x2(rgb))
    planes.u[...] = _to_bytes(chroma[..., 1])
    planes.v[...] = _to_bytes(chroma[..., 2])
    return planes


def _even(value: float) -> int:
    return 2 * math.floor(value / 2)


def _smoothstep(value: float) -> float:
    value = min(1.0, max(0.0, value))
    return value * value * (3.0 - 2.0 * value)


# --- what the prompt becomes -------------------------------------------------------------------


@dataclass(frozen=True)
class _Palette:
    background: list[tuple[float, float, float]]  # deep, for the gradient behind the text
    highlights: list[tuple[float, float, float]]  # bright, for the moving shapes


def _palette(rng: np.random.Generator) -> _Palette:
    """Related colours: a seeded base hue and a seeded step around the colour wheel."""
    base = float(rng.uniform(0.0, 1.0))
    step = float(rng.uniform(0.06, 0.33))
    hues = [(base + k * step) % 1.0 for k in range(5)]
    background = [
        _hsv_to_rgb(hue, float(rng.uniform(0.55, 0.95)), float(rng.uniform(0.35, 0.6)))
        for hue in hues[:3]
    ]
    highlights = [
        _hsv_to_rgb(hue, float(rng.uniform(0.35, 0.8)), float(rng.uniform(0.8, 1.0)))
        for hue in hues[1:]
    ]
    return _Palette(background=background, highlights=highlights)


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    sector = int(hue * 6.0) % 6
    fraction = hue * 6.0 - math.floor(hue * 6.0)
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    return [
        (value, t, p),
        (q, value, p),
        (p, value, t),
        (p, q, value),
        (t, p, value),
        (value, p, q),
    ][sector]


def _gradient_strip(
    colours: list[tuple[float, float, float]], width: int, height: int, period: int
) -> _Planes:
    """A diagonal colour cycle, periodic in x with `period`, `period` wider than the frame.

    Any `width`-wide window at an even offset in [0, period) is a valid background, so
    scrolling costs a slice and a copy. The diagonal shifts half a pixel per row, so every
    row (and every chroma row) is a strided slice of one quarter-pixel colour table.
    """
    strip_width = width + period
    strip = _Planes.allocate(strip_width, height)
    steps = 4  # table entries per pixel
    positions = np.arange(steps * (strip_width + height // 2 + 2), dtype=np.float32) / steps
    table = _rgb_to_yuv(_cyclic_ramp(colours, positions * (len(colours) / period)))
    neutral = np.array([16.0, 128.0, 128.0], dtype=np.float32)
    for row in range(height):  # luma (x, row) sits at position x + row / 2
        start = 2 * row
        values = table[start : start + steps * strip_width : steps, 0]
        strip.y[row] = _to_bytes(neutral[0] + (values - neutral[0]) * _row_shade(row, height))
    for row in range(height // 2):  # chroma (j, row) averages luma 2j..2j+1, 2row..2row+1
        start = 4 * row + 3
        values = table[start : start + steps * strip_width : 2 * steps, 1:]
        shaded = neutral[1:] + (values - neutral[1:]) * _row_shade(2 * row + 0.5, height)
        strip.u[row] = _to_bytes(shaded[:, 0])
        strip.v[row] = _to_bytes(shaded[:, 1])
    return strip


def _row_shade(row: float, height: int) -> float:
    """Slightly darker towards the bottom, where the text panel sits."""
    return min(1.0, 0.85 + 0.3 * (1.0 - (row + 0.5) / height))


def _cyclic_ramp(colours: list[tuple[float, float, float]], positions: Floats) -> Floats:
    table = np.array(colours, dtype=np.float32)
    lower = np.floor(positions).astype(np.int64)
    fraction = positions - lower
    eased = (0.5 - 0.5 * np.cos(np.pi * fraction)).astype(np.float32)[:, None]
    start = table[lower % len(colours)]
    end = table[(lower + 1) % len(colours)]
    ramp: Floats = start * (1.0 - eased) + end * eased
    return ramp


def _blob(rng: np.random.Generator, palette: _Palette, width: int, height: int) -> _Blob:
    radius = float(rng.uniform(0.1, 0.26)) * min(width, height)
    size = max(4, _even(2 * radius))
    centre = (size - 1) / 2.0
    axis = (np.arange(size, dtype=np.float32) - centre) / (size / 2.0)
    distance_squared = axis[None, :] ** 2 + axis[:, None] ** 2
    falloff = np.clip(1.0 - distance_squared, 0.0, 1.0)
    highlights = palette.highlights
    colour = np.array(highlights[int(rng.integers(0, len(highlights)))], dtype=np.float32)
    core = (falloff**3)[..., None]
    rgb = (colour * (1.0 - 0.25 * core) + 0.25 * core).astype(np.float32)
    alpha = (float(rng.uniform(0.45, 0.8)) * falloff**1.5).astype(np.float32)
    return _Blob(
        sprite=_Overlay.from_rgba(rgb, alpha),
        amplitude=(float(rng.uniform(0.2, 0.45)), float(rng.uniform(0.2, 0.45))),
        frequency=(float(rng.uniform(0.04, 0.16)), float(rng.uniform(0.04, 0.16))),
        phase=(float(rng.uniform(0.0, 2 * math.pi)), float(rng.uniform(0.0, 2 * math.pi))),
    )


def _text_overlay(prompt: str, width: int, height: int) -> tuple[_Overlay, int, int] | None:
    """The prompt on a translucent panel in the lower part of the frame, drawn once."""
    text = " ".join(prompt.split())
    if not text:
        return None
    short_side = min(width, height)
    max_text_width = int(width * 0.84)
    max_text_height = int(height * 0.42)
    font, lines, line_height = _fit_text(text, short_side, max_text_width, max_text_height)
    padding = max(8, line_height // 2)
    panel_width = _even(max(font.getlength(line) for line in lines) + 2 * padding + 1) + 2
    panel_height = _even(line_height * len(lines) + 2 * padding) + 2
    panel = Image.new("RGBA", (panel_width, panel_height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(panel)
    draw.rounded_rectangle(
        (0, 0, panel_width - 1, panel_height - 1),
        radius=padding,
        fill=(0, 0, 0, _TEXT_PANEL_ALPHA),
    )
    stroke = max(1, line_height // 20)
    for number, line in enumerate(lines):
        draw.text(
            (panel_width / 2, padding + number * line_height),
            line,
            font=font,
            fill=(255, 255, 255, 255),
            anchor="mt",
            stroke_width=stroke,
            stroke_fill=(0, 0, 0, 255),
        )
    pixels = np.asarray(panel, dtype=np.float32) / 255.0
    overlay = _Overlay.from_rgba(pixels[..., :3], pixels[..., 3])
    left = _even((width - panel_width) / 2)
    top = _even(max(0, height - int(height * 0.08) - panel_height))
    return overlay, left, top


def _fit_text(
    text: str, short_side: int, max_width: int, max_height: int
) -> tuple[ImageFont.FreeTypeFont, list[str], int]:
    """The largest font size (within a readable range) whose wrapped text fits the box.

    Text that does not fit even at the smallest size is cut with an ellipsis.
    """
    size = max(14, round(short_side * 0.055))
    smallest = max(12, round(short_side * 0.032))
    while True:
        font = _font(size)
        line_height = round(size * 1.3)
        lines = _wrap(text, font, max_width)
        max_lines = max(1, max_height // line_height)
        if len(lines) <= max_lines:
            return font, lines, line_height
        if size <= smallest:
            return font, _ellipsize(lines[:max_lines], font, max_width), line_height
        size = max(smallest, round(size * 0.88))


def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("Pillow needs FreeType support to draw prompt text")
    return font


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        pieces = list(_break_word(word, font, max_width))
        lines.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        lines.append(current)
    return lines


def _break_word(word: str, font: ImageFont.FreeTypeFont, max_width: int) -> Iterable[str]:
    """Split a word wider than a line at the longest prefixes that fit (binary search)."""
    while len(word) > 1 and font.getlength(word) > max_width:
        fits, too_long = 1, len(word)
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if font.getlength(word[:middle]) <= max_width:
                fits = middle
            else:
                too_long = middle
        yield word[:fits]
        word = word[fits:]
    yield word


def _ellipsize(lines: list[str], font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    last = lines[-1]
    while last and font.getlength(f"{last}…") > max_width:
        last = last[:-1]
    return [*lines[:-1], f"{last.rstrip()}…"]


def _reference_planes(data: bytes, width: int, height: int) -> _Planes:
    """Decode, orient and cover-crop (centred) the reference image to the frame size."""
    try:
        with Image.open(io.BytesIO(data), formats=_REFERENCE_FORMATS) as opened:
            opened.draft("RGB", (width, height))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidReferenceImage(
            "the reference image could not be decoded (expected JPEG, PNG or WebP)"
        ) from error
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        backdrop = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(backdrop, image.convert("RGBA"))
    fitted = ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.BICUBIC)
    return _planes_from_rgb(np.asarray(fitted, dtype=np.float32) / 255.0)
