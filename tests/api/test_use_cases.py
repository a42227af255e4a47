"""One rule per use case, whichever door the operator uses: the admin API and the CLI call the
same services, so an action refused by one is refused by the other with the same message, and
an action either side takes leaves the same audit row (but for who took it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import ADMIN, ADMIN_TOKEN, make_settings
from vidrelay.api.app import create_app
from vidrelay.cli.root import app as cli_app

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


class Station:
    """One SQLite station, driven through the admin API (in-process) and the CLI (in-process,
    against the same data directory)."""

    def __init__(self, data_dir: Path, http: TestClient) -> None:
        self.data_dir = data_dir
        self.http = http
        # the CLI reads its settings from the environment: only the data directory counts
        self.env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith("VIDRELAY_")
        }

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Outcome:
        response = self.http.request(method, path, headers=ADMIN, json=body)
        if response.status_code >= 400:
            return Outcome(False, response.json()["error"]["message"])
        return Outcome(True, "")

    def cli(self, *args: str) -> Outcome:
        result = CliRunner().invoke(
            cli_app, ["--data-dir", str(self.data_dir), *args], env=self.env
        )
        if result.exit_code != 0:
            assert "Traceback" not in result.output, result.output
            errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1, (result.exit_code, result.output)
            return Outcome(False, errors[0].removeprefix("error: "))
        return Outcome(True, "")

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        response = self.http.get("/admin/audit", headers=ADMIN, params=params)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    data_dir = tmp_path_factory.mktemp("station") / "data"
    settings = make_settings(
        data_dir, f"sqlite+aiosqlite:///{data_dir}/vidrelay.db", admin_token=ADMIN_TOKEN,
        engine=False,
    )  # fmt: skip
    with TestClient(create_app(settings)) as http:
        assert http.post("/admin/tenants", headers=ADMIN, json={"name": "acme"}).status_code == 200
        yield Station(data_dir, http)


REFUSALS: dict[str, tuple[tuple[str, str, dict[str, Any] | None], tuple[str, ...]]] = {
    "top-up of an unknown tenant": (
        ("POST", "/admin/tenants/ghost/topups", {"amount_usd": "5"}),
        ("tenants", "topup", "ghost", "5"),
    ),
    "adjustment of an unknown tenant": (
        ("POST", "/admin/tenants/ghost/adjustments", {"amount_usd": "5", "note": "x"}),
        ("tenants", "adjust", "ghost", "5", "--note", "x"),
    ),
    "limits of an unknown tenant": (
        ("PATCH", "/admin/tenants/ghost", {"rpm": 5}),
        ("tenants", "set", "ghost", "--rpm", "5"),
    ),
    "a key for an unknown tenant, not to be created": (
        ("POST", "/admin/tenants/ghost/keys", {}),
        ("keys", "create", "--tenant", "ghost", "--no-create-tenant"),
    ),
    "adjustment below zero": (
        ("POST", "/admin/tenants/acme/adjustments", {"amount_usd": "-5000", "note": "x"}),
        ("tenants", "adjust", "acme", "--note", "x", "--", "-5000"),
    ),
    "a tenant created twice": (
        ("POST", "/admin/tenants", {"name": "acme"}),
        ("tenants", "create", "acme"),
    ),
    "a channel for a model the catalog lacks": (
        ("POST", "/admin/channels", {"name": "c1", "protocol": "local", "models": ["nope-1"]}),
        ("channels", "add", "c1", "--protocol", "local", "--model", "nope-1"),
    ),
    "enabling an unknown channel": (
        ("POST", "/admin/channels/ghost/enable", None),
        ("channels", "enable", "ghost"),
    ),
    "deleting an unknown channel": (
        ("DELETE", "/admin/channels/ghost", None),
        ("channels", "remove", "ghost"),
    ),
    "revoking an unknown key": (
        ("DELETE", "/admin/keys/key_nope", None),
        ("keys", "revoke", "key_nope"),
    ),
    "a price for an unknown model": (
        ("PUT", "/admin/prices", {"model": "nope-1", "per_request_usd": "1"}),
        ("prices", "set", "nope-1", "--per-request", "1"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_the_admin_api_and_the_cli_refuse_the_same_action_with_the_same_message_and_no_audit_row(
    station: Station, case: str
) -> None:
    (method, path, body), args = REFUSALS[case]
    before = station.audit(limit=500)
    by_api = station.api(method, path, body)
    by_cli = station.cli(*args)
    assert not by_api.ok and not by_cli.ok
    assert by_cli.message == by_api.message
    assert station.audit(limit=500) == before
    assert station.api("GET", "/admin/tenants/ghost").ok is False  # nothing created it


def test_an_unknown_tenant_is_refused_with_how_to_create_it(station: Station) -> None:
    message = station.cli("tenants", "topup", "ghost", "5").message
    assert "vidrelay tenants create ghost" in message
    assert "keys create --tenant ghost" in message


ACTIONS: dict[str, tuple[tuple[str, str, dict[str, Any] | None], tuple[str, ...], str, str]] = {
    "top-up": (
        ("POST", "/admin/tenants/acme/topups", {"amount_usd": "5", "note": "inv 7"}),
        ("tenants", "topup", "acme", "5", "--note", "inv 7"),
        "tenant.top_up",
        "acme",
    ),
    "adjustment": (
        ("POST", "/admin/tenants/acme/adjustments", {"amount_usd": "-1", "note": "goodwill"}),
        ("tenants", "adjust", "acme", "--note", "goodwill", "--", "-1"),
        "tenant.adjust",
        "acme",
    ),
    "limits": (
        ("PATCH", "/admin/tenants/acme", {"rpm": 7}),
        ("tenants", "set", "acme", "--rpm", "7"),
        "tenant.set",
        "acme",
    ),
    "group": (
        ("PUT", "/admin/groups/vip", {"multiplier": "0.5"}),
        ("groups", "set", "vip", "0.5"),
        "group.set",
        "vip",
    ),
    "price": (
        ("PUT", "/admin/prices", {"model": "sora-2", "per_request_usd": "2"}),
        ("prices", "set", "sora-2", "--per-request", "2"),
        "price.set",
        "sora-2",
    ),
    "channel declared": (
        ("POST", "/admin/channels", {"name": "loc", "protocol": "local", "models": ["sora-2"]}),
        ("channels", "add", "loc", "--protocol", "local", "--model", "sora-2", "--replace"),
        "channel.declare",
        "loc",
    ),
    "channel disabled": (
        ("POST", "/admin/channels/loc/disable", None),
        ("channels", "disable", "loc"),
        "channel.disable",
        "loc",
    ),
    "channel enabled": (
        ("POST", "/admin/channels/loc/enable", None),
        ("channels", "enable", "loc"),
        "channel.enable",
        "loc",
    ),
    "channel tested": (
        ("POST", "/admin/channels/loc/test", None),
        ("channels", "test", "loc"),
        "channel.test",
        "loc",
    ),
}


def test_an_action_taken_through_the_admin_api_or_the_cli_leaves_the_same_audit_row(
    station: Station,
) -> None:
    """In order (a channel is declared before it is switched): one test, not one per case."""
    for case, ((method, path, body), args, action, target) in ACTIONS.items():
        assert station.api(method, path, body).ok, case
        by_api = station.audit(limit=1)[0]
        assert station.cli(*args).ok, case
        by_cli = station.audit(limit=1)[0]
        assert (by_api["action"], by_api["target"]) == (action, target), case
        assert (by_cli["action"], by_cli["target"]) == (action, target), case
        assert by_cli["details"] == by_api["details"], case
        assert by_api["actor"] == {"kind": "admin-api", "address": "testclient", "tenant_id": None}
        assert by_cli["actor"] == {"kind": "cli", "address": None, "tenant_id": None}
        assert by_cli["id"] > by_api["id"]


def test_a_config_file_that_changes_something_leaves_one_audit_row_by_the_file(
    station: Station, tmp_path: Path
) -> None:
    config = tmp_path / "vidrelay.toml"
    config.write_text(
        '[[channels]]\nname = "from-file"\nprotocol = "openai"\n'
        'base_url = "https://api.example.com"\nkeys = ["sk-file-secret-0042"]\n'
        'models = ["sora-2"]\nroute_class = "official"\n'
    )
    station.env["VIDRELAY_CONFIG"] = str(config)
    try:
        assert station.cli("channels", "list", "--json").ok
        assert station.cli("channels", "list", "--json").ok  # unchanged: no second row
    finally:
        station.env["VIDRELAY_CONFIG"] = None
    rows = station.audit(action="config.apply")
    assert len(rows) == 1
    assert rows[0]["target"] == str(config)
    assert rows[0]["actor"] == {"kind": "config-file", "address": None, "tenant_id": None}
    assert rows[0]["details"] == {"changes": ["channel from-file added"]}
