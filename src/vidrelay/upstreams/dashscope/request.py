"""The request mapper: a normalised request as the JSON body of DashScope's video-synthesis
submit (`POST /api/v1/services/aigc/video-generation/video-synthesis`).

Wan speaks two dialects on that one endpoint, told apart by the model id:

- the legacy protocol (wan2.1 to wan2.6, `wanx2.1-*`): a text-to-video id takes
  `parameters.size` written `"1280*720"` (one of the sizes its docs list per resolution tier);
  an image-to-video id takes `parameters.resolution` (`"720P"`) and the first frame in
  `input.img_url`, which may be a `data:image/png;base64,...` URL;
- the new protocol (wan2.7 and later): `parameters.resolution` and, without an image,
  `parameters.ratio` (`"16:9"`); the first frame as `input.media = [{"type": "first_frame",
  "url": ...}]`. With an image the video takes the image's aspect ratio, in both dialects.

Wan ids come in pairs (`wan2.6-t2v` / `wan2.6-i2v`) and neither half takes the other's input:
a request with an image goes to the `i2v` id, one without to the `t2v` id, so one vidrelay
model serves both and a job never fails upstream for carrying (or lacking) an image.

`size` gives the aspect ratio (its W/H matched against Wan's five) and, unless the model
declares a `resolution` parameter (which then decides), the resolution tier (by pixel count:
1280x720 and 1088x832 are 720P). A declared parameter goes where Wan documents it (`PLACES`),
any other under its own name in `parameters`, so operators can use a new provider field
without a code change. What Wan cannot be asked for (a size with no ratio or tier, a tier or a
length the model lacks) is refused here, before anything is sent.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from typing import Any

from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import FailureKind, UpstreamError, UpstreamRequest

RATIOS: dict[str, float] = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4}
TIER_PIXELS: dict[str, int] = {"480P": 832 * 480, "720P": 1280 * 720, "1080P": 1920 * 1080}
LEGACY_SIZES: dict[tuple[str, str], str] = {
    ("480P", "16:9"): "832*480", ("480P", "9:16"): "480*832", ("480P", "1:1"): "624*624",
    ("720P", "16:9"): "1280*720", ("720P", "9:16"): "720*1280", ("720P", "1:1"): "960*960",
    ("720P", "4:3"): "1088*832", ("720P", "3:4"): "832*1088",
    ("1080P", "16:9"): "1920*1080", ("1080P", "9:16"): "1080*1920", ("1080P", "1:1"): "1440*1440",
    ("1080P", "4:3"): "1632*1248", ("1080P", "3:4"): "1248*1632",
}  # fmt: skip
"""The `size` values the legacy text-to-video models take, per (tier, ratio)."""
PLACES: dict[str, tuple[str, str]] = {
    "negative_prompt": ("input", "negative_prompt"),
    "audio_url": ("input", "audio_url"),
    "template": ("input", "template"),
    "prompt_extend": ("parameters", "prompt_extend"),
    "watermark": ("parameters", "watermark"),
    "seed": ("parameters", "seed"),
    "audio": ("parameters", "audio"),
    "generate_audio": ("parameters", "audio"),
    "shot_type": ("parameters", "shot_type"),
}
"""Declared parameter (vidrelay's name) -> (part of the body, Wan's name)."""
RESOLUTION_PARAM = "resolution"

_RATIO_TOLERANCE = math.log(1.03)  # 1088x832 is Wan's own "4:3"
_TIER_TOLERANCE = math.log(1.3)
_LEGACY_MODEL = re.compile(r"^wanx?2\.[0-6](?![0-9])")


@dataclass(frozen=True)
class ModelLimits:
    """The resolution tiers and lengths a model family documents (None: not checked)."""

    tiers: frozenset[str]
    seconds: frozenset[int] | None


_ALL_TIERS = frozenset(TIER_PIXELS)
_HD = frozenset({"720P", "1080P"})
_LIMITS: tuple[tuple[re.Pattern[str], ModelLimits], ...] = tuple(
    (re.compile(pattern), ModelLimits(tiers, frozenset(seconds)))
    for pattern, tiers, seconds in (
        (r"^wan2\.[67]-", _HD, range(2, 16)),
        (r"^wan2\.5-", _ALL_TIERS, (5, 10)),
        (r"^wan2\.2-[ti]2v-plus", frozenset({"480P", "1080P"}), (5,)),
        (r"^wanx?2\.1-t2v-turbo", frozenset({"480P", "720P"}), (5,)),
        (r"^wanx?2\.1-t2v-plus", frozenset({"720P"}), (5,)),
    )
)
_ANY_MODEL = ModelLimits(_ALL_TIERS, None)


def map_request(request: UpstreamRequest) -> dict[str, Any]:
    """The submit body for `request`; `UpstreamError(REJECTED, "unsupported_by_upstream")` for
    what the model cannot be asked."""
    normalised = request.request
    image = request.reference_image
    model = sibling_model(request.model, has_image=image is not None)
    limits = limits_for(model)
    tier = _tier(request, model, limits)
    seconds = int(normalised.seconds)
    if limits.seconds is not None and seconds not in limits.seconds:
        allowed = ", ".join(str(s) for s in sorted(limits.seconds))
        raise unsupported(f"{seconds} seconds is not a length {model} offers ({allowed}).")
    inputs: dict[str, Any] = {"prompt": normalised.prompt}
    parameters: dict[str, Any] = {}
    legacy = is_legacy(model)
    if image is not None:
        url = data_url(image)
        if legacy:
            inputs["img_url"] = url
        else:
            inputs["media"] = [{"type": "first_frame", "url": url}]
        parameters["resolution"] = tier
    elif legacy:
        ratio = _ratio(normalised.size)
        size = LEGACY_SIZES.get((tier, ratio))
        if size is None:
            raise unsupported(f"{model} has no {ratio} size at {tier}.")
        parameters["size"] = size
    else:
        parameters["resolution"] = tier
        parameters["ratio"] = _ratio(normalised.size)
    parameters["duration"] = seconds
    body: dict[str, Any] = {"model": model, "input": inputs, "parameters": parameters}
    for name, value in normalised.params.items():
        if name == RESOLUTION_PARAM:
            continue
        part, wire_name = PLACES.get(name, ("parameters", name))
        body[part].setdefault(wire_name, value)  # what the mapper computed stays
    return body


def sibling_model(model: str, *, has_image: bool) -> str:
    """The half of a Wan pair that takes this input: `wan2.6-t2v` with an image is sent as
    `wan2.6-i2v`, and the other way round; an id outside a pair stays."""
    parts = model.split("-")
    have, want = ("t2v", "i2v") if has_image else ("i2v", "t2v")
    if have not in parts:
        return model
    return "-".join(want if part == have else part for part in parts)


def is_legacy(model: str) -> bool:
    """wan2.1 to wan2.6 speak the legacy protocol; wan2.7 and later the new one."""
    return _LEGACY_MODEL.match(model) is not None


def limits_for(model: str) -> ModelLimits:
    return next((limits for pattern, limits in _LIMITS if pattern.match(model)), _ANY_MODEL)


def data_url(image: bytes) -> str:
    encoded = base64.b64encode(image).decode("ascii")
    return f"data:{image_content_type(image)};base64,{encoded}"


def unsupported(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)


def _tier(request: UpstreamRequest, model: str, limits: ModelLimits) -> str:
    declared = request.request.params.get(RESOLUTION_PARAM)
    if declared is not None:
        tier = str(declared).strip().upper()
        if not tier.endswith("P"):
            tier += "P"
    else:
        tier = _tier_of_size(request.request.width, request.request.height)
    if tier not in limits.tiers:
        allowed = ", ".join(sorted(limits.tiers, key=TIER_PIXELS.__getitem__))
        raise unsupported(f"{tier} is not a resolution {model} offers ({allowed}).")
    return tier


def _tier_of_size(width: int, height: int) -> str:
    pixels = width * height
    distance, tier = min(
        (abs(math.log(pixels / tier_pixels)), tier) for tier, tier_pixels in TIER_PIXELS.items()
    )
    if distance > _TIER_TOLERANCE:
        raise unsupported(f"size {width}x{height} matches no resolution tier (480P, 720P, 1080P).")
    return tier


def _ratio(size: str) -> str:
    width, _, height = size.partition("x")
    value = int(width) / int(height)
    distance, ratio = min((abs(math.log(value / r)), name) for name, r in RATIOS.items())
    if distance > _RATIO_TOLERANCE:
        raise unsupported(f"size {size} has no aspect ratio Wan offers ({', '.join(RATIOS)}).")
    return ratio
