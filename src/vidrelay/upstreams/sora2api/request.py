"""The request mapper: sora2api's model names (family, orientation and length in one) and the
chat body a generation or a character creation is sent as."""

from __future__ import annotations

import base64
from typing import Any

from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import FailureKind, UpstreamError, UpstreamRequest

_FAMILY_SECONDS: dict[str, tuple[int, ...]] = {
    "sora2": (10, 15, 25),
    "sora2pro": (10, 15, 25),
    "sora2pro-hd": (10, 15),
}
SORA2API_VIDEO_MODELS: frozenset[str] = frozenset(
    f"{family}-{orientation}-{seconds}s"
    for family, lengths in _FAMILY_SECONDS.items()
    for orientation in ("landscape", "portrait")
    for seconds in lengths
)
"""The video models of sora2api's MODEL_CONFIG: `{family}-{orientation}-{seconds}s`."""

_FAMILY_OF_MODEL = {
    "sora-2": "sora2",
    "sora2": "sora2",
    "sora-2-pro": "sora2pro",
    "sora2pro": "sora2pro",
    "sora2pro-hd": "sora2pro-hd",
}
_HIGH_SIZES = frozenset({"1792x1024", "1024x1792"})


def sora2api_model(request: UpstreamRequest) -> str:
    """The sora2api model for a request: family, orientation and length are all in the name.

    An `upstream_model` that already names an orientation is the operator's choice and is used
    as it is; otherwise it (or the public model) is the family, and `sora-2-pro` at a high size
    becomes `sora2pro-hd`. A combination sora2api lacks is refused here, before any call.
    """
    explicit = request.upstream_model.strip()
    if "landscape" in explicit or "portrait" in explicit:
        return explicit
    public = request.request
    base = explicit or public.model
    family = _FAMILY_OF_MODEL.get(base)
    if family is None:
        raise _rejected(f"The model {base!r} has no equivalent on this upstream.")
    if public.size in _HIGH_SIZES:
        if family == "sora2":
            raise _rejected(
                f"size {public.size} needs sora-2-pro on this upstream; "
                "sora-2 is offered at 1280x720 and 720x1280."
            )
        family = "sora2pro-hd"
    orientation = "landscape" if public.width > public.height else "portrait"
    name = f"{family}-{orientation}-{public.seconds}s"
    if name not in SORA2API_VIDEO_MODELS:
        offered = ", ".join(str(seconds) for seconds in _FAMILY_SECONDS[family])
        raise _rejected(
            f"seconds {public.seconds!r} is not offered for {public.model} at {public.size} "
            f"on this upstream; allowed values: {offered}."
        )
    return name


def _rejected(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)


def chat_body(model: str, prompt: str, reference_image: bytes | None) -> dict[str, Any]:
    """sora2api reads the last message: a `text` item is the prompt, an `image_url` item whose
    URL starts with `data:image` is the image for image-to-video (a plain URL is ignored)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    if reference_image is not None:
        encoded = base64.b64encode(reference_image).decode()
        data_uri = f"data:{image_content_type(reference_image)};base64,{encoded}"
        content.append({"type": "image_url", "image_url": {"url": data_uri}})
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": True}
