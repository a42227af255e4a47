"""The request mapper: a normalised request as the JSON body of `POST /v1/videos/text2video`
(or `image2video` when a reference image comes with it, or `video-extend` for an extension).

- `size` gives the aspect ratio (W/H reduced, one of 16:9, 9:16, 1:1) and the resolution (its
  short side: 720 → 720p, 1080 → 1080p); the resolution picks `mode` (std makes 720p, pro
  1080p; the master models take no mode). Image to video has no `aspect_ratio` field: the
  image's own shape decides, so none is sent.
- `seconds` is `duration`, a string ("5").
- The reference image is `image`, raw base64 without a `data:` prefix (Kling refuses one);
  Kling reads JPEG and PNG up to 10 MB, so a WebP is converted to PNG first.
- Declared parameters go at the top level, under Kling's name where `PARAM_FIELDS` knows one;
  any other name goes as it is, so operators can use a new Kling field without a release.

What a model can do differs (capability map): `MODELS` lists the documented ones; a model it
does not know gets the fields' documented ranges and the provider has the last word.

An extension (`map_extension`) names the source by Kling's own video id (`task_result.
videos[0].id` of the task that made it, not the task id) and adds 4 to 5 seconds; the model
and mode are the source's, so the body has neither, nor a duration or size
(https://app.klingai.com/global/dev/document-api/apiReference/model/videoExtension: "the model
and mode used cannot be selected; they must be the same as the source video").
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from vidrelay.domain.catalog import Operation
from vidrelay.domain.params import ParamValue, value_text
from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import FailureKind, UpstreamError, UpstreamRequest

TEXT_TO_VIDEO = "text2video"
IMAGE_TO_VIDEO = "image2video"
VIDEO_EXTEND = "video-extend"
ENDPOINTS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO, VIDEO_EXTEND)
ASPECT_RATIOS = {(16, 9): "16:9", (9, 16): "9:16", (1, 1): "1:1"}
MAX_IMAGE_BYTES = 10 * 1024 * 1024
_KLING_IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})

_FIVE_OR_TEN = ("5", "10")
_THREE_TO_FIFTEEN = tuple(str(seconds) for seconds in range(3, 16))
_STD_OR_PRO = {"720p": "std", "1080p": "pro"}


@dataclass(frozen=True)
class ModelLimits:
    """What one Kling model accepts (the docs' capability map)."""

    seconds: tuple[str, ...]
    modes: Mapping[str, str | None]
    """Resolution → the `mode` that makes it (None: the model takes no mode)."""
    sound: str = "never"
    """`never`, `pro` (in pro mode only) or `any`: when `sound: on` is accepted."""
    text_to_video: bool = True
    """False for the image-to-video-only models."""


MODELS: dict[str, ModelLimits] = {
    "kling-v1": ModelLimits(_FIVE_OR_TEN, {"720p": "std"}),  # pro is 720p too
    "kling-v1-5": ModelLimits(_FIVE_OR_TEN, _STD_OR_PRO, text_to_video=False),
    "kling-v1-6": ModelLimits(_FIVE_OR_TEN, _STD_OR_PRO),
    "kling-v2-master": ModelLimits(_FIVE_OR_TEN, {"720p": None}),
    "kling-v2-1": ModelLimits(_FIVE_OR_TEN, _STD_OR_PRO, text_to_video=False),
    "kling-v2-1-master": ModelLimits(_FIVE_OR_TEN, {"1080p": None}),
    "kling-v2-5-turbo": ModelLimits(_FIVE_OR_TEN, _STD_OR_PRO),
    "kling-v2-6": ModelLimits(_FIVE_OR_TEN, _STD_OR_PRO, sound="pro"),  # std: silent only
    "kling-v3": ModelLimits(_THREE_TO_FIFTEEN, _STD_OR_PRO, sound="any"),
}
DOCUMENTED_FIELDS = ModelLimits(_THREE_TO_FIFTEEN, _STD_OR_PRO, sound="any")
"""A model not in `MODELS`: the enums of the `duration` and `mode` fields themselves."""


def _on_off(value: ParamValue) -> str:
    text = value_text(value).lower()
    if text in ("true", "on", "1"):
        return "on"
    if text in ("false", "off", "0"):
        return "off"
    raise _rejected(f"sound is on or off (true or false) on this upstream; got {text[:40]!r}.")


def _number(value: ParamValue) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _rejected(f"{value_text(value)[:40]!r} is not a number on this upstream.")
    return float(value)


@dataclass(frozen=True)
class ProviderField:
    """Where a declared parameter goes in Kling's body, and in which form."""

    name: str
    convert: Callable[[ParamValue], Any] = lambda value: value


PARAM_FIELDS: dict[str, ProviderField] = {
    "negative_prompt": ProviderField("negative_prompt", value_text),
    "cfg_scale": ProviderField("cfg_scale", _number),
    "generate_audio": ProviderField("sound", _on_off),
    "sound": ProviderField("sound", _on_off),
}
"""vidrelay's parameter names (snake_case, as other protocols use them) → Kling's fields."""
EXTENSION_FIELDS = frozenset({"negative_prompt", "cfg_scale"})
"""The declared parameters an extension takes; the others (sound) are the source's."""


def endpoint_for(request: UpstreamRequest) -> str:
    if request.request.operation is Operation.EXTENSION:
        return VIDEO_EXTEND
    return IMAGE_TO_VIDEO if request.reference_image is not None else TEXT_TO_VIDEO


def map_request(request: UpstreamRequest) -> dict[str, Any]:
    """Kling's submit body for `request`, or an `UpstreamError` (REJECTED,
    `unsupported_by_upstream`) for what Kling cannot be asked: another aspect ratio or
    resolution, a length or sound the model lacks, text alone to an image-only model."""
    if request.request.operation is Operation.EXTENSION:
        return map_extension(request)
    normalised = request.request
    model = request.model
    limits = MODELS.get(model, DOCUMENTED_FIELDS)
    endpoint = endpoint_for(request)
    if endpoint == TEXT_TO_VIDEO and not limits.text_to_video:
        raise _rejected(f"{model} makes videos from an image only: send an input_reference.")
    if normalised.seconds not in limits.seconds:
        raise _rejected(
            f"seconds {normalised.seconds!r} is not offered by {model} on this upstream; "
            f"allowed values: {', '.join(limits.seconds)}."
        )
    ratio, resolution = _ratio_and_resolution(normalised.width, normalised.height)
    if resolution not in limits.modes:
        offered = ", ".join(limits.modes)
        raise _rejected(
            f"size {normalised.size} is {resolution}; {model} makes {offered} on this upstream."
        )
    body: dict[str, Any] = {"model_name": model, "prompt": normalised.prompt}
    mode = limits.modes[resolution]
    if mode is not None:
        body["mode"] = mode
    if endpoint == TEXT_TO_VIDEO:
        body["aspect_ratio"] = ratio
    body["duration"] = normalised.seconds
    if request.reference_image is not None:
        body["image"] = kling_image(request.reference_image)
    for name, value in normalised.params.items():
        _add_param(body, name, value)
    _check_sound(body, model, limits)
    if request.submission_token:  # Kling's user-defined task id: the task can be queried by it
        body["external_task_id"] = request.submission_token
    return body


def map_extension(request: UpstreamRequest) -> dict[str, Any]:
    """The body of `POST /v1/videos/video-extend`: the source's Kling video id, the prompt and
    the parameters an extension takes. A source without that id (made before vidrelay kept
    it) cannot be named: refused."""
    normalised = request.request
    source = normalised.source
    video_id = source.upstream_video_ref if source is not None else None
    if not video_id:
        raise _rejected("The source video's id on this upstream is unknown: it cannot be extended.")
    body: dict[str, Any] = {"video_id": video_id, "prompt": normalised.prompt}
    for name, value in normalised.params.items():
        if PARAM_FIELDS.get(name, ProviderField(name)).name in EXTENSION_FIELDS:
            _add_param(body, name, value)
    if request.submission_token:
        body["external_task_id"] = request.submission_token
    return body


def _ratio_and_resolution(width: int, height: int) -> tuple[str, str]:
    divisor = math.gcd(width, height)
    ratio = ASPECT_RATIOS.get((width // divisor, height // divisor))
    if ratio is None:
        offered = ", ".join(ASPECT_RATIOS.values())
        raise _rejected(
            f"size {width}x{height} has no aspect ratio on this upstream; it makes {offered}."
        )
    return ratio, f"{min(width, height)}p"


def _add_param(body: dict[str, Any], name: str, value: ParamValue) -> None:
    target = PARAM_FIELDS.get(name, ProviderField(name))
    converted = target.convert(value)
    if target.name in body and body[target.name] != converted:
        # `mode`, `duration`, ... already follow from the size and seconds asked for.
        raise _rejected(
            f"{name} {value_text(value)[:40]!r} contradicts the size or seconds of the request "
            f"(this upstream's {target.name} is {body[target.name]!r} for them)."
        )
    body[target.name] = converted


def _check_sound(body: dict[str, Any], model: str, limits: ModelLimits) -> None:
    if body.get("sound") != "on":
        if limits.sound == "never":
            body.pop("sound", None)  # silent anyway; older models do not know the field
        return
    if limits.sound == "never":
        raise _rejected(f"{model} makes no sound on this upstream.")
    if limits.sound == "pro" and body.get("mode") != "pro":
        raise _rejected(f"{model} makes sound at 1080p (pro mode) only on this upstream.")


def kling_image(image: bytes) -> str:
    """Raw base64 of a JPEG or PNG (a WebP becomes a PNG); no `data:` prefix."""
    if image_content_type(image) not in _KLING_IMAGE_TYPES:
        buffer = io.BytesIO()
        with Image.open(io.BytesIO(image)) as decoded:
            decoded.save(buffer, "PNG")
        image = buffer.getvalue()
    if len(image) > MAX_IMAGE_BYTES:
        raise _rejected("input_reference is over 10 MB, the most this upstream takes.")
    return base64.b64encode(image).decode("ascii")


def _rejected(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)
