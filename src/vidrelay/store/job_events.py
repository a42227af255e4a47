"""The job timeline's rows: appended inside the transactions that make each change, read back
in order through `ix_job_events_job`."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.events import EventKind, JobEvent, UpstreamObservation
from vidrelay.store.tables import job_events


async def record_events(conn: AsyncConnection, events: Iterable[JobEvent]) -> None:
    """Append events (one statement however many)."""
    rows = [
        {
            "job_id": event.job_id,
            "at": event.at,
            "kind": event.kind.value,
            "details": json.dumps(dict(event.details), separators=(",", ":")),
        }
        for event in events
    ]
    if rows:
        await conn.execute(insert(job_events), rows)


async def events_of(conn: AsyncConnection, job_id: str) -> list[JobEvent]:
    """A job's timeline, in the order it happened."""
    rows = await conn.execute(
        select(job_events).where(job_events.c.job_id == job_id).order_by(job_events.c.id)
    )
    return [
        JobEvent(row.job_id, EventKind(row.kind), json.loads(row.details), row.at, row.id)
        for row in rows
    ]


async def last_upstream_observation(
    conn: AsyncConnection, job_id: str
) -> UpstreamObservation | None:
    """The upstream status last recorded for the job: where a resumed watch picks up, so a
    restart writes no event for a status that did not change."""
    details = await conn.scalar(
        select(job_events.c.details)
        .where(
            job_events.c.job_id == job_id,
            job_events.c.kind == EventKind.UPSTREAM_STATUS.value,
        )
        .order_by(job_events.c.id.desc())
        .limit(1)
    )
    if details is None:
        return None
    values = json.loads(details)
    return UpstreamObservation(str(values["status"]), int(values["progress"]))
