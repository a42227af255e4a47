"""The catalog of today's models shipped with vidrelay: every entry parses, is documented and
priced, and offers nothing its provider cannot be asked for (each protocol's own request
mapper is asked for every size, length and parameter value), so a client ordering it gets a
400 at create for what is not offered, never a failed job."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from vidrelay.domain.catalog import Catalog, ModelSpec, normalise_request
from vidrelay.domain.channels import ChannelProtocol
from vidrelay.domain.params import ParamType
from vidrelay.shipped_models import ShippedModel, shipped_models
from vidrelay.upstreams.base import UpstreamRequest

ENTRIES = shipped_models()
PROVIDER_NATIVE = [
    protocol
    for protocol in ChannelProtocol
    if protocol not in (ChannelProtocol.OPENAI, ChannelProtocol.SORA2API, ChannelProtocol.LOCAL)
]


def test_names_are_unique() -> None:
    names = [entry.model.name for entry in ENTRIES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("protocol", PROVIDER_NATIVE)
def test_each_provider_protocol_ships_at_least_two_current_models(
    protocol: ChannelProtocol,
) -> None:
    assert len([entry for entry in ENTRIES if entry.protocol is protocol]) >= 2


def _variations(model: ModelSpec) -> Iterator[dict[str, Any]]:
    """Every size and length, then each value of each enum or bool parameter alone."""
    for route in model.routes:
        for seconds in route.seconds:
            for size in model.sizes:
                yield {"seconds": seconds, "size": size}
    for param in model.params:
        values: tuple[object, ...] = ()
        if param.type is ParamType.ENUM:
            values = param.values
        elif param.type is ParamType.BOOL:
            values = (True, False)
        for value in values:
            yield {"params": {param.name: value}}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.model.name)
def test_everything_a_shipped_model_offers_can_be_asked_of_its_provider(
    entry: ShippedModel,
) -> None:
    mapper = importlib.import_module(f"vidrelay.upstreams.{entry.protocol.value}").map_request
    catalog = Catalog([entry.model])
    for variation in _variations(entry.model):
        request = normalise_request(
            catalog, prompt="a paper boat", model=entry.model.name, **variation
        )
        mapper(UpstreamRequest("video_1", request, None, entry.upstream_model))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.model.name)
def test_a_shipped_model_is_documented_dated_and_priced(entry: ShippedModel) -> None:
    assert entry.docs_url.startswith("https://")
    assert date(2026, 1, 1) <= entry.checked <= date.today()
    catalog = Catalog([entry.model])
    for price in entry.prices():
        price.rule(catalog)  # a rule the model can match
    assert entry.cost_per_second_micros > 0
