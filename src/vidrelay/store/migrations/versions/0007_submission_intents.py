"""Submission intents: what a worker was about to submit upstream, written before it submits,
so the run after a crash can find that submission (or count it as possibly orphaned); lease
owners long enough for a host name and an engine slot.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("intent_channel", sa.String(80), nullable=True))
        batch.add_column(sa.Column("intent_key_ref", sa.String(16), nullable=True))
        batch.add_column(sa.Column("intent_token", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("orphaned_submissions", sa.Integer, nullable=False, server_default="0")
        )
        batch.alter_column("lease_owner", type_=sa.String(120), existing_type=sa.String(60))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("lease_owner", type_=sa.String(60), existing_type=sa.String(120))
        batch.drop_column("orphaned_submissions")
        batch.drop_column("intent_token")
        batch.drop_column("intent_key_ref")
        batch.drop_column("intent_channel")
