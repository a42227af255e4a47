"""Serving a stored asset over HTTP, the same for every media store: a single byte range
(206, or 416 past the end), `ETag` with `If-None-Match` (304) and `If-Range`, streamed in
chunks so a video never sits whole in memory."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from vidrelay.domain.errors import RangeNotSatisfiable
from vidrelay.media.storage import AssetInfo, MediaStore

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range asked for as (start, end exclusive); None to send everything: no
    header, several ranges, or one that does not parse (RFC 9110 lets a server ignore those).
    Raises RangeNotSatisfiable for a range that starts past the end."""
    match = _SINGLE_RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, size if not last else min(int(last) + 1, size)


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison, as `If-None-Match` asks (RFC 9110 §13.1.2)."""
    if header.strip() == "*":
        return True
    strong = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == strong for tag in header.split(","))


async def asset_response(
    request: Request,
    media: MediaStore,
    job_id: str,
    variant: str,
    info: AssetInfo,
    *,
    media_type: str,
    filename: str,
) -> Response:
    headers = {
        "etag": info.etag,
        "last-modified": info.last_modified,
        "accept-ranges": "bytes",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, info.etag):
        return Response(status_code=304, headers=headers)
    headers["content-disposition"] = f'inline; filename="{filename}"'
    if_range = request.headers.get("if-range")
    asked = None if if_range not in (None, info.etag) else request.headers.get("range")
    span = requested_range(asked, info.size)
    status = 200
    start, end = 0, info.size
    if span is not None:
        start, end = span
        status = 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{info.size}"
    headers["content-length"] = str(end - start)
    return StreamingResponse(
        media.read_asset(job_id, variant, start, end),
        status_code=status,
        headers=headers,
        media_type=media_type,
    )
