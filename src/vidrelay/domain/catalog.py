"""The model / route-class / seconds / size matrix of the relay document (DESIGN.md §3).

Pure data plus the rules that turn a raw request into a normalised one: which route class
serves it, which `seconds` it gets when omitted. An operator can extend the catalog with more
rows; `DEFAULT_CATALOG` is the seed's matrix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from vidrelay.domain.errors import InvalidRequest, ModelNotFound


class RouteClass(StrEnum):
    OFFICIAL = "official"
    REVERSE = "reverse"


SIZES: tuple[str, ...] = ("720x1280", "1280x720", "1024x1792", "1792x1024")
DEFAULT_SIZE = "720x1280"
DEFAULT_MODEL = "sora-2"
PROMPT_MAX_CHARS = 32000


@dataclass(frozen=True)
class CatalogRow:
    model: str
    route_class: RouteClass
    seconds: tuple[str, ...]
    sizes: tuple[str, ...] = SIZES

    @property
    def default_seconds(self) -> str:
        return self.seconds[0]


@dataclass(frozen=True)
class Catalog:
    rows: tuple[CatalogRow, ...]

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.model for row in self.rows))

    def rows_for(self, model: str) -> tuple[CatalogRow, ...]:
        return tuple(row for row in self.rows if row.model == model)


DEFAULT_CATALOG = Catalog(
    rows=(
        CatalogRow("sora-2", RouteClass.OFFICIAL, ("4", "8", "12")),
        CatalogRow("sora-2", RouteClass.REVERSE, ("10", "15")),
        CatalogRow("sora-2-pro", RouteClass.REVERSE, ("10", "15", "25")),
    )
)


@dataclass(frozen=True)
class CharacterTimestamps:
    start: float
    end: float

    def __str__(self) -> str:
        return f"{_trim(self.start)},{_trim(self.end)}"


@dataclass(frozen=True)
class NormalisedRequest:
    """A request after validation: every default filled in, the route class decided."""

    model: str
    route_class: RouteClass
    seconds: str
    size: str
    prompt: str
    character_url: str | None = None
    character_timestamps: CharacterTimestamps | None = None

    @property
    def character_timestamps_text(self) -> str | None:
        return str(self.character_timestamps) if self.character_timestamps else None

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


def normalise_request(
    catalog: Catalog,
    *,
    prompt: object,
    model: object = None,
    seconds: object = None,
    size: object = None,
    character_url: object = None,
    character_timestamps: object = None,
) -> NormalisedRequest:
    """Validate a raw request against the catalog; raise a domain error naming the parameter."""
    clean_prompt = _validate_prompt(prompt)
    clean_model = _validate_model(catalog, model)
    rows = catalog.rows_for(clean_model)
    clean_size = _validate_size(rows, size)
    clean_character_url = _validate_character_url(character_url)
    timestamps = _validate_timestamps(character_timestamps)
    if timestamps is not None and clean_character_url is None:
        raise InvalidRequest(
            "character_timestamps needs character_url: it says when the character appears "
            "in that video.",
            param="character_timestamps",
        )
    wants_reverse = clean_character_url is not None
    requested_seconds = _seconds_text(seconds)
    row = _choose_row(rows, clean_model, requested_seconds, wants_reverse)
    clean_seconds = requested_seconds or row.default_seconds
    if clean_size not in row.sizes:
        raise InvalidRequest(
            f"size {clean_size!r} is not offered for {clean_model} on the {row.route_class} "
            f"route; allowed values: {_listing(row.sizes)}.",
            param="size",
        )
    return NormalisedRequest(
        model=clean_model,
        route_class=row.route_class,
        seconds=clean_seconds,
        size=clean_size,
        prompt=clean_prompt,
        character_url=clean_character_url,
        character_timestamps=timestamps,
    )


def _validate_prompt(prompt: object) -> str:
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise InvalidRequest(
            "prompt is required: a text of 1 to 32000 characters describing the video.",
            param="prompt",
            code="missing_required_parameter" if prompt is None else "invalid_value",
        )
    if not isinstance(prompt, str):
        raise InvalidRequest("prompt must be a string of 1 to 32000 characters.", param="prompt")
    if len(prompt) > PROMPT_MAX_CHARS:
        raise InvalidRequest(
            f"prompt is {len(prompt)} characters long; the maximum is {PROMPT_MAX_CHARS}.",
            param="prompt",
            code="string_above_max_length",
        )
    return prompt


def _validate_model(catalog: Catalog, model: object) -> str:
    if model is None or model == "":
        return DEFAULT_MODEL
    if not isinstance(model, str) or model not in catalog.models:
        raise ModelNotFound(
            f"The model {model!r} does not exist or is not served here; "
            f"allowed values: {_listing(catalog.models)}.",
            param="model",
        )
    return model


def _validate_size(rows: Sequence[CatalogRow], size: object) -> str:
    if size is None or size == "":
        return DEFAULT_SIZE
    offered = tuple(dict.fromkeys(s for row in rows for s in row.sizes))
    if not isinstance(size, str) or size not in offered:
        raise InvalidRequest(
            f"size {size!r} is not supported; allowed values: {_listing(offered)}.",
            param="size",
        )
    return size


def _seconds_text(seconds: object) -> str | None:
    if seconds is None or seconds == "":
        return None
    if isinstance(seconds, bool):
        return repr(seconds)
    if isinstance(seconds, int):
        return str(seconds)
    if isinstance(seconds, float) and seconds.is_integer():
        return str(int(seconds))
    return str(seconds).strip()


def _choose_row(
    rows: Sequence[CatalogRow], model: str, seconds: str | None, wants_reverse: bool
) -> CatalogRow:
    """Pick the catalog row: `character_*` forces reverse; otherwise `seconds` decides."""
    candidates = [r for r in rows if r.route_class == RouteClass.REVERSE] if wants_reverse else rows
    if not candidates:
        allowed = {r.route_class.value for r in rows}
        raise InvalidRequest(
            f"character_url needs the reverse route, and {model} is served only on: "
            f"{_listing(sorted(allowed))}.",
            param="character_url",
        )
    if seconds is None:
        return candidates[0]
    for row in candidates:
        if seconds in row.seconds:
            return row
    if wants_reverse:
        allowed_seconds = [s for r in candidates for s in r.seconds]
        raise InvalidRequest(
            f"seconds {seconds!r} is not available with character_url (reverse route) for "
            f"{model}; allowed values: {_listing(allowed_seconds)}.",
            param="seconds",
        )
    by_route = "; ".join(f"{r.route_class} route: {_listing(r.seconds)}" for r in rows)
    raise InvalidRequest(
        f"seconds {seconds!r} is not supported for {model}; allowed values: {by_route}.",
        param="seconds",
    )


def _validate_character_url(url: object) -> str | None:
    if url is None or url == "":
        return None
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/?#]+", url, re.IGNORECASE):
        raise InvalidRequest(
            "character_url must be an absolute http:// or https:// URL of a video.",
            param="character_url",
        )
    return url


_TIMESTAMPS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$")


def _validate_timestamps(value: object) -> CharacterTimestamps | None:
    if value is None or value == "":
        return None
    match = _TIMESTAMPS.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidRequest(
            f'character_timestamps {value!r} must be "{{start}},{{end}}" in seconds, '
            'for example "1,3".',
            param="character_timestamps",
        )
    start, end = float(match.group(1)), float(match.group(2))
    span = end - start
    if not (start < end and 1 <= span <= 3):
        raise InvalidRequest(
            f"character_timestamps {value!r} must span 1 to 3 seconds with start < end "
            f"(this one spans {_trim(span)} s).",
            param="character_timestamps",
        )
    return CharacterTimestamps(start, end)


def _listing(values: Sequence[str]) -> str:
    return ", ".join(values)


def _trim(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)
