"""`/console/channels`: the upstream channels, their state, and the operator's actions on them.

The forms carry every field of a channel (`api/admin_channels.ChannelBody`, whose rules they
share); keys are write-only: the pages show hints, and a key is replaced only when the operator
types new ones. Saving goes through `services/channels.py`, as the admin API's does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.api.admin_channels import ChannelBody
from vidrelay.api.context import AppContext
from vidrelay.channel_admin import channel_state, health_view
from vidrelay.console.operator import Operator, console_actor
from vidrelay.console.pages import (
    PageRoute,
    checked_form,
    context_of,
    field_errors,
    not_found,
    redirect,
    render,
)
from vidrelay.console.sessions import Session
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.circuit import BreakerRef
from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.pricing import usd_text
from vidrelay.engine.health import key_ref
from vidrelay.services import channels as channel_service
from vidrelay.store import channels as channel_store
from vidrelay.store import jobs as job_store
from vidrelay.store import models as model_store
from vidrelay.store import stats
from vidrelay.upstreams.base import ProbeResult
from vidrelay.upstreams.messages import key_hint

router = APIRouter(prefix="/console/channels", route_class=PageRoute, include_in_schema=False)

_PATTERN_HINTS = {
    "name": "Letters, digits, '-', '_' and '.' only, at most 80.",
    "cost_per_second_usd": "A dollar amount such as 0.05 (at most 6 decimals).",
}


@dataclass(frozen=True)
class KeyState:
    hint: str
    cooling_down: bool


@dataclass(frozen=True)
class ChannelRow:
    """A channel as the list and its page show it."""

    channel: Channel
    state: str
    health: dict[str, object]
    keys: list[KeyState]
    running: int
    last_hour: stats.ChannelPerformance | None


async def _rows(context: AppContext, only: str | None = None) -> list[ChannelRow]:
    now = time.time()
    async with context.db.read() as conn:
        declared = (
            await channel_store.list_channels(conn)
            if only is None
            else [found]
            if (found := await channel_store.find_channel(conn, only))
            else []
        )
        running = await job_store.in_progress_by_channel(conn)
        last_hour = await stats.channel_performance(conn, since=int(now) - stats.HOUR_S)
    breakers = await context.breakers.load()
    return [
        ChannelRow(
            channel,
            channel_state(channel),
            health_view(channel, breakers),
            [
                KeyState(
                    key_hint(key),
                    now < breakers[ref].open_until
                    if (ref := BreakerRef(channel.name, key_ref(key))) in breakers
                    else False,
                )
                for key in channel.keys
            ],
            running.get(channel.name, 0),
            last_hour.get(channel.name),
        )
        for channel in declared
    ]


async def _one(context: AppContext, name: str) -> ChannelRow:
    rows = await _rows(context, name)
    if not rows:
        raise not_found("channel")
    return rows[0]


@router.get("")
async def channel_list(request: Request, session: Operator) -> Response:
    rows = await _rows(context_of(request))
    return render(request, "operator/channels.html", {"rows": rows}, session=session)


def _form_values(channel: Channel | None) -> dict[str, Any]:
    """A channel as its form's fields (keys never: they are write-only)."""
    if channel is None:
        return {
            "name": "",
            "protocol": ChannelProtocol.OPENAI.value,
            "base_url": "",
            "route_class": RouteClass.OFFICIAL.value,
            "models": [],
            "model_map": "",
            "priority": "0",
            "weight": "1",
            "max_concurrency": "50",
            "enabled": True,
            "cost_per_second_usd": "0",
        }
    return {
        "name": channel.name,
        "protocol": channel.protocol.value,
        "base_url": channel.base_url,
        "route_class": channel.route_class.value if channel.route_class else "",
        "models": list(channel.models),
        "model_map": "\n".join(f"{ours} = {theirs}" for ours, theirs in channel.model_map.items()),
        "priority": str(channel.priority),
        "weight": str(channel.weight),
        "max_concurrency": str(channel.max_concurrency),
        "enabled": channel.enabled,
        "cost_per_second_usd": usd_text(channel.cost_per_second_micros),
    }


def _posted_values(form: FormData) -> dict[str, Any]:
    def text(field: str) -> str:
        value = form.get(field)
        return value.strip() if isinstance(value, str) else ""

    return {
        "name": text("name"),
        "protocol": text("protocol"),
        "base_url": text("base_url"),
        "route_class": text("route_class"),
        "models": [value for value in form.getlist("models") if isinstance(value, str)],
        "model_map": text("model_map"),
        "priority": text("priority"),
        "weight": text("weight"),
        "max_concurrency": text("max_concurrency"),
        "enabled": form.get("enabled") is not None,
        "cost_per_second_usd": text("cost_per_second_usd"),
        "keys": [line.strip() for line in text("keys").splitlines() if line.strip()],
    }


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _model_map(written: str) -> dict[str, str]:
    mapping = {}
    for line in written.splitlines():
        if not line.strip():
            continue
        ours, equals, theirs = line.partition("=")
        if not equals or not ours.strip() or not theirs.strip():
            raise FormErrors({"model_map": f"Write one `model = upstream name` a line: {line!r}."})
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _channel(values: Mapping[str, Any], keys: list[str]) -> Channel:
    """The channel the form describes, checked by the admin API's rules, field by field."""
    fields = {**values, "keys": keys, "model_map": _model_map(values["model_map"])}
    fields["route_class"] = fields["route_class"] or None
    try:
        body = ChannelBody.model_validate(fields)
    except ValidationError as invalid:
        errors: dict[str, str] = {}
        for problem in invalid.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            message = problem["msg"]
            if problem["type"] == "string_pattern_mismatch":
                message = _PATTERN_HINTS.get(field, message)
            errors.setdefault(field, message)
        raise FormErrors(errors) from invalid
    return body.channel()


async def _form_page(
    request: Request,
    session: Session,
    values: Mapping[str, Any],
    *,
    row: ChannelRow | None = None,
    errors: Mapping[str, str] | None = None,
    probe: ProbeResult | None = None,
    status_code: int = 200,
) -> Response:
    async with context_of(request).db.read() as conn:
        catalog = await model_store.load_catalog(conn)
    template = "operator/channel.html" if row else "operator/channel_new.html"
    return render(
        request,
        template,
        {
            "row": row,
            "values": values,
            "errors": errors or {},
            "probe": probe,
            "protocols": [protocol.value for protocol in ChannelProtocol],
            "route_classes": [route_class.value for route_class in RouteClass],
            "catalog_models": [model.name for model in catalog],
        },
        session=session,
        status_code=status_code,
    )


@router.get("/new")
async def new_channel_form(request: Request, session: Operator) -> Response:
    return await _form_page(request, session, _form_values(None))


@router.post("/new")
async def new_channel(request: Request, session: Operator) -> Response:
    form = await checked_form(request, session)
    values = _posted_values(form)
    context = context_of(request)
    try:
        channel = await channel_service.declare_channel(
            context.db,
            _channel(values, values["keys"]),
            actor=console_actor(request),
            wakeups=context.wakeups,
        )
    except FormErrors as refused:
        return await _form_page(request, session, values, errors=refused.errors, status_code=400)
    except VidrelayError as error:
        return await _form_page(
            request, session, values, errors=field_errors(error), status_code=error.status_code
        )
    return redirect(f"/console/channels/{channel.name}")


@router.get("/{name}")
async def channel_page(request: Request, session: Operator, name: str) -> Response:
    row = await _one(context_of(request), name)
    return await _form_page(request, session, _form_values(row.channel), row=row)


@router.post("/{name}")
async def edit_channel(request: Request, session: Operator, name: str) -> Response:
    """Every field but the name and the switch (its own buttons); the keys only when typed."""
    form = await checked_form(request, session)
    context = context_of(request)
    row = await _one(context, name)
    values = {**_posted_values(form), "name": name, "enabled": row.channel.enabled}
    try:
        edited = _channel(values, values["keys"] or list(row.channel.keys))
        await channel_service.change_channel(
            context.db,
            name,
            lambda current: replace(
                edited,
                keys=edited.keys if values["keys"] else current.keys,
                enabled=current.enabled,
                disabled_reason=current.disabled_reason,
            ),
            actor=console_actor(request),
            wakeups=context.wakeups,
        )
    except FormErrors as refused:
        return await _form_page(
            request, session, values, row=row, errors=refused.errors, status_code=400
        )
    except VidrelayError as error:
        return await _form_page(
            request,
            session,
            values,
            row=row,
            errors=field_errors(error),
            status_code=error.status_code,
        )
    return redirect(f"/console/channels/{name}")


async def _switch(request: Request, session: Session, name: str, enabled: bool) -> Response:
    await checked_form(request, session)
    context = context_of(request)
    await channel_service.switch_channel(
        context.db,
        context.breakers,
        name,
        enabled,
        actor=console_actor(request),
        wakeups=context.wakeups,
    )
    return redirect(f"/console/channels/{name}")


@router.post("/{name}/enable")
async def enable(request: Request, session: Operator, name: str) -> Response:
    """Switch on; also clears an automatic switch-off and the channel's breakers."""
    return await _switch(request, session, name, True)


@router.post("/{name}/disable")
async def disable(request: Request, session: Operator, name: str) -> Response:
    """No new jobs go to it; jobs already running there finish there."""
    return await _switch(request, session, name, False)


@router.post("/{name}/test")
async def test(request: Request, session: Operator, name: str) -> Response:
    """Probe reachability and every key (nothing billable); the result is shown per key."""
    await checked_form(request, session)
    context = context_of(request)
    row = await _one(context, name)
    probe = await channel_service.test_channel(
        context.db, name, context.settings, actor=console_actor(request)
    )
    return await _form_page(request, session, _form_values(row.channel), row=row, probe=probe)


@router.post("/{name}/delete")
async def delete(request: Request, session: Operator, name: str) -> Response:
    """Refused (409, shown on the channel's page) while jobs run on it."""
    await checked_form(request, session)
    context = context_of(request)
    row = await _one(context, name)
    try:
        await channel_service.delete_channel(
            context.db, name, actor=console_actor(request), wakeups=context.wakeups
        )
    except VidrelayError as error:
        return await _form_page(
            request,
            session,
            _form_values(row.channel),
            row=row,
            errors={"delete": error.message},
            status_code=error.status_code,
        )
    return redirect("/console/channels")
