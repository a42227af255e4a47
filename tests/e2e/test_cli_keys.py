"""`vidrelay keys` goes through the use cases the admin API calls (services/keys.py): the same
fields and the same checks, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess
from vidrelay.services import keys as key_service
from vidrelay.store.database import Database


async def test_keys_create_list_and_revoke_share_the_admin_apis_rules(
    tmp_path: Path, database_url: str
) -> None:
    cli = ServerProcess(tmp_path / "data", database_url).cli
    cli("db", "upgrade")
    created = cli(
        "keys", "create", "--tenant", "acme", "--balance", "2", "--name", "ci",
        "--expires-at", "2999-01-31", "--model", "sora-2", "--model", "sora-2",
    )  # fmt: skip
    key = created.stdout.splitlines()[-1]
    assert key.startswith("sk-")
    cli("keys", "create", "--tenant", "acme", "--expires-at", "32503680000")  # Unix seconds

    db = Database(database_url)
    try:
        listed = await key_service.list_keys(db, "acme")
        ci_expiry = int(datetime(2999, 1, 31, tzinfo=UTC).timestamp())
        assert sorted((k.name or "", k.expires_at, k.models) for k in listed) == [
            ("", 32503680000, None),
            ("ci", ci_expiry, ("sora-2",)),
        ]
        assert "ci" in cli("keys", "list", "--tenant", "acme").stdout
        with pytest.raises(subprocess.CalledProcessError) as refused:
            cli("keys", "create", "--tenant", "acme", "--model", "no-such-model")
        assert refused.value.returncode == 1 and "no-such-model" in refused.value.stderr
        with pytest.raises(subprocess.CalledProcessError) as past:
            cli("keys", "create", "--tenant", "acme", "--expires-at", "2001-01-01T00:00:00Z")
        assert past.value.returncode == 1 and "expires_at" in past.value.stderr
        with pytest.raises(subprocess.CalledProcessError) as garbled:
            cli("keys", "create", "--tenant", "acme", "--expires-at", "soon")
        assert garbled.value.returncode == 2
        assert len(await key_service.list_keys(db, "acme")) == 2

        cli("keys", "revoke", key)
        revoked = {k.id: k.revoked_at for k in await key_service.list_keys(db, "acme")}
        assert sorted(value is None for value in revoked.values()) == [False, True]
    finally:
        await db.dispose()
