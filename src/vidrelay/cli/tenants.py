"""`vidrelay tenants` and `vidrelay ledger`: balances, top-ups, adjustments, limits."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidrelay.api.money_views import LEDGER_KINDS, ledger_entry_view, tenant_view
from vidrelay.cli.common import parse_usd, when, with_database
from vidrelay.domain.audit import CLI
from vidrelay.domain.limits import Limits
from vidrelay.domain.pricing import dollars
from vidrelay.services import tenants as tenant_service
from vidrelay.services import webhooks as webhook_service
from vidrelay.services.tenants import KEEP
from vidrelay.store import accounts
from vidrelay.store.database import Database

tenants_app = typer.Typer(help="Tenants: balances, top-ups, limits.", no_args_is_help=True)


@tenants_app.command("show")
def tenants_show(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A tenant's balance, group, limits and job count."""

    async def work(db: Database) -> accounts.TenantSummary:
        async with db.read() as conn:
            return await accounts.tenant_summary(conn, name)

    shown = tenant_view(with_database(work))
    if as_json:
        typer.echo(json.dumps(shown))
        return
    for field, value in shown.items():
        typer.echo(f"{field:>14}: {'' if value is None else value}")


@tenants_app.command("list")
def tenants_list() -> None:
    """Every tenant with its balance."""

    async def work(db: Database) -> list[accounts.TenantSummary]:
        async with db.read() as conn:
            return await accounts.list_tenants(conn)

    table = Table("name", "group", "balance", "jobs", "rpm", "in flight", "created")
    for tenant in with_database(work):
        table.add_row(
            tenant.name,
            tenant.group,
            dollars(tenant.balance_micros),
            str(tenant.jobs),
            str(tenant.rpm or ""),
            str(tenant.max_in_flight or ""),
            when(tenant.created_at),
        )
    Console().print(table)


@tenants_app.command("create")
def tenants_create(
    name: str,
    balance: Annotated[str | None, typer.Option(help="Initial balance in USD.")] = None,
    group: Annotated[str | None, typer.Option(help="Tenant group (price multiplier).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Create requests per minute.", min=1)] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(help="Jobs in flight at once.", min=1)
    ] = None,
) -> None:
    """Create a tenant (an error if the name is taken)."""
    micros = parse_usd(balance) if balance is not None else 0

    async def work(db: Database) -> accounts.TenantSummary:
        return await tenant_service.create_tenant(
            db,
            name,
            actor=CLI,
            balance_micros=micros,
            group=group,
            limits=Limits(rpm=rpm, max_in_flight=max_in_flight),
        )

    tenant = with_database(work)
    typer.echo(f"tenant {name}: balance {dollars(tenant.balance_micros)}")


@tenants_app.command("topup")
def tenants_topup(
    name: str,
    usd: Annotated[str, typer.Argument(help="Amount in USD, e.g. 25 or 9.99.")],
    note: Annotated[str, typer.Option(help="Why (kept in the ledger).")] = "top-up",
) -> None:
    """Credit a tenant's balance (a ledger top-up). The tenant must exist (`tenants create`)."""
    micros = parse_usd(usd)

    async def work(db: Database) -> accounts.TenantSummary:
        return await tenant_service.top_up(db, name, micros, note, actor=CLI)

    tenant = with_database(work)
    typer.echo(f"tenant {name}: balance {dollars(tenant.balance_micros)}")


@tenants_app.command("adjust", context_settings={"ignore_unknown_options": True})
def tenants_adjust(
    name: str,
    usd: Annotated[str, typer.Argument(help="Signed amount in USD, e.g. -1.25.")],
    note: Annotated[str, typer.Option(help="Why (required, kept in the ledger).")],
) -> None:
    """Correct a balance up or down (never below zero), with a reason."""
    micros = parse_usd(usd, allow_negative=True)

    async def work(db: Database) -> accounts.TenantSummary:
        return await tenant_service.adjust(db, name, micros, note, actor=CLI)

    tenant = with_database(work)
    typer.echo(f"tenant {name}: balance {dollars(tenant.balance_micros)}")


@tenants_app.command("set")
def tenants_set(
    name: str,
    group: Annotated[str | None, typer.Option(help="Tenant group (price multiplier).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Create requests per minute; 0 clears.")] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(help="Jobs in flight at once; 0 clears.")
    ] = None,
) -> None:
    """Set a tenant's group or limits."""

    async def work(db: Database) -> accounts.TenantSummary:
        return await tenant_service.set_options(
            db,
            name,
            actor=CLI,
            group=group,
            rpm=KEEP if rpm is None else (rpm or None),
            max_in_flight=KEEP if max_in_flight is None else (max_in_flight or None),
        )

    typer.echo(json.dumps(tenant_view(with_database(work))))


@tenants_app.command("rotate-secret")
def tenants_rotate_secret(name: str) -> None:
    """Replace the tenant's webhook signing secret; prints the new `whsec_…` secret."""

    async def work(db: Database) -> str:
        return await webhook_service.rotate_secret(db, actor=CLI, tenant=name)

    typer.echo(with_database(work))


def ledger(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries.")] = None,
    kind: Annotated[str | None, typer.Option(help=f"One of: {', '.join(LEDGER_KINDS)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The ledger, newest first: every top-up, charge, refund and adjustment."""
    if kind is not None and kind not in LEDGER_KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(LEDGER_KINDS)}")

    async def work(db: Database) -> list[accounts.LedgerEntry]:
        async with db.read() as conn:
            tenant_id = (await tenant_service.existing_tenant(conn, tenant)).id if tenant else None
            return await accounts.list_ledger(conn, tenant_id=tenant_id, kind=kind, limit=limit)

    entries = with_database(work)
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(ledger_entry_view(entry)))
        return
    table = Table("id", "when", "tenant", "kind", "amount", "job", "actor", "note")
    for entry in entries:
        table.add_row(
            str(entry.id),
            when(entry.created_at),
            entry.tenant,
            entry.kind,
            dollars(entry.amount_micros),
            entry.job_id or "",
            entry.actor or "",
            entry.note or "",
        )
    Console().print(table)
