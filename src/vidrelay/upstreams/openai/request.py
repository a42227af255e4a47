"""The request mapper: a normalised request as the multipart fields of `POST /v1/videos`."""

from __future__ import annotations

from vidrelay.domain.params import value_text
from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import UpstreamRequest

Part = tuple[str, tuple[str | None, str | bytes, str | None]]
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def submit_parts(request: UpstreamRequest) -> list[Part]:
    """Every field as a part without a filename (httpx sends multipart only with a file);
    the reference image as a file part with its sniffed type."""
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
    parts: list[Part] = [(name, (None, value, None)) for name, value in fields]
    if request.reference_image is not None:
        content_type = image_content_type(request.reference_image)
        filename = "reference" + _EXTENSIONS.get(content_type, ".bin")
        parts.append(("input_reference", (filename, request.reference_image, content_type)))
    return parts
