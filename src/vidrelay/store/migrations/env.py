"""Alembic environment: runs on the connection the application hands it (see store/database)."""

from __future__ import annotations

from alembic import context

from vidrelay.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `vidrelay db upgrade` (it supplies the connection)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
