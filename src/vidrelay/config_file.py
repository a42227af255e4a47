"""The operator's `vidrelay.toml` (`VIDRELAY_CONFIG`): prices and tenant groups, applied to the
database at start, so a deployment's prices live in version control.

```toml
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.pricing import PriceRule, SizeClass, multiplier_to_ppm, usd_to_micros
from vidrelay.store import accounts, prices
from vidrelay.store.database import Database


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class OperatorConfig:
    price_rules: list[PriceRule] = field(default_factory=list)
    groups: dict[str, int] = field(default_factory=dict)


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
    return OperatorConfig(rules, groups)


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


def _micros_or_none(value: Any) -> int | None:
    return None if value is None else usd_to_micros(_amount(value))


async def apply_config(db: Database, config: OperatorConfig) -> None:
    """Upsert the file's rules and groups; rules set elsewhere (admin API, CLI) are kept."""
    async with db.write() as conn:
        for name, ppm in config.groups.items():
            await accounts.set_group(conn, name, ppm)
        for rule in config.price_rules:
            await prices.set_price_rule(conn, rule)
