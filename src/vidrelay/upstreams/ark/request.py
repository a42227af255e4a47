"""The request mapper: a normalised request as the JSON body of `POST /api/v3/contents/
generations/tasks` (model, a `content` list, then the generation settings as body fields).

- `size` → `ratio` and `resolution`. Ark does not take pixels: it takes one of six aspect
  ratios and a tier, and renders its own frame for the pair (1280x720 or 1248x704 for 16:9
  at 720p, depending on the model). The ratio is the nearest of the six to W/H, the tier the
  nearest to W*H pixels; a size far from every pair is refused before any call.
- `seconds` → `duration` (whole seconds, within the model family's range when the model id
  names a known family; a custom endpoint id `ep-…` is checked against the union of them).
- `input_reference` → a `data:` URL in an `image_url` content item with the role
  `first_frame` (image-to-video from the first frame).
- declared parameters → body fields under Ark's names (`BODY_FIELDS`); a declared `resolution`
  or `ratio` overrides what the size says; `image_role` is the image item's `role`; any other
  name goes into the body under its own name, so operators can use a new Ark field at once.

Ark also reads "text commands" in the prompt (`--rs 720p --rt 16:9 --dur 5`, the older form
the docs still describe for Seedance 1.0); the body fields are the current form and what this
mapper sends. Commands a client typed into the prompt are removed, so a prompt cannot buy a
longer or larger video than the one it was charged for.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any

from vidrelay.domain.params import ParamValue
from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import FailureKind, UpstreamError, UpstreamRequest

RATIOS: dict[str, float] = {
    "16:9": 16 / 9,
    "4:3": 4 / 3,
    "1:1": 1.0,
    "3:4": 3 / 4,
    "9:16": 9 / 16,
    "21:9": 21 / 9,
}
"""Ark's aspect ratios (`adaptive`, which follows the first frame, is not a size: an operator
may declare a `ratio` parameter for it)."""
RESOLUTIONS: dict[str, int] = {"480p": 864 * 480, "720p": 1280 * 720, "1080p": 1920 * 1080}
"""Ark's tiers and the pixels of their 16:9 frame; every ratio's frame has about as many."""
_RATIO_TOLERANCE = 0.03  # Ark's own frames are up to 2 % off the nominal ratio (864x496)
_PIXEL_TOLERANCE = 0.2

FAMILY_SECONDS: tuple[tuple[str, range], ...] = (
    ("seedance-1-0", range(2, 13)),
    ("seedance-1-5", range(4, 13)),
    ("seedance-2-0", range(4, 16)),
)
"""Whole seconds per model family (the family is found in the model id, `doubao-` prefixed on
Volcengine or not on BytePlus)."""
_ANY_FAMILY_SECONDS = range(2, 16)

BODY_FIELDS: dict[str, str] = {
    "resolution": "resolution",
    "ratio": "ratio",
    "seed": "seed",
    "camera_fixed": "camera_fixed",
    "watermark": "watermark",
    "generate_audio": "generate_audio",
    "frames": "frames",
    "return_last_frame": "return_last_frame",
    "service_tier": "service_tier",
    "execution_expires_after": "execution_expires_after",
    "draft": "draft",
    "safety_identifier": "safety_identifier",
}
"""Declared parameter → Ark's body field, for the fields the docs list (all at the top level)."""
IMAGE_FIELDS: dict[str, str] = {"image_role": "role"}
"""Declared parameter → field of the reference image's content item."""
_NOT_FROM_PARAMS = frozenset({"model", "content", "duration", "callback_url"})
"""Body fields a declared parameter never sets: the request's own model, prompt, image and
length go there (and a callback would tell the provider where vidrelay runs)."""
_TEXT_COMMAND = re.compile(
    r"(?:^|\s+)--(?:resolution|rs|ratio|rt|duration|dur|frames|framepersecond|fps|watermark|wm"
    r"|seed|camerafixed|cf)\s+\S+",
    re.IGNORECASE,
)


def map_request(request: UpstreamRequest) -> dict[str, Any]:
    """The submit body, or an `UpstreamError` (REJECTED, `unsupported_by_upstream`) for a
    request Ark cannot express: a size with no ratio/tier near it, a length the model lacks."""
    normalised = request.request
    params = normalised.params
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt_text(normalised.prompt)}]
    image: dict[str, Any] | None = None
    if request.reference_image is not None:
        image = {
            "type": "image_url",
            "image_url": {"url": data_url(request.reference_image)},
            "role": "first_frame",
        }
        content.append(image)
    body: dict[str, Any] = {
        "model": request.model,
        "content": content,
        "ratio": params.get("ratio") or ratio_for(normalised.size),
        "resolution": params.get("resolution") or resolution_for(normalised.size),
    }
    if "frames" not in params:  # Ark takes a length as seconds or as frames, not both
        body["duration"] = duration_for(request.model, normalised.seconds)
    _place_params(params, body, image)
    return body


def prompt_text(prompt: str) -> str:
    """The prompt without Ark text commands (`--dur 12`): the body fields say those."""
    return _TEXT_COMMAND.sub("", prompt).strip() if "--" in prompt else prompt


def data_url(image: bytes) -> str:
    """An image as Ark takes it inline: `data:image/<format>;base64,<data>`."""
    return f"data:{image_content_type(image)};base64,{base64.b64encode(image).decode()}"


def ratio_for(size: str) -> str:
    width, height = _dimensions(size)
    wanted = width / height
    ratio = min(RATIOS, key=lambda name: abs(math.log(RATIOS[name] / wanted)))
    if abs(RATIOS[ratio] / wanted - 1) > _RATIO_TOLERANCE:
        raise unsupported(
            f"size {size} has no aspect ratio on this upstream; it renders "
            f"{', '.join(RATIOS)} (ask for a size near one of them)."
        )
    return ratio


def resolution_for(size: str) -> str:
    width, height = _dimensions(size)
    pixels = width * height
    tier = min(RESOLUTIONS, key=lambda name: abs(math.log(RESOLUTIONS[name] / pixels)))
    if abs(RESOLUTIONS[tier] / pixels - 1) > _PIXEL_TOLERANCE:
        raise unsupported(
            f"size {size} matches no resolution of this upstream; it renders "
            f"{', '.join(RESOLUTIONS)} (e.g. 864x480, 1280x720, 1920x1080)."
        )
    return tier


def duration_for(model: str, seconds: str) -> int:
    allowed = next(
        (lengths for family, lengths in FAMILY_SECONDS if family in model.lower()),
        _ANY_FAMILY_SECONDS,
    )
    value = int(seconds) if seconds.isdigit() else None
    if value is None or value not in allowed:
        raise unsupported(
            f"seconds {seconds!r} is not offered by this upstream for this model; allowed "
            f"values: whole seconds from {allowed.start} to {allowed.stop - 1}."
        )
    return value


def unsupported(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)


def _place_params(
    params: Mapping[str, ParamValue], body: dict[str, Any], image: dict[str, Any] | None
) -> None:
    """Each declared parameter at Ark's place for it (`resolution` and `ratio` were read)."""
    for name, value in params.items():
        if name in ("resolution", "ratio"):
            continue
        if name in IMAGE_FIELDS:
            if image is not None:
                image[IMAGE_FIELDS[name]] = value
            continue
        field = BODY_FIELDS.get(name, name)
        if field not in _NOT_FROM_PARAMS:
            body[field] = value


def _dimensions(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()) or not int(width) or not int(height):
        raise unsupported(f"size {size!r} is not WIDTHxHEIGHT.")
    return int(width), int(height)
