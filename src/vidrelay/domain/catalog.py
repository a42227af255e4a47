"""The catalog: the models a client may name, and the rules that turn a raw request into a
normalised one (DESIGN.md §3).

A model has route rows (route class → allowed `seconds`, the first the default), sizes (the
first the default), capabilities and declared parameters. The catalog is data: operators
declare models in `vidrelay.toml`, the admin API or the CLI (parsed by `domain.declarations`);
`DEFAULT_CATALOG` is the seed's matrix, the built-in default. `normalise_request` validates a
raw request against it before anything is charged, fills in every default, and returns the
one `NormalisedRequest` that is priced, stored, fingerprinted and handed to the adapter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from vidrelay.domain.errors import InvalidRequest, ModelNotFound
from vidrelay.domain.params import ParamSpec, ParamValue, value_text


class RouteClass(StrEnum):
    OFFICIAL = "official"
    REVERSE = "reverse"


class Capability(StrEnum):
    """What a model can do beyond text to video."""

    INPUT_REFERENCE = "input_reference"
    AUDIO = "audio"
    CHARACTER = "character"
    REMIX = "remix"
    EDIT = "edit"
    EXTENSION = "extension"


class Operation(StrEnum):
    """Which endpoint made a job; price rules may name it (`when = { operation = "remix" }`)."""

    CREATE = "create"
    REMIX = "remix"
    CHARACTER = "character"
    EXTENSION = "extension"
    EDIT = "edit"


STANDARD_FIELDS = frozenset(
    {
        "prompt",
        "model",
        "seconds",
        "size",
        "input_reference",
        "character_url",
        "character_timestamps",
        "callback_url",
    }
)
"""The create fields every model takes; anything else must be a declared parameter."""
OPERATION_CONDITION = "operation"
SECONDS_CONDITION = "seconds"
"""Besides declared parameters, a price condition may name these: the operation, and the
length (for providers that sell a video at a fixed price per length)."""

SIZES: tuple[str, ...] = ("720x1280", "1280x720", "1024x1792", "1792x1024")
DEFAULT_MODEL = "sora-2"
PROMPT_MAX_CHARS = 32000
_LISTED_MODELS = 40


@dataclass(frozen=True)
class Route:
    """A route class of a model and the `seconds` it allows there (the first the default)."""

    route_class: RouteClass
    seconds: tuple[str, ...]
    seconds_range: tuple[int, int] | None = None
    """Set when declared as an inclusive range; `seconds` then lists every value in it."""
    _allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_allowed", frozenset(self.seconds))

    @classmethod
    def from_range(cls, route_class: RouteClass, low: int, high: int) -> Route:
        return cls(route_class, tuple(str(s) for s in range(low, high + 1)), (low, high))

    @property
    def default_seconds(self) -> str:
        return self.seconds[0]

    def allows(self, seconds: str) -> bool:
        return seconds in self._allowed

    def allowed_text(self) -> str:
        """`4, 8, 12`; a run of whole seconds as `2 to 12`, with its default when that is not
        the lowest (`2 to 12 (default 5)`)."""
        numbers = sorted(int(s) for s in self.seconds)
        low, high = numbers[0], numbers[-1]
        if len(numbers) < 4 or high - low + 1 != len(numbers):
            return _listing(self.seconds)
        default = "" if int(self.default_seconds) == low else f" (default {self.default_seconds})"
        return f"{low} to {high}{default}"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the catalog. `created` is when it was declared (unix seconds)."""

    name: str
    routes: tuple[Route, ...]
    sizes: tuple[str, ...]
    capabilities: frozenset[Capability] = frozenset()
    params: tuple[ParamSpec, ...] = ()
    owned_by: str = "vidrelay"
    description: str = ""
    created: int = 0
    extension_seconds: int | None = None
    """The one length an extension adds, where the provider extends by a set segment (Veo
    3.1: 7 s, Kling: 5 s); None: any `seconds` of the route (up to 20)."""
    _params_by_name: Mapping[str, ParamSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_params_by_name", {spec.name: spec for spec in self.params})

    @property
    def default_size(self) -> str:
        return self.sizes[0]

    def param(self, name: str) -> ParamSpec | None:
        return self._params_by_name.get(name)

    def route(self, route_class: RouteClass) -> Route | None:
        return next((route for route in self.routes if route.route_class == route_class), None)

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities


class Catalog:
    """The models by name: a look-up is one dict access, whatever the catalog's size."""

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self._by_name = {model.name: model for model in models}
        self.models: tuple[str, ...] = tuple(self._by_name)

    def get(self, name: str) -> ModelSpec | None:
        return self._by_name.get(name)

    def with_model(self, model: ModelSpec) -> Catalog:
        """This catalog with `model` added, or replacing the model of that name."""
        return Catalog([*(m for m in self if m.name != model.name), model])

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


_SORA_CAPABILITIES = frozenset(Capability)
"""Sora 2 did everything the Videos API describes."""
DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "sora-2",
        (
            Route(RouteClass.OFFICIAL, ("4", "8", "12")),
            Route(RouteClass.REVERSE, ("10", "15")),
        ),
        SIZES,
        _SORA_CAPABILITIES,
        owned_by="openai",
    ),
    ModelSpec(
        "sora-2-pro",
        (Route(RouteClass.REVERSE, ("10", "15", "25")),),
        SIZES,
        _SORA_CAPABILITIES,
        owned_by="openai",
    ),
)
DEFAULT_CATALOG = Catalog(DEFAULT_MODELS)
"""The seed's matrix (also what a new database starts with)."""


@dataclass(frozen=True)
class CharacterTimestamps:
    start: float
    end: float

    def __str__(self) -> str:
        return f"{_trim(self.start)},{_trim(self.end)}"

    @classmethod
    def from_text(cls, text: str) -> CharacterTimestamps:
        """The stored form (`str()` of one) back; validation happened at accept."""
        start, end = text.split(",")
        return cls(float(start), float(end))


@dataclass(frozen=True)
class SourceVideo:
    """Where a derived job's source is: a video of the tenant's (`video_id`, and the channel,
    upstream id and key reference that made it, so an upstream that still holds it is asked
    by its own id), or an uploaded MP4 (`video_id` None; stored with the job's media)."""

    seconds: int
    video_id: str | None = None
    prompt: str | None = None
    channel: str | None = None
    upstream_job_id: str | None = None
    key_ref: str | None = None
    upstream_video_ref: str | None = None
    """The upstream's own reference of the finished video, where it is not the job's (Kling's
    video id, Veo's file URI): what an upstream that extends by video names it by."""


@dataclass(frozen=True)
class NormalisedRequest:
    """A request after validation: every default filled in, the route class decided, the
    declared parameters typed. The one shape of a request from the edge to the adapter."""

    model: str
    route_class: RouteClass
    seconds: str
    size: str
    prompt: str
    character_url: str | None = None
    character_timestamps: CharacterTimestamps | None = None
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    """Declared parameters: those the client sent and the declared defaults."""
    operation: Operation = Operation.CREATE
    source: SourceVideo | None = None
    """The video a remix, an extension or an edit starts from."""
    character_ids: tuple[str, ...] = ()
    """Characters (`char_…`, the tenant's own) a create names."""

    @property
    def result_seconds(self) -> str:
        """The finished video's length: an extension's `seconds` are the new seconds only
        (what is priced and generated), its result is the whole stitched length."""
        if self.operation is Operation.EXTENSION and self.source is not None:
            return str(self.source.seconds + int(self.seconds))
        return self.seconds

    @property
    def character_timestamps_text(self) -> str | None:
        return str(self.character_timestamps) if self.character_timestamps else None

    def standard_fields(self) -> dict[str, str | None]:
        """The standard fields as text: stored a column each, fingerprinted, shown."""
        return {
            "model": self.model,
            "route_class": self.route_class.value,
            "seconds": self.seconds,
            "size": self.size,
            "prompt": self.prompt,
            "character_url": self.character_url,
            "character_timestamps": self.character_timestamps_text,
        }

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])

    def condition_value(self, name: str) -> str | None:
        """The canonical text a price condition on `name` compares with (None: absent)."""
        if name == OPERATION_CONDITION:
            return self.operation.value
        if name == SECONDS_CONDITION:
            return self.seconds
        value = self.params.get(name)
        return None if value is None else value_text(value)

    def params_text(self) -> str:
        """`resolution=1080p seed=7`, for ledger notes and logs."""
        return " ".join(f"{name}={value_text(value)}" for name, value in self.params.items())


def normalise_request(
    catalog: Catalog,
    *,
    prompt: object,
    model: object = None,
    seconds: object = None,
    size: object = None,
    character_url: object = None,
    character_timestamps: object = None,
    params: Mapping[str, object] | None = None,
    has_reference: bool = False,
    character_ids: Sequence[str] = (),
) -> NormalisedRequest:
    """Validate a raw request against the catalog; raise a domain error naming the parameter.

    `params` are the request's fields other than the standard ones; an empty value counts as
    absent (the SDKs send `None` as an empty multipart field). `has_reference` says whether an
    `input_reference` came with it; `character_ids` are the characters it names (their
    ownership is the caller's to check).
    """
    clean_prompt = _validate_prompt(prompt)
    spec = _validate_model(catalog, model)
    clean_size = _validate_size(spec, size)
    clean_character_url = _validate_character_url(character_url)
    timestamps = _validate_timestamps(character_timestamps)
    if timestamps is not None and clean_character_url is None:
        raise InvalidRequest(
            "character_timestamps needs character_url: it says when the character appears "
            "in that video.",
            param="character_timestamps",
        )
    if clean_character_url is not None:
        _require(spec, Capability.CHARACTER, "character_url")
    if has_reference:
        _require(spec, Capability.INPUT_REFERENCE, "input_reference")
    if character_ids:
        _require(spec, Capability.CHARACTER, "characters")
    wants_reverse = clean_character_url is not None
    requested_seconds = _seconds_text(seconds)
    route = _choose_route(spec, requested_seconds, wants_reverse)
    return NormalisedRequest(
        model=spec.name,
        route_class=route.route_class,
        seconds=requested_seconds or route.default_seconds,
        size=clean_size,
        prompt=clean_prompt,
        character_url=clean_character_url,
        character_timestamps=timestamps,
        params=_validate_params(spec, params or {}),
        character_ids=tuple(character_ids),
    )


CAPABILITY_OF = {
    Operation.REMIX: Capability.REMIX,
    Operation.EXTENSION: Capability.EXTENSION,
    Operation.EDIT: Capability.EDIT,
    Operation.CHARACTER: Capability.CHARACTER,
}
"""The model capability each operation other than a plain create needs."""
EXTENSION_MAX_SECONDS = 20
"""The longest extension segment the official description allows (4, 8, 12, 16, 20)."""


def derive_request(
    catalog: Catalog,
    *,
    operation: Operation,
    prompt: object,
    source: SourceVideo,
    base: NormalisedRequest | None = None,
    model: object = None,
    seconds: object = None,
) -> NormalisedRequest:
    """A remix, extension or edit as a normalised request.

    From a video of the tenant's (`base`, its accepted request) the job keeps the source's
    model, route, size and parameters; from an uploaded MP4 it takes `model` (the default when
    absent) on its first route, at its default size. A remix and an edit are as long as their
    source; an extension's `seconds` are its new seconds (priced), validated against the
    route. The model must have the operation's capability.
    """
    clean_prompt = _validate_prompt(prompt)
    spec = _validate_model(catalog, base.model if base is not None else model)
    param = "video_id" if operation is Operation.REMIX else "video"
    _require(spec, CAPABILITY_OF[operation], param, operation.value)
    route = spec.route(base.route_class) if base is not None else spec.routes[0]
    if route is None:  # the model lost the source's route since: its first one now
        route = spec.routes[0]
    new_seconds = str(source.seconds)
    if operation is Operation.EXTENSION:
        new_seconds = _extension_seconds(spec, route, _seconds_text(seconds))
    return NormalisedRequest(
        model=spec.name,
        route_class=route.route_class,
        seconds=new_seconds,
        size=base.size if base is not None else spec.default_size,
        prompt=clean_prompt,
        params=dict(base.params) if base is not None else _validate_params(spec, {}),
        operation=operation,
        source=source,
    )


def _extension_seconds(spec: ModelSpec, route: Route, seconds: str | None) -> str:
    """The new segment's length: the model's fixed extension length where it declares one
    (its provider adds that much whatever is asked, so any other value is refused rather than
    billed wrong), else one of the route's lengths up to `EXTENSION_MAX_SECONDS`."""
    if spec.extension_seconds is not None:
        allowed = [str(spec.extension_seconds)]
    else:
        allowed = [s for s in route.seconds if int(s) <= EXTENSION_MAX_SECONDS]
    if seconds is None:
        raise InvalidRequest(
            f"seconds is required: the length of the new segment ({_listing(allowed)}).",
            param="seconds",
            code="missing_required_parameter",
        )
    if seconds not in allowed:
        raise InvalidRequest(
            f"seconds {_shown(seconds)} is not supported for an extension of {spec.name}; "
            f"allowed values: {_listing(allowed) or 'none'}.",
            param="seconds",
        )
    return seconds


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


def _validate_model(catalog: Catalog, model: object) -> ModelSpec:
    if model is None or model == "":
        default = catalog.get(DEFAULT_MODEL)
        if default is None:
            raise InvalidRequest(
                f"model is required; allowed values: {_model_listing(catalog)}.",
                param="model",
                code="missing_required_parameter",
            )
        return default
    spec = catalog.get(model) if isinstance(model, str) else None
    if spec is None:
        raise ModelNotFound(
            f"The model {_shown(model)} does not exist or is not served here; "
            f"allowed values: {_model_listing(catalog)}.",
            param="model",
        )
    return spec


def _validate_size(spec: ModelSpec, size: object) -> str:
    if size is None or size == "":
        return spec.default_size
    if not isinstance(size, str) or size not in spec.sizes:
        raise InvalidRequest(
            f"size {_shown(size)} is not supported; allowed values: {_listing(spec.sizes)}.",
            param="size",
        )
    return size


def _require(spec: ModelSpec, capability: Capability, param: str, what: str | None = None) -> None:
    if not spec.can(capability):
        can = _listing(sorted(spec.capabilities)) or "text to video only"
        asked = f"cannot {what}" if what else f"does not take {param}"
        raise InvalidRequest(
            f"{spec.name} {asked} (it lacks the {capability} capability); its capabilities: {can}.",
            param=param,
            code="unsupported_capability",
        )


def _seconds_text(seconds: object) -> str | None:
    if seconds is None or seconds == "":
        return None
    if isinstance(seconds, bool):
        return repr(seconds)
    if isinstance(seconds, int):
        return str(seconds) if abs(seconds) < 10**30 else "(a very long number)"
    if isinstance(seconds, float) and seconds.is_integer():
        return str(int(seconds))
    return str(seconds).strip()


def _choose_route(spec: ModelSpec, seconds: str | None, wants_reverse: bool) -> Route:
    """Pick the route: `character_*` forces reverse; otherwise `seconds` decides."""
    routes = spec.routes
    candidates = (
        [r for r in routes if r.route_class is RouteClass.REVERSE] if wants_reverse else routes
    )
    if not candidates:
        allowed = {r.route_class.value for r in routes}
        raise InvalidRequest(
            f"character_url needs the reverse route, and {spec.name} is served only on: "
            f"{_listing(sorted(allowed))}.",
            param="character_url",
        )
    if seconds is None:
        return candidates[0]
    for route in candidates:
        if route.allows(seconds):
            return route
    if wants_reverse:
        allowed_seconds = ", ".join(r.allowed_text() for r in candidates)
        raise InvalidRequest(
            f"seconds {_shown(seconds)} is not available with character_url (reverse route) "
            f"for {spec.name}; allowed values: {allowed_seconds}.",
            param="seconds",
        )
    by_route = "; ".join(f"{r.route_class} route: {r.allowed_text()}" for r in routes)
    raise InvalidRequest(
        f"seconds {_shown(seconds)} is not supported for {spec.name}; allowed values: {by_route}.",
        param="seconds",
    )


def _validate_params(spec: ModelSpec, raw: Mapping[str, object]) -> dict[str, ParamValue]:
    """Each declared parameter typed; an undeclared field is `unknown_parameter`; defaults
    filled in. Ordered as declared, so equal requests store and print alike."""
    for name, value in raw.items():
        if spec.param(name) is None and not _absent(value):
            takes = _listing([*sorted(STANDARD_FIELDS), *(p.name for p in spec.params)])
            raise InvalidRequest(
                f"Unknown parameter: {_shown(name)}. {spec.name} takes: {takes}.",
                param=name[:100],
                code="unknown_parameter",
            )
    clean: dict[str, ParamValue] = {}
    for param in spec.params:
        value = raw.get(param.name)
        if not _absent(value):
            clean[param.name] = param.coerce(value)
        elif param.default is not None:
            clean[param.name] = param.default
    return clean


def _absent(value: object) -> bool:
    return value is None or value == ""


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
    match = _TIMESTAMPS.match(value) if isinstance(value, str) and len(value) < 80 else None
    if match is None:
        raise InvalidRequest(
            f'character_timestamps {_shown(value)} must be "{{start}},{{end}}" in seconds, '
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


def _model_listing(catalog: Catalog) -> str:
    names = catalog.models
    if len(names) <= _LISTED_MODELS:
        return _listing(names)
    shown = _listing(names[:_LISTED_MODELS])
    return f"{shown} and {len(names) - _LISTED_MODELS} more (GET /v1/models lists them)"


def _listing(values: Sequence[str]) -> str:
    return ", ".join(values)


def _shown(value: object) -> str:
    """A client's value in a message: its repr, cut short (it may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _trim(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)
