"""Characters: a tenant's named clips (`char_…`) that creates may name. The clip itself lives
in media storage; the row says whose it is, its name, its length and what it cost."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.catalog import ModelSpec
from vidrelay.domain.errors import Conflict, InsufficientQuota
from vidrelay.domain.pricing import PPM, character_price, usd_text
from vidrelay.store.accounts import count_key_spend, debit, insert_ledger_entry
from vidrelay.store.database import Database
from vidrelay.store.jobs import claim_idempotency_key
from vidrelay.store.prices import price_rules_for
from vidrelay.store.tables import characters


@dataclass(frozen=True)
class Character:
    id: str
    tenant_id: str
    name: str
    seconds: float
    price_micros: int
    created_at: int

    def wire(self) -> dict[str, object]:
        """The official `VideoCharacterResource`."""
        return {"id": self.id, "name": self.name, "created_at": self.created_at}


def new_character_id() -> str:
    """`char_` + 32 hex characters, the shape of the official ids."""
    return "char_" + secrets.token_hex(16)


@dataclass(frozen=True)
class NewCharacter:
    id: str
    tenant_id: str
    key_id: str
    name: str
    seconds: float
    model: ModelSpec
    """Whose price rules say what a character costs."""
    multiplier_ppm: int = PPM
    charge: bool = True
    idempotency_key: str | None = None
    request_hash: str = ""


async def create_character(db: Database, new: NewCharacter) -> tuple[Character, bool]:
    """Insert the character, charging it in the same transaction when a price rule says
    `operation = "character"`; (the character, True) when an earlier request with the same
    Idempotency-Key made it instead. Racing requests on one new key: the loser retries once."""
    for attempt in (1, 2):
        try:
            async with db.write() as conn:
                return await _create(conn, new)
        except IntegrityError:
            if attempt == 2 or new.idempotency_key is None:
                raise
    raise AssertionError("unreachable")


async def _create(conn: AsyncConnection, new: NewCharacter) -> tuple[Character, bool]:
    now = time.time()
    if new.idempotency_key is not None:
        earlier = await claim_idempotency_key(
            conn, new.tenant_id, new.idempotency_key, new.request_hash, new.id, now
        )
        if earlier is not None:
            found = await get_character(conn, earlier, new.tenant_id)
            if found is None:
                raise Conflict(
                    "This Idempotency-Key was already used for another kind of request.",
                    code="idempotency_key_reused",
                )
            return found, True
    price = 0
    if new.charge:
        price = character_price(
            await price_rules_for(conn, new.model.name), new.model, new.seconds, new.multiplier_ppm
        )
    return (
        await _insert(conn, new.id, new.tenant_id, new.key_id, new.name, new.seconds, price, now),
        False,
    )


async def _insert(
    conn: AsyncConnection,
    character_id: str,
    tenant_id: str,
    key_id: str,
    name: str,
    seconds: float,
    price_micros: int,
    created: float,
) -> Character:
    now = int(created)
    await conn.execute(
        insert(characters).values(
            id=character_id,
            tenant_id=tenant_id,
            name=name,
            seconds=seconds,
            price_micros=price_micros,
            created_at=now,
        )
    )
    if price_micros:
        if not await debit(conn, tenant_id, price_micros):
            raise InsufficientQuota(
                f"Creating a character costs ${usd_text(price_micros)}, more than your "
                "balance. Top up and try again."
            )
        if not await count_key_spend(conn, key_id, price_micros):
            raise InsufficientQuota(
                "This key has reached its spending limit (this character costs "
                f"${usd_text(price_micros)})."
            )
        await insert_ledger_entry(
            conn,
            tenant_id,
            "charge",
            -price_micros,
            note=f"character {name}",
            actor=key_id,
            job_id=character_id,
        )
    return Character(character_id, tenant_id, name, seconds, price_micros, now)


async def get_character(
    conn: AsyncConnection, character_id: str, tenant_id: str
) -> Character | None:
    row = (
        await conn.execute(
            select(characters).where(
                characters.c.id == character_id, characters.c.tenant_id == tenant_id
            )
        )
    ).first()
    return Character(**row._asdict()) if row is not None else None


async def owned_characters(
    conn: AsyncConnection, character_ids: Sequence[str], tenant_id: str
) -> dict[str, Character]:
    """The tenant's characters among `character_ids`, by id."""
    if not character_ids:
        return {}
    rows = await conn.execute(
        select(characters).where(
            characters.c.id.in_(list(character_ids)), characters.c.tenant_id == tenant_id
        )
    )
    return {row.id: Character(**row._asdict()) for row in rows}
