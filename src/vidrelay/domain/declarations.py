"""The one parser of a model declaration: the `[[models]]` tables of `vidrelay.toml`, the JSON
of `PUT /admin/models/{name}`, the files of `vidrelay models set`, and the database's own copy
all go through `parse_model`, and `model_declaration` writes the canonical form back.

A mistake is an `InvalidDeclaration` whose `param` is the field's path inside the declaration
(`routes[0].seconds`, `params[1].default`), so each entrypoint can say where it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from vidrelay.domain.catalog import (
    OPERATION_CONDITION,
    STANDARD_FIELDS,
    Capability,
    ModelSpec,
    Route,
    RouteClass,
)
from vidrelay.domain.errors import InvalidRequest
from vidrelay.domain.params import STRING_MAX_LENGTH, ParamSpec, ParamType, ParamValue

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,79}")
PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
MAX_SIDE = 4096
MAX_SECONDS = 600
RESERVED_PARAM_NAMES = STANDARD_FIELDS | {
    OPERATION_CONDITION, "video", "name", "characters", "character", "remixed_from_video_id",
    "id", "object", "status", "user", "metadata", "stream",
}  # fmt: skip
_MODEL_FIELDS = frozenset(
    {
        "name",
        "owned_by",
        "description",
        "sizes",
        "capabilities",
        "routes",
        "params",
        "extension_seconds",
    }
)
_ROUTE_FIELDS = frozenset({"route_class", "seconds", "seconds_range"})
_PARAM_FIELDS = frozenset(
    {"name", "type", "values", "default", "min", "max", "max_length", "description"}
)


class InvalidDeclaration(InvalidRequest):
    """A model or price declaration that cannot work; `param` is the field's path."""

    default_code = "invalid_declaration"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}", param=path)
        self.problem = problem


def parse_model(data: Mapping[str, Any], created: int = 0) -> ModelSpec:
    """A `ModelSpec` from its declaration, or `InvalidDeclaration` naming the field."""
    if not isinstance(data, Mapping):
        raise InvalidDeclaration("model", "a declaration is a table of fields")
    _no_unknown_fields(data, _MODEL_FIELDS, "")
    name = data.get("name")
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise InvalidDeclaration(
            "name", "1 to 80 letters, digits and . _ : / -, starting with a letter or digit"
        )
    sizes = _sizes(data.get("sizes"))
    routes = _routes(data.get("routes"))
    params = _params(data.get("params", []))
    capabilities = _capabilities(data.get("capabilities", []))
    return ModelSpec(
        name=name,
        routes=routes,
        sizes=sizes,
        capabilities=capabilities,
        params=params,
        owned_by=_text(data.get("owned_by", "vidrelay"), "owned_by", 80) or "vidrelay",
        description=_text(data.get("description", ""), "description", 500),
        created=created,
        extension_seconds=_extension_seconds(data.get("extension_seconds"), capabilities),
    )


def model_declaration(spec: ModelSpec) -> dict[str, Any]:
    """The canonical declaration of a model: what `parse_model` reads back unchanged."""
    declaration: dict[str, Any] = {
        "name": spec.name,
        "owned_by": spec.owned_by,
        "sizes": list(spec.sizes),
        "capabilities": sorted(capability.value for capability in spec.capabilities),
        "routes": [_route_declaration(route) for route in spec.routes],
        "params": [param_declaration(param) for param in spec.params],
    }
    if spec.description:
        declaration["description"] = spec.description
    if spec.extension_seconds is not None:
        declaration["extension_seconds"] = spec.extension_seconds
    return declaration


def _route_declaration(route: Route) -> dict[str, Any]:
    if route.seconds_range is not None:
        return {"route_class": route.route_class.value, "seconds_range": list(route.seconds_range)}
    return {"route_class": route.route_class.value, "seconds": list(route.seconds)}


def param_declaration(param: ParamSpec) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": param.name, "type": param.type.value}
    optional: dict[str, Any] = {
        "values": list(param.values) or None,
        "default": param.default,
        "min": param.minimum,
        "max": param.maximum,
        "max_length": param.max_length,
        "description": param.description or None,
    }
    declaration.update({key: value for key, value in optional.items() if value is not None})
    return declaration


def _no_unknown_fields(data: Mapping[str, Any], known: frozenset[str], path: str) -> None:
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        where = path or "model"
        raise InvalidDeclaration(
            f"{path}.{unknown[0]}" if path else unknown[0],
            f"unknown field in {where}; known fields: {', '.join(sorted(known))}",
        )


def _sizes(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidDeclaration("sizes", 'a non-empty list of "WIDTHxHEIGHT", e.g. "1280x720"')
    for index, size in enumerate(value):
        match = _SIZE.fullmatch(size) if isinstance(size, str) else None
        if match is None or any(int(side) % 2 or int(side) > MAX_SIDE for side in match.groups()):
            raise InvalidDeclaration(
                f"sizes[{index}]",
                f"{size!r} is not WIDTHxHEIGHT with even numbers from 2 to {MAX_SIDE}",
            )
    _unique(value, "sizes")
    return tuple(value)


def _capabilities(value: object) -> frozenset[Capability]:
    if not isinstance(value, list):
        raise InvalidDeclaration("capabilities", "a list")
    known = [capability.value for capability in Capability]
    for index, capability in enumerate(value):
        if capability not in known:
            raise InvalidDeclaration(
                f"capabilities[{index}]",
                f"unknown capability {capability!r}; known: {', '.join(known)}",
            )
    return frozenset(Capability(capability) for capability in value)


def _routes(value: object) -> tuple[Route, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidDeclaration(
            "routes", 'at least one route, e.g. { route_class = "official", seconds = ["5"] }'
        )
    routes = tuple(_route(entry, f"routes[{index}]") for index, entry in enumerate(value))
    _unique([route.route_class.value for route in routes], "routes", what="route_class")
    return routes


def _route(entry: object, path: str) -> Route:
    if not isinstance(entry, Mapping):
        raise InvalidDeclaration(path, "a table with route_class and seconds or seconds_range")
    _no_unknown_fields(entry, _ROUTE_FIELDS, path)
    classes = [route_class.value for route_class in RouteClass]
    if entry.get("route_class") not in classes:
        raise InvalidDeclaration(f"{path}.route_class", f"one of: {', '.join(classes)}")
    route_class = RouteClass(entry["route_class"])
    seconds, seconds_range = entry.get("seconds"), entry.get("seconds_range")
    if (seconds is None) == (seconds_range is None):
        raise InvalidDeclaration(path, "give exactly one of seconds and seconds_range")
    if seconds_range is not None:
        low, high = _seconds_range(seconds_range, f"{path}.seconds_range")
        return Route.from_range(route_class, low, high)
    if not isinstance(seconds, list) or not seconds:
        raise InvalidDeclaration(f"{path}.seconds", 'a non-empty list, e.g. ["5", "10"]')
    texts = [_whole_seconds(s, f"{path}.seconds[{index}]") for index, s in enumerate(seconds)]
    _unique(texts, f"{path}.seconds")
    return Route(route_class, tuple(texts))


def _whole_seconds(value: object, path: str) -> str:
    """ "5" or 5: a whole number of seconds from 1 to MAX_SECONDS, as its text."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 4:
        number = int(value)
    if number is None or not 1 <= number <= MAX_SECONDS:
        raise InvalidDeclaration(
            path, f"{value!r} is not a whole number of seconds (1 to {MAX_SECONDS})"
        )
    return str(number)


def _extension_seconds(value: object, capabilities: frozenset[Capability]) -> int | None:
    """The fixed length an extension adds (Veo 3.1: 7), for a model that can extend."""
    if value is None:
        return None
    if Capability.EXTENSION not in capabilities:
        raise InvalidDeclaration(
            "extension_seconds", 'only a model with the "extension" capability extends'
        )
    return int(_whole_seconds(value, "extension_seconds"))


def _seconds_range(value: object, path: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidDeclaration(path, "[lowest, highest], whole seconds, e.g. [2, 12]")
    low, high = (int(_whole_seconds(bound, path)) for bound in value)
    if low > high:
        raise InvalidDeclaration(path, f"the lowest ({low}) is above the highest ({high})")
    return low, high


def _params(value: object) -> tuple[ParamSpec, ...]:
    if not isinstance(value, list):
        raise InvalidDeclaration("params", "a list of parameter tables")
    params = tuple(_param(entry, f"params[{index}]") for index, entry in enumerate(value))
    _unique([param.name for param in params], "params", what="name")
    return params


def _param(entry: object, path: str) -> ParamSpec:
    if not isinstance(entry, Mapping):
        raise InvalidDeclaration(path, "a table with name and type")
    _no_unknown_fields(entry, _PARAM_FIELDS, path)
    name = entry.get("name")
    if not isinstance(name, str) or not PARAM_NAME.fullmatch(name):
        raise InvalidDeclaration(
            f"{path}.name", "lower-case letters, digits and _, starting with a letter, at most 64"
        )
    if name in RESERVED_PARAM_NAMES:
        raise InvalidDeclaration(
            f"{path}.name", f"{name!r} is a standard field of the API, not a model parameter"
        )
    types = [param_type.value for param_type in ParamType]
    if entry.get("type") not in types:
        raise InvalidDeclaration(f"{path}.type", f"one of: {', '.join(types)}")
    param_type = ParamType(entry["type"])
    values = _enum_values(entry, param_type, path)
    minimum, maximum = _bounds(entry, param_type, path)
    max_length = _max_length(entry, param_type, path)
    spec = ParamSpec(
        name=name,
        type=param_type,
        values=values,
        minimum=minimum,
        maximum=maximum,
        max_length=max_length,
        description=_text(entry.get("description", ""), f"{path}.description", 500),
    )
    default = entry.get("default")
    if default is None:
        return spec
    try:
        typed_default: ParamValue = spec.coerce(default)
    except InvalidRequest as error:
        raise InvalidDeclaration(f"{path}.default", error.message) from error
    return ParamSpec(
        name, param_type, values, typed_default, minimum, maximum, max_length, spec.description
    )


def _enum_values(entry: Mapping[str, Any], param_type: ParamType, path: str) -> tuple[str, ...]:
    values = entry.get("values")
    if param_type is not ParamType.ENUM:
        if values is not None:
            raise InvalidDeclaration(f"{path}.values", "only an enum has values")
        return ()
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(value, str) and 0 < len(value) <= 200 for value in values)
    ):
        raise InvalidDeclaration(
            f"{path}.values", 'a non-empty list of strings, e.g. ["720p", "1080p"]'
        )
    _unique(values, f"{path}.values")
    return tuple(values)


def _bounds(
    entry: Mapping[str, Any], param_type: ParamType, path: str
) -> tuple[int | float | None, int | float | None]:
    bounds: list[int | float | None] = []
    for key in ("min", "max"):
        bound = entry.get(key)
        if bound is None:
            bounds.append(None)
            continue
        if param_type not in (ParamType.INT, ParamType.NUMBER):
            raise InvalidDeclaration(f"{path}.{key}", "only an int or a number has bounds")
        wanted = int if param_type is ParamType.INT else (int, float)
        if isinstance(bound, bool) or not isinstance(bound, wanted) or abs(bound) > 2**63:
            raise InvalidDeclaration(f"{path}.{key}", f"a {param_type} value, got {bound!r}")
        bounds.append(bound)
    low, high = bounds
    if low is not None and high is not None and low > high:
        raise InvalidDeclaration(f"{path}.min", f"min ({low}) is above max ({high})")
    return low, high


def _max_length(entry: Mapping[str, Any], param_type: ParamType, path: str) -> int | None:
    max_length = entry.get("max_length")
    if max_length is None:
        return None
    if param_type is not ParamType.STRING:
        raise InvalidDeclaration(f"{path}.max_length", "only a string has max_length")
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int)
        or not 1 <= max_length <= STRING_MAX_LENGTH
    ):
        raise InvalidDeclaration(f"{path}.max_length", f"an integer from 1 to {STRING_MAX_LENGTH}")
    return max_length


def _text(value: object, path: str, longest: int) -> str:
    if not isinstance(value, str) or len(value) > longest:
        raise InvalidDeclaration(path, f"a string of at most {longest} characters")
    return value


def _unique(values: Sequence[object], path: str, what: str = "value") -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise InvalidDeclaration(path, f"the {what} {value!r} appears twice")
        seen.add(value)
