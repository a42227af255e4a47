"""The operator's price rules and tenant-group multipliers, as stored."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.errors import NotFound
from vidrelay.domain.pricing import Conditions, PriceRule, SizeClass
from vidrelay.store.tables import price_rules


def _rule(row: Row[Any]) -> PriceRule:
    return PriceRule(
        model=row.model,
        route_class=RouteClass(row.route_class) if row.route_class else None,
        size_class=SizeClass(row.size_class) if row.size_class else None,
        per_second_micros=row.per_second_micros,
        per_request_micros=row.per_request_micros,
        conditions=_conditions(row.conditions),
    )


def _conditions(text: str) -> Conditions:
    return tuple(sorted(json.loads(text).items())) if text else ()


def _conditions_text(conditions: Conditions) -> str:
    return json.dumps(dict(conditions), sort_keys=True) if conditions else ""


async def price_rules_for(conn: AsyncConnection, model: str | None = None) -> list[PriceRule]:
    query = select(price_rules).order_by(
        price_rules.c.model,
        price_rules.c.route_class,
        price_rules.c.size_class,
        price_rules.c.conditions,
    )
    if model is not None:
        query = query.where(price_rules.c.model == model)
    return [_rule(row) for row in await conn.execute(query)]


def _key(rule: PriceRule) -> dict[str, str]:
    return {
        "model": rule.model,
        "route_class": rule.route_class.value if rule.route_class else "",
        "size_class": rule.size_class.value if rule.size_class else "",
        "conditions": _conditions_text(rule.conditions),
    }


async def set_price_rule(conn: AsyncConnection, rule: PriceRule) -> None:
    """Insert or replace the rule for (model, route class, size class, conditions)."""
    key = _key(rule)
    amounts = {
        "per_second_micros": rule.per_second_micros,
        "per_request_micros": rule.per_request_micros,
        "updated_at": int(time.time()),
    }
    where = [getattr(price_rules.c, column) == value for column, value in key.items()]
    changed = await conn.execute(update(price_rules).where(*where).values(**amounts))
    if changed.rowcount == 0:
        await conn.execute(insert(price_rules).values(**key, **amounts))


async def delete_price_rule(
    conn: AsyncConnection,
    model: str,
    route_class: str | None,
    size_class: str | None,
    conditions: Conditions = (),
) -> None:
    result = await conn.execute(
        delete(price_rules).where(
            price_rules.c.model == model,
            price_rules.c.route_class == (route_class or ""),
            price_rules.c.size_class == (size_class or ""),
            price_rules.c.conditions == _conditions_text(tuple(sorted(conditions))),
        )
    )
    if result.rowcount == 0:
        when = " ".join(f"{name}={value}" for name, value in sorted(conditions))
        raise NotFound(
            f"No price rule for {model} / {route_class or 'any route'} / "
            f"{size_class or 'any size'}{' / when ' + when if when else ''}."
        )


async def delete_model_price_rules(conn: AsyncConnection, model: str) -> int:
    result = await conn.execute(delete(price_rules).where(price_rules.c.model == model))
    return int(result.rowcount or 0)
