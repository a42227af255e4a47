"""The video object on the wire: every field of the relay document's example, plus `prompt`,
`operation` and, once completed, a signed keyless `video_url`.

`operation` (`create`, `remix`, `extension`, `edit`) is an extra field: the official
description's video object names no operation and has no metadata, but does not forbid more
fields (as `video_url` already is), and the SDKs keep unknown fields."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from vidrelay.domain.jobs import JobRecord, JobStatus, StatusStyle, wire_status
from vidrelay.domain.signed_urls import UrlSigner


def video_object(
    job: JobRecord, style: StatusStyle, signer: UrlSigner, public_root: str | None
) -> dict[str, Any]:
    """The Videos API's `video` object; `video_url` (a keyless signed link) only where the
    public root is known."""
    body: dict[str, Any] = {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": wire_status(job.status, style),
        "progress": job.progress,
        "created_at": job.created_at,
        "completed_at": job.completed_at,
        "expires_at": job.expires_at,
        "seconds": job.request.result_seconds,
        "size": job.size,
        "prompt": job.prompt,
        "remixed_from_video_id": job.remixed_from_video_id,
        "operation": job.request.operation.value,
        "error": (
            {"code": job.error_code or "generation_failed", "message": job.error_message or ""}
            if job.status is JobStatus.FAILED
            else None
        ),
    }
    fresh = job.expires_at is not None and job.expires_at > time.time()
    if public_root and job.status is JobStatus.COMPLETED and fresh:
        body["video_url"] = content_url(job, "video", signer, public_root)
    return body


def content_url(job: JobRecord, variant: str, signer: UrlSigner, public_root: str) -> str:
    assert job.expires_at is not None
    query = urlencode(
        {
            "variant": variant,
            "expires": job.expires_at,
            "signature": signer.signature(job.id, variant, job.expires_at),
        }
    )
    return f"{public_root.rstrip('/')}/v1/videos/{job.id}/content?{query}"
