"""What every process of one vidrelay instance shares through its database, beside the data:
the secret that signs keyless `video_url` links, and the address its API server serves."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.store.tables import instance_secrets

_SIGNING = "url_signing"
_SERVED_URL = "served_url"


async def url_signing_secret(conn: AsyncConnection) -> str:
    return str(
        await conn.scalar(
            select(instance_secrets.c.value).where(instance_secrets.c.name == _SIGNING)
        )
    )


async def record_served_url(conn: AsyncConnection, url: str | None) -> None:
    """Where `vidrelay serve` listens (None: it cannot know), for the processes that cannot
    know it (a worker sending webhooks): the last server started wins."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(instance_secrets).values(name=_SERVED_URL, value=(url or "")[:200])
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[instance_secrets.c.name], set_={"value": statement.excluded.value}
        )
    )


async def served_url(conn: AsyncConnection) -> str | None:
    value = await conn.scalar(
        select(instance_secrets.c.value).where(instance_secrets.c.name == _SERVED_URL)
    )
    return str(value) if value else None
