"""The catalog as stored: one row per model holding its canonical declaration, and the cached
catalog that the api reads on every create."""

from __future__ import annotations

import functools
import json
import time

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.catalog import Catalog, ModelSpec
from vidrelay.domain.declarations import model_declaration, parse_model
from vidrelay.store.database import Database
from vidrelay.store.refreshing import RefreshingView
from vidrelay.store.tables import catalog_models


async def load_catalog(conn: AsyncConnection, *, lock: bool = False) -> Catalog:
    """The catalog as this transaction sees it. `lock` holds the rows (PostgreSQL) until it
    ends, so a model cannot be removed while a channel or a price is being checked against it."""
    query = select(catalog_models).order_by(catalog_models.c.name)
    if lock:
        query = query.with_for_update()
    return Catalog(_parsed(row.definition, row.created_at) for row in await conn.execute(query))


@functools.lru_cache(maxsize=4096)
def _parsed(definition: str, created: int) -> ModelSpec:
    """Declarations are parsed once per process, not at every read: a refresh of a catalog
    of hundreds of models then costs its query and a dictionary look-up a model."""
    return parse_model(json.loads(definition), created=created)


async def save_model(conn: AsyncConnection, spec: ModelSpec) -> bool:
    """Insert or replace a model's declaration; True when it was new."""
    now = int(time.time())
    definition = json.dumps(model_declaration(spec), sort_keys=True)
    result = await conn.execute(
        update(catalog_models)
        .where(catalog_models.c.name == spec.name)
        .values(definition=definition, updated_at=now)
    )
    if result.rowcount:
        return False
    await conn.execute(
        insert(catalog_models).values(
            name=spec.name, definition=definition, created_at=now, updated_at=now
        )
    )
    return True


async def delete_model(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(delete(catalog_models).where(catalog_models.c.name == name))
    return bool(result.rowcount)


class ModelDirectory(RefreshingView[Catalog]):
    """The catalog every create is validated against, read at most every `refresh_s`: a
    catalog of hundreds of models costs one small query every `refresh_s`, nothing per
    request."""

    def __init__(self, db: Database, refresh_s: float = 2.0) -> None:
        super().__init__(db, load_catalog, Catalog(()), refresh_s)

    async def catalog(self) -> Catalog:
        return await self.current()
