"""Prices with conditions on declared parameters: for any rules and any valid request, the
charge is the most specific matching rule's (most conditions, then route and size class; the
higher price between equals), times the group multiplier."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidrelay.domain.catalog import Catalog, RouteClass, normalise_request
from vidrelay.domain.declarations import parse_model
from vidrelay.domain.errors import InvalidRequest, ModelNotFound
from vidrelay.domain.pricing import PriceDeclaration, PriceRule, SizeClass, quote, size_class

MODEL = parse_model(
    {
        "name": "acme-video-1",
        "sizes": ["1280x720", "1920x1080"],
        "routes": [
            {"route_class": "official", "seconds": ["5", "10"]},
            {"route_class": "reverse", "seconds": ["15"]},
        ],
        "params": [
            {"name": "resolution", "type": "enum", "values": ["720p", "1080p"], "default": "720p"},
            {"name": "generate_audio", "type": "bool"},
            {"name": "mode", "type": "enum", "values": ["std", "pro"]},
        ],
    }
)
CATALOG = Catalog([MODEL])
VALUES: dict[str, list[Any]] = {
    "resolution": ["720p", "1080p"],
    "generate_audio": [True, False, "true", "false"],
    "mode": ["std", "pro"],
    "operation": ["create", "remix"],
}

_conditions = st.dictionaries(st.sampled_from(sorted(VALUES)), st.none(), max_size=3).flatmap(
    lambda names: st.fixed_dictionaries({name: st.sampled_from(VALUES[name]) for name in names})
)
_declarations = st.builds(
    lambda route, size, per_second, amount, when: PriceDeclaration(
        "acme-video-1",
        route,
        size,
        per_second_micros=amount if per_second else None,
        per_request_micros=None if per_second else amount,
        when=when,
    ),
    st.sampled_from([None, RouteClass.OFFICIAL, RouteClass.REVERSE]),
    st.sampled_from([None, SizeClass.STANDARD, SizeClass.HIGH]),
    st.booleans(),
    st.integers(0, 5_000_000),
    _conditions,
)
_requests = st.fixed_dictionaries(
    {
        "seconds": st.sampled_from(["5", "10", "15"]),
        "size": st.sampled_from(["1280x720", "1920x1080"]),
        "resolution": st.sampled_from(["", "720p", "1080p"]),
        "generate_audio": st.sampled_from(["", "true", "false"]),
        "mode": st.sampled_from(["", "std", "pro"]),
    }
)


def _written(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _matches(declaration: PriceDeclaration, request: dict[str, str]) -> bool:
    """The documented meaning of a rule, written out independently of PriceRule.matches."""
    route = "reverse" if request["seconds"] == "15" else "official"
    pixels = {"1280x720": "standard", "1920x1080": "high"}[request["size"]]
    sent = {
        "resolution": request["resolution"] or "720p",  # the declared default
        "generate_audio": request["generate_audio"] or None,
        "mode": request["mode"] or None,
        "operation": "create",
    }
    return (
        declaration.route_class in (None, route)
        and declaration.size_class in (None, pixels)
        and all(sent[name] == _written(value) for name, value in declaration.when.items())
    )


@settings(max_examples=300, deadline=None)
@given(
    declarations=st.lists(_declarations, min_size=1, max_size=8),
    request=_requests,
    multiplier_ppm=st.sampled_from([1_000_000, 800_000, 1_333_333, 0, 2_500_000]),
)
def test_the_charge_is_the_most_specific_matching_rules_times_the_multiplier(
    declarations: list[PriceDeclaration], request: dict[str, str], multiplier_ppm: int
) -> None:
    rules = {}
    for declaration in declarations:  # a later rule replaces one with the same key, as stored
        rule = declaration.rule(CATALOG)
        rules[(rule.route_class, rule.size_class, rule.conditions)] = (declaration, rule)
    normalised = normalise_request(
        CATALOG,
        prompt="p",
        model="acme-video-1",
        seconds=request["seconds"],
        size=request["size"],
        params={name: request[name] for name in ("resolution", "generate_audio", "mode")},
    )
    seconds = int(request["seconds"])
    matching = [
        (len(d.when), (d.route_class is not None) + (d.size_class is not None), r.price(seconds))
        for d, r in rules.values()
        if _matches(d, request)
    ]
    if not matching:
        with pytest.raises(InvalidRequest) as caught:
            quote([r for _, r in rules.values()], normalised, multiplier_ppm)
        assert caught.value.code == "model_not_priced"
        return
    best = max(matching)
    assert all(candidate[:2] <= best[:2] for candidate in matching)
    expected = (Decimal(best[2]) * multiplier_ppm / 1_000_000).quantize(Decimal(1), ROUND_HALF_UP)
    assert quote([r for _, r in rules.values()], normalised, multiplier_ppm) == int(expected)


def test_a_condition_value_is_typed_by_the_declaration_so_true_and_true_text_are_one_rule() -> None:
    as_bool = PriceDeclaration("acme-video-1", per_second_micros=1, when={"generate_audio": True})
    as_text = PriceDeclaration("acme-video-1", per_second_micros=1, when={"generate_audio": "TRUE"})
    assert as_bool.rule(CATALOG).conditions == as_text.rule(CATALOG).conditions


@pytest.mark.parametrize(
    ("declaration", "param"),
    [
        (PriceDeclaration("acme-video-1", per_second_micros=1, when={"fps": "24"}), "when.fps"),
        (
            PriceDeclaration("acme-video-1", per_second_micros=1, when={"resolution": "4k"}),
            "when.resolution",
        ),
        (
            PriceDeclaration("acme-video-1", per_second_micros=1, when={"operation": "upscale"}),
            "when.operation",
        ),
        (PriceDeclaration("acme-video-1"), "per_second_usd"),
        (
            PriceDeclaration("acme-video-1", per_second_micros=1, per_request_micros=1),
            "per_second_usd",
        ),
    ],
)
def test_a_price_rule_that_cannot_match_as_written_is_refused(
    declaration: PriceDeclaration, param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        declaration.rule(CATALOG)
    assert caught.value.param == param


def test_a_price_for_a_model_outside_the_catalog_is_model_not_found() -> None:
    with pytest.raises(ModelNotFound):
        PriceDeclaration("veo-9", per_second_micros=1).rule(CATALOG)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("720x1280", SizeClass.STANDARD),
        ("1280x720", SizeClass.STANDARD),
        ("960x960", SizeClass.STANDARD),
        ("1024x1792", SizeClass.HIGH),
        ("1920x1080", SizeClass.HIGH),
        ("480x854", SizeClass.STANDARD),
    ],
)
def test_the_size_class_is_standard_up_to_720p_pixels(size: str, expected: SizeClass) -> None:
    assert size_class(size) is expected


def test_price_rule_sorts_its_conditions() -> None:
    rule = PriceRule("m", per_second_micros=1, conditions=(("b", "1"), ("a", "2")))
    assert rule.conditions == (("a", "2"), ("b", "1"))
