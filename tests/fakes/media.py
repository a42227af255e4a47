"""Small, valid media for fake upstreams and the tests that check what went through them."""

from __future__ import annotations

import base64
import functools
import io
import struct
import threading

import av
import numpy as np
from PIL import Image

_TINY_MP4_LOCK = threading.Lock()


def tiny_mp4() -> bytes:
    """A valid H.264 MP4, 64x64, 1 s at 8 fps: small, yet decodable for previews.

    Made once per process under a lock: the fake's server threads and the test ask for it at
    the same time, and two encodes need not give the same bytes.
    """
    with _TINY_MP4_LOCK:
        return _encode_tiny_mp4()


@functools.cache
def _encode_tiny_mp4() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for index in range(8):
            pixels = np.zeros((64, 64, 3), dtype=np.uint8)
            pixels[:, :, 0] = index * 30
            pixels[:, index * 8 : index * 8 + 8, 1] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def tagged_mp4(tag: str) -> bytes:
    """`tiny_mp4` followed by a `free` box holding `tag`: bytes that say which job they are,
    in a file every MP4 reader still plays (readers skip `free` boxes)."""
    payload = tag.encode()
    return tiny_mp4() + struct.pack(">I", 8 + len(payload)) + b"free" + payload


@functools.cache
def tiny_image(image_format: str) -> bytes:
    """A 64x64 image (`WEBP` thumbnail, `JPEG` spritesheet, `PNG` reference)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, image_format)
    return buffer.getvalue()


def assert_fitted_reference(sent: bytes | str, size: tuple[int, int]) -> None:
    """`sent` (bytes, raw base64 or a `data:` URL) is `tiny_image` as vidrelay hands it to an
    upstream: the same red picture, cover-cropped to the video's `size`, as a JPEG."""
    if isinstance(sent, str):
        prefix, _, payload = sent.rpartition(",")
        assert prefix in ("", "data:image/jpeg;base64"), prefix
        sent = base64.b64decode(payload)
    with Image.open(io.BytesIO(sent)) as image:
        assert (image.format, image.size) == ("JPEG", size)
        red, green, blue = image.convert("RGB").getpixel((size[0] // 2, size[1] // 2))
    assert abs(red - 200) < 10 and green < 60 and blue < 60, (red, green, blue)
