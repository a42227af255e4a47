"""The operator's `vidrelay.toml` (`VIDRELAY_CONFIG`): channels, prices and tenant groups,
applied to the database at start, so a deployment lives in version control.

```toml
[[channels]]
name = "vendor-a"
protocol = "openai"            # openai | sora2api | local
base_url = "http://127.0.0.1:9100"
keys = ["sk-up-1", "sk-up-2"]
route_class = "official"       # official | reverse
models = ["sora-2"]
model_map = { "sora-2" = "sora-2-2025-12-08" }   # optional
priority = 10                  # higher tiers first
weight = 1
max_concurrency = 50
cost_per_second_usd = "0.08"   # optional: what the upstream charges (for margins)

[groups]
vip = "0.8"

[[prices]]
model = "sora-2"
per_second_usd = "0.12"

[[prices]]
model = "sora-2-pro"
size_class = "high"          # standard | high; omitted = any
route_class = "reverse"      # official | reverse; omitted = any
per_request_usd = "6"
```
Amounts are strings (or integers) so no float rounding touches money.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.pricing import PriceRule, SizeClass, multiplier_to_ppm, usd_to_micros
from vidrelay.store import accounts, prices
from vidrelay.store import channels as channel_store
from vidrelay.store.database import Database


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ChannelEntry:
    channel: Channel
    enabled_given: bool
    """Whether the file says `enabled`: if not, a switch flipped at runtime survives restarts."""


@dataclass(frozen=True)
class OperatorConfig:
    price_rules: list[PriceRule] = field(default_factory=list)
    groups: dict[str, int] = field(default_factory=dict)
    channels: list[ChannelEntry] = field(default_factory=list)


def load_config(path: Path) -> OperatorConfig:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from error
    rules = [_price_rule(entry, index) for index, entry in enumerate(data.get("prices", []))]
    groups: dict[str, int] = {}
    for name, multiplier in dict(data.get("groups", {})).items():
        try:
            groups[name] = multiplier_to_ppm(_amount(multiplier))
        except (ValueError, ArithmeticError) as error:
            raise ConfigError(f"{path}: groups.{name}: {error}") from error
    entries = [_channel(entry, index) for index, entry in enumerate(data.get("channels", []))]
    names = [entry.channel.name for entry in entries]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"{path}: channels declared twice: {', '.join(duplicated)}")
    return OperatorConfig(rules, groups, entries)


_CHANNEL_FIELDS = {
    "name", "protocol", "base_url", "keys", "route_class", "models", "model_map", "priority",
    "weight", "max_concurrency", "enabled", "cost_per_second_usd",
}  # fmt: skip


def _channel(entry: dict[str, Any], index: int) -> ChannelEntry:
    where = f"channels[{index}]"
    unknown = set(entry) - _CHANNEL_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}")
    try:
        route = entry.get("route_class")
        channel = Channel(
            name=str(entry["name"]),
            protocol=ChannelProtocol(entry["protocol"]),
            route_class=RouteClass(route) if route else None,
            models=tuple(str(model) for model in entry.get("models", [])),
            base_url=str(entry.get("base_url", "")),
            keys=tuple(str(key) for key in entry.get("keys", [])),
            model_map={str(k): str(v) for k, v in dict(entry.get("model_map", {})).items()},
            priority=int(entry.get("priority", 0)),
            weight=int(entry.get("weight", 1)),
            max_concurrency=int(entry.get("max_concurrency", 50)),
            enabled=bool(entry.get("enabled", True)),
            cost_per_second_micros=usd_to_micros(_amount(entry.get("cost_per_second_usd", "0"))),
        ).validate()
    except (KeyError, ValueError, TypeError, ArithmeticError) as error:
        raise ConfigError(f"{where}: {error}") from error
    return ChannelEntry(channel, "enabled" in entry)


def _amount(value: Any) -> str:
    if isinstance(value, float):
        raise ConfigError(f'write amounts as strings ("{value}"), not floats')
    return str(value)


def _price_rule(entry: dict[str, Any], index: int) -> PriceRule:
    where = f"prices[{index}]"
    try:
        per_second = entry.get("per_second_usd")
        per_request = entry.get("per_request_usd")
        route = entry.get("route_class")
        size = entry.get("size_class")
        return PriceRule(
            model=str(entry["model"]),
            route_class=RouteClass(route) if route else None,
            size_class=SizeClass(size) if size else None,
            per_second_micros=usd_to_micros(_amount(per_second))
            if per_second is not None
            else None,
            per_request_micros=(
                usd_to_micros(_amount(per_request)) if per_request is not None else None
            ),
        )
    except (KeyError, ValueError, ArithmeticError) as error:
        raise ConfigError(f"{where}: {error}") from error


async def apply_config(db: Database, config: OperatorConfig) -> None:
    """Upsert the file's channels, rules and groups; those set elsewhere (admin API, CLI) are
    kept, and so is a channel's runtime switch unless the file says `enabled`."""
    async with db.write() as conn:
        for name, ppm in config.groups.items():
            await accounts.set_group(conn, name, ppm)
        for rule in config.price_rules:
            await prices.set_price_rule(conn, rule)
        for entry in config.channels:
            channel = entry.channel
            existing = await channel_store.find_channel(conn, channel.name)
            if existing is not None and not entry.enabled_given:
                channel = replace(channel, enabled=existing.enabled)
            await channel_store.save_channel(conn, channel)
