"""The operator console's overview: indexes for its aggregates and its "needs attention" lists
(store/stats.py), so they read ranges, not whole tables.

- jobs (created_at, status, channel, price_micros, cost_micros, finished_ts, created_ts):
  covering, so the outcome and money charts over days and the channels' completion times read
  the index only (a wide index, but the columns it adds change only when `status` does, which
  already rewrites its entry);
- tenants (balance_micros, id): the tenants near zero balance, paged;
- webhook_deliveries (status, created_at): the failing deliveries, newest first.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_created_stats",
        "jobs",
        [
            "created_at",
            "status",
            "channel",
            "price_micros",
            "cost_micros",
            "finished_ts",
            "created_ts",
        ],
    )
    op.create_index("ix_tenants_balance", "tenants", ["balance_micros", "id"])
    op.create_index(
        "ix_webhook_deliveries_status_created", "webhook_deliveries", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_status_created", "webhook_deliveries")
    op.drop_index("ix_tenants_balance", "tenants")
    op.drop_index("ix_jobs_created_stats", "jobs")
