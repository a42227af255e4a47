"""The money CLI contract that operators' scripts rely on, run as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.server import ServerProcess


def test_tenants_keys_prices_and_ledger_from_the_command_line(tmp_path: Path) -> None:
    cli = ServerProcess(tmp_path / "data").cli  # the commands only, against the data dir
    created = cli(
        "keys", "create", "--tenant", "acme", "--balance", "12.5",
        "--rpm", "30", "--max-in-flight", "4", "--spend-limit", "5",
    )  # fmt: skip
    key = created.stdout.splitlines()[-1]
    assert key.startswith("sk-") and len(key) > 40

    shown = json.loads(cli("tenants", "show", "acme", "--json").stdout)
    assert shown["name"] == "acme"
    assert shown["balance_usd"] == "12.500000"
    assert shown["jobs"] == 0

    assert cli("tenants", "topup", "acme", "7.5").stdout.strip() == "tenant acme: balance $20.00"
    adjusted = cli("tenants", "adjust", "acme", "-1.25", "--note", "goodwill credit")
    assert adjusted.stdout.strip() == "tenant acme: balance $18.75"  # money for people
    assert json.loads(cli("tenants", "show", "acme", "--json").stdout)["balance_usd"] == "18.750000"
    assert "$18.75" in cli("tenants", "list").stdout

    entries = [
        json.loads(line) for line in cli("ledger", "--tenant", "acme", "--json").stdout.splitlines()
    ]
    assert [(e["kind"], e["amount_usd"]) for e in entries] == [
        ("adjustment", "-1.250000"),
        ("top_up", "7.500000"),
        ("top_up", "12.500000"),
    ]
    assert entries[0]["note"] == "goodwill credit" and entries[0]["actor"] == "cli"

    cli("prices", "set", "sora-2", "--per-request", "2", "--route-class", "reverse")
    cli("groups", "set", "vip", "0.5")
    listing = cli("prices", "list").stdout
    assert "reverse" in listing and "$2.00" in listing and "vip" in listing and "0.5" in listing
    updated = json.loads(cli("tenants", "set", "acme", "--group", "vip", "--rpm", "0").stdout)
    assert updated["group"] == "vip" and updated["rpm"] is None


def test_webhook_secret_rotation_and_endpoints_from_the_command_line(tmp_path: Path) -> None:
    cli = ServerProcess(tmp_path / "data").cli
    cli("tenants", "create", "hooked", "--balance", "1")
    secret = json.loads(cli("tenants", "show", "hooked", "--json").stdout)["webhook_secret"]
    assert secret.startswith("whsec_")
    rotated = cli("tenants", "rotate-secret", "hooked").stdout.strip()
    assert rotated.startswith("whsec_") and rotated != secret
    assert (
        json.loads(cli("tenants", "show", "hooked", "--json").stdout)["webhook_secret"] == rotated
    )

    endpoint_id = cli("webhooks", "add", "https://hooks.example.com/v", "--tenant", "hooked")
    endpoint_id = endpoint_id.stdout.strip()
    assert endpoint_id.startswith("we_")
    assert "hooks.example.com" in cli("webhooks", "list", "--tenant", "hooked").stdout
    cli("webhooks", "remove", endpoint_id, "--tenant", "hooked")
    assert "hooks.example.com" not in cli("webhooks", "list", "--tenant", "hooked").stdout
