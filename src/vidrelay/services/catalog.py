"""Declaring and removing models, and pricing them.

Every check runs inside the transaction that writes, against the catalog as that transaction
sees it (its rows locked on PostgreSQL), so a model cannot vanish under a channel or a price
rule being saved for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.catalog import Catalog, ModelSpec
from vidrelay.domain.errors import Conflict, InvalidRequest, NotFound
from vidrelay.domain.jobs import UNFINISHED
from vidrelay.domain.pricing import Conditions, PriceDeclaration, PriceRule, check_price_rule
from vidrelay.store import channels as channel_store
from vidrelay.store import models as model_store
from vidrelay.store import prices
from vidrelay.store.database import Database
from vidrelay.store.tables import jobs


async def declare_models(db: Database, models: Sequence[ModelSpec]) -> list[bool]:
    """Insert or replace models, all or none; for each, True when it is new."""
    async with db.write() as conn:
        return [await save_model_checked(conn, model) for model in models]


async def save_model_checked(conn: AsyncConnection, spec: ModelSpec) -> bool:
    """Refused when a price rule of the model would no longer fit it (a route or a parameter
    it names is gone, or a value it compares with is no longer allowed)."""
    catalog = await model_store.load_catalog(conn, lock=True)
    changed = Catalog([*(model for model in catalog if model.name != spec.name), spec])
    for rule in await prices.price_rules_for(conn, spec.name):
        try:
            check_price_rule(rule, changed)
        except InvalidRequest as error:
            raise Conflict(
                f"A price rule of {spec.name} does not fit this declaration "
                f"({error.message}); change or delete that rule first.",
                param=error.param,
                code="price_rule_conflict",
            ) from error
    return await model_store.save_model(conn, spec)


async def remove_model(db: Database, name: str) -> int:
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
        return removed_rules


async def set_price(db: Database, declaration: PriceDeclaration) -> PriceRule:
    """Insert or replace the rule for (model, route class, size class, conditions)."""
    async with db.write() as conn:
        return await save_price_checked(conn, declaration)


async def save_price_checked(conn: AsyncConnection, declaration: PriceDeclaration) -> PriceRule:
    rule = declaration.rule(await model_store.load_catalog(conn, lock=True))
    await prices.set_price_rule(conn, rule)
    return rule


async def delete_price(db: Database, declaration: PriceDeclaration) -> Conditions:
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
        return conditions
