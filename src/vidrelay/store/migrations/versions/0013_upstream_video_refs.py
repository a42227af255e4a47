"""The upstream's own reference of a collected video (Kling's video id, Veo's file URI) and of
a derived job's source: Kling and Veo extend a video they made by it, not by the task or
operation that made it.

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COLUMNS = ("upstream_video_ref", "source_upstream_video_ref")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
