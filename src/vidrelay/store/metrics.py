"""The figures `/metrics` reads from the database at scrape time, so that every process
reports the same money and channel state, whoever wrote it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.channels import EMBEDDED_CHANNEL
from vidrelay.domain.jobs import JobStatus
from vidrelay.store.jobs import in_progress_by_channel
from vidrelay.store.tables import channels, jobs, ledger_entries


@dataclass(frozen=True)
class DatabaseFigures:
    ledger_micros: dict[str, int]
    """Signed ledger sums per kind (charges negative): their total is what tenants hold."""
    channel_up: dict[str, bool]
    orphaned_submissions: int
    queue_depth: int | None = None
    """Queued jobs, and below running jobs per channel: read only where the engine runs."""
    in_flight: dict[str, int] = field(default_factory=dict)


async def database_figures(conn: AsyncConnection, *, engine: bool) -> DatabaseFigures:
    ledger = await conn.execute(
        select(ledger_entries.c.kind, func.sum(ledger_entries.c.amount_micros)).group_by(
            ledger_entries.c.kind
        )
    )
    declared = await conn.execute(
        select(channels.c.name, channels.c.enabled, channels.c.disabled_reason)
    )
    channel_up = {row.name: bool(row.enabled) and row.disabled_reason is None for row in declared}
    orphaned = await conn.scalar(select(func.coalesce(func.sum(jobs.c.orphaned_submissions), 0)))
    figures = DatabaseFigures(
        ledger_micros={kind: int(total or 0) for kind, total in ledger},
        channel_up=channel_up or {EMBEDDED_CHANNEL: True},  # no declared channel: the renderer
        orphaned_submissions=int(orphaned or 0),
    )
    if not engine:
        return figures
    queued = await conn.scalar(
        select(func.count()).select_from(jobs).where(jobs.c.status == JobStatus.QUEUED.value)
    )
    return DatabaseFigures(
        figures.ledger_micros,
        figures.channel_up,
        figures.orphaned_submissions,
        queue_depth=int(queued or 0),
        in_flight=await in_progress_by_channel(conn),
    )
