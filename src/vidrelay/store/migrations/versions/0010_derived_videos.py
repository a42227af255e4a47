"""Remixes, extensions, edits and characters: a job's source video (and where it was made),
the characters a create names, and the tenants' characters. The seeded sora-2 and sora-2-pro
gain the remix, edit and extension capabilities (Sora 2 had them), unless an operator changed
their capabilities since.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
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


_SEEDED = ("sora-2", "sora-2-pro")
_SEED_CAPABILITIES = ["audio", "character", "input_reference"]
_SORA_CAPABILITIES = ["audio", "character", "edit", "extension", "input_reference", "remix"]


def _set_seed_capabilities(old: list[str], new: list[str]) -> None:
    connection = op.get_bind()
    models = sa.table("catalog_models", sa.column("name"), sa.column("definition"))
    rows = connection.execute(
        sa.select(models.c.name, models.c.definition).where(models.c.name.in_(_SEEDED))
    )
    for name, definition in list(rows):
        declared = json.loads(definition)
        if sorted(declared.get("capabilities", [])) != old:
            continue  # an operator's own choice: left alone
        declared["capabilities"] = new
        connection.execute(
            sa.update(models).where(models.c.name == name).values(definition=json.dumps(declared))
        )


def upgrade() -> None:
    _set_seed_capabilities(_SEED_CAPABILITIES, _SORA_CAPABILITIES)
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
    _set_seed_capabilities(_SORA_CAPABILITIES, _SEED_CAPABILITIES)
    op.drop_index("ix_characters_tenant", "characters")
    op.drop_table("characters")
    with op.batch_alter_table("jobs") as batch:
        for name, _kind in reversed(_SOURCE_COLUMNS):
            batch.drop_column(name)
