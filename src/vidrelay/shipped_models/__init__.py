"""Today's models, shipped as data an operator can take or leave (`vidrelay models available`,
`vidrelay models import NAME…`).

One TOML file per protocol beside this module. Each `[[models]]` table is a model declaration
exactly as in `vidrelay.toml`, plus an `upstream` table saying where it comes from: the
protocol, the provider's own model id (what a channel's `model_map` maps to), the documentation
followed and the day it was checked, and the provider's list price in USD per second of video
(conditions as in `[[prices]]`):

```toml
[[models]]
name = "seedance-1-0-pro"
sizes = ["1280x720", "720x1280"]
routes = [{ route_class = "official", seconds_range = [2, 12] }]

[models.upstream]
protocol = "ark"
model = "doubao-seedance-1-0-pro-250528"
docs_url = "https://www.volcengine.com/docs/82379/1520757"
checked = "2026-11-29"

[[models.upstream.prices]]
per_second_usd = "0.05"             # or per_request_usd, for a price per video
when = { resolution = "1080p" }     # optional; `seconds` may be a condition too
```

Every size and length an entry offers must be expressible to its provider (a test asks each
protocol's request mapper), so a client ordering it gets a 400 at create, never a failed job.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

from vidrelay.domain.catalog import ModelSpec
from vidrelay.domain.channels import ChannelProtocol
from vidrelay.domain.declarations import InvalidDeclaration, parse_model
from vidrelay.domain.pricing import PriceDeclaration, usd_to_micros

_UPSTREAM_FIELDS = frozenset({"protocol", "model", "docs_url", "checked", "prices"})


class ShippedCatalogError(ValueError):
    """A shipped file that does not parse (a packaging mistake, caught by the tests)."""


@dataclass(frozen=True)
class ShippedModel:
    model: ModelSpec
    protocol: ChannelProtocol
    upstream_model: str
    docs_url: str
    checked: date
    list_prices: tuple[PriceDeclaration, ...]
    """The provider's prices, per second of video, as price rules of this model."""

    def prices(self, markup: Decimal = Decimal(1)) -> list[PriceDeclaration]:
        """The list prices times `markup`, rounded half up to the micro-dollar."""
        return [
            PriceDeclaration(
                price.model,
                price.route_class,
                price.size_class,
                per_second_micros=_scaled(price.per_second_micros, markup),
                per_request_micros=_scaled(price.per_request_micros, markup),
                when=price.when,
            )
            for price in self.list_prices
        ]

    @property
    def cost_per_second_micros(self) -> int:
        """The lowest list price per second (a per-video price spread over the longest
        length offered): a channel's cost hint."""
        longest = max(int(s) for route in self.model.routes for s in route.seconds)
        return min(
            price.per_second_micros
            if price.per_second_micros is not None
            else (price.per_request_micros or 0) // longest
            for price in self.list_prices
        )


def shipped_models() -> list[ShippedModel]:
    """Every shipped model, by protocol then name."""
    entries: list[ShippedModel] = []
    for item in sorted(resources.files(__package__).iterdir(), key=lambda i: i.name):
        if item.name.endswith(".toml"):
            entries.extend(_entries(item.name, tomllib.loads(item.read_text("utf-8"))))
    return sorted(entries, key=lambda entry: (entry.protocol.value, entry.model.name))


def _entries(filename: str, data: dict[str, Any]) -> list[ShippedModel]:
    entries = []
    for index, table in enumerate(data.get("models", [])):
        where = f"{filename}: models[{index}]"
        declaration = dict(table)
        upstream = declaration.pop("upstream", None)
        try:
            model = parse_model(declaration)
        except InvalidDeclaration as error:
            raise ShippedCatalogError(f"{where}: {error.message}") from error
        entries.append(_entry(model, upstream, f"{where} ({model.name})"))
    return entries


def _entry(model: ModelSpec, upstream: object, where: str) -> ShippedModel:
    if not isinstance(upstream, dict) or set(upstream) - _UPSTREAM_FIELDS:
        raise ShippedCatalogError(f"{where}: upstream: a table of {sorted(_UPSTREAM_FIELDS)}")
    try:
        prices = tuple(
            PriceDeclaration(
                model.name,
                per_second_micros=_micros(price.get("per_second_usd")),
                per_request_micros=_micros(price.get("per_request_usd")),
                when=dict(price.get("when", {})),
            )
            for price in upstream.get("prices", [])
        )
        entry = ShippedModel(
            model=model,
            protocol=ChannelProtocol(upstream["protocol"]),
            upstream_model=str(upstream["model"]),
            docs_url=str(upstream["docs_url"]),
            checked=date.fromisoformat(str(upstream["checked"])),
            list_prices=prices,
        )
    except (KeyError, ValueError, TypeError) as error:
        raise ShippedCatalogError(f"{where}: upstream: {error}") from error
    if not prices or not entry.docs_url.startswith("https://"):
        raise ShippedCatalogError(f"{where}: upstream: prices and an https docs_url are needed")
    return entry


def _micros(usd: object) -> int | None:
    return None if usd is None else usd_to_micros(str(usd))


def _scaled(micros: int | None, markup: Decimal) -> int | None:
    if micros is None:
        return None
    return int((Decimal(micros) * markup).quantize(Decimal(1), ROUND_HALF_UP))
