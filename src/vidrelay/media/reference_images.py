"""Reference images (`input_reference`): read them from an upload, a `data:` URL or an http(s)
URL, make sure they are a decodable JPEG, PNG or WebP of at most 20 MB and a bounded number of
pixels, and fit them to the video's size (every upstream gets the frame it expects)."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Sequence

import anyio
import anyio.to_thread
from PIL import Image, ImageOps, UnidentifiedImageError

from vidrelay.domain.errors import InvalidRequest
from vidrelay.outbound import OutboundError, OutboundRefused, guarded_request

MAX_REFERENCE_BYTES = 20 * 1024 * 1024
ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_DATA_URL = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?)(;base64)?,", re.I
)
_FETCH_TIMEOUT_S = 20.0


def image_content_type(data: bytes) -> str:
    """The content type of an accepted image from its magic bytes (for upstream requests)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


class ReferenceImageChecker:
    """Checks reference images at the API edge without letting one request stall the others.

    The pixel count comes from the header (Pillow's `Image.open` is lazy) and is refused above
    `max_pixels` before anything is decoded: a small file can claim a huge canvas. The full
    decode that remains (it catches truncated files before the renderer does) runs in worker
    threads, at most `concurrent_decodes` at once, so the event loop keeps serving. One per
    process: its limiter is what bounds the decodes.
    """

    def __init__(self, max_pixels: int, concurrent_decodes: int = 2) -> None:
        self.max_pixels = max_pixels
        self._decodes = anyio.CapacityLimiter(concurrent_decodes)

    async def fitted(self, data: bytes, param: str, size: tuple[int, int]) -> bytes:
        """The image checked, then cover-cropped to the video's `size` (width, height):
        providers want the first frame at the output size, and refuse or distort others."""
        if not data:
            raise InvalidRequest(
                f"{param} is empty: upload a JPEG, PNG or WebP image.", param=param
            )
        if len(data) > MAX_REFERENCE_BYTES:
            raise InvalidRequest(
                f"{param} is {len(data) / 1024 / 1024:.1f} MB; the limit is 20 MB.", param=param
            )
        self._check_header(data, param)
        return await anyio.to_thread.run_sync(_fit, data, param, size, limiter=self._decodes)

    async def fitted_from_url(
        self, url: str, param: str, size: tuple[int, int], allowlist: Sequence[str]
    ) -> bytes:
        """`fitted` for the image an `image_url` names: decoded in place for `data:`, fetched
        for http(s)."""
        if url.lower().startswith("data:"):
            data = decode_data_url(url, param)
        else:
            data = await _fetch(url, param, allowlist)
        return await self.fitted(data, param, size)

    def _check_header(self, data: bytes, param: str) -> None:
        too_many = (
            f"{param} has more pixels than the {self.max_pixels:,} allowed "
            f"(VIDRELAY_MAX_REFERENCE_PIXELS); send a smaller image."
        )
        try:
            with warnings.catch_warnings():  # Pillow warns past its own limit; ours is below it
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:  # reads the header only
                    image_format, (width, height) = image.format, image.size
        except Image.DecompressionBombError as error:  # past Pillow's own, larger limit
            raise InvalidRequest(too_many, param=param) from error
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise _undecodable(param) from error
        if image_format not in ACCEPTED_FORMATS:
            raise InvalidRequest(
                f"{param} is a {image_format} image; allowed formats: JPEG, PNG, WebP.",
                param=param,
            )
        if width * height > self.max_pixels:
            raise InvalidRequest(f"{param} is {width}x{height}: {too_many}", param=param)


def _fit(data: bytes, param: str, size: tuple[int, int]) -> bytes:
    """A full decode (a truncated file fails here, not upstream), then the cover crop: scaled
    to fill `size`, the overflow cut evenly from both sides. An image already that size is
    kept byte for byte; others become PNG when they have transparency, JPEG otherwise (what
    every provider takes)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.size == size:
                return data
            oriented = ImageOps.exif_transpose(image)
            has_alpha = "A" in oriented.getbands() or "transparency" in oriented.info
            fitted = ImageOps.fit(
                oriented.convert("RGBA" if has_alpha else "RGB"), size, Image.Resampling.LANCZOS
            )
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as error:
        raise _undecodable(param) from error
    out = io.BytesIO()
    if has_alpha:
        fitted.save(out, "PNG", optimize=False)
    else:
        fitted.save(out, "JPEG", quality=92)
    return out.getvalue()


def _undecodable(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param} could not be decoded as an image; send a JPEG, PNG or WebP file.", param=param
    )


def decode_data_url(url: str, param: str) -> bytes:
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequest(f"{param} is not a valid data: URL.", param=param)
    payload = url[match.end() :]
    if ";base64" not in url[: match.end()].lower():
        raise InvalidRequest(f"{param} data: URL must be base64-encoded.", param=param)
    if len(payload) > MAX_REFERENCE_BYTES * 4 // 3 + 4:
        raise InvalidRequest(f"{param} is larger than the 20 MB limit.", param=param)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidRequest(f"{param} data: URL is not valid base64.", param=param) from error


async def _fetch(url: str, param: str, allowlist: Sequence[str]) -> bytes:
    """Fetch through the outbound guard; a refused or unreachable URL is the client's 400."""
    try:
        response = await guarded_request(
            "GET",
            url,
            allowlist=allowlist,
            timeout_s=_FETCH_TIMEOUT_S,
            max_bytes=MAX_REFERENCE_BYTES,
        )
    except OutboundRefused as refusal:
        raise InvalidRequest(f"{param}: {refusal}.", param=param) from refusal
    except OutboundError as error:
        raise InvalidRequest(f"{param} could not be fetched: {error}.", param=param) from error
    if response.status_code != 200:
        raise InvalidRequest(
            f"{param} could not be fetched (HTTP {response.status_code}).", param=param
        )
    return response.body
