"""The job timeline: `job_events`, and the indexes the operator's job list and a job's page
read through (jobs newest first under each filter; a job's webhook events and deliveries).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_jobs_created", "jobs", ["created_ts", "id"]),
    ("ix_jobs_model_created", "jobs", ["model", "created_ts", "id"]),
    ("ix_jobs_channel_created", "jobs", ["channel", "created_ts", "id"]),
    ("ix_jobs_status_created", "jobs", ["status", "created_ts", "id"]),
    ("ix_webhook_events_job", "webhook_events", ["job_id"]),
    ("ix_webhook_deliveries_event", "webhook_deliveries", ["event_id"]),
)


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(60), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_job_events_job", "job_events", ["job_id", "id"])
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table)
    op.drop_index("ix_job_events_job", "job_events")
    op.drop_table("job_events")
