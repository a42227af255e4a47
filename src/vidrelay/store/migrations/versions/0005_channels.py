"""Upstream channels, and what a job needs to run on one: its key, deadline and backoff.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("protocol", sa.String(20), nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("keys", sa.Text, nullable=False),
        sa.Column("route_class", sa.String(20), nullable=True),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("model_map", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("max_concurrency", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False),
        sa.Column("cost_per_second_micros", sa.BigInteger, nullable=False),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("disabled_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("upstream_key_ref", sa.String(16), nullable=True))
        batch.add_column(sa.Column("submitted_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("not_before", sa.Float, nullable=True))
        batch.add_column(sa.Column("finished_ts", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("finished_ts")
        batch.drop_column("not_before")
        batch.drop_column("submitted_at")
        batch.drop_column("upstream_key_ref")
    op.drop_table("channels")
