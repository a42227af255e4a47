"""The console's own reads, on SQLite and PostgreSQL: tenants by name prefix and deliveries by
status, each a page at a time, every row once, none outside the filter."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import insert

from vidrelay.store import accounts, console_reads
from vidrelay.store.tables import webhook_deliveries, webhook_events


async def test_tenants_by_name_prefix_page_by_page(app: FastAPI) -> None:
    db = app.state.context.db
    names = ["ab", "ab cd", "ab~", "abc", "abz", "aa", "ac", "b", "Ab"]
    async with db.write() as conn:
        for name in names:
            await accounts.create_tenant(conn, name)
    seen: list[str] = []
    after = None
    async with db.read() as conn:
        while True:
            page, more = await console_reads.search_tenants(conn, "ab", after=after, limit=2)
            seen += [tenant.name for tenant in page]
            if not more:
                break
            after = page[-1].name
        everyone, more = await console_reads.search_tenants(conn, "", after=None, limit=100)
        found = await console_reads.find_tenant_row(conn, "ab cd")
    assert seen == ["ab", "ab cd", "abc", "abz", "ab~"]
    assert [tenant.name for tenant in everyone] == sorted(names) and not more
    assert found is not None and found.name == "ab cd" and found.balance_micros == 0


async def test_deliveries_by_status_page_by_page_newest_first(app: FastAPI) -> None:
    db = app.state.context.db
    async with db.write() as conn:
        tenant = await accounts.create_tenant(conn, "hooked")
        await conn.execute(
            insert(webhook_events).values(
                id="evt_1", tenant_id=tenant.id, type="video.completed", job_id="video_1",
                created_at=100,
            )
        )  # fmt: skip
        for number in range(7):
            await conn.execute(
                insert(webhook_deliveries).values(
                    id=f"whd_{number}", event_id="evt_1", tenant_id=tenant.id,
                    url="https://hooks.example/x", status="failed" if number % 2 else "delivered",
                    attempts=1, created_at=100 + number // 4,
                )
            )  # fmt: skip
    seen: list[str] = []
    before = None
    async with db.read() as conn:
        while True:
            page, more = await console_reads.list_deliveries(
                conn, status="failed", before=before, limit=2
            )
            seen += [delivery.id for delivery in page]
            if not more:
                break
            before = (page[-1].created_at, page[-1].id)
        found = await console_reads.find_delivery(conn, "whd_3")
    assert seen == ["whd_5", "whd_3", "whd_1"]
    assert found is not None
    delivery, attempts = found
    assert delivery.tenant == "hooked" and delivery.job_id == "video_1" and attempts == []
