"""The operator's `vidrelay.toml` (`VIDRELAY_CONFIG`): models, channels, prices and tenant
groups, applied to the database at every start, so a deployment lives in version control.

```toml
[[models]]
name = "acme-video-1"              # what clients send as `model`
owned_by = "acme"                  # shown by /v1/models
sizes = ["1280x720", "720x1280"]   # first = default
capabilities = ["input_reference", "audio"]
routes = [{ route_class = "official", seconds = ["5", "10"] }]   # or seconds_range = [2, 12]

[[models.params]]                  # model-specific request fields (the SDKs' extra_body)
name = "resolution"
type = "enum"                      # enum | string | int | number | bool
values = ["720p", "1080p"]
default = "720p"

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
model = "acme-video-1"
when = { resolution = "1080p" }  # conditions on declared parameters (or `operation`)
size_class = "high"          # standard | high; omitted = any
route_class = "official"     # official | reverse; omitted = any
per_request_usd = "6"
```
Amounts are strings (or integers) so no float rounding touches money. The file's structure is
checked when it is read; what depends on the catalog (a channel's models, a price's model and
conditions) when it is applied, against the catalog in the database with the file's models
applied, so the file may also name models declared through the admin API or the CLI.
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.audit import CONFIG_FILE
from vidrelay.domain.catalog import ModelSpec, RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.declarations import InvalidDeclaration, parse_model
from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.pricing import (
    PriceDeclaration,
    PriceRule,
    SizeClass,
    multiplier_text,
    multiplier_to_ppm,
    usd_text,
    usd_to_micros,
)
from vidrelay.services.catalog import CatalogEdit
from vidrelay.settings import InvalidSettings
from vidrelay.store import accounts, audit, prices
from vidrelay.store import channels as channel_store
from vidrelay.store.database import Database

T = TypeVar("T")


class ConfigError(InvalidSettings):
    """The file cannot be read or applied; the message names the file, table and field."""


@dataclass(frozen=True)
class ChannelEntry:
    channel: Channel
    enabled_given: bool
    """Whether the file says `enabled`: if not, a switch flipped at runtime survives restarts."""


@dataclass(frozen=True)
class OperatorConfig:
    price_rules: list[PriceDeclaration] = field(default_factory=list)
    groups: dict[str, int] = field(default_factory=dict)
    channels: list[ChannelEntry] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    source: Path | None = None
    """The file it was read from, named in every mistake found when it is applied."""


_TABLES = ("models", "channels", "prices", "groups")


def load_config(path: Path) -> OperatorConfig:
    """Read and check the file; every mistake is one `ConfigError` line naming the file, then
    the table and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(
            f"{path}: cannot read the file VIDRELAY_CONFIG names ({reason})"
        ) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    try:
        return replace(_operator_config(data), source=path)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _operator_config(data: dict[str, Any]) -> OperatorConfig:
    unknown = sorted(set(data) - set(_TABLES))
    if unknown:
        raise ConfigError(f"unknown {', '.join(unknown)} (a file declares {', '.join(_TABLES)})")
    models = parse_models(data.get("models", []))
    prices = _tables(data, "prices")
    rules = [_price_rule(entry, index) for index, entry in enumerate(prices)]
    groups: dict[str, int] = {}
    written_groups = data.get("groups", {})
    if not isinstance(written_groups, dict):
        raise ConfigError('groups: a table of multipliers, e.g. [groups] vip = "0.8"')
    for name, multiplier in written_groups.items():
        try:
            groups[name] = multiplier_to_ppm(_amount(multiplier))
        except (ValueError, ArithmeticError) as error:
            raise ConfigError(f"groups.{name}: {error}") from error
    entries = [_channel(entry, index) for index, entry in enumerate(_tables(data, "channels"))]
    names = [entry.channel.name for entry in entries]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"channels declared twice: {', '.join(duplicated)}")
    return OperatorConfig(rules, groups, entries, models)


def _tables(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = data.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{name}: write each one as a [[{name}]] table")
    return entries


def parse_models(entries: object) -> list[ModelSpec]:
    """The `[[models]]` of a file (also `vidrelay models set`), each mistake named by the
    model's place and name and the field."""
    if not isinstance(entries, list):
        raise ConfigError("models: write each model as a [[models]] table")
    models: list[ModelSpec] = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"models[{index}]" + (f" ({name})" if isinstance(name, str) else "")
        try:
            models.append(parse_model(entry))
        except InvalidDeclaration as error:
            raise ConfigError(f"{where}: {error.message}") from error
    names = [model.name for model in models]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"models declared twice: {', '.join(duplicated)}")
    return models


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
        ).validate(None)
    except KeyError as error:
        raise ConfigError(f"{where}: {error.args[0]} is required") from error
    except (ValueError, TypeError, ArithmeticError) as error:
        raise ConfigError(f"{where}: {error}") from error
    return ChannelEntry(channel, "enabled" in entry)


def _amount(value: Any) -> str:
    if isinstance(value, float):
        raise ConfigError(f'write amounts as strings ("{value}"), not floats')
    return str(value)


_PRICE_FIELDS = {
    "model", "route_class", "size_class", "per_second_usd", "per_request_usd", "when",
}  # fmt: skip


def _price_rule(entry: dict[str, Any], index: int) -> PriceDeclaration:
    where = f"prices[{index}]"
    unknown = set(entry) - _PRICE_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}")
    try:
        per_second = entry.get("per_second_usd")
        per_request = entry.get("per_request_usd")
        route = entry.get("route_class")
        size = entry.get("size_class")
        when = entry.get("when", {})
        if not isinstance(when, dict):
            raise ConfigError('when: a table of conditions, e.g. { resolution = "1080p" }')
        return PriceDeclaration(
            model=str(entry["model"]),
            route_class=RouteClass(route) if route else None,
            size_class=SizeClass(size) if size else None,
            per_second_micros=usd_to_micros(_amount(per_second))
            if per_second is not None
            else None,
            per_request_micros=(
                usd_to_micros(_amount(per_request)) if per_request is not None else None
            ),
            when=when,
        )
    except KeyError as error:
        raise ConfigError(f"{where}: {error.args[0]} is required") from error
    except (ValueError, ArithmeticError) as error:
        raise ConfigError(f"{where}: {error}") from error


async def apply_config(db: Database, config: OperatorConfig) -> list[str]:
    """Upsert the file's models, groups, price rules and channels, in one transaction and in
    that order (each is checked against what comes before it); those set elsewhere (admin
    API, CLI) are kept, and so is a channel's runtime switch unless the file says `enabled`.

    Returns what it changed, a line each ("group vip 0.5 → 0.8"): the file is applied at every
    start, so it undoes what was changed at runtime, and the start must say so (and records
    one audit row, when it changed anything).
    """
    try:
        async with db.write() as conn:
            edit = await CatalogEdit.begin(conn)
            changes = [
                *await _apply_models(edit, config.models),
                *await _apply_groups(conn, config.groups),
                *await _apply_prices(conn, edit, config.price_rules),
                *await _apply_channels(conn, edit, config.channels),
            ]
            if changes:  # its lines name what changed, never a key
                target = str(config.source or "config")
                await audit.record(conn, CONFIG_FILE, "config.apply", target, {"changes": changes})
            return changes
    except ConfigError as error:  # the file's name goes first, as in reading errors
        if not config.source:
            raise
        raise ConfigError(f"{config.source}: {error}") from error


async def _apply_models(edit: CatalogEdit, models: list[ModelSpec]) -> list[str]:
    changes = []
    for index, model in enumerate(models):
        before = edit.catalog.get(model.name)
        await _applied(f"models[{index}] ({model.name})", edit.save_model(model))
        if before != model:
            changes.append(f"model {model.name} {'added' if before is None else 'changed'}")
    return changes


async def _apply_groups(conn: AsyncConnection, groups: dict[str, int]) -> list[str]:
    changes = []
    stored = await accounts.list_groups(conn)
    for name, ppm in groups.items():
        was = stored.get(name)
        if was == ppm:
            continue
        await accounts.set_group(conn, name, ppm)
        now = multiplier_text(ppm)
        changes.append(
            f"group {name} added at {now}"
            if was is None
            else f"group {name} {multiplier_text(was)} → {now}"
        )
    return changes


async def _apply_prices(
    conn: AsyncConnection, edit: CatalogEdit, declarations: list[PriceDeclaration]
) -> list[str]:
    changes = []
    # every stored rule read once (not once per declaration: a file may hold hundreds)
    stored = {_price_slot(rule): rule for rule in await prices.price_rules_for(conn)}
    for index, declaration in enumerate(declarations):
        rule = await _applied(
            f"prices[{index}] ({declaration.model})", edit.save_price(declaration)
        )
        before = stored.get(_price_slot(rule))
        stored[_price_slot(rule)] = rule
        if before != rule:
            was = "added at" if before is None else f"{_price_text(before)} →"
            changes.append(f"price {_price_name(rule)} {was} {_price_text(rule)}")
    return changes


async def _apply_channels(
    conn: AsyncConnection, edit: CatalogEdit, entries: list[ChannelEntry]
) -> list[str]:
    changes = []
    for index, entry in enumerate(entries):
        channel = entry.channel
        before = await channel_store.find_channel(conn, channel.name)
        if before is not None and not entry.enabled_given:
            channel = replace(channel, enabled=before.enabled)
        saved = await _applied(f"channels[{index}] ({channel.name})", edit.save_channel(channel))
        if before is None:
            changes.append(f"channel {channel.name} added")
        elif differing := _channel_differences(before, saved):
            changes.append(f"channel {channel.name} changed: {', '.join(differing)}")
    return changes


def _price_slot(rule: PriceRule) -> tuple[object, ...]:
    """What identifies a rule: saving another with the same slot replaces it."""
    return (rule.model, rule.route_class, rule.size_class, rule.conditions)


def _price_name(rule: PriceRule) -> str:
    qualifiers = [
        value
        for value in (
            rule.route_class.value if rule.route_class else None,
            rule.size_class.value if rule.size_class else None,
            *(f"{name}={value}" for name, value in rule.conditions),
        )
        if value
    ]
    return f"{rule.model} ({', '.join(qualifiers)})" if qualifiers else rule.model


def _price_text(rule: PriceRule) -> str:
    if rule.per_second_micros is not None:
        return f"${usd_text(rule.per_second_micros)}/s"
    return f"${usd_text(rule.per_request_micros or 0)}/video"


def _channel_differences(before: Channel, after: Channel) -> list[str]:
    """The names of the operator's fields that differ (never their values: keys are secret)."""
    return [
        spec.name
        for spec in fields(Channel)
        if spec.name != "disabled_reason"
        and getattr(before, spec.name) != getattr(after, spec.name)
    ]


async def _applied(where: str, step: Awaitable[T]) -> T:
    try:
        return await step
    except VidrelayError as error:
        raise ConfigError(f"{where}: {error.message}") from error
