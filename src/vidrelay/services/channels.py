"""Declaring and changing channels: checked against the catalog in the transaction that saves
them, so a channel only ever lists models the catalog has."""

from __future__ import annotations

from collections.abc import Callable

from vidrelay.domain.channels import Channel
from vidrelay.domain.errors import Conflict, NotFound
from vidrelay.services.catalog import CatalogEdit
from vidrelay.store import channels as channel_store
from vidrelay.store.breakers import BreakerStore
from vidrelay.store.database import Database


async def declare_channel(db: Database, channel: Channel, *, replace: bool = False) -> Channel:
    """Save a new channel (or, with `replace`, redefine one); returns it as stored."""
    async with db.write() as conn:
        if not replace and await channel_store.find_channel(conn, channel.name) is not None:
            raise Conflict(
                f"A channel named {channel.name!r} exists; change it with PATCH "
                "/admin/channels/NAME, or redefine it with `vidrelay channels add --replace`.",
                param="name",
                code="channel_exists",
            )
        return await (await CatalogEdit.begin(conn)).save_channel(channel)


async def change_channel(db: Database, name: str, change: Callable[[Channel], Channel]) -> Channel:
    """Apply `change` to the stored channel and save the result, checked."""
    async with db.write() as conn:
        current = await channel_store.find_channel(conn, name)
        if current is None:
            raise NotFound(f"No channel named {name!r}.", param="name", code="channel_not_found")
        return await (await CatalogEdit.begin(conn)).save_channel(change(current))


async def switch_channel(db: Database, breakers: BreakerStore, name: str, enabled: bool) -> bool:
    """The operator's switch; False when there is no such channel. Switching on also clears an
    automatic switch-off and the channel's breakers (the operator vouches for it): every worker
    sees both within `VIDRELAY_CHANNEL_REFRESH_S`."""
    async with db.write() as conn:
        found = await channel_store.set_enabled(conn, name, enabled)
    if found and enabled:
        await breakers.clear(name)
    return found
