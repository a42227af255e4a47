"""`/admin/channels`: the operator's upstream channels at runtime (DESIGN.md §6).

Same token and conventions as the rest of `/admin` (api/admin.py). A change made here is seen by
this process at once and by other replicas within `VIDRELAY_CHANNEL_REFRESH_S`. Keys go in
whole and come out as hints.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vidrelay.api.admin import AdminActor, AdminRoute
from vidrelay.api.auth import Context
from vidrelay.api.context import AppContext
from vidrelay.channel_admin import channel_view, health_view, probe_view
from vidrelay.domain.audit import Actor
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.services import channels as channel_service
from vidrelay.store import channels as channel_store
from vidrelay.store import jobs as job_store

router = APIRouter(prefix="/admin/channels", route_class=AdminRoute, tags=["admin"])

_NAME = r"^[A-Za-z0-9._-]{1,80}$"
_USD = r"^[0-9]{1,6}(\.[0-9]{1,6})?$"


class ChannelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    protocol: ChannelProtocol
    base_url: str = ""
    keys: list[Annotated[str, Field(min_length=1, max_length=500)]] = []
    route_class: RouteClass | None = None
    models: list[str] = []
    model_map: dict[str, str] = {}
    priority: int = Field(default=0, ge=-1000, le=1000)
    weight: int = Field(default=1, ge=1, le=10_000)
    max_concurrency: int = Field(default=50, ge=1, le=100_000)
    enabled: bool = True
    cost_per_second_usd: str = Field(default="0", pattern=_USD)

    def channel(self) -> Channel:
        """The channel these fields declare (the console's form is read into this too)."""
        return Channel(
            name=self.name,
            protocol=self.protocol,
            route_class=self.route_class,
            models=tuple(self.models),
            base_url=self.base_url,
            keys=tuple(self.keys),
            model_map=self.model_map,
            priority=self.priority,
            weight=self.weight,
            max_concurrency=self.max_concurrency,
            enabled=self.enabled,
            cost_per_second_micros=usd_to_micros(self.cost_per_second_usd),
        )


class ChannelPatch(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    keys: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = None
    route_class: RouteClass | None = None
    models: list[str] | None = None
    model_map: dict[str, str] | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    weight: int | None = Field(default=None, ge=1, le=10_000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100_000)
    cost_per_second_usd: str | None = Field(default=None, pattern=_USD)


def _saved(channel: Channel) -> JSONResponse:
    return JSONResponse(channel_view(channel))


@router.get("")
async def list_channels(context: Context) -> JSONResponse:
    async with context.db.read() as conn:
        declared = await channel_store.list_channels(conn)
        running = await job_store.in_progress_by_channel(conn)
    return JSONResponse(
        {
            "object": "list",
            "data": [channel_view(channel, running.get(channel.name, 0)) for channel in declared],
        }
    )


@router.post("")
async def create_channel(body: ChannelBody, context: Context, actor: AdminActor) -> JSONResponse:
    channel = await channel_service.declare_channel(
        context.db,
        body.channel(),
        actor=actor,
        wakeups=context.wakeups,
    )
    return _saved(channel)


@router.get("/{name}")
async def get_channel(name: str, context: Context) -> JSONResponse:
    channel = await channel_service.find_channel(context.db, name)
    async with context.db.read() as conn:
        running = await job_store.in_progress_by_channel(conn)
    view = channel_view(channel, running.get(name, 0))
    view["health"] = health_view(channel, await context.breakers.load())
    return JSONResponse(view)


@router.patch("/{name}")
async def patch_channel(
    name: str, body: ChannelPatch, context: Context, actor: AdminActor
) -> JSONResponse:
    changes = body.model_dump(exclude_unset=True)
    if "cost_per_second_usd" in changes:
        cost = changes.pop("cost_per_second_usd")
        changes["cost_per_second_micros"] = usd_to_micros(cost or "0")
    for field in ("keys", "models"):
        if field in changes:
            changes[field] = tuple(changes[field] or ())
    if "model_map" in changes:
        changes["model_map"] = changes["model_map"] or {}
    changed = await channel_service.change_channel(
        context.db,
        name,
        lambda channel: replace(channel, **changes),
        actor=actor,
        wakeups=context.wakeups,
    )
    return _saved(changed)


@router.delete("/{name}")
async def delete_channel(name: str, context: Context, actor: AdminActor) -> JSONResponse:
    """Refused (409) while jobs run on it; see `services.channels.delete_channel`."""
    await channel_service.delete_channel(context.db, name, actor=actor, wakeups=context.wakeups)
    return JSONResponse({"object": "channel.deleted", "name": name, "deleted": True})


@router.post("/{name}/enable")
async def enable_channel(name: str, context: Context, actor: AdminActor) -> JSONResponse:
    """Switch on; also clears an automatic disable and the channel's breakers (the operator
    vouches for it): enabling a channel that is on resets its breakers."""
    return await _switch(context, actor, name, True)


@router.post("/{name}/disable")
async def disable_channel(name: str, context: Context, actor: AdminActor) -> JSONResponse:
    """No new jobs go to it; jobs already running there finish there."""
    return await _switch(context, actor, name, False)


async def _switch(context: AppContext, actor: Actor, name: str, enabled: bool) -> JSONResponse:
    switched = await channel_service.switch_channel(
        context.db, context.breakers, name, enabled, actor=actor, wakeups=context.wakeups
    )
    return JSONResponse(channel_view(switched))


@router.post("/{name}/test")
async def test(name: str, context: Context, actor: AdminActor) -> JSONResponse:
    """Probe reachability and every key; submits nothing billable."""
    result = await channel_service.test_channel(context.db, name, context.settings, actor=actor)
    return JSONResponse({"name": name, **probe_view(result)})
