"""The request mapper: a normalised request as the JSON body of `POST /v1/video_generation`.

MiniMax's v1 API has no aspect-ratio field: a text-to-video job is 16:9 (768P is 1366x768,
1080P is 1920x1080), an image-to-video job takes the first frame's ratio. So `size` gives the
resolution by its short side, the smallest of the model's resolutions that covers it (1280x720
and 1366x768 are 768P on Hailuo, 720P on the 01 series; 1920x1080 is 1080P), and without a
first frame the size must be 16:9. What a model cannot render (a resolution above its largest,
a length it lacks, 1080P for 10 s) is refused here, before anything is sent or billed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import FailureKind, UpstreamError, UpstreamRequest

SHORT_SIDES = {"512P": 512, "720P": 720, "768P": 768, "1080P": 1080}
"""Each resolution word and the short side of the videos it names."""
TEXT_TO_VIDEO_RATIO = 16 / 9
_RATIO_TOLERANCE = 0.01  # 1366x768 is 16:9 within 0.05 %

PARAM_FIELDS: Mapping[str, str] = {
    "prompt_optimizer": "prompt_optimizer",
    "fast_pretreatment": "fast_pretreatment",
    "aigc_watermark": "aigc_watermark",
    "watermark": "aigc_watermark",
    "last_frame_image": "last_frame_image",
}
"""Declared parameters MiniMax documents, by our name: its field (top level of the body). A
parameter not listed goes at the top level under its own name."""
MAPPED_FIELDS = frozenset(
    {"model", "prompt", "duration", "resolution", "first_frame_image", "callback_url"}
)
"""Fields the mapper sets from the request itself (or never sends: vidrelay polls, so no
provider callback): a declared parameter may not override them."""


@dataclass(frozen=True)
class ModelLimits:
    """What a MiniMax model renders: its resolutions and, for each, the lengths (seconds)."""

    resolutions: Mapping[str, tuple[int, ...]]
    image_only_resolutions: frozenset[str] = frozenset()
    """Resolutions offered only with a first frame (image-to-video)."""
    needs_image: bool = False
    """An image-to-video model: a first frame is required."""


_HAILUO_23 = {"768P": (6, 10), "1080P": (6,)}
_SERIES_01 = {"720P": (6,)}
MODEL_LIMITS: Mapping[str, ModelLimits] = {
    "MiniMax-Hailuo-2.3": ModelLimits(_HAILUO_23),
    "MiniMax-Hailuo-2.3-Fast": ModelLimits(_HAILUO_23, needs_image=True),
    "MiniMax-Hailuo-02": ModelLimits(
        {"512P": (6, 10), "768P": (6, 10), "1080P": (6,)},
        image_only_resolutions=frozenset({"512P"}),
    ),
    "T2V-01-Director": ModelLimits(_SERIES_01),
    "T2V-01": ModelLimits(_SERIES_01),
    "I2V-01-Director": ModelLimits(_SERIES_01, needs_image=True),
    "I2V-01-live": ModelLimits(_SERIES_01, needs_image=True),
    "I2V-01": ModelLimits(_SERIES_01, needs_image=True),
}
OTHER_MODELS = ModelLimits({"768P": (6, 10), "1080P": (6, 10)})
"""A model this table does not know (a newer one): the resolutions and lengths every current
Hailuo model shares; the provider judges the combination (e.g. 1080P for 10 s)."""


def map_request(request: UpstreamRequest) -> dict[str, Any]:
    """The submit body, or an `UpstreamError` (REJECTED, `unsupported_by_upstream`) for what
    MiniMax cannot be asked."""
    normalised = request.request
    has_image = request.reference_image is not None
    limits = MODEL_LIMITS.get(request.model, OTHER_MODELS)
    if limits.needs_image and not has_image:
        raise _unsupported(f"{request.model} makes videos from an image: send input_reference.")
    resolution = resolution_for(normalised.width, normalised.height, limits, has_image)
    seconds = int(normalised.seconds)
    lengths = limits.resolutions[resolution]
    if seconds not in lengths:
        allowed = " or ".join(str(length) for length in lengths)
        raise _unsupported(
            f"MiniMax renders {resolution} ({normalised.size}) for {allowed} seconds, "
            f"not {seconds}."
        )
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": normalised.prompt,
        "duration": seconds,
        "resolution": resolution,
    }
    if request.reference_image is not None:
        body["first_frame_image"] = data_url(request.reference_image)
    for name, value in normalised.params.items():
        field_name = PARAM_FIELDS.get(name, name)
        if field_name in MAPPED_FIELDS:
            raise _unsupported(
                f"The parameter {name} would override {field_name}, which vidrelay sets."
            )
        body[field_name] = value
    return body


def resolution_for(width: int, height: int, limits: ModelLimits, has_image: bool) -> str:
    """The smallest of the model's resolutions whose short side covers the size's."""
    if not has_image and abs(width / height / TEXT_TO_VIDEO_RATIO - 1) > _RATIO_TOLERANCE:
        raise _unsupported(
            f"MiniMax makes text-to-video in 16:9 only (e.g. 1280x720); {width}x{height} is not."
        )
    short_side = min(width, height)
    offered = sorted(
        (SHORT_SIDES[resolution], resolution)
        for resolution in limits.resolutions
        if has_image or resolution not in limits.image_only_resolutions
    )
    for side, resolution in offered:
        if side >= short_side:
            return resolution
    largest = offered[-1][1]
    raise _unsupported(f"{width}x{height} is larger than MiniMax's {largest} for this model.")


def data_url(image: bytes) -> str:
    """The first frame as MiniMax takes an inline image: a base64 `data:` URL of its type."""
    return f"data:{image_content_type(image)};base64,{base64.b64encode(image).decode('ascii')}"


def _unsupported(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)
