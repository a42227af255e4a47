"""The relay matrix: what each (model, seconds, size, character) request normalises to, and
every way to get it wrong."""

from __future__ import annotations

import pytest

from vidrelay.domain.catalog import (
    DEFAULT_CATALOG,
    Capability,
    Catalog,
    ModelSpec,
    Operation,
    Route,
    RouteClass,
    SourceVideo,
    derive_request,
    normalise_request,
)
from vidrelay.domain.errors import InvalidRequest, ModelNotFound
from vidrelay.domain.pricing import price_micros


def normalise(**fields: object):  # type: ignore[no-untyped-def]
    fields.setdefault("prompt", "a paper boat on a rainy street")
    return normalise_request(DEFAULT_CATALOG, **fields)


@pytest.mark.parametrize(
    ("model", "seconds", "route_class"),
    [
        ("sora-2", "4", RouteClass.OFFICIAL),
        ("sora-2", "8", RouteClass.OFFICIAL),
        ("sora-2", "12", RouteClass.OFFICIAL),
        ("sora-2", "10", RouteClass.REVERSE),
        ("sora-2", "15", RouteClass.REVERSE),
        ("sora-2-pro", "10", RouteClass.REVERSE),
        ("sora-2-pro", "15", RouteClass.REVERSE),
        ("sora-2-pro", "25", RouteClass.REVERSE),
    ],
)
def test_every_row_of_the_matrix_is_accepted_on_its_route(
    model: str, seconds: str, route_class: RouteClass
) -> None:
    for size in ("720x1280", "1280x720", "1024x1792", "1792x1024"):
        request = normalise(model=model, seconds=seconds, size=size)
        assert (request.model, request.seconds, request.size) == (model, seconds, size)
        assert request.route_class is route_class


def test_omitted_fields_take_the_documented_defaults() -> None:
    request = normalise()
    assert (request.model, request.seconds, request.size) == ("sora-2", "4", "720x1280")
    assert request.route_class is RouteClass.OFFICIAL
    assert normalise(model="sora-2-pro").seconds == "10"


def test_integer_seconds_is_accepted_as_its_string() -> None:
    assert normalise(seconds=8).seconds == "8"
    assert normalise(model="sora-2-pro", seconds=25).seconds == "25"


def test_character_url_forces_the_reverse_route() -> None:
    request = normalise(character_url="https://cdn.example.com/cat.mp4", character_timestamps="1,3")
    assert request.route_class is RouteClass.REVERSE
    assert request.seconds == "10"
    assert str(request.character_timestamps) == "1,3"


@pytest.mark.parametrize(
    ("fields", "param", "mentions"),
    [
        ({"prompt": ""}, "prompt", "1 to 32000"),
        ({"prompt": "   "}, "prompt", "1 to 32000"),
        ({"prompt": None}, "prompt", "required"),
        ({"prompt": "x" * 32001}, "prompt", "32000"),
        ({"seconds": "5"}, "seconds", "4, 8, 12"),
        ({"seconds": "abc"}, "seconds", "10, 15"),
        ({"seconds": "-4"}, "seconds", "4, 8, 12"),
        ({"model": "sora-2-pro", "seconds": "4"}, "seconds", "10, 15, 25"),
        ({"model": "sora-2-pro", "seconds": "12"}, "seconds", "10, 15, 25"),
        ({"size": "1920x1080"}, "size", "720x1280, 1280x720, 1024x1792, 1792x1024"),
        ({"size": "720X1280"}, "size", "1792x1024"),
        ({"size": "big"}, "size", "720x1280"),
        (
            {"character_url": "https://cdn.example.com/c.mp4", "seconds": "8"},
            "seconds",
            "10, 15",
        ),
        ({"character_url": "ftp://cdn.example.com/c.mp4"}, "character_url", "http"),
        ({"character_url": "not a url"}, "character_url", "http"),
        ({"character_timestamps": "1,3"}, "character_timestamps", "character_url"),
        (
            {"character_url": "https://c.example/c.mp4", "character_timestamps": "1,5"},
            "character_timestamps",
            "1 to 3",
        ),
        (
            {"character_url": "https://c.example/c.mp4", "character_timestamps": "3,2"},
            "character_timestamps",
            "start < end",
        ),
        (
            {"character_url": "https://c.example/c.mp4", "character_timestamps": "1,1.5"},
            "character_timestamps",
            "1 to 3",
        ),
        (
            {"character_url": "https://c.example/c.mp4", "character_timestamps": "1-3"},
            "character_timestamps",
            "{start},{end}",
        ),
        (
            {"character_url": "https://c.example/c.mp4", "character_timestamps": "a,b"},
            "character_timestamps",
            "{start},{end}",
        ),
    ],
)
def test_each_violation_names_its_parameter_and_the_allowed_values(
    fields: dict[str, object], param: str, mentions: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise(**fields)
    assert caught.value.param == param
    assert mentions in caught.value.message
    assert caught.value.status_code == 400


@pytest.mark.parametrize("model", ["sora-3", "gpt-4o", "SORA-2"])
def test_an_unknown_model_is_model_not_found_listing_the_served_models(model: str) -> None:
    with pytest.raises(ModelNotFound) as caught:
        normalise(model=model)
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
    assert "sora-2, sora-2-pro" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "usd"),
    [
        ({}, "0.4"),
        ({"seconds": "8"}, "0.8"),
        ({"seconds": "15"}, "1.5"),
        ({"model": "sora-2-pro"}, "3"),
        ({"model": "sora-2-pro", "seconds": "25", "size": "1792x1024"}, "12.5"),
        ({"model": "sora-2-pro", "seconds": "10", "size": "1280x720"}, "3"),
    ],
)
def test_price_is_computed_from_the_normalised_request(fields: dict[str, object], usd: str) -> None:
    from decimal import Decimal

    assert price_micros(normalise(**fields)) == int(Decimal(usd) * 1_000_000)


VEO_LIKE = ModelSpec(
    "veo-like",
    (Route(RouteClass.OFFICIAL, ("8", "6", "4")),),
    ("1280x720",),
    frozenset({Capability.EXTENSION}),
    extension_seconds=7,
)


def test_an_extension_of_a_model_with_a_fixed_length_takes_that_length_only() -> None:
    catalog = Catalog([VEO_LIKE])
    source = SourceVideo(seconds=8, video_id="video_1")
    extended = derive_request(
        catalog, operation=Operation.EXTENSION, prompt="on", source=source, model="veo-like",
        seconds="7",
    )  # fmt: skip
    assert (extended.seconds, extended.result_seconds) == ("7", "15")
    for seconds in ("8", "4", None):  # the route's own lengths are no extension's
        with pytest.raises(InvalidRequest) as refused:
            derive_request(
                catalog, operation=Operation.EXTENSION, prompt="on", source=source,
                model="veo-like", seconds=seconds,
            )  # fmt: skip
        assert refused.value.param == "seconds" and "7" in refused.value.message
