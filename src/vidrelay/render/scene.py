"""What the prompt becomes on screen: colours, a scrolling gradient, moving shapes and its text.

Everything costly is precomputed once per clip, so `Scene.draw` is cheap per frame: a periodic
background gradient that is only *sliced* (scrolling), soft-disc sprites that are only *blended*
(moving), and the prompt's text panel, drawn once. Colours and motion come from a sha256 of the
spec, so the same spec renders the same frames.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from vidrelay.render.reference import reference_planes
from vidrelay.render.source import middle_still
from vidrelay.render.spec import RenderSpec
from vidrelay.render.text import cameo_overlay, text_overlay
from vidrelay.render.yuv import Floats, Overlay, Planes, even, mix, rgb_to_yuv, to_bytes

_BLOB_COUNT = 6
_BACKGROUND_MIX = 0.4  # how far the prompt's gradient tints a reference image


class Scene:
    """Everything precomputed for one spec; `draw` fills one frame cheaply.

    Raises InvalidReferenceImage if `spec.reference_image` cannot be decoded.
    """

    def __init__(self, spec: RenderSpec) -> None:
        self._spec = spec
        look = spec.palette_prompt if spec.palette_prompt is not None else spec.prompt
        seed = hashlib.sha256(
            f"{look}\x00{spec.width}x{spec.height}\x00{spec.seconds}".encode()
        ).digest()
        rng = np.random.default_rng(int.from_bytes(seed, "big"))
        palette = _palette(rng)
        self._period = even(spec.width)
        self._scroll_per_frame = self._period / (spec.fps * float(rng.uniform(6.0, 12.0)))
        self._gradient = _gradient_strip(palette.background, spec.width, spec.height, self._period)
        self._blobs = [_blob(rng, palette, spec.width, spec.height) for _ in range(_BLOB_COUNT)]
        self._text = text_overlay(spec.prompt, spec.width, spec.height, spec.font_path)
        self._cameos = [
            cameo_overlay(
                middle_still(cameo.clip), cameo.name, spec.width, spec.height, spec.font_path
            )
            for cameo in spec.cameos
        ]
        self._reference = (
            None
            if spec.reference_image is None
            else reference_planes(spec.reference_image, spec.width, spec.height)
        )
        self._fade_frames = max(1, round(min(3.0, max(1.0, spec.seconds / 4)) * spec.fps))
        self._snapshot = Planes.allocate(spec.width, spec.height) if self._reference else None

    def draw(self, index: int, planes: Planes) -> None:
        offset = even(index * self._scroll_per_frame) % self._period
        width = self._spec.width
        gradient = [
            strip[:, offset // scale : offset // scale + width // scale]
            for strip, scale in zip(self._gradient.all(), (1, 2, 2), strict=True)
        ]
        if self._reference is None:
            for target, source in zip(planes.all(), gradient, strict=True):
                np.copyto(target, source)
            self.draw_overlays(index, planes)
            return
        # A reference image: frame 0 is the image; the prompt's gradient, shapes and text
        # fade in over it, and the gradient keeps tinting it afterwards.
        fade = _smoothstep(index / self._fade_frames)
        tint = round(256 * _BACKGROUND_MIX * fade)
        for target, image, source in zip(
            planes.all(), self._reference.all(), gradient, strict=True
        ):
            mix(target, image, source, tint)
        if fade >= 1.0:
            self.draw_overlays(index, planes)
            return
        assert self._snapshot is not None
        np.copyto(self._snapshot.packed, planes.packed)
        self.draw_overlays(index, planes)
        planes_weight = round(256 * fade)
        mix(planes.packed, self._snapshot.packed, planes.packed, planes_weight)

    def draw_overlays(self, index: int, planes: Planes) -> None:
        """The moving shapes, the characters and the text over whatever `planes` hold (an
        edit draws them over its source's frames)."""
        seconds = index / self._spec.fps
        for blob in self._blobs:
            left, top = blob.top_left(seconds, self._spec.width, self._spec.height)
            blob.sprite.composite(planes, left, top)
        margin = even(min(self._spec.width, self._spec.height) * 0.04)
        left = margin
        for cameo in self._cameos:
            cameo.composite(planes, left, margin)
            left += cameo.width + margin
        if self._text is not None:
            overlay, left, top = self._text
            overlay.composite(planes, left, top)


@dataclass(frozen=True)
class _Blob:
    """A soft disc on a Lissajous path; positions are fractions of the frame per axis."""

    sprite: Overlay
    amplitude: tuple[float, float]
    frequency: tuple[float, float]  # cycles per second
    phase: tuple[float, float]

    def top_left(self, seconds: float, width: int, height: int) -> tuple[int, int]:
        centre_x = width * (0.5 + self.amplitude[0] * math.sin(self._angle(0, seconds)))
        centre_y = height * (0.5 + self.amplitude[1] * math.sin(self._angle(1, seconds)))
        return even(centre_x - self.sprite.width / 2), even(centre_y - self.sprite.height / 2)

    def _angle(self, axis: int, seconds: float) -> float:
        return 2.0 * math.pi * self.frequency[axis] * seconds + self.phase[axis]


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
) -> Planes:
    """A diagonal colour cycle, periodic in x with `period`, `period` wider than the frame.

    Any `width`-wide window at an even offset in [0, period) is a valid background, so
    scrolling costs a slice and a copy. The diagonal shifts half a pixel per row, so every
    row (and every chroma row) is a strided slice of one quarter-pixel colour table.
    """
    strip_width = width + period
    strip = Planes.allocate(strip_width, height)
    steps = 4  # table entries per pixel
    positions = np.arange(steps * (strip_width + height // 2 + 2), dtype=np.float32) / steps
    table = rgb_to_yuv(_cyclic_ramp(colours, positions * (len(colours) / period)))
    neutral = np.array([16.0, 128.0, 128.0], dtype=np.float32)
    for row in range(height):  # luma (x, row) sits at position x + row / 2
        start = 2 * row
        values = table[start : start + steps * strip_width : steps, 0]
        strip.y[row] = to_bytes(neutral[0] + (values - neutral[0]) * _row_shade(row, height))
    for row in range(height // 2):  # chroma (j, row) averages luma 2j..2j+1, 2row..2row+1
        start = 4 * row + 3
        values = table[start : start + steps * strip_width : 2 * steps, 1:]
        shaded = neutral[1:] + (values - neutral[1:]) * _row_shade(2 * row + 0.5, height)
        strip.u[row] = to_bytes(shaded[:, 0])
        strip.v[row] = to_bytes(shaded[:, 1])
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
    size = max(4, even(2 * radius))
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
        sprite=Overlay.from_rgba(rgb, alpha),
        amplitude=(float(rng.uniform(0.2, 0.45)), float(rng.uniform(0.2, 0.45))),
        frequency=(float(rng.uniform(0.04, 0.16)), float(rng.uniform(0.04, 0.16))),
        phase=(float(rng.uniform(0.0, 2 * math.pi)), float(rng.uniform(0.0, 2 * math.pi))),
    )


def _smoothstep(value: float) -> float:
    value = min(1.0, max(0.0, value))
    return value * value * (3.0 - 2.0 * value)
