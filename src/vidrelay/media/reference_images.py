"""Reference images (`input_reference`): read them from an upload, a `data:` URL or an http(s)
URL, and make sure they are a decodable JPEG, PNG or WebP of at most 20 MB."""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError

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


def check_reference_image(data: bytes, param: str) -> None:
    if not data:
        raise InvalidRequest(f"{param} is empty: upload a JPEG, PNG or WebP image.", param=param)
    if len(data) > MAX_REFERENCE_BYTES:
        raise InvalidRequest(
            f"{param} is {len(data) / 1024 / 1024:.1f} MB; the limit is 20 MB.", param=param
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            image.load()  # a full decode: a truncated file fails here, not in the renderer
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as error:
        raise InvalidRequest(
            f"{param} could not be decoded as an image; send a JPEG, PNG or WebP file.",
            param=param,
        ) from error
    if image_format not in ACCEPTED_FORMATS:
        raise InvalidRequest(
            f"{param} is a {image_format} image; allowed formats: JPEG, PNG, WebP.", param=param
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


async def load_image_url(url: str, param: str, allowlist: Sequence[str]) -> bytes:
    """The bytes an `image_url` names: decoded in place for `data:`, fetched for http(s)."""
    if url.lower().startswith("data:"):
        data = decode_data_url(url, param)
    else:
        data = await _fetch(url, param, allowlist)
    check_reference_image(data, param)
    return data


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
