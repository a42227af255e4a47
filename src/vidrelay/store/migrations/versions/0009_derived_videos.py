"""Remixes, extensions, edits and characters: a job's source video (and where it was made),
the characters a create names, and the tenants' characters.

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

_SOURCE_COLUMNS = (
    ("source_video_id", sa.String(60)),
    ("source_seconds", sa.Integer),
    ("source_prompt", sa.Text),
    ("source_channel", sa.String(80)),
    ("source_upstream_job_id", sa.String(200)),
    ("source_key_ref", sa.String(16)),
    ("character_ids", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name, kind in _SOURCE_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_table(
        "characters",
        sa.Column("id", sa.String(60), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("price_micros", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_characters_tenant", "characters", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_characters_tenant", "characters")
    op.drop_table("characters")
    with op.batch_alter_table("jobs") as batch:
        for name, _kind in reversed(_SOURCE_COLUMNS):
            batch.drop_column(name)
