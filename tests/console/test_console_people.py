"""The operator console's Jobs, Tenants and keys, Webhooks and Audit pages, in Chromium: an
operator runs a tenant from creation to a played video, every action lands in the audit log,
user-given strings stay text, and no form acts without its CSRF token."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import sign_in
from tests.console.test_sign_in import _signed_in
from tests.e2e.server import ServerProcess
from tests.webhooks.receiver import Receiver

TENANT = "acme <img src=x onerror=alert(1)>"
PROMPT = "a kite <script>alert(1)</script> <img src=x onerror=alert(1)>"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures_left={"/flaky/refuse": 1_000_000})  # refuses every delivery
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def console_server(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[ServerProcess]:
    """The console's server, with webhooks allowed to the loopback receiver and retried fast
    (a refused delivery fails for good within seconds)."""
    process = ServerProcess(
        tmp_path_factory.mktemp("console-people") / "data",
        admin_token=ADMIN_TOKEN,
        outbound_allowlist="127.0.0.1",
        webhook_retry_base_s="0.002",
        webhook_timeout_s="2",
        webhook_tick_s="0.05",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def operator(console_server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client signed in once for the module (sign-ins are rate-limited per address)."""
    client, _ = _signed_in(console_server.base_url, "console", ADMIN_TOKEN)
    try:
        yield client
    finally:
        client.close()


def _no_dialogs(page: Page) -> list[str]:
    """Messages of every dialog the page opens (an injected `alert` would be one)."""
    opened: list[str] = []

    def record(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def _form(page: Page, name: str) -> Locator:
    return page.get_by_role("form", name=name)


def test_an_operator_runs_a_tenant_from_creation_to_a_played_video(
    page: Page, console_server: ServerProcess
) -> None:
    base = console_server.base_url
    dialogs = _no_dialogs(page)
    sign_in(page, base, "console", ADMIN_TOKEN)

    # a tenant whose name is markup: refused with '/', created without, shown as text
    page.goto(f"{base}/console/tenants")
    new_tenant = _form(page, "New tenant")
    new_tenant.get_by_label("Name").fill("acme/evil")
    new_tenant.get_by_role("button", name="Create tenant").click()
    expect(_form(page, "New tenant").locator("#new-name-error")).to_contain_text("no slash")
    expect(_form(page, "New tenant").get_by_label("Name")).to_have_value("acme/evil")
    _form(page, "New tenant").get_by_label("Name").fill(TENANT)
    _form(page, "New tenant").get_by_role("button", name="Create tenant").click()
    expect(page.get_by_test_id("tenant-name")).to_have_text(TENANT)
    tenant_url = page.url

    # a key, shown once on the next page, never again
    _form(page, "New key").get_by_label("Key name (optional)").fill("laptop")
    _form(page, "New key").get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text().strip()
    assert key.startswith("sk-"), key
    page.reload()
    expect(page.get_by_test_id("new-key")).to_have_count(0)
    expect(page.get_by_text("cannot be shown again")).to_be_visible()
    assert key not in page.content()

    # top-up (refused by its field, then exact), adjustment with a note, limits
    page.goto(tenant_url)
    top_up = _form(page, "Top up")
    top_up.get_by_label("Amount (USD)").fill("abc")
    top_up.get_by_role("button", name="Top up").click()
    expect(_form(page, "Top up").locator("#top-up-amount-error")).to_contain_text("amount_usd")
    expect(_form(page, "Top up").get_by_label("Amount (USD)")).to_have_value("abc")
    _form(page, "Top up").get_by_label("Amount (USD)").fill("12.345678")
    _form(page, "Top up").get_by_label("Note").fill("first")
    _form(page, "Top up").get_by_role("button", name="Top up").click()
    expect(page.get_by_test_id("balance")).to_have_text("$12.345678")
    adjust = _form(page, "Adjust")
    adjust.get_by_label("Amount (USD, negative to take)").fill("-2.345678")
    adjust.get_by_label("Reason").fill("goodwill <b>correction</b>")
    adjust.get_by_role("button", name="Adjust").click()
    expect(page.get_by_test_id("balance")).to_have_text("$10")
    expect(page.get_by_test_id("ledger")).to_contain_text("goodwill <b>correction</b>")
    limits = _form(page, "Group and limits")
    limits.get_by_label("Requests per minute (empty: no limit)").fill("600")
    limits.get_by_label("Jobs in flight (empty: no limit)").fill("0")
    limits.get_by_role("button", name="Save group and limits").click()
    expect(_form(page, "Group and limits").locator("#settings-in-flight-error")).to_be_visible()
    _form(page, "Group and limits").get_by_label("Jobs in flight (empty: no limit)").fill("3")
    _form(page, "Group and limits").get_by_role("button", name="Save group and limits").click()
    expect(page.get_by_text("600 requests per minute limit")).to_be_visible()
    expect(page.get_by_text("3 in-flight limit")).to_be_visible()

    # a job made through the API with that key, followed on its page until it plays
    created = httpx.post(
        f"{base}/v1/videos",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "sora-2", "prompt": PROMPT, "seconds": "4"},
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    page.goto(f"{base}/console/jobs")
    page.get_by_label("Tenant").fill(TENANT)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name=job_id).click()
    events = page.get_by_test_id("timeline").locator("li > strong")
    deadline = time.monotonic() + 90
    status = page.get_by_test_id("job-status")
    while "completed" not in events.all_inner_texts() or status.inner_text() != "completed":
        assert time.monotonic() < deadline, events.all_inner_texts()
        time.sleep(0.5)
        page.reload()
    kinds = events.all_inner_texts()
    assert kinds[0] == "accepted" and kinds.index("submitted") < kinds.index("completed"), kinds
    expect(page.get_by_test_id("job-prompt")).to_have_text(PROMPT)
    expect(page.get_by_test_id("job-price")).to_have_text("$0.4")
    video = page.get_by_test_id("job-video")
    assert "variant=thumbnail" in (video.get_attribute("poster") or "")
    duration = page.evaluate(
        """async () => {
            const video = document.querySelector('video');
            if (video.readyState < 1) {
                await new Promise((resolve, reject) => {
                    video.addEventListener('loadedmetadata', resolve, {once: true});
                    video.addEventListener('error', () => reject(video.error), {once: true});
                });
            }
            return video.duration;
        }"""
    )
    assert duration > 0

    # the key revoked: the API refuses it from now on
    page.goto(tenant_url)
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("revoked")).to_be_visible()
    refused = httpx.get(f"{base}/v1/videos", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401

    # every action above is in the audit log, by the console, from the browser's address
    page.goto(f"{base}/console/audit")
    audit = page.get_by_test_id("audit").inner_text()
    actions = ("tenant.create", "key.create", "tenant.top_up", "tenant.adjust", "tenant.set")
    for action in (*actions, "key.revoke"):
        assert re.search(rf"{re.escape(action)}\t.*\tconsole\t127\.0\.0\.1", audit), audit
    page.goto(f"{base}/console/audit?action=tenant.adjust")
    rows = page.get_by_test_id("audit").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(TENANT)
    assert dialogs == []


def test_replaying_a_failed_delivery_adds_an_attempt(
    page: Page, console_server: ServerProcess, receiver: Receiver
) -> None:
    base = console_server.base_url
    tenant = httpx.post(
        f"{base}/admin/tenants", headers=ADMIN, json={"name": "hooked", "balance_usd": "5"}
    )
    assert tenant.status_code == 200, tenant.text
    key = httpx.post(f"{base}/admin/tenants/hooked/keys", headers=ADMIN, json={})
    assert key.status_code == 201, key.text
    created = httpx.post(
        f"{base}/v1/videos",
        headers={"Authorization": f"Bearer {key.json()['key']}"},
        json={
            "model": "sora-2",
            "prompt": "a hook",
            "seconds": "4",
            "callback_url": f"{receiver.base_url}/flaky/refuse",
        },
    )
    assert created.status_code == 200, created.text
    deadline = time.monotonic() + 90
    while True:
        failed = httpx.get(f"{base}/admin/deliveries?status=failed", headers=ADMIN).json()["data"]
        if failed:
            break
        assert time.monotonic() < deadline, "the delivery never failed"
        time.sleep(0.2)

    sign_in(page, base, "console", ADMIN_TOKEN)
    page.goto(f"{base}/console/webhooks?status=failed")
    page.get_by_role("link", name=failed[0]["id"]).click()
    expect(page.get_by_test_id("delivery-status")).to_have_text("failed")
    attempts = page.get_by_test_id("attempts").locator("tbody tr")
    before = attempts.count()
    assert before >= 1
    page.get_by_role("button", name="Replay").click()
    deadline = time.monotonic() + 30
    while page.get_by_test_id("attempts").locator("tbody tr").count() <= before:
        assert time.monotonic() < deadline, "no new attempt after the replay"
        time.sleep(0.2)
        page.reload()
    page.goto(f"{base}/console/audit?action=webhook_delivery.replay")
    expect(page.get_by_test_id("audit")).to_contain_text(failed[0]["id"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        (
            {"created_after": "2026-11-30T10:00", "created_before": "2026-11-30T09:00"},
            "created_after",
        ),
        ({"tenant": "nobody <b>here</b>"}, "tenant"),
        ({"after": "video_unknown"}, "after"),
    ],
)
def test_a_refused_job_filter_is_shown_by_its_field_with_the_form_kept(
    operator: httpx.Client, query: dict[str, str], field: str
) -> None:
    refused = operator.get("/console/jobs", params=query)
    assert refused.status_code == 400, refused.text
    assert re.search(rf'<span class="field-error"[^>]*>[^<]*{field}', refused.text), refused.text
    assert "<b>here" not in refused.text
    for name, value in query.items():
        if name in ("tenant", "created_after", "created_before"):  # typed, shown back
            assert f'value="{value.replace("<", "&lt;").replace(">", "&gt;")}"' in refused.text


ACTIONS = [
    "/console/tenants",
    "/console/tenants/hooked/top-up",
    "/console/tenants/hooked/adjust",
    "/console/tenants/hooked/settings",
    "/console/tenants/hooked/keys",
    "/console/tenants/hooked/keys/key_x/revoke",
    "/console/webhooks/whd_x/replay",
]


@pytest.mark.parametrize("path", ACTIONS)
def test_an_action_without_its_csrf_token_is_refused(
    console_server: ServerProcess, operator: httpx.Client, path: str
) -> None:
    form = {"name": "csrf-less", "amount_usd": "5", "note": "n", "rpm": "5"}
    for data in (form, {**form, "csrf_token": "forged"}):
        refused = operator.post(path, data=data)
        assert refused.status_code == 403, refused.text
        assert "did not come from this site" in refused.text
    audit = httpx.get(f"{console_server.base_url}/admin/audit", headers=ADMIN).json()["data"]
    assert not [entry for entry in audit if "csrf-less" in entry["target"]]
