"""Declaring and removing models, pricing them, and saving the channels that serve them.

Every check runs inside the transaction that writes, against the catalog as that transaction
sees it (its rows locked on PostgreSQL), so a model cannot vanish under a channel or a price
rule being saved for it. A `CatalogEdit` carries that catalog through a batch (a config file,
`vidrelay models set`), so each entry is checked against those before it and the catalog is
read once, whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.audit import Actor
from vidrelay.domain.catalog import Catalog, ModelSpec, RouteClass
from vidrelay.domain.channels import Channel, ChannelError
from vidrelay.domain.errors import Conflict, InvalidRequest, NotFound
from vidrelay.domain.jobs import UNFINISHED
from vidrelay.domain.pricing import (
    Conditions,
    PriceDeclaration,
    PriceRule,
    SizeClass,
    check_price_rule,
    micros_to_usd,
)
from vidrelay.services.wakeups import NOBODY, Wakeups
from vidrelay.shipped_models import ShippedModel
from vidrelay.store import audit, prices
from vidrelay.store import channels as channel_store
from vidrelay.store import models as model_store
from vidrelay.store.database import Database
from vidrelay.store.tables import jobs


class CatalogEdit:
    """Saves into one transaction, each checked against the catalog as it stands so far."""

    def __init__(self, conn: AsyncConnection, catalog: Catalog) -> None:
        self._conn = conn
        self.catalog = catalog

    @classmethod
    async def begin(cls, conn: AsyncConnection) -> CatalogEdit:
        return cls(conn, await model_store.load_catalog(conn, lock=True))

    async def save_model(self, model: ModelSpec) -> bool:
        """Insert or replace a model; True when it is new. Refused when a price rule of the
        model would no longer fit it (a route or a parameter it names is gone, or a value it
        compares with is no longer allowed)."""
        changed = self.catalog.with_model(model)
        for rule in await prices.price_rules_for(self._conn, model.name):
            try:
                check_price_rule(rule, changed)
            except InvalidRequest as error:
                raise Conflict(
                    f"A price rule of {model.name} does not fit this declaration "
                    f"({error.message}); change or delete that rule first.",
                    param=error.param,
                    code="price_rule_conflict",
                ) from error
        created = await model_store.save_model(self._conn, model)
        self.catalog = changed
        return created

    async def save_price(self, declaration: PriceDeclaration) -> PriceRule:
        """Insert or replace the rule for (model, route class, size class, conditions)."""
        rule = declaration.rule(self.catalog)
        await prices.set_price_rule(self._conn, rule)
        return rule

    async def save_channel(self, channel: Channel) -> Channel:
        """Save a channel whose every model is in the catalog; returns it as stored."""
        try:
            channel.validate(self.catalog.models)
        except ChannelError as error:
            raise InvalidRequest(str(error), param=str(error).split(":")[0]) from error
        await channel_store.save_channel(self._conn, channel)
        saved = await channel_store.find_channel(self._conn, channel.name)
        assert saved is not None
        return saved


async def declare_models(
    db: Database, models: Sequence[ModelSpec], *, actor: Actor, wakeups: Wakeups = NOBODY
) -> list[bool]:
    """Insert or replace models, all or none; for each, True when it is new (and an audit
    row, so that a model's history is found by its name)."""
    async with db.write() as conn:
        edit = await CatalogEdit.begin(conn)
        created = []
        for model in models:
            created.append(await edit.save_model(model))
            await audit.record(conn, actor, "model.declare", model.name, {"new": created[-1]})
    wakeups.models()
    return created


async def import_models(
    db: Database, entries: Sequence[ShippedModel], markup: Decimal, *, actor: Actor
) -> list[bool]:
    """Declare shipped models, priced at their list price times `markup`, all or none; for
    each, True when it is new. A model already declared is replaced, its rules re-priced."""
    async with db.write() as conn:
        edit = await CatalogEdit.begin(conn)
        created = []
        for entry in entries:
            created.append(await edit.save_model(entry.model))
            for price in entry.prices(markup):
                await edit.save_price(price)
            details = {"new": created[-1], "markup": str(markup)}
            await audit.record(conn, actor, "model.import", entry.model.name, details)
        return created


async def remove_model(db: Database, name: str, *, actor: Actor, wakeups: Wakeups = NOBODY) -> int:
    """Delete a model and its price rules (returns how many rules went). Refused while a
    channel lists it or a job for it is unfinished."""
    async with db.write() as conn:
        catalog = await model_store.load_catalog(conn, lock=True)
        if name not in catalog:
            raise NotFound(f"No model named {name!r} in the catalog.", param="name")
        listing = [
            channel.name
            for channel in await channel_store.list_channels(conn)
            if name in channel.models
        ]
        if listing:
            raise Conflict(
                f"Channels still list {name}: {', '.join(listing)}; take it off them first.",
                param="name",
                code="model_in_use",
            )
        unfinished = await conn.scalar(
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.model == name, jobs.c.status.in_([s.value for s in UNFINISHED]))
        )
        if unfinished:
            raise Conflict(
                f"{unfinished} jobs for {name} are not finished yet; remove it once they are.",
                param="name",
                code="model_in_use",
            )
        removed_rules = await prices.delete_model_price_rules(conn, name)
        await model_store.delete_model(conn, name)
        await audit.record(conn, actor, "model.remove", name, {"price_rules": removed_rules})
    wakeups.models()
    return removed_rules


async def set_price(db: Database, declaration: PriceDeclaration, *, actor: Actor) -> PriceRule:
    """Insert or replace the rule for (model, route class, size class, conditions)."""
    async with db.write() as conn:
        rule = await (await CatalogEdit.begin(conn)).save_price(declaration)
        details = {
            **_rule_key(rule.route_class, rule.size_class, rule.conditions),
            "per_second_usd": _usd(rule.per_second_micros),
            "per_request_usd": _usd(rule.per_request_micros),
        }
        await audit.record(conn, actor, "price.set", rule.model, details)
        return rule


async def delete_price(db: Database, declaration: PriceDeclaration, *, actor: Actor) -> Conditions:
    """Delete the rule the declaration names (its amounts are ignored); returns its typed
    conditions."""
    async with db.write() as conn:
        conditions = declaration.conditions(await model_store.load_catalog(conn))
        await prices.delete_price_rule(
            conn,
            declaration.model,
            declaration.route_class.value if declaration.route_class else None,
            declaration.size_class.value if declaration.size_class else None,
            conditions,
        )
        details = _rule_key(declaration.route_class, declaration.size_class, conditions)
        await audit.record(conn, actor, "price.delete", declaration.model, details)
        return conditions


def _rule_key(
    route_class: RouteClass | None, size_class: SizeClass | None, conditions: Conditions
) -> dict[str, Any]:
    return {
        "route_class": route_class.value if route_class else None,
        "size_class": size_class.value if size_class else None,
        "when": {name: str(value) for name, value in conditions},
    }


def _usd(micros: int | None) -> str | None:
    return None if micros is None else str(micros_to_usd(micros))
