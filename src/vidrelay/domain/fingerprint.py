"""What makes two create requests "the same request" for an Idempotency-Key."""

from __future__ import annotations

import hashlib
import json

from vidrelay.domain.catalog import NormalisedRequest, Operation
from vidrelay.domain.params import value_text


def request_fingerprint(
    request: NormalisedRequest,
    callback_url: str | None,
    reference: bytes | None,
    source_upload: bytes | None = None,
) -> str:
    """SHA-256 over the normalised request: `seconds=8` and `seconds="8"` are the same, and
    so are a declared parameter sent as `"true"` and as `true`, or left to its default."""
    canonical: dict[str, object] = {
        **request.standard_fields(),
        "callback_url": callback_url,
        "reference_sha256": hashlib.sha256(reference).hexdigest() if reference else None,
    }
    # Absent unless used, so that requests fingerprinted before parameters existed keep
    # their fingerprint.
    if request.params:
        canonical["params"] = {name: value_text(value) for name, value in request.params.items()}
    if request.operation is not Operation.CREATE:
        canonical["operation"] = request.operation.value
    if request.source is not None:
        canonical["source_video_id"] = request.source.video_id
    if source_upload is not None:
        canonical["source_sha256"] = hashlib.sha256(source_upload).hexdigest()
    if request.character_ids:
        canonical["character_ids"] = list(request.character_ids)
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
