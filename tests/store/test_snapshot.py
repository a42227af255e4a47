"""`Database.snapshot()`: reads that see one state of the database, on SQLite and PostgreSQL,
so a job's page never shows a timeline ahead of the job's status."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import insert, select, update

from vidrelay.store import accounts
from vidrelay.store.tables import tenants


async def test_a_snapshot_does_not_see_a_write_committed_between_its_reads(app: FastAPI) -> None:
    db = app.state.context.db
    async with db.write() as conn:
        tenant = await accounts.create_tenant(conn, "steady")
    balance = select(tenants.c.balance_micros).where(tenants.c.id == tenant.id)
    async with db.snapshot() as conn:
        first = await conn.scalar(balance)
        async with db.write() as other:
            await other.execute(
                update(tenants).where(tenants.c.id == tenant.id).values(balance_micros=7)
            )
            await other.execute(insert(tenants).values(id="ten_late", name="late", created_at=0))
        assert await conn.scalar(balance) == first == 0
        assert await conn.scalar(select(tenants.c.id).where(tenants.c.name == "late")) is None
    async with db.read() as conn:  # a plain read sees it at once
        assert await conn.scalar(balance) == 7
