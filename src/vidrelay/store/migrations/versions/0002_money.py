"""Money: price rules, tenant groups, key and tenant limits, ledger actors, idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    now = int(time.time())
    groups = op.create_table(
        "tenant_groups",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("multiplier_ppm", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(groups, [{"name": "default", "multiplier_ppm": 1_000_000, "created_at": now}])
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("group_name", sa.String(80), nullable=False, server_default="default")
        )
        batch.add_column(sa.Column("rpm", sa.Integer, nullable=True))
        batch.add_column(sa.Column("max_in_flight", sa.Integer, nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rpm", sa.Integer, nullable=True))
        batch.add_column(sa.Column("max_in_flight", sa.Integer, nullable=True))
        batch.add_column(sa.Column("spend_limit_micros", sa.BigInteger, nullable=True))
        batch.add_column(
            sa.Column("spent_micros", sa.BigInteger, nullable=False, server_default="0")
        )
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("actor", sa.String(120), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("cost_micros", sa.BigInteger, nullable=True))
    op.create_index("ix_jobs_key_status", "jobs", ["key_id", "status"])
    op.create_index("ix_jobs_tenant_status", "jobs", ["tenant_id", "status"])
    rules = op.create_table(
        "price_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(80), nullable=False),
        sa.Column("route_class", sa.String(20), nullable=False),  # "" = any
        sa.Column("size_class", sa.String(20), nullable=False),  # "" = any
        sa.Column("per_second_micros", sa.BigInteger, nullable=True),
        sa.Column("per_request_micros", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("model", "route_class", "size_class", name="uq_price_rule"),
    )
    op.bulk_insert(
        rules,
        [
            {
                "model": "sora-2",
                "route_class": "",
                "size_class": "",
                "per_second_micros": 100_000,
                "per_request_micros": None,
                "updated_at": now,
            },
            {
                "model": "sora-2-pro",
                "route_class": "",
                "size_class": "standard",
                "per_second_micros": 300_000,
                "per_request_micros": None,
                "updated_at": now,
            },
            {
                "model": "sora-2-pro",
                "route_class": "",
                "size_class": "high",
                "per_second_micros": 500_000,
                "per_request_micros": None,
                "updated_at": now,
            },
        ],
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(60), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("price_rules")
    op.drop_index("ix_jobs_tenant_status", "jobs")
    op.drop_index("ix_jobs_key_status", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cost_micros")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("actor")
    with op.batch_alter_table("api_keys") as batch:
        for column in ("spent_micros", "spend_limit_micros", "max_in_flight", "rpm"):
            batch.drop_column(column)
    with op.batch_alter_table("tenants") as batch:
        for column in ("max_in_flight", "rpm", "group_name"):
            batch.drop_column(column)
    op.drop_table("tenant_groups")
