"""Tenants and their money: create, top up, adjust, set group and limits, price groups.

An unknown tenant is a 404 everywhere (the admin API, the CLI, the console): only creating a
tenant, or `vidrelay keys create`, makes one. Amounts arrive parsed (micro-dollars); the rules
on them (a top-up is positive, an adjustment has a reason and never takes a balance below zero)
are the store's, the same for every caller.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.audit import Actor
from vidrelay.domain.errors import InvalidRequest, NotFound
from vidrelay.domain.limits import Limits
from vidrelay.domain.pricing import micros_to_usd, multiplier_text, parse_multiplier
from vidrelay.domain.tenants import check_tenant_name
from vidrelay.store import accounts, audit
from vidrelay.store.accounts import TenantSummary
from vidrelay.store.database import Database


class Keep(Enum):
    """A limit left as it is (None clears it)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


def unknown_tenant(name: str) -> NotFound:
    return NotFound(
        f"No tenant named {name!r}; create it first (POST /admin/tenants, "
        f"`vidrelay tenants create {name}` or `vidrelay keys create --tenant {name}`).",
        param="tenant",
    )


async def existing_tenant(conn: AsyncConnection, name: str) -> TenantSummary:
    try:
        return await accounts.tenant_summary(conn, name)
    except NotFound:
        raise unknown_tenant(name) from None


async def create_tenant(
    db: Database,
    name: str,
    *,
    actor: Actor,
    balance_micros: int = 0,
    group: str | None = None,
    limits: Limits = Limits(),
) -> TenantSummary:
    """A new tenant (409 if the name is taken); its initial balance is a ledger top-up."""
    check_tenant_name(name)
    async with db.write() as conn:
        tenant = await accounts.create_tenant(conn, name)
        await accounts.set_tenant_options(conn, tenant.id, group=group, limits=limits)
        if balance_micros:
            await accounts.top_up(
                conn, tenant.id, balance_micros, "initial balance", actor=actor.ledger_name
            )
        summary = await accounts.tenant_summary(conn, name)
        await audit.record(
            conn,
            actor,
            "tenant.create",
            name,
            {
                "balance_usd": str(micros_to_usd(balance_micros)),
                "group": summary.group,
                "rpm": limits.rpm,
                "max_in_flight": limits.max_in_flight,
            },
        )
        return summary


async def top_up(
    db: Database, name: str, micros: int, note: str | None, *, actor: Actor
) -> TenantSummary:
    """Credit a tenant's balance (a ledger top-up)."""
    async with db.write() as conn:
        found = await existing_tenant(conn, name)
        await accounts.top_up(conn, found.id, micros, note or "top-up", actor=actor.ledger_name)
        await audit.record(
            conn,
            actor,
            "tenant.top_up",
            name,
            {"amount_usd": str(micros_to_usd(micros)), "note": note},
        )
        return await accounts.tenant_summary(conn, name)


async def adjust(db: Database, name: str, micros: int, note: str, *, actor: Actor) -> TenantSummary:
    """A signed correction with a reason; it may not take the balance below zero."""
    async with db.write() as conn:
        found = await existing_tenant(conn, name)
        await accounts.adjust(conn, found.id, micros, note, actor=actor.ledger_name)
        await audit.record(
            conn,
            actor,
            "tenant.adjust",
            name,
            {"amount_usd": str(micros_to_usd(micros)), "note": note},
        )
        return await accounts.tenant_summary(conn, name)


async def set_options(
    db: Database,
    name: str,
    *,
    actor: Actor,
    group: str | None = None,
    rpm: int | Keep | None = KEEP,
    max_in_flight: int | Keep | None = KEEP,
) -> TenantSummary:
    """Move a tenant to a group (None: stays) and set or clear its limits."""
    async with db.write() as conn:
        current = await existing_tenant(conn, name)
        limits = None
        if rpm is not KEEP or max_in_flight is not KEEP:
            limits = Limits(
                rpm=current.rpm if isinstance(rpm, Keep) else rpm,
                max_in_flight=(
                    current.max_in_flight if isinstance(max_in_flight, Keep) else max_in_flight
                ),
            )
        await accounts.set_tenant_options(conn, current.id, group=group, limits=limits)
        summary = await accounts.tenant_summary(conn, name)
        changed = {
            "group": summary.group,
            "rpm": summary.rpm,
            "max_in_flight": summary.max_in_flight,
        }
        await audit.record(conn, actor, "tenant.set", name, changed)
        return summary


async def set_group(db: Database, name: str, multiplier: str, *, actor: Actor) -> int:
    """Insert or update a tenant group; its multiplier (as typed, e.g. `"0.8"`) scales the
    prices of new jobs. Returns it in parts per million."""
    if not 1 <= len(name) <= 80:
        raise InvalidRequest("A group name has 1 to 80 characters.", param="name")
    multiplier_ppm = parse_multiplier(multiplier)
    async with db.write() as conn:
        await accounts.set_group(conn, name, multiplier_ppm)
        await audit.record(
            conn, actor, "group.set", name, {"multiplier": multiplier_text(multiplier_ppm)}
        )
    return multiplier_ppm
