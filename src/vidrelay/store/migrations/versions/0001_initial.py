"""Initial schema: tenants, keys, ledger, jobs, instance secrets.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("balance_micros", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(40), nullable=False),
        sa.Column("status_style", sa.String(20), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.String(60), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ledger_tenant", "ledger_entries", ["tenant_id", "id"])
    op.create_index("ux_ledger_job_kind", "ledger_entries", ["job_id", "kind"], unique=True)
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("created_ts", sa.Float, nullable=False),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(80), nullable=False),
        sa.Column("route_class", sa.String(20), nullable=False),
        sa.Column("seconds", sa.String(8), nullable=False),
        sa.Column("size", sa.String(20), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("character_url", sa.Text, nullable=True),
        sa.Column("character_timestamps", sa.String(40), nullable=True),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("has_reference", sa.Integer, nullable=False),
        sa.Column("price_micros", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(80), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("deleted_at", sa.BigInteger, nullable=True),
        sa.Column("channel", sa.String(80), nullable=True),
        sa.Column("upstream_job_id", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(60), nullable=True),
        sa.Column("lease_expires_at", sa.Float, nullable=True),
        sa.Column("remixed_from_video_id", sa.String(60), nullable=True),
    )
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_ts", "id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    secrets_table = op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    # Shared by every replica on this database: signs the keyless `video_url` links.
    op.bulk_insert(secrets_table, [{"name": "url_signing", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("instance_secrets")
    op.drop_index("ix_jobs_status", "jobs")
    op.drop_index("ix_jobs_tenant_created", "jobs")
    op.drop_table("jobs")
    op.drop_index("ux_ledger_job_kind", "ledger_entries")
    op.drop_index("ix_ledger_tenant", "ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_table("api_keys")
    op.drop_table("tenants")
