"""The request mapper: a normalised request as the JSON body of `POST /ent/v2/text2video`
(no image) or `POST /ent/v2/img2video` (the reference image as the first frame).

- `size` → `aspect_ratio` (the W/H ratio matched against 16:9, 9:16, 1:1, 4:3, 3:4) and
  `resolution` (the short side: 360, 540, 720 or 1080 lines; failing that, the tier with the
  same pixel count, as Vidu's square 720p is 960x960). img2video takes no `aspect_ratio` (the
  video follows the image) nor `style`. A declared `resolution` or `aspect_ratio` parameter
  wins over what the size says (a model priced per resolution declares one).
- `seconds` → `duration` (an int).
- the reference image → `images: ["data:image/png;base64,…"]` (Vidu wants the content type).
- declared parameters → top-level fields, under Vidu's name where ours differs (`PARAM_FIELDS`),
  any other name as it is, so operators can use new Vidu fields without a release.

What a known model cannot do (a duration, a resolution at that duration, a ratio) is refused
here (`unsupported_by_upstream`), before anything is sent; an unknown model is let through
within Vidu's overall limits and Vidu itself judges.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import FailureKind, UpstreamError, UpstreamRequest

TEXT_TO_VIDEO = "/ent/v2/text2video"
IMAGE_TO_VIDEO = "/ent/v2/img2video"

ASPECT_RATIOS = {"16:9": Fraction(16, 9), "9:16": Fraction(9, 16), "1:1": Fraction(1),
                 "4:3": Fraction(4, 3), "3:4": Fraction(3, 4)}  # fmt: skip
RESOLUTIONS = {360: "360p", 540: "540p", 720: "720p", 1080: "1080p"}
_RATIO_TOLERANCE = 0.02
_AREA_TOLERANCE = 0.05

PARAM_FIELDS = {
    "generate_audio": "audio",
    "background_music": "bgm",
    "recommend_prompt": "is_rec",
    "watermark_position": "wm_position",
    "watermark_url": "wm_url",
}
"""Our parameter names that Vidu spells otherwise; every other name goes as it is (`seed`,
`movement_amplitude`, `bgm`, `audio`, `style`, `off_peak`, `watermark`, `voice_id`,
`payload`, …)."""
_TEXT_TO_VIDEO_ONLY = frozenset({"style"})
"""Documented for text2video only: left out of an img2video body (Vidu may refuse a field it
does not take, `FieldUnwanted`)."""
_FROM_THE_REQUEST = frozenset({"model", "prompt", "duration", "images", "callback_url"})
"""Fields the request itself sets: a parameter may not override them (the job is priced by
its `seconds`, and vidrelay's own webhook is not Vidu's callback)."""


@dataclass(frozen=True)
class ModelLimits:
    """What one Vidu model accepts: resolutions per duration, and aspect ratios."""

    resolutions: dict[int, frozenset[str]]
    ratios: frozenset[str]


def _limits(seconds: range | tuple[int, ...], resolutions: str, ratios: str) -> ModelLimits:
    allowed = frozenset(resolutions.split())
    return ModelLimits({second: allowed for second in seconds}, frozenset(ratios.split()))


_FIVE_RATIOS = "16:9 9:16 1:1 4:3 3:4"
_THREE_RATIOS = "16:9 9:16 1:1"
_EARLY = ModelLimits(
    {4: frozenset({"360p", "720p", "1080p"}), 8: frozenset({"720p"})},
    frozenset(_THREE_RATIOS.split()),
)
MODEL_LIMITS = {
    "viduq3-pro": _limits(range(1, 17), "540p 720p 1080p", _FIVE_RATIOS),
    "viduq3-turbo": _limits(range(1, 17), "540p 720p 1080p", _FIVE_RATIOS),
    "viduq2": _limits(range(1, 11), "540p 720p 1080p", _FIVE_RATIOS),
    "viduq1": _limits((5,), "1080p", _THREE_RATIOS),
    "vidu2.0": _EARLY,
    "vidu1.5": _EARLY,
}
"""From https://platform.vidu.com/docs/text-to-video and /docs/image-to-video."""
ANY_MODEL = _limits(range(1, 17), " ".join(RESOLUTIONS.values()), _FIVE_RATIOS)


def unsupported(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)


def submit_path(request: UpstreamRequest) -> str:
    return TEXT_TO_VIDEO if request.reference_image is None else IMAGE_TO_VIDEO


def submit_body(request: UpstreamRequest) -> dict[str, Any]:
    """The JSON body for `submit_path(request)`; `unsupported_by_upstream` if it cannot be."""
    normalised = request.request
    limits = MODEL_LIMITS.get(request.model.lower(), ANY_MODEL)
    params = dict(normalised.params)
    for name in params:
        if PARAM_FIELDS.get(name, name) in _FROM_THE_REQUEST:
            raise unsupported(f"The parameter {name} cannot be sent to Vidu: the request sets it.")
    duration = int(normalised.seconds)
    if duration not in limits.resolutions:
        raise unsupported(f"{request.model} cannot make a video of {duration} s.")
    ratio = str(
        params.pop("aspect_ratio", None) or aspect_ratio(normalised.width, normalised.height)
    )
    resolution = str(
        params.pop("resolution", None) or resolution_tier(normalised.width, normalised.height)
    )
    if ratio not in limits.ratios:
        raise unsupported(f"{request.model} cannot make a video of aspect ratio {ratio}.")
    if resolution not in limits.resolutions[duration]:
        raise unsupported(f"{request.model} cannot make a {duration} s video at {resolution}.")
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": normalised.prompt,
        "duration": duration,
        "resolution": resolution,
    }
    if request.reference_image is None:
        body["aspect_ratio"] = ratio
    else:
        body["images"] = [image_data_url(request.reference_image)]
        params = {name: value for name, value in params.items() if name not in _TEXT_TO_VIDEO_ONLY}
    body.update({PARAM_FIELDS.get(name, name): value for name, value in params.items()})
    return body


def aspect_ratio(width: int, height: int) -> str:
    """The Vidu ratio of a size (within 2%), or `unsupported_by_upstream`."""
    actual = width / height
    for name, ratio in ASPECT_RATIOS.items():
        if abs(actual - float(ratio)) <= float(ratio) * _RATIO_TOLERANCE:
            return name
    raise unsupported(
        f"The size {width}x{height} has no Vidu aspect ratio ({', '.join(ASPECT_RATIOS)})."
    )


def resolution_tier(width: int, height: int) -> str:
    """`720p` for 1280x720 (the short side), or for 960x960 (the pixels of 1280x720)."""
    short_side = min(width, height)
    if short_side in RESOLUTIONS:
        return RESOLUTIONS[short_side]
    for lines, name in RESOLUTIONS.items():
        area = lines * lines * 16 / 9
        if abs(width * height - area) <= area * _AREA_TOLERANCE:
            return name
    raise unsupported(
        f"The size {width}x{height} has no Vidu resolution ({', '.join(RESOLUTIONS.values())})."
    )


def image_data_url(image: bytes) -> str:
    """`data:image/png;base64,…`: Vidu needs the content type in front of the base64."""
    encoded = base64.b64encode(image).decode("ascii")
    return f"data:{image_content_type(image)};base64,{encoded}"
