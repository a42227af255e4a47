"""The request mapper: a normalised request as the JSON body of
`POST /v1beta/models/{model}:predictLongRunning`.

`size` gives the aspect ratio (reduced from W/H: 16:9 or 9:16) and the resolution (from the
short side: 720 is `720p`, 1080 `1080p`, 2160 `4k`); `seconds` is `durationSeconds`, a number;
the reference image is `instances[0].image` as `{bytesBase64Encoded, mimeType}`. What each Veo
model accepts differs (`_LIMITS`); a request a model cannot take is refused here, before it
costs a round trip. A model id not in the table (a new one an operator maps to) is only
checked for a ratio and a resolution: the provider judges the rest.

Declared parameters go into `parameters` under their Gemini (camelCase) names; the names the
documentation lists are in `PARAMETER_NAMES`, any other is converted the same way, so an
operator can use a field Google adds without a code change. The fields `size` and `seconds`
decide (`aspectRatio`, `resolution`, `durationSeconds`) win over a parameter of the same name.

An extension (`map_extension`) is the same call with the source as `instances[0].video`: the
`uri` of the video a previous operation answered (only Veo's own videos can be extended, 720p
in 16:9 or 9:16, by 7 s, the answer being the whole video), as in "Extending Veo videos" of
https://ai.google.dev/gemini-api/docs/video, whose SDK example passes the previous operation's
`generated_videos[0].video` (a `Video`, whose `uri` is what the REST body carries).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from vidrelay.domain.catalog import Operation
from vidrelay.media.reference_images import image_content_type
from vidrelay.upstreams.base import FailureKind, UpstreamError, UpstreamRequest

ASPECT_RATIOS = frozenset({"16:9", "9:16"})
RESOLUTIONS = {720: "720p", 1080: "1080p", 2160: "4k"}
"""The short side of a size and the Gemini resolution it is."""

PARAMETER_NAMES = {
    "negative_prompt": "negativePrompt",
    "person_generation": "personGeneration",
    "seed": "seed",
    "enhance_prompt": "enhancePrompt",
    "generate_audio": "generateAudio",
    "compression_quality": "compressionQuality",
    "resize_mode": "resizeMode",
}
"""Declared parameter (snake_case) → Gemini field under `parameters`, as documented."""


@dataclass(frozen=True)
class VeoLimits:
    """What a Veo model accepts (https://ai.google.dev/gemini-api/docs/video, "Veo API
    parameters and specifications")."""

    durations: tuple[int, ...] | None
    """Allowed `durationSeconds`; None: any (a model this table does not know)."""
    resolutions: tuple[str, ...]
    full_length_only: frozenset[str] = frozenset()
    """Resolutions offered only at the longest duration (1080p and 4k: 8 s)."""
    landscape_only: frozenset[str] = frozenset()
    """Resolutions offered only in 16:9."""
    sends_resolution: bool = True
    """False where the model has no `resolution` parameter at all (Veo 2: always 720p)."""


_ANY_MODEL = VeoLimits(None, tuple(RESOLUTIONS.values()))
_HD, _HD_4K = frozenset({"1080p"}), frozenset({"1080p", "4k"})
_LIMITS: tuple[tuple[str, VeoLimits], ...] = (
    ("veo-2.", VeoLimits((5, 6, 8), ("720p",), sends_resolution=False)),
    ("veo-3.0-", VeoLimits((4, 6, 8), ("720p", "1080p"), _HD, landscape_only=_HD)),
    ("veo-3.1-lite-", VeoLimits((4, 6, 8), ("720p", "1080p"), _HD)),
    ("veo-3.1-", VeoLimits((4, 6, 8), ("720p", "1080p", "4k"), _HD_4K)),
)
"""By model id prefix, the first match wins (so `veo-3.1-lite-` before `veo-3.1-`)."""


def limits_for(model: str) -> VeoLimits:
    """The limits of a Gemini model id (`veo-3.1-generate-preview`, `models/veo-2.0-…`)."""
    bare = model.lower().removeprefix("models/")
    return next((limits for prefix, limits in _LIMITS if bare.startswith(prefix)), _ANY_MODEL)


def gemini_name(param: str) -> str:
    """A declared parameter's Gemini field: the documented name, else its camelCase."""
    known = PARAMETER_NAMES.get(param)
    if known is not None:
        return known
    head, *rest = param.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def aspect_ratio(width: int, height: int) -> str | None:
    divisor = math.gcd(width, height)
    ratio = f"{width // divisor}:{height // divisor}"
    return ratio if ratio in ASPECT_RATIOS else None


def map_request(request: UpstreamRequest) -> dict[str, Any]:
    """The submit body; an `unsupported_by_upstream` refusal for what the model cannot do."""
    if request.request.operation is Operation.EXTENSION:
        return map_extension(request)
    normalised = request.request
    limits = limits_for(request.model)
    model = normalised.model  # the client's name for it: the upstream's id is ours
    width, height = normalised.width, normalised.height
    ratio = aspect_ratio(width, height)
    resolution = RESOLUTIONS.get(min(width, height))
    if ratio is None or resolution is None:
        raise _unsupported(
            f"{model} cannot make {normalised.size}: Veo makes 16:9 or 9:16 at 720p, 1080p "
            "or 4k (1280x720, 720x1280, 1920x1080, 1080x1920, 3840x2160, 2160x3840)."
        )
    if resolution not in limits.resolutions:
        raise _unsupported(f"{model} does not make {resolution} video.")
    if resolution in limits.landscape_only and ratio != "16:9":
        raise _unsupported(f"{model} makes {resolution} video in 16:9 only.")
    seconds = int(normalised.seconds)
    if limits.durations is not None:
        if seconds not in limits.durations:
            allowed = ", ".join(str(value) for value in limits.durations)
            raise _unsupported(f"{model} makes videos of {allowed} seconds only.")
        if resolution in limits.full_length_only and seconds != max(limits.durations):
            raise _unsupported(
                f"{model} makes {resolution} video at {max(limits.durations)} seconds only."
            )
    parameters: dict[str, Any] = {
        gemini_name(name): value for name, value in normalised.params.items()
    }
    parameters["aspectRatio"] = ratio
    if limits.sends_resolution:
        parameters["resolution"] = resolution
    else:
        parameters.pop("resolution", None)
    parameters["durationSeconds"] = seconds
    instance: dict[str, Any] = {"prompt": normalised.prompt}
    if request.reference_image is not None:
        instance["image"] = {
            "bytesBase64Encoded": base64.b64encode(request.reference_image).decode("ascii"),
            "mimeType": image_content_type(request.reference_image),
        }
    return {"instances": [instance], "parameters": parameters}


def map_extension(request: UpstreamRequest) -> dict[str, Any]:
    """The submit body of an extension: the source's video URI, the prompt, the declared
    parameters and `resolution` 720p (what Veo extends and makes); no length (Veo adds 7 s)."""
    normalised = request.request
    source = normalised.source
    uri = source.upstream_video_ref if source is not None else None
    if not uri:
        raise _unsupported(
            "The source video's URI on this upstream is unknown: it cannot be extended."
        )
    width, height = normalised.width, normalised.height
    if aspect_ratio(width, height) is None or RESOLUTIONS.get(min(width, height)) != "720p":
        raise _unsupported(f"Veo extends 720p videos in 16:9 or 9:16 only, not {normalised.size}.")
    parameters: dict[str, Any] = {
        gemini_name(name): value for name, value in normalised.params.items()
    }
    parameters["resolution"] = "720p"
    instance = {"prompt": normalised.prompt, "video": {"uri": uri}}
    return {"instances": [instance], "parameters": parameters}


def _unsupported(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)
