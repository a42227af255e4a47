"""Model declarations: every documented mistake is refused naming its field, and what is
accepted survives being written back and read again (the database stores that form)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidrelay.domain.catalog import DEFAULT_MODELS
from vidrelay.domain.declarations import InvalidDeclaration, model_declaration, parse_model

GOOD: dict[str, Any] = {
    "name": "acme-video-1",
    "owned_by": "acme",
    "sizes": ["1280x720", "720x1280"],
    "capabilities": ["input_reference", "audio"],
    "routes": [{"route_class": "official", "seconds": ["5", "10"]}],
    "params": [
        {"name": "resolution", "type": "enum", "values": ["720p", "1080p"], "default": "720p"},
        {"name": "seed", "type": "int", "min": 0, "max": 4294967295},
    ],
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """GOOD with one field (dotted path, list indexes as numbers) set; `...` deletes it."""
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return data


@pytest.mark.parametrize(
    ("declaration", "field", "mentions"),
    [
        (changed("name", ""), "name", "letters"),
        (changed("name", "a b"), "name", "letters"),
        (changed("routes", []), "routes", "at least one route"),
        (changed("routes", ...), "routes", "at least one route"),
        (changed("routes.0.seconds", []), "routes[0].seconds", "non-empty"),
        (changed("routes.0.seconds", ["five"]), "routes[0].seconds[0]", "whole number"),
        (changed("routes.0.seconds", ["5.5"]), "routes[0].seconds[0]", "whole number"),
        (changed("routes.0.seconds", ["0"]), "routes[0].seconds[0]", "whole number"),
        (changed("routes.0.seconds", ["5", 5]), "routes[0].seconds", "twice"),
        (changed("routes.0.route_class", "vip"), "routes[0].route_class", "official"),
        (
            changed("routes", [{"route_class": "official", "seconds_range": [12, 2]}]),
            "routes[0].seconds_range",
            "above",
        ),
        (
            changed(
                "routes", [{"route_class": "official", "seconds": ["5"], "seconds_range": [2, 3]}]
            ),
            "routes[0]",
            "exactly one",
        ),
        (
            changed("routes", [GOOD["routes"][0], GOOD["routes"][0]]),
            "routes",
            "appears twice",
        ),
        (changed("sizes", []), "sizes", "non-empty"),
        (changed("sizes", ["1280*720"]), "sizes[0]", "WIDTHxHEIGHT"),
        (changed("sizes", ["1281x720"]), "sizes[0]", "even"),
        (changed("sizes", ["0x720"]), "sizes[0]", "even"),
        (changed("sizes", ["-2x720"]), "sizes[0]", "even"),
        (changed("sizes", ["8192x720"]), "sizes[0]", "4096"),
        (changed("capabilities", ["telepathy"]), "capabilities[0]", "input_reference"),
        (changed("params.0.type", "float"), "params[0].type", "enum, string, int, number, bool"),
        (changed("params.0.default", "4k"), "params[0].default", "720p, 1080p"),
        (changed("params.1.default", -1), "params[1].default", "from 0 to 4294967295"),
        (changed("params.0.values", []), "params[0].values", "non-empty"),
        (changed("params.1.values", ["1"]), "params[1].values", "only an enum"),
        (changed("params.1.min", "0"), "params[1].min", "int"),
        (changed("params.1.min", 5_000_000_000), "params[1].min", "above max"),
        (changed("params.0.name", "size"), "params[0].name", "standard field"),
        (changed("params.0.name", "prompt"), "params[0].name", "standard field"),
        (changed("params.0.name", "Resolution"), "params[0].name", "lower-case"),
        (changed("params.1.name", "resolution"), "params", "appears twice"),
        (changed("params.0.colour", "red"), "params[0].colour", "unknown field"),
        (changed("colour", "red"), "colour", "unknown field"),
        (changed("extension_seconds", 7), "extension_seconds", '"extension" capability'),
        (
            {**changed("capabilities", ["extension"]), "extension_seconds": "7.5"},
            "extension_seconds",
            "whole number",
        ),
    ],
)
def test_a_declaration_with_a_mistake_is_refused_naming_the_field(
    declaration: dict[str, Any], field: str, mentions: str
) -> None:
    with pytest.raises(InvalidDeclaration) as caught:
        parse_model(declaration)
    assert caught.value.param == field
    assert mentions in caught.value.message
    assert caught.value.status_code == 400


def test_a_fixed_extension_length_reads_back_and_is_left_out_when_absent() -> None:
    declared = parse_model({**changed("capabilities", ["extension"]), "extension_seconds": "7"})
    assert declared.extension_seconds == 7
    assert model_declaration(declared)["extension_seconds"] == 7
    assert parse_model(model_declaration(declared)) == declared
    assert "extension_seconds" not in model_declaration(parse_model(GOOD))


def test_the_seed_models_are_their_own_declarations() -> None:
    for model in DEFAULT_MODELS:
        assert parse_model(model_declaration(model)) == model


_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda name: name not in {"prompt", "model", "seconds", "size", "video", "name", "id"}
)
_params = st.one_of(
    st.builds(
        lambda name, values, pick: {
            "name": name,
            "type": "enum",
            "values": values,
            **({"default": values[pick % len(values)]} if pick % 2 else {}),
        },
        _names,
        st.lists(
            st.text("abcxyz0123", min_size=1, max_size=5), min_size=1, max_size=4, unique=True
        ),
        st.integers(0, 10),
    ),
    st.builds(
        lambda name, low, span: {
            "name": name,
            "type": "int",
            "min": low,
            "max": low + span,
            "default": low,
        },
        _names,
        st.integers(-(2**40), 2**40),
        st.integers(0, 2**20),
    ),
    st.builds(
        lambda name, low: {"name": name, "type": "number", "min": low, "max": low + 1.5},
        _names,
        st.floats(-1e6, 1e6),
    ),
    st.builds(
        lambda name, on: {"name": name, "type": "bool", "default": on}, _names, st.booleans()
    ),
    st.builds(
        lambda name, longest: {"name": name, "type": "string", "max_length": longest},
        _names,
        st.integers(1, 32000),
    ),
)
_sizes = st.lists(
    st.tuples(st.integers(1, 2048), st.integers(1, 2048)).map(
        lambda wh: f"{wh[0] * 2}x{wh[1] * 2}"
    ),
    min_size=1,
    max_size=5,
    unique=True,
)
_routes = st.lists(
    st.one_of(
        st.lists(st.integers(1, 600).map(str), min_size=1, max_size=5, unique=True).map(
            lambda seconds: {"seconds": seconds}
        ),
        st.tuples(st.integers(1, 300), st.integers(0, 300)).map(
            lambda low_span: {"seconds_range": [low_span[0], low_span[0] + low_span[1]]}
        ),
    ),
    min_size=1,
    max_size=2,
).map(
    lambda routes: [
        {"route_class": route_class, **route}
        for route_class, route in zip(("official", "reverse"), routes, strict=False)
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    sizes=_sizes,
    routes=_routes,
    params=st.lists(_params, max_size=5, unique_by=lambda param: param["name"]),
    capabilities=st.lists(
        st.sampled_from(["input_reference", "audio", "character", "remix", "edit", "extension"]),
        unique=True,
    ),
)
def test_any_valid_declaration_reads_back_the_same_after_being_written(
    sizes: list[str],
    routes: list[dict[str, Any]],
    params: list[dict[str, Any]],
    capabilities: list[str],
) -> None:
    declared = parse_model(
        {
            "name": "m",
            "sizes": sizes,
            "routes": routes,
            "params": params,
            "capabilities": capabilities,
        }
    )
    written = model_declaration(declared)
    assert parse_model(written) == declared
    assert model_declaration(parse_model(written)) == written
