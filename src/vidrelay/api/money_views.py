"""Tenants and ledger entries as JSON, the same for the admin API and the CLI's `--json`:
amounts in USD as decimal strings, never floats."""

from __future__ import annotations

from typing import Any

from vidrelay.domain.pricing import micros_to_usd
from vidrelay.store.accounts import LedgerEntry, TenantSummary

LEDGER_KINDS = ("top_up", "charge", "refund", "adjustment")


def tenant_view(summary: TenantSummary) -> dict[str, Any]:
    return {
        "id": summary.id,
        "name": summary.name,
        "group": summary.group,
        "balance_usd": str(micros_to_usd(summary.balance_micros)),
        "jobs": summary.jobs,
        "rpm": summary.rpm,
        "max_in_flight": summary.max_in_flight,
        "created_at": summary.created_at,
        "webhook_secret": summary.webhook_secret,
    }


def ledger_entry_view(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "tenant": entry.tenant,
        "kind": entry.kind,
        "amount_usd": str(micros_to_usd(entry.amount_micros)),
        "job_id": entry.job_id,
        "note": entry.note,
        "actor": entry.actor,
        "created_at": entry.created_at,
    }
