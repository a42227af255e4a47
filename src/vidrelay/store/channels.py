"""Channels as stored, and the cached view of them that the api and the engine share."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.store.database import Database
from vidrelay.store.refreshing import RefreshingView
from vidrelay.store.tables import channels


class UnknownProtocol(ValueError):
    """A stored channel names a protocol this version of vidrelay has no adapter for (the row
    was written by a newer version, or by hand)."""


def _protocol(row: Row[Any]) -> ChannelProtocol:
    try:
        return ChannelProtocol(row.protocol)
    except ValueError:
        known = ", ".join(protocol.value for protocol in ChannelProtocol)
        raise UnknownProtocol(
            f"channel {row.name!r} in the database has protocol {row.protocol!r}, which this "
            f"version of vidrelay does not know (known: {known}); change or delete it."
        ) from None


def _channel(row: Row[Any]) -> Channel:
    return Channel(
        name=row.name,
        protocol=_protocol(row),
        route_class=RouteClass(row.route_class) if row.route_class else None,
        models=tuple(json.loads(row.models)),
        base_url=row.base_url,
        keys=tuple(json.loads(row.keys)),
        model_map=dict(json.loads(row.model_map)),
        priority=row.priority,
        weight=row.weight,
        max_concurrency=row.max_concurrency,
        enabled=bool(row.enabled),
        cost_per_second_micros=row.cost_per_second_micros,
        disabled_reason=row.disabled_reason,
    )


def _values(channel: Channel) -> dict[str, Any]:
    return {
        "protocol": channel.protocol.value,
        "base_url": channel.base_url,
        "keys": json.dumps(list(channel.keys)),
        "route_class": channel.route_class.value if channel.route_class else None,
        "models": json.dumps(list(channel.models)),
        "model_map": json.dumps(dict(channel.model_map), sort_keys=True),
        "priority": channel.priority,
        "weight": channel.weight,
        "max_concurrency": channel.max_concurrency,
        "enabled": int(channel.enabled),
        "cost_per_second_micros": channel.cost_per_second_micros,
    }


async def list_channels(conn: AsyncConnection) -> list[Channel]:
    rows = await conn.execute(select(channels).order_by(channels.c.name))
    return [_channel(row) for row in rows]


async def find_channel(conn: AsyncConnection, name: str) -> Channel | None:
    row = (await conn.execute(select(channels).where(channels.c.name == name))).first()
    return _channel(row) if row is not None else None


async def save_channel(conn: AsyncConnection, channel: Channel) -> bool:
    """Insert or replace a channel's definition; True when it was new.

    Its health (an auto-disable and its reason) is kept: a definition edit is not a probe.
    """
    now = int(time.time())
    result = await conn.execute(
        update(channels)
        .where(channels.c.name == channel.name)
        .values(**_values(channel), updated_at=now)
    )
    if result.rowcount:
        return False
    await conn.execute(
        insert(channels).values(
            name=channel.name, **_values(channel), created_at=now, updated_at=now
        )
    )
    return True


async def set_enabled(conn: AsyncConnection, name: str, enabled: bool) -> bool:
    """The operator's switch. Enabling also clears an automatic disable."""
    values: dict[str, Any] = {"enabled": int(enabled), "updated_at": int(time.time())}
    if enabled:
        values.update(disabled_reason=None, disabled_at=None)
    result = await conn.execute(update(channels).where(channels.c.name == name).values(**values))
    return bool(result.rowcount)


async def set_auto_disabled(conn: AsyncConnection, name: str, reason: str | None) -> None:
    """vidrelay's own switch: a reason turns the channel off, None turns it back on."""
    await conn.execute(
        update(channels)
        .where(channels.c.name == name)
        .values(disabled_reason=reason, disabled_at=int(time.time()) if reason else None)
    )


async def delete_channel(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(delete(channels).where(channels.c.name == name))
    return bool(result.rowcount)


class ChannelDirectory(RefreshingView[list[Channel]]):
    """The declared channels, shared by the api (is a request served at all?) and the engine
    (where does it run?)."""

    def __init__(self, db: Database, refresh_s: float = 2.0) -> None:
        super().__init__(db, list_channels, [], refresh_s)

    async def declared(self) -> list[Channel]:
        return await self.current()
