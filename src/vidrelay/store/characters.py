"""Characters: a tenant's named clips (`char_…`) that creates may name. The clip itself lives
in media storage; the row says whose it is, its name, its length and what it cost."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.errors import InsufficientQuota
from vidrelay.domain.pricing import usd_text
from vidrelay.store.accounts import insert_ledger_entry
from vidrelay.store.tables import characters, tenants


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


async def create_character(
    conn: AsyncConnection,
    character_id: str,
    tenant_id: str,
    key_id: str,
    name: str,
    seconds: float,
    price_micros: int,
) -> Character:
    """Insert the character and, when it has a price, charge it in the same transaction."""
    now = int(time.time())
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
        charged = await conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id, tenants.c.balance_micros >= price_micros)
            .values(balance_micros=tenants.c.balance_micros - price_micros)
        )
        if charged.rowcount != 1:
            raise InsufficientQuota(
                f"Creating a character costs ${usd_text(price_micros)}, more than your "
                "balance. Top up and try again."
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
