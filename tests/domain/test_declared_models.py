"""A declared model's requests: every parameter type with its good and bad values, fields the
model does not declare, capabilities it lacks, defaults, ranges of seconds."""

from __future__ import annotations

from typing import Any

import pytest

from vidrelay.domain.catalog import Catalog, RouteClass, normalise_request
from vidrelay.domain.declarations import parse_model
from vidrelay.domain.errors import InvalidRequest

ACME = {
    "name": "acme-video-1",
    "owned_by": "acme",
    "sizes": ["1280x720", "720x1280", "1920x1080", "1080x1920"],
    "capabilities": ["audio"],
    "routes": [{"route_class": "official", "seconds_range": [2, 12]}],
    "params": [
        {"name": "resolution", "type": "enum", "values": ["720p", "1080p"], "default": "720p"},
        {"name": "negative_prompt", "type": "string", "max_length": 20},
        {"name": "seed", "type": "int", "min": 0, "max": 4294967295},
        {"name": "cfg_scale", "type": "number", "min": 0, "max": 1},
        {"name": "generate_audio", "type": "bool", "default": True},
    ],
}
CATALOG = Catalog([parse_model(ACME)])


def normalise(**fields: Any):  # type: ignore[no-untyped-def]
    has_reference = fields.pop("has_reference", False)
    standard = {
        k: fields.pop(k) for k in ("model", "seconds", "size", "character_url") if k in fields
    }
    return normalise_request(
        CATALOG,
        prompt="a paper boat",
        model=standard.pop("model", "acme-video-1"),
        params=fields,
        has_reference=has_reference,
        **standard,
    )


def test_defaults_fill_in_and_absent_parameters_stay_absent() -> None:
    request = normalise()
    assert (request.seconds, request.size, request.route_class) == ("2", "1280x720", "official")
    assert dict(request.params) == {"resolution": "720p", "generate_audio": True}


@pytest.mark.parametrize(
    ("field", "sent", "typed"),
    [
        ("resolution", "1080p", "1080p"),
        ("negative_prompt", "blurry", "blurry"),
        ("negative_prompt", "x" * 20, "x" * 20),
        ("seed", "42", 42),  # multipart text
        ("seed", 42, 42),  # JSON number
        ("seed", "4294967295", 4294967295),
        ("seed", 7.0, 7),
        ("cfg_scale", "0.5", 0.5),
        ("cfg_scale", 1, 1.0),
        ("cfg_scale", ".25", 0.25),
        ("generate_audio", "false", False),
        ("generate_audio", "TRUE", True),
        ("generate_audio", False, False),
    ],
)
def test_each_type_takes_its_multipart_text_and_its_json_value(
    field: str, sent: object, typed: object
) -> None:
    value = normalise(**{field: sent}).params[field]
    assert value == typed and type(value) is type(typed)


@pytest.mark.parametrize(
    ("field", "sent", "mentions"),
    [
        ("resolution", "4k", "720p, 1080p"),
        ("resolution", True, "720p, 1080p"),
        ("negative_prompt", "x" * 21, "at most 20 characters"),
        ("negative_prompt", 5, "a string"),
        ("seed", "-1", "from 0 to 4294967295"),
        ("seed", "4294967296", "from 0 to 4294967295"),
        ("seed", "1.5", "an integer"),
        ("seed", True, "an integer"),
        ("seed", "9" * 5000, "an integer"),
        ("cfg_scale", "1.01", "a number from 0 to 1"),
        ("cfg_scale", "nan", "a number"),
        ("cfg_scale", "1e999", "a number"),
        ("cfg_scale", [0.5], "a number"),
        ("generate_audio", "yes please", "true or false"),
        ("generate_audio", 1, "true or false"),
    ],
)
def test_a_bad_value_of_each_type_is_a_400_naming_the_parameter_and_what_it_takes(
    field: str, sent: object, mentions: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise(**{field: sent})
    assert caught.value.param == field
    assert mentions in caught.value.message
    assert len(caught.value.message) < 300


def test_a_field_the_model_does_not_declare_is_unknown_parameter_naming_it() -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise(motion_strength="0.4")
    assert (caught.value.param, caught.value.code) == ("motion_strength", "unknown_parameter")
    assert "resolution" in caught.value.message  # what the model does take
    # An empty field is absent (the SDKs send None that way), declared or not.
    assert "motion_strength" not in normalise(motion_strength="").params


def test_a_declared_parameter_of_one_model_is_unknown_to_another() -> None:
    other = parse_model({**ACME, "name": "plain", "params": []})
    catalog = Catalog([parse_model(ACME), other])
    with pytest.raises(InvalidRequest) as caught:
        normalise_request(catalog, prompt="p", model="plain", params={"resolution": "720p"})
    assert caught.value.code == "unknown_parameter"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"has_reference": True}, "input_reference"),
        ({"character_url": "https://cdn.example.com/c.mp4"}, "character_url"),
    ],
)
def test_a_capability_the_model_lacks_is_a_400_naming_it(
    fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise(**fields)
    assert (caught.value.param, caught.value.code) == (param, "unsupported_capability")
    assert "audio" in caught.value.message  # what it can do


def test_a_seconds_range_takes_every_whole_second_in_it_and_names_its_bounds() -> None:
    assert [normalise(seconds=s).seconds for s in ("2", 7, "12")] == ["2", "7", "12"]
    for bad in ("1", "13", "2.5"):
        with pytest.raises(InvalidRequest) as caught:
            normalise(seconds=bad)
        assert caught.value.param == "seconds"
        assert "2 to 12" in caught.value.message


def test_sizes_are_the_models_own() -> None:
    assert normalise(size="1080x1920").size == "1080x1920"
    with pytest.raises(InvalidRequest) as caught:
        normalise(size="720x1280x")
    assert "1280x720, 720x1280, 1920x1080, 1080x1920" in caught.value.message


def test_the_route_follows_seconds_over_several_declared_routes() -> None:
    model = parse_model(
        {
            **ACME,
            "routes": [
                {"route_class": "official", "seconds": [5, "10"]},
                {"route_class": "reverse", "seconds": ["15"]},
            ],
        }
    )
    catalog = Catalog([model])
    request = normalise_request(catalog, prompt="p", model="acme-video-1", seconds="15")
    assert request.route_class is RouteClass.REVERSE
    assert normalise_request(catalog, prompt="p", model="acme-video-1").seconds == "5"


def test_without_sora_2_an_omitted_model_is_required() -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_request(CATALOG, prompt="p")
    assert (caught.value.param, caught.value.code) == ("model", "missing_required_parameter")
    assert "acme-video-1" in caught.value.message
