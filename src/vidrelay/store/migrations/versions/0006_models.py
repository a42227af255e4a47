"""Models as data: the catalog table (seeded with the seed's matrix), price conditions on
declared parameters, and the declared parameters and operation of each job.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SORA_SIZES = ["720x1280", "1280x720", "1024x1792", "1792x1024"]
_SORA_CAPABILITIES = ["audio", "character", "input_reference"]
_SEED_MODELS = [
    {
        "name": "sora-2",
        "owned_by": "openai",
        "sizes": _SORA_SIZES,
        "capabilities": _SORA_CAPABILITIES,
        "routes": [
            {"route_class": "official", "seconds": ["4", "8", "12"]},
            {"route_class": "reverse", "seconds": ["10", "15"]},
        ],
        "params": [],
    },
    {
        "name": "sora-2-pro",
        "owned_by": "openai",
        "sizes": _SORA_SIZES,
        "capabilities": _SORA_CAPABILITIES,
        "routes": [{"route_class": "reverse", "seconds": ["10", "15", "25"]}],
        "params": [],
    },
]


def upgrade() -> None:
    now = int(time.time())
    models = op.create_table(
        "catalog_models",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        models,
        [
            {
                "name": model["name"],
                "definition": json.dumps(model),
                "created_at": now,
                "updated_at": now,
            }
            for model in _SEED_MODELS
        ],
    )
    with op.batch_alter_table("price_rules") as batch:
        batch.add_column(sa.Column("conditions", sa.Text, nullable=False, server_default=""))
        batch.drop_constraint("uq_price_rule", type_="unique")
        batch.create_unique_constraint(
            "uq_price_rule", ["model", "route_class", "size_class", "conditions"]
        )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("params", sa.Text, nullable=True))
        batch.add_column(sa.Column("operation", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("operation")
        batch.drop_column("params")
    op.execute("DELETE FROM price_rules WHERE conditions <> ''")
    with op.batch_alter_table("price_rules") as batch:
        batch.drop_constraint("uq_price_rule", type_="unique")
        batch.create_unique_constraint("uq_price_rule", ["model", "route_class", "size_class"])
        batch.drop_column("conditions")
    op.drop_table("catalog_models")
