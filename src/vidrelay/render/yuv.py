"""Frames as planar YUV 4:2:0, and the integer maths that draws on them.

Frames are composed in the encoder's own format, so no per-frame RGB->YUV conversion is paid and
half the bytes are touched. Colours are converted once, with BT.709 limited-range maths (the
stream is tagged BT.709, so decoders get the same colours), and sprites are premultiplied once so
that a per-frame blend is a few integer numpy operations with no float maths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Bytes = NDArray[np.uint8]
Words = NDArray[np.uint16]
Floats = NDArray[np.floating[Any]]  # float32 in practice; numpy's stubs widen scalar maths


@dataclass
class Planes:
    """One yuv420p frame: Y, U and V views over a single buffer PyAV can take as is."""

    packed: Bytes
    y: Bytes
    u: Bytes
    v: Bytes

    @classmethod
    def allocate(cls, width: int, height: int) -> Planes:
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
class Overlay:
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
    def from_rgba(cls, rgb: Floats, alpha: Floats) -> Overlay:
        """Build from straight RGB and alpha in 0..1; width and height must be even."""
        yuv = rgb_to_yuv(rgb)
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

    def composite(self, planes: Planes, left: int, top: int) -> None:
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


def mix(target: Bytes, first: Bytes, second: Bytes, weight: int) -> None:
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


def rgb_to_yuv(rgb: Floats) -> Floats:
    """BT.709 limited range, matching the stream's colour tags; input 0..1, output 0..255."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    yuv = np.empty(rgb.shape, dtype=np.float32)
    yuv[..., 0] = 16.0 + 219.0 * luma
    yuv[..., 1] = 128.0 + 224.0 * (blue - luma) / 1.8556
    yuv[..., 2] = 128.0 + 224.0 * (red - luma) / 1.5748
    return yuv


def planes_from_rgb(rgb: Floats) -> Planes:
    """An RGB image (0..1, even width and height) as a frame; chroma is the 2x2 mean."""
    height, width = rgb.shape[:2]
    planes = Planes.allocate(width, height)
    planes.y[...] = to_bytes(rgb_to_yuv(rgb)[..., 0])
    chroma = rgb_to_yuv(_pool_2x2(rgb))
    planes.u[...] = to_bytes(chroma[..., 1])
    planes.v[...] = to_bytes(chroma[..., 2])
    return planes


def to_bytes(values: Floats) -> Bytes:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def even(value: float) -> int:
    """Round down to an even integer: 4:2:0 chroma needs even offsets and sizes."""
    return 2 * math.floor(value / 2)


def _blend(target: Bytes, premultiplied: Words, inverse: Words) -> None:
    mixed = target * inverse  # uint8 * uint16 -> uint16; max 255 * 256 fits
    mixed += premultiplied
    mixed >>= 8
    target[...] = mixed


def _pool_2x2(values: Floats) -> Floats:
    height, width = values.shape[:2]
    blocks = values.reshape(height // 2, 2, width // 2, 2, *values.shape[2:])
    pooled: Floats = blocks.mean(axis=(1, 3), dtype=np.float32)
    return pooled


def _to_words(values: Floats) -> Words:
    return np.rint(values).astype(np.uint16)
