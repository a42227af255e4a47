"""`/console/tenants`: find a tenant by the start of its name, create one; a tenant's page with
its balance, top-up, adjustment, group and limits, keys, ledger and usage.

Every form calls the use case the admin API calls (`services/tenants.py`, `services/keys.py`),
as the console's `Actor`, and parses its fields as the admin API does; a refusal re-renders
the page with the message beside the field it names and what was typed kept. A new key is
shown once, on the page after the form (`SessionCookies.hand_over_once`), never again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.charts import Series, bar_chart
from vidrelay.console.listing import PAGE_SIZE, moment
from vidrelay.console.operator import Operator, console_actor
from vidrelay.console.pages import (
    PageRoute,
    checked_form,
    context_of,
    cookies_of,
    field_errors,
    not_found,
    redirect,
    render,
)
from vidrelay.console.sessions import Session
from vidrelay.domain.errors import InvalidRequest, NotFound, VidrelayError
from vidrelay.domain.keys import KeySpec
from vidrelay.domain.limits import MAX_LIMIT, Limits
from vidrelay.domain.pricing import parse_dollars
from vidrelay.services import keys as key_service
from vidrelay.services import tenants as tenant_service
from vidrelay.store import accounts, console_reads
from vidrelay.store.usage import SECONDS_PER_DAY, video_usage

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)

USAGE_DAYS = 30


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _limit(text: str, param: str) -> int | None:
    """A limit field; empty for none."""
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidRequest(
            f"{param} must be a whole number from 1 to {MAX_LIMIT:,}, or empty for no limit.",
            param=param,
        )
    return int(text)


def _tenant_url(name: str, suffix: str = "") -> str:
    return f"/console/tenants/{quote(name, safe='')}{suffix}"


# --- the list ---------------------------------------------------------------------------------


@router.get("/tenants")
async def tenants_page(request: Request, session: Operator) -> Response:
    return await _tenants_page(request, session)


async def _tenants_page(
    request: Request,
    session: Session,
    *,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    prefix = request.query_params.get("prefix", "").strip()
    after = request.query_params.get("after") or None
    async with context_of(request).db.read() as conn:
        found, more = await console_reads.search_tenants(conn, prefix, after=after, limit=PAGE_SIZE)
        groups = sorted(await accounts.list_groups(conn))
    query = {"prefix": prefix} if prefix else {}
    next_url = None
    if more and found:
        next_url = "/console/tenants?" + urlencode({**query, "after": found[-1].name})
    values = {
        "prefix": prefix,
        "tenants": found,
        "next_url": next_url,
        "groups": groups,
        "typed": typed or {},
        "errors": errors or {},
    }
    return render(
        request, "operator/tenants.html", values, session=session, status_code=status_code
    )


@router.post("/tenants")
async def create_tenant(request: Request, session: Operator) -> Response:
    form = await checked_form(request, session)
    typed = {name: _text(form, name) for name in ("name", "balance_usd", "group")}
    try:
        name = typed["name"]
        balance = parse_dollars(typed["balance_usd"] or "0", "balance_usd", signed=False)
        await tenant_service.create_tenant(
            context_of(request).db,
            name,
            actor=console_actor(request),
            balance_micros=balance,
            group=typed["group"] or None,
        )
    except VidrelayError as error:
        return await _tenants_page(
            request,
            session,
            typed=typed,
            errors=field_errors(error),
            status_code=_refusal_status(error),
        )
    return redirect(_tenant_url(name))


def _refusal_status(error: VidrelayError) -> int:
    """A form's refusal: 409 for a conflict (a taken name), 400 for anything else typed."""
    return 409 if error.status_code == 409 else 400


# --- one tenant -------------------------------------------------------------------------------


@router.get("/tenants/{name}")
async def tenant_page(request: Request, name: str, session: Operator) -> Response:
    return await _tenant_page(request, session, name)


async def _tenant_page(
    request: Request,
    session: Session,
    name: str,
    *,
    form: str = "",
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The tenant's page; after a refused form, `form` names it, with what was typed and why."""
    before_text = request.query_params.get("ledger_before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 11 else None
    now = int(time.time())
    start = now - now % SECONDS_PER_DAY - (USAGE_DAYS - 1) * SECONDS_PER_DAY
    async with context_of(request).db.read() as conn:
        tenant = await console_reads.find_tenant_row(conn, name)
        if tenant is None:
            raise not_found("tenant")
        keys = await accounts.list_keys(conn, tenant.id)
        ledger = await accounts.list_ledger(
            conn, tenant_id=tenant.id, before_id=before, limit=PAGE_SIZE + 1
        )
        usage = await video_usage(
            conn, tenant.id, start=start, end=now + 1, by_day=True, by_model=False
        )
        groups = sorted(await accounts.list_groups(conn))
    values: dict[str, Any] = {
        "tenant": tenant,
        "keys": keys,
        "ledger": ledger[:PAGE_SIZE],
        "ledger_next": (
            _tenant_url(name, f"?ledger_before={ledger[PAGE_SIZE - 1].id}")
            if len(ledger) > PAGE_SIZE
            else None
        ),
        "ledger_first": _tenant_url(name) if before is not None else None,
        "groups": groups,
        "usage_chart": _usage_chart(usage, start),
        "form": form,
        "typed": typed or {},
        "errors": errors or {},
        "tenant_url": _tenant_url(name),
    }
    return render(request, "operator/tenant.html", values, session=session, status_code=status_code)


def _usage_chart(usage: list[Any], start: int) -> Any:
    by_day = {row.day_start: row for row in usage}
    days = [start + index * SECONDS_PER_DAY for index in range(USAGE_DAYS)]
    labels = [time.strftime("%m-%d", time.gmtime(day)) for day in days]

    def of(field: str) -> list[float]:
        return [float(getattr(by_day[day], field)) if day in by_day else 0.0 for day in days]

    return bar_chart(
        labels,
        [Series("completed", of("completed")), Series("failed", of("failed")),
         Series("in progress", of("in_progress"))],
        title=f"Jobs per day, last {USAGE_DAYS} days (UTC)",
    )  # fmt: skip


async def _tenant_action(
    request: Request,
    session: Session,
    name: str,
    form_name: str,
    fields: tuple[str, ...],
    action: Any,
) -> Response:
    """Run one form of the tenant's page: `action(typed)` calls the use case; a refusal
    re-renders the page with the form's fields as typed, the error beside its field."""
    form = await checked_form(request, session)
    typed = {field: _text(form, field) for field in fields}
    try:
        await action(typed)
    except VidrelayError as error:
        if isinstance(error, NotFound) and error.param == "tenant":
            raise not_found("tenant") from None
        if isinstance(error, NotFound) and error.param is None:
            raise  # what the form acts on is gone: a 404 page
        return await _tenant_page(
            request,
            session,
            name,
            form=form_name,
            typed=typed,
            errors=field_errors(error),
            status_code=_refusal_status(error),
        )
    return redirect(_tenant_url(name))


@router.post("/tenants/{name}/top-up")
async def top_up(request: Request, name: str, session: Operator) -> Response:
    async def act(typed: Mapping[str, str]) -> None:
        micros = parse_dollars(typed["amount_usd"], "amount_usd")
        if micros <= 0:
            raise InvalidRequest("A top-up must be a positive amount.", param="amount_usd")
        await tenant_service.top_up(
            context_of(request).db,
            name,
            micros,
            typed["note"] or None,
            actor=console_actor(request),
        )

    return await _tenant_action(request, session, name, "top_up", ("amount_usd", "note"), act)


@router.post("/tenants/{name}/adjust")
async def adjust(request: Request, name: str, session: Operator) -> Response:
    async def act(typed: Mapping[str, str]) -> None:
        micros = parse_dollars(typed["amount_usd"], "amount_usd")
        if not typed["note"]:
            raise InvalidRequest("An adjustment needs a note saying why.", param="note")
        await tenant_service.adjust(
            context_of(request).db, name, micros, typed["note"], actor=console_actor(request)
        )

    return await _tenant_action(request, session, name, "adjust", ("amount_usd", "note"), act)


@router.post("/tenants/{name}/settings")
async def settings(request: Request, name: str, session: Operator) -> Response:
    async def act(typed: Mapping[str, str]) -> None:
        limits = Limits(
            rpm=_limit(typed["rpm"], "rpm"),
            max_in_flight=_limit(typed["max_in_flight"], "max_in_flight"),
        )
        await tenant_service.set_options(
            context_of(request).db,
            name,
            actor=console_actor(request),
            group=typed["group"] or None,
            rpm=limits.rpm,
            max_in_flight=limits.max_in_flight,
        )

    fields = ("group", "rpm", "max_in_flight")
    return await _tenant_action(request, session, name, "settings", fields, act)


@router.post("/tenants/{name}/keys")
async def create_key(request: Request, name: str, session: Operator) -> Response:
    issued: list[key_service.IssuedKey] = []

    async def act(typed: Mapping[str, str]) -> None:
        spec = KeySpec(
            name=typed["name"] or None, expires_at=moment(typed["expires_at"], "expires_at")
        )
        issued.append(
            await key_service.create_key(
                context_of(request).db, name, spec, actor=console_actor(request)
            )
        )

    response = await _tenant_action(request, session, name, "key", ("name", "expires_at"), act)
    if issued:
        response = redirect(_tenant_url(name, f"/keys/{issued[0].info.id}"))
        cookies_of(request).hand_over_once(request, response, session, issued[0].key)
    return response


@router.get("/tenants/{name}/keys/{key_id}")
async def issued_key(request: Request, name: str, key_id: str, session: Operator) -> Response:
    """The page after creating a key: the key in clear this once, then never again."""
    async with context_of(request).db.read() as conn:
        key = await accounts.find_key(conn, key_id)
    if key is None or key.id != key_id or key.tenant_name != name:
        raise not_found("key")
    cookies = cookies_of(request)
    values = {
        "key": key,
        "tenant": name,
        "tenant_url": _tenant_url(name),
        "clear": cookies.take_once(request, session),
    }
    response = render(request, "operator/issued_key.html", values, session=session)
    cookies.forget_once(request, response, "console")
    return response


@router.post("/tenants/{name}/keys/{key_id}/revoke")
async def revoke_key(request: Request, name: str, key_id: str, session: Operator) -> Response:
    async def act(typed: Mapping[str, str]) -> None:
        async with context_of(request).db.read() as conn:
            key = await accounts.find_key(conn, key_id)
        if key is None or key.id != key_id or key.tenant_name != name:
            raise not_found("key")
        await key_service.revoke_key(context_of(request).db, key_id, actor=console_actor(request))

    return await _tenant_action(request, session, name, "revoke", (), act)
