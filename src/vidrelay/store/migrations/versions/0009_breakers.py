"""Breakers: the circuit breakers of channels and keys, shared by every process (a row only
while a breaker has something to remember).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("channel", sa.String(80), primary_key=True),
        sa.Column("key_ref", sa.String(40), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("trips_in_a_row", sa.Integer, nullable=False),
        sa.Column("open_until", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("breakers")
