"""The request mapper: a normalised request as the multipart fields of `POST /v1/videos`, and
a remix, extension or edit as its own endpoint's request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from vidrelay.domain.catalog import Operation
from vidrelay.domain.params import value_text
from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import UpstreamRequest

Part = tuple[str, tuple[str | None, str | bytes, str | None]]
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def submit_parts(request: UpstreamRequest, character_ids: tuple[str, ...] = ()) -> list[Part]:
    """Every field as a part without a filename (httpx sends multipart only with a file);
    the reference image as a file part with its sniffed type; the characters it names as
    `characters[][id]` (the upstream's own character ids), as the SDKs send a list."""
    normalised = request.request
    fields = [
        ("model", request.model),
        ("prompt", normalised.prompt),
        ("seconds", normalised.seconds),
        ("size", normalised.size),
    ]
    if normalised.character_url:
        fields.append(("character_url", normalised.character_url))
        if normalised.character_timestamps_text:
            fields.append(("character_timestamps", normalised.character_timestamps_text))
    # Declared parameters go as the extra fields an SDK's `extra_body` would send.
    fields.extend((name, value_text(value)) for name, value in normalised.params.items())
    fields.extend(("characters[][id]", character_id) for character_id in character_ids)
    parts: list[Part] = [(name, (None, value, None)) for name, value in fields]
    if request.reference_image is not None:
        content_type = image_content_type(request.reference_image)
        filename = "reference" + _EXTENSIONS.get(content_type, ".bin")
        parts.append(("input_reference", (filename, request.reference_image, content_type)))
    return parts


@dataclass(frozen=True)
class DerivedCall:
    """A remix, extension or edit as one HTTP call: `path`, and a JSON body or multipart
    `parts` (`needs_file`: the stored source MP4 goes as the `video` file part)."""

    path: str
    json: dict[str, Any] | None = None
    parts: list[Part] = field(default_factory=list)
    needs_file: bool = False


def derived_call(request: UpstreamRequest, held_id: str | None) -> DerivedCall:
    """The official endpoints: `POST /v1/videos/{id}/remix` (JSON), `/v1/videos/extensions`
    and `/v1/videos/edits` (multipart; the source as `video[id]` when this upstream holds it
    as `held_id`, else as an uploaded file)."""
    normalised = request.request
    if normalised.operation is Operation.REMIX:
        assert held_id is not None  # routed here only when this channel made the source
        return DerivedCall(
            f"/v1/videos/{quote(held_id, safe='')}/remix", json={"prompt": normalised.prompt}
        )
    path = (
        "/v1/videos/extensions"
        if normalised.operation is Operation.EXTENSION
        else "/v1/videos/edits"
    )
    fields = [("prompt", normalised.prompt)]
    if normalised.operation is Operation.EXTENSION:
        fields.append(("seconds", normalised.seconds))
    if held_id is not None:
        fields.append(("video[id]", held_id))
    parts: list[Part] = [(name, (None, value, None)) for name, value in fields]
    return DerivedCall(path, parts=parts, needs_file=held_id is None)
