"""The operator console's overview, channels, and models and prices, in Chromium, on one
server: what an operator does, what the pages show, and what they refuse."""

from __future__ import annotations

import html
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import sign_in
from tests.console.test_sign_in import _signed_in
from tests.e2e.server import ServerProcess
from tests.fakes.openai_upstream import FakeOpenAIUpstream

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert('y')>"


def database(server: ServerProcess) -> sqlite3.Connection:
    """The server's own SQLite file, to write what no form can and to check the figures."""
    path = Path(server.sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    return sqlite3.connect(path, timeout=30, isolation_level=None)


def no_dialogs(page: Page) -> list[str]:
    """Every dialog a page opens (a script of a hostile string that ran), dismissed."""
    opened: list[str] = []

    def record(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def api_key(server: ServerProcess, tenant: str, balance_usd: str) -> str:
    """A new tenant's key, through the admin API (the CLI costs a process start)."""
    admin = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with admin:
        created = admin.post("/admin/tenants", json={"name": tenant, "balance_usd": balance_usd})
        assert created.status_code == 200, created.text
        answer = admin.post(f"/admin/tenants/{tenant}/keys", json={})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key"])


def create_video(server: ServerProcess, key: str) -> str:
    answer = httpx.post(
        f"{server.base_url}/v1/videos",
        json={"model": "sora-2", "prompt": "a lighthouse", "seconds": "4"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def test_operator_declares_tests_switches_and_deletes_a_channel(
    page: Page, console_server: ServerProcess
) -> None:
    dialogs = no_dialogs(page)
    fake = FakeOpenAIUpstream(keys={"sk-up-good-0001"})
    fake.job_duration_s = 4.0
    base = console_server.base_url
    with fake.serve():
        sign_in(page, base, "console", ADMIN_TOKEN)
        page.goto(f"{base}/console/channels/new")
        page.get_by_label("Name").fill("fake-up")
        page.get_by_label("Protocol").select_option("openai")
        page.get_by_label("Base URL").fill(fake.url)
        page.get_by_label("Keys").fill("sk-up-good-0001\nsk-up-bad-00002")
        page.get_by_label("Route class").select_option("official")
        page.get_by_label("sora-2", exact=True).check()
        page.get_by_label("Priority").fill("5000")
        page.get_by_role("button", name="Add channel").click()
        expect(page.locator("#priority-error")).to_contain_text("less than or equal to 1000")
        expect(page.get_by_label("Name")).to_have_value("fake-up")  # what was typed is kept
        expect(page.get_by_label("Base URL")).to_have_value(fake.url)

        page.get_by_label("Priority").fill("5")
        page.get_by_label("Keys").fill("sk-up-good-0001\nsk-up-bad-00002")
        page.get_by_role("button", name="Add channel").click()
        expect(page.get_by_role("heading", name="Channel fake-up")).to_be_visible()
        expect(page.locator("#channel-state")).to_contain_text("sk-up…0001, sk-up…0002")

        page.get_by_role("button", name="Test").click()
        results = page.locator("#test-result tbody tr")
        expect(results).to_have_count(2)
        expect(results.nth(0)).to_contain_text("sk-up…0001")
        expect(results.nth(0)).to_contain_text("ok")
        expect(results.nth(1)).to_contain_text("sk-up…0002")
        expect(results.nth(1)).to_contain_text("failed")

        # an upstream's error message, as the breakers remember it, is shown as text
        with database(console_server) as conn:
            conn.execute(
                "INSERT INTO breakers VALUES ('fake-up', '', 3, 1, ?, ?, 0)",
                (time.time() + 600, HOSTILE),
            )
        page.goto(f"{base}/console/channels")
        expect(page.locator("#channels")).to_contain_text(HOSTILE)
        expect(page.locator("#channels")).to_contain_text("open")
        page.goto(f"{base}/console")
        expect(page.get_by_role("region", name="Needs attention")).to_contain_text(HOSTILE)

        page.goto(f"{base}/console/channels/fake-up")
        page.get_by_role("button", name="Disable").click()
        expect(page.locator("#channel-state")).to_contain_text("switched off by an operator")
        page.get_by_role("button", name="Enable").click()
        expect(page.locator("#channel-state")).to_contain_text("enabled")
        expect(page.locator("#channel-state")).not_to_contain_text(HOSTILE)  # breaker cleared

        key = api_key(console_server, "channel-ops", "5")
        video_id = create_video(console_server, key)
        deadline = time.monotonic() + 30
        while not fake.requests_to("/v1/videos", "POST"):  # until it runs upstream
            assert time.monotonic() < deadline
            time.sleep(0.1)
        page.get_by_role("button", name="Delete").click()
        expect(page.locator("#delete-error")).to_contain_text("jobs are running")
        assert console_server.wait_finished(video_id, key)["status"] == "completed"

        page.goto(f"{base}/console/channels/fake-up")
        page.get_by_role("button", name="Delete").click()
        expect(page.get_by_role("heading", name="Channels")).to_be_visible()
        expect(page.get_by_text("No channel is declared")).to_be_visible()
    assert dialogs == []
    with database(console_server) as conn:  # each action a use case, audited as the console's
        audited = conn.execute(
            "SELECT action, actor_kind, actor_address FROM audit_log WHERE target = 'fake-up'"
            " ORDER BY id"
        ).fetchall()
    assert [action for action, _, _ in audited] == [
        "channel.declare",
        "channel.test",
        "channel.disable",
        "channel.enable",
        "channel.delete",
    ]
    assert {(kind, address) for _, kind, address in audited} == {("console", "127.0.0.1")}


def test_operator_declares_a_model_prices_it_and_removes_it(
    page: Page, console_server: ServerProcess
) -> None:
    base = console_server.base_url
    sign_in(page, base, "console", ADMIN_TOKEN)
    page.goto(f"{base}/console/models")
    declaration = page.get_by_label("Declaration (TOML)")
    declaration.fill('name = "console-model"\nsizes = "1280x720"')
    page.get_by_role("button", name="Save model").click()
    expect(page.locator("#declaration-error")).to_be_visible()
    expect(declaration).to_have_value('name = "console-model"\nsizes = "1280x720"')

    declaration.fill(
        'name = "console-model"\nsizes = ["1280x720"]\n'
        'routes = [{ route_class = "official", seconds = ["5", "10"] }]\n'
        'params = [{ name = "resolution", type = "enum", values = ["720p", "1080p"] }]\n'
    )
    page.get_by_role("button", name="Save model").click()
    row = page.locator("#model-console-model")
    expect(row).to_contain_text("official: 5, 10")
    expect(row).to_contain_text("resolution (enum: 720p, 1080p)")

    page.get_by_label("Model", exact=True).select_option("console-model")
    page.get_by_label("Price (USD)").fill("0.25")
    page.get_by_label("When").fill("resolution=4k")
    page.get_by_role("button", name="Set price").click()
    expect(page.locator("#when-error")).to_contain_text("4k")
    page.get_by_label("When").fill("resolution=1080p")
    page.get_by_role("button", name="Set price").click()
    rule = page.locator("#price-rules tr", has_text="console-model")
    expect(rule).to_contain_text("resolution=1080p")
    expect(rule).to_contain_text("$0.25 a second")

    page.get_by_label("Group").fill("vip")
    page.get_by_label("Multiplier").fill("0.8")
    page.get_by_role("button", name="Set multiplier").click()
    expect(page.locator("#group-list")).to_contain_text("vip")

    rule.get_by_role("button", name="Delete").click()
    expect(page.locator("#price-rules")).not_to_contain_text("console-model")
    page.get_by_role("button", name="Remove console-model").click()
    expect(page.locator("#models")).not_to_contain_text("console-model")


def _figure(value: float, unit: str = "") -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return f"${text}" if unit == "$" else text


def test_overview_charts_show_the_databases_figures_and_hostile_names_as_text(
    page: Page, console_server: ServerProcess
) -> None:
    dialogs = no_dialogs(page)
    key = api_key(console_server, "chart-tenant", "5")
    assert console_server.wait_finished(create_video(console_server, key), key)["status"] == (
        "completed"
    )
    with database(console_server) as conn:  # a name the admin API refuses (it has slashes)
        conn.execute(
            "INSERT INTO tenants (id, name, balance_micros, created_at, group_name)"
            " VALUES ('ten_hostile', ?, 500000, 0, 'default')",
            (HOSTILE,),
        )
    sign_in(page, console_server.base_url, "console", ADMIN_TOKEN)

    now = time.time()
    with database(console_server) as conn:
        rows = conn.execute("SELECT created_at, status, price_micros FROM jobs").fetchall()
    hour = 3600
    since = int(now) - int(now) % hour - 23 * hour
    per_hour: dict[str, int] = {}
    revenue: dict[str, Decimal] = {}
    for created_at, status, price in rows:
        if created_at >= since and status == "completed":
            label = datetime.fromtimestamp(created_at - created_at % hour, UTC).strftime("%H:00")
            per_hour[label] = per_hour.get(label, 0) + 1
        if status != "failed":
            label = datetime.fromtimestamp(created_at, UTC).strftime("%m-%d")
            revenue[label] = revenue.get(label, Decimal(0)) + Decimal(price) / 1_000_000
    titles = page.locator("#outcomes-day rect > title").all_text_contents()
    assert sorted(t for t in titles if "completed" in t) == sorted(
        f"{label} · completed: {count}" for label, count in per_hour.items()
    )
    money = page.locator("#money rect > title").all_text_contents()
    assert sorted(t for t in money if "revenue" in t) == sorted(
        f"{label} · revenue: {_figure(float(amount), '$')}" for label, amount in revenue.items()
    )
    attention = page.get_by_role("region", name="Needs attention")
    expect(attention).to_contain_text(f"{HOSTILE}: $0.5")
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


@pytest.fixture(scope="module")
def operator_client(console_server: ServerProcess) -> Iterator[httpx.Client]:
    client, _ = _signed_in(console_server.base_url, "console", ADMIN_TOKEN)
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize(
    "path",
    [
        "/console/channels/new",
        "/console/channels/fake-up",
        "/console/channels/fake-up/enable",
        "/console/channels/fake-up/disable",
        "/console/channels/fake-up/test",
        "/console/channels/fake-up/delete",
        "/console/models/declare",
        "/console/models/remove",
        "/console/models/prices",
        "/console/models/prices/delete",
        "/console/models/groups",
    ],
)
def test_every_action_refuses_a_post_without_the_forms_csrf_token(
    operator_client: httpx.Client, path: str
) -> None:
    for data in ({"name": "sora-2", "group": "default", "multiplier": "0"}, {"csrf_token": "x"}):
        refused = operator_client.post(path, data=data)
        assert refused.status_code == 403, refused.text
        assert "did not come from this site" in refused.text


def test_needs_attention_shows_ten_tenants_and_pages_on_from_its_more_link(
    operator_client: httpx.Client, console_server: ServerProcess
) -> None:
    with database(console_server) as conn:  # the lowest balances of the instance
        conn.executemany(
            "INSERT INTO tenants (id, name, balance_micros, created_at, group_name)"
            " VALUES (?, ?, ?, 0, 'default')",
            [(f"ten_low_{n:02d}", f"low-{n:02d}", n) for n in range(12)],
        )
    overview = operator_client.get("/console").text
    assert all(f"low-{n:02d}" in overview for n in range(10))
    assert "low-10" not in overview
    more = re.search(r'href="(/console/attention/tenants\?after=[^"]+)">more<', overview)
    assert more, overview
    rest = operator_client.get(html.unescape(more.group(1)))
    assert rest.status_code == 200
    assert "low-10" in rest.text and "low-11" in rest.text and "low-09" not in rest.text
    for cursor in ("99999999999999999999999:x", "garbage", "-1:", ":"):
        for path in ("/console/attention/tenants", "/console/attention/deliveries"):
            answer = operator_client.get(path, params={"after": cursor})
            assert answer.status_code == 200, (path, cursor, answer.text)
