"""Declaring, changing, switching, testing and deleting channels: checked against the catalog
in the transaction that saves them, so a channel only ever lists models the catalog has.

A channel's keys never reach the audit log: its row says how many keys the channel has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.channel_admin import test_channel as probe
from vidrelay.domain.audit import Actor, url_for_audit
from vidrelay.domain.channels import Channel
from vidrelay.domain.errors import Conflict, NotFound
from vidrelay.domain.pricing import usd_text
from vidrelay.services.catalog import CatalogEdit
from vidrelay.services.wakeups import NOBODY, Wakeups
from vidrelay.settings import Settings
from vidrelay.store import audit
from vidrelay.store import channels as channel_store
from vidrelay.store import jobs as job_store
from vidrelay.store.breakers import BreakerStore
from vidrelay.store.database import Database
from vidrelay.upstreams.base import ProbeResult


def _details(channel: Channel) -> dict[str, Any]:
    """What the audit log keeps of a channel: everything but its keys (their number only)."""
    return {
        "protocol": channel.protocol.value,
        "base_url": url_for_audit(channel.base_url),
        "keys": len(channel.keys),
        "route_class": channel.route_class.value if channel.route_class else None,
        "models": list(channel.models),
        "priority": channel.priority,
        "weight": channel.weight,
        "max_concurrency": channel.max_concurrency,
        "enabled": channel.enabled,
        "cost_per_second_usd": usd_text(channel.cost_per_second_micros),
    }


async def _existing(conn: AsyncConnection, name: str) -> Channel:
    channel = await channel_store.find_channel(conn, name)
    if channel is None:
        raise NotFound(f"No channel named {name!r}.", param="name", code="channel_not_found")
    return channel


async def find_channel(db: Database, name: str) -> Channel:
    """The channel named (404 otherwise)."""
    async with db.read() as conn:
        return await _existing(conn, name)


async def declare_channel(
    db: Database,
    channel: Channel,
    *,
    actor: Actor,
    wakeups: Wakeups = NOBODY,
    replace: bool = False,
) -> Channel:
    """Save a new channel (or, with `replace`, redefine one); returns it as stored."""
    async with db.write() as conn:
        if not replace and await channel_store.find_channel(conn, channel.name) is not None:
            raise Conflict(
                f"A channel named {channel.name!r} exists; change it with PATCH "
                "/admin/channels/NAME, or redefine it with `vidrelay channels add --replace`.",
                param="name",
                code="channel_exists",
            )
        saved = await (await CatalogEdit.begin(conn)).save_channel(channel)
        await audit.record(conn, actor, "channel.declare", channel.name, _details(saved))
    wakeups.channels()
    return saved


async def change_channel(
    db: Database,
    name: str,
    change: Callable[[Channel], Channel],
    *,
    actor: Actor,
    wakeups: Wakeups = NOBODY,
) -> Channel:
    """Apply `change` to the stored channel and save the result, checked."""
    async with db.write() as conn:
        current = await _existing(conn, name)
        saved = await (await CatalogEdit.begin(conn)).save_channel(change(current))
        before, after = _details(current), _details(saved)
        changed = {field: value for field, value in after.items() if before[field] != value}
        if current.keys != saved.keys:
            changed["keys"] = len(saved.keys)  # a key swapped for another: said, never shown
        await audit.record(conn, actor, "channel.change", name, changed)
    wakeups.channels()
    return saved


async def switch_channel(
    db: Database,
    breakers: BreakerStore,
    name: str,
    enabled: bool,
    *,
    actor: Actor,
    wakeups: Wakeups = NOBODY,
) -> Channel:
    """The operator's switch (404 for an unknown channel). Switching on also clears an
    automatic switch-off and the channel's breakers (the operator vouches for it), so enabling
    a channel that is on is how its breakers are reset: every worker sees both within
    `VIDRELAY_CHANNEL_REFRESH_S`, this process at once."""
    async with db.write() as conn:
        if not await channel_store.set_enabled(conn, name, enabled):
            raise NotFound(f"No channel named {name!r}.", param="name", code="channel_not_found")
        await audit.record(conn, actor, "channel.enable" if enabled else "channel.disable", name)
        switched = await _existing(conn, name)
    if enabled:
        await breakers.clear(name)
    wakeups.channels()
    return switched


async def delete_channel(
    db: Database, name: str, *, actor: Actor, wakeups: Wakeups = NOBODY
) -> None:
    """Refused while jobs run on it: they would have to start again elsewhere, billed twice
    upstream. Disable it, let them finish, then delete."""
    async with db.write() as conn:
        await _existing(conn, name)
        running = (await job_store.in_progress_by_channel(conn)).get(name, 0)
        if running:
            raise Conflict(
                f"{running} jobs are running on channel {name!r}; disable it and delete it "
                f"once they are done.",
                param="name",
                code="channel_busy",
            )
        await channel_store.delete_channel(conn, name)
        await audit.record(conn, actor, "channel.delete", name)
    wakeups.channels()


async def test_channel(db: Database, name: str, settings: Settings, *, actor: Actor) -> ProbeResult:
    """Probe reachability and every key, submitting nothing billable. The probe runs outside
    any transaction (it waits on the network); its outcome is recorded once it is known."""
    channel = await find_channel(db, name)
    result = await probe(channel, settings)
    async with db.write() as conn:
        details = {
            "healthy": result.healthy,
            "reachable": result.reachable,
            "keys_ok": sum(1 for key in result.keys if key.ok),
            "keys": len(result.keys),
        }
        await audit.record(conn, actor, "channel.test", name, details)
    return result
