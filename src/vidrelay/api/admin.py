"""`/admin/*`: the operator's API for tenants, balances, the ledger, prices and revenue.

Authenticated with `Authorization: Bearer <VIDRELAY_ADMIN_TOKEN>`; tenant keys never work here.
While no admin token is set the admin API is off and every route answers the same 404 as an
unknown URL. The token is checked before the request body is even parsed (`AdminRoute`), so an
unauthorised caller learns nothing from validation errors. The routes are left out of the
public OpenAPI schema: tenants read that document, and it should not map the operator's API.

Money crosses the wire as decimal strings of dollars (`"10.5"`), never JSON numbers; every
write is one use case of `services/` (one transaction, one audit row naming the caller's
address), the same the CLI and the console call.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from vidrelay.api.auth import Context
from vidrelay.api.context import get_context
from vidrelay.api.model_views import price_rule_view
from vidrelay.api.money_views import LEDGER_KINDS, ledger_entry_view, tenant_view
from vidrelay.api.usage import Timestamp
from vidrelay.domain.audit import Actor, ActorKind
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
)
from vidrelay.domain.limits import MAX_LIMIT, Limits
from vidrelay.domain.pricing import (
    PPM,
    PriceDeclaration,
    PriceRule,
    SizeClass,
    micros_to_usd,
    parse_conditions,
    parse_dollars,
)
from vidrelay.services import catalog as catalog_service
from vidrelay.services import tenants as tenant_service
from vidrelay.services import webhooks as webhook_service
from vidrelay.services.tenants import KEEP
from vidrelay.settings import Settings
from vidrelay.store import accounts, prices
from vidrelay.store import webhooks as webhook_store
from vidrelay.store.usage import ChannelRevenue, revenue_by_channel

MAX_LEDGER_ID = 2**31 - 1  # ledger ids are 32-bit integers on PostgreSQL


def check_admin_token(request: Request, settings: Settings) -> None:
    """404 while the admin API is off; 401 for a missing or wrong token (constant-time)."""
    token = settings.admin_token
    if not token:
        raise NotFound("Unknown request URL. Check the path and method.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise AuthenticationFailed(
            "The admin API needs 'Authorization: Bearer <VIDRELAY_ADMIN_TOKEN>'.",
            code="missing_admin_token",
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise AuthenticationFailed("Incorrect admin token.", code="invalid_admin_token")


class AdminRoute(APIRoute):
    """An APIRoute that checks the admin token before FastAPI parses the request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            check_admin_token(request, (await get_context(request)).settings)
            return await handler(request)

        return checked


router = APIRouter(prefix="/admin", route_class=AdminRoute, tags=["admin"])


async def admin_actor(request: Request) -> Actor:
    """The operator behind an admin request, by the address it came from."""
    return Actor(ActorKind.ADMIN_API, address=request.client.host if request.client else None)


AdminActor = Annotated[Actor, Depends(admin_actor)]

LimitValue = Annotated[int | None, Field(ge=1, le=MAX_LIMIT)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantCreate(_Body):
    name: str  # checked by the use case, with the same words for the CLI and the console
    balance_usd: str | None = None
    group: str | None = None
    rpm: LimitValue = None
    max_in_flight: LimitValue = None


class TenantPatch(_Body):
    """Only the fields sent change; `null` clears a limit."""

    group: str | None = None
    rpm: LimitValue = None
    max_in_flight: LimitValue = None


class TopUp(_Body):
    amount_usd: str
    note: str | None = Field(default=None, max_length=1000)


class Adjustment(_Body):
    amount_usd: str
    note: str = Field(max_length=1000)


class PriceRuleBody(_Body):
    model: str
    route_class: RouteClass | None = None
    size_class: SizeClass | None = None
    per_second_usd: str | None = None
    per_request_usd: str | None = None
    when: dict[str, str | bool | int | float] = {}
    """Conditions on the model's declared parameters (or `operation`)."""


class GroupBody(_Body):
    multiplier: str


# --- tenants -------------------------------------------------------------------------------


@router.get("/tenants")
async def list_tenants(context: Context) -> JSONResponse:
    async with context.db.read() as conn:
        tenants = await accounts.list_tenants(conn)
    return JSONResponse({"object": "list", "data": [tenant_view(tenant) for tenant in tenants]})


@router.post("/tenants")
async def create_tenant(body: TenantCreate, context: Context, actor: AdminActor) -> JSONResponse:
    """A new tenant; its initial balance is a top-up in the ledger by the admin."""
    balance = 0
    if body.balance_usd is not None:
        balance = parse_dollars(body.balance_usd, "balance_usd")
    if balance < 0:
        raise InvalidRequest("balance_usd cannot be negative.", param="balance_usd")
    summary = await tenant_service.create_tenant(
        context.db,
        body.name,
        actor=actor,
        balance_micros=balance,
        group=body.group,
        limits=Limits(body.rpm, body.max_in_flight),
    )
    return JSONResponse(tenant_view(summary))


@router.get("/tenants/{name}")
async def get_tenant(name: str, context: Context) -> JSONResponse:
    async with context.db.read() as conn:
        summary = await accounts.tenant_summary(conn, name)
    return JSONResponse(tenant_view(summary))


@router.patch("/tenants/{name}")
async def update_tenant(
    name: str, body: TenantPatch, context: Context, actor: AdminActor
) -> JSONResponse:
    sent = body.model_fields_set
    if "group" in sent and body.group is None:
        raise InvalidRequest("group cannot be null; every tenant has a group.", param="group")
    summary = await tenant_service.set_options(
        context.db,
        name,
        actor=actor,
        group=body.group,
        rpm=body.rpm if "rpm" in sent else KEEP,
        max_in_flight=body.max_in_flight if "max_in_flight" in sent else KEEP,
    )
    return JSONResponse(tenant_view(summary))


@router.post("/tenants/{name}/topups")
async def top_up_tenant(
    name: str, body: TopUp, context: Context, actor: AdminActor
) -> JSONResponse:
    micros = parse_dollars(body.amount_usd, "amount_usd")
    if micros <= 0:
        raise InvalidRequest("amount_usd of a top-up must be positive.", param="amount_usd")
    summary = await tenant_service.top_up(context.db, name, micros, body.note, actor=actor)
    return JSONResponse(tenant_view(summary))


@router.post("/tenants/{name}/adjustments")
async def adjust_tenant(
    name: str, body: Adjustment, context: Context, actor: AdminActor
) -> JSONResponse:
    """A signed correction with a reason; it may not take the balance below zero."""
    micros = parse_dollars(body.amount_usd, "amount_usd")
    summary = await tenant_service.adjust(context.db, name, micros, body.note, actor=actor)
    return JSONResponse(tenant_view(summary))


# --- ledger --------------------------------------------------------------------------------


@router.get("/ledger")
async def list_ledger(
    context: Context,
    tenant: str | None = None,
    kind: str | None = None,
    job_id: str | None = None,
    since: Timestamp = None,
    until: Timestamp = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_LEDGER_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    """Newest first; the next page is `before_id=<the last id of this page>`."""
    if kind is not None and kind not in LEDGER_KINDS:
        raise InvalidRequest(
            f"kind {kind!r} is not supported; allowed values: {', '.join(LEDGER_KINDS)}.",
            param="kind",
        )
    async with context.db.read() as conn:
        tenant_id = None
        if tenant is not None:
            found = await accounts.find_tenant(conn, tenant)
            if found is None:
                raise NotFound(f"No tenant named {tenant!r}.", param="tenant")
            tenant_id = found.id
        entries = await accounts.list_ledger(
            conn,
            tenant_id=tenant_id,
            kind=kind,
            job_id=job_id,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit + 1,
        )
    return JSONResponse(
        {
            "object": "list",
            "data": [ledger_entry_view(entry) for entry in entries[:limit]],
            "has_more": len(entries) > limit,
        }
    )


# --- prices and groups ---------------------------------------------------------------------


@router.get("/prices")
async def list_prices(context: Context) -> JSONResponse:
    async with context.db.read() as conn:
        rules = await prices.price_rules_for(conn)
        groups = await accounts.list_groups(conn)
    return JSONResponse(
        {
            "object": "prices",
            "rules": [_price_rule(rule) for rule in rules],
            "groups": [
                {"name": name, "multiplier": _multiplier_text(ppm)}
                for name, ppm in sorted(groups.items())
            ],
        }
    )


@router.put("/prices")
async def put_price_rule(body: PriceRuleBody, context: Context, actor: AdminActor) -> JSONResponse:
    """Insert or replace the rule for (model, route class, size class, conditions). Jobs
    already accepted keep the price they were accepted at."""
    per_second = per_request = None
    if body.per_second_usd is not None:
        per_second = parse_dollars(body.per_second_usd, "per_second_usd", signed=False)
    if body.per_request_usd is not None:
        per_request = parse_dollars(body.per_request_usd, "per_request_usd", signed=False)
    declaration = PriceDeclaration(
        model=body.model,
        route_class=body.route_class,
        size_class=body.size_class,
        per_second_micros=per_second,
        per_request_micros=per_request,
        when=body.when,
    )
    rule = await catalog_service.set_price(context.db, declaration, actor=actor)
    return JSONResponse(_price_rule(rule))


@router.delete("/prices")
async def delete_price_rule(
    context: Context,
    actor: AdminActor,
    model: str,
    route_class: str | None = None,
    size_class: str | None = None,
    when: Annotated[list[str] | None, Query()] = None,
) -> JSONResponse:
    """Empty or absent `route_class` / `size_class` name the rule that applies to any;
    `when=resolution=1080p` (repeated) names its conditions."""
    route = _optional_choice(route_class, RouteClass, "route_class")
    size = _optional_choice(size_class, SizeClass, "size_class")
    declaration = PriceDeclaration(
        model=model,
        route_class=RouteClass(route) if route else None,
        size_class=SizeClass(size) if size else None,
        when=parse_conditions(when or []),
    )
    conditions = await catalog_service.delete_price(context.db, declaration, actor=actor)
    deleted: dict[str, Any] = {"model": model, "route_class": route, "size_class": size}
    if conditions:
        deleted["when"] = dict(conditions)
    return JSONResponse({**deleted, "deleted": True})


@router.put("/groups/{name}")
async def put_group(
    name: str, body: GroupBody, context: Context, actor: AdminActor
) -> JSONResponse:
    """Insert or update a tenant group; its multiplier scales the prices of new jobs."""
    ppm = await tenant_service.set_group(context.db, name, body.multiplier, actor=actor)
    return JSONResponse({"name": name, "multiplier": _multiplier_text(ppm)})


def _optional_choice(
    value: str | None, choices: type[RouteClass] | type[SizeClass], param: str
) -> str | None:
    if not value:
        return None
    allowed = [choice.value for choice in choices]
    if value not in allowed:
        raise InvalidRequest(
            f"{param} {value!r} is not supported; allowed values: {', '.join(allowed)}.",
            param=param,
        )
    return value


def _price_rule(rule: PriceRule) -> dict[str, Any]:
    view = price_rule_view(rule)
    if not rule.conditions:
        del view["when"]
    return view


def _multiplier_text(ppm: int) -> str:
    return str((Decimal(ppm) / PPM).quantize(Decimal("0.000001")))


# --- revenue -------------------------------------------------------------------------------


@router.get("/revenue")
async def revenue(
    context: Context, since: Timestamp = None, until: Timestamp = None
) -> JSONResponse:
    """Revenue per channel over jobs created in [since, until), `"unassigned"` for jobs that
    never reached a channel. `cost_usd` sums `jobs.cost_micros`: on completion the engine records
    the channel's cost per second times the video's seconds (a job with no recorded cost counts
    as 0)."""
    if since is not None and until is not None and since >= until:
        raise InvalidRequest(f"since ({since}) must be before until ({until}).", param="since")
    async with context.db.read() as conn:
        channels = await revenue_by_channel(conn, since=since, until=until)
    total = ChannelRevenue(
        channel=None,
        jobs=sum(row.jobs for row in channels),
        completed=sum(row.completed for row in channels),
        failed=sum(row.failed for row in channels),
        revenue_micros=sum(row.revenue_micros for row in channels),
        cost_micros=sum(row.cost_micros for row in channels),
    )
    return JSONResponse(
        {
            "object": "list",
            "since": since,
            "until": until,
            "data": [
                {"channel": row.channel or "unassigned", **_revenue_figures(row)}
                for row in channels
            ],
            "total": _revenue_figures(total),
        }
    )


def _revenue_figures(row: ChannelRevenue) -> dict[str, Any]:
    return {
        "jobs": row.jobs,
        "completed": row.completed,
        "failed": row.failed,
        "revenue_usd": str(micros_to_usd(row.revenue_micros)),
        "cost_usd": str(micros_to_usd(row.cost_micros)),
        "margin_usd": str(micros_to_usd(row.margin_micros)),
    }


# --- money on the wire ---------------------------------------------------------------------


# --- webhook deliveries ------------------------------------------------------------------------


@router.get("/deliveries")
async def list_deliveries(
    context: Context,
    tenant: str | None = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
    event_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    """Every webhook delivery with its attempts (status, latency, error), newest first."""
    async with context.db.read() as conn:
        tenant_id = (await accounts.tenant_summary(conn, tenant)).id if tenant else None
        deliveries = await webhook_store.list_deliveries(
            conn, tenant_id=tenant_id, status=status, event_id=event_id, limit=limit
        )
    return JSONResponse({"object": "list", "data": deliveries})


@router.post("/deliveries/{delivery_id}/replay")
async def replay_delivery(delivery_id: str, context: Context, actor: AdminActor) -> JSONResponse:
    """Send a delivery again, from the start of its schedule, with the same webhook-id."""
    await webhook_service.replay_delivery(
        context.db, delivery_id, actor=actor, wakeups=context.wakeups
    )
    return JSONResponse({"id": delivery_id, "object": "webhook_delivery", "status": "pending"})
