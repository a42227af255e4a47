"""The customer portal: a tenant serves itself in a browser (account, videos, keys, webhooks,
playground) and sees nothing of another tenant's. One server for the module."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import sign_in
from tests.e2e.server import ServerProcess

XSS_PROMPT = "A cat <script>alert(1)</script> <img src=x onerror=alert(1)> on a boat"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The console's server, with room for this module's many sign-ins from one address."""
    data = tmp_path_factory.mktemp("portal") / "data"
    process = ServerProcess(data, admin_token=ADMIN_TOKEN, console_sign_in_per_minute="1000")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _tenant(server: ServerProcess, name: str, balance_usd: str = "10") -> str:
    """A new tenant with a balance; its first key."""
    admin = httpx.Client(base_url=server.base_url, headers=ADMIN)
    made = admin.post("/admin/tenants", json={"name": name, "balance_usd": balance_usd})
    assert made.status_code in (200, 201), made.text
    key = admin.post(f"/admin/tenants/{name}/keys", json={"name": "first"})
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


def _portal(server: ServerProcess, key: str) -> tuple[httpx.Client, str]:
    """An HTTP client signed in to the portal with `key`, and its pages' CSRF token."""
    client = httpx.Client(base_url=server.base_url)
    form = client.get("/portal/sign-in")
    answer = client.post(
        "/portal/sign-in", data={"csrf_token": _form_token(form.text), "secret": key}
    )
    assert answer.status_code == 303, answer.text
    home = client.get("/portal")
    assert home.status_code == 200, home.text
    return client, _form_token(home.text)


def _usd(text: str) -> Decimal:
    return Decimal(text.strip().replace("$", "").replace(",", ""))


def test_a_customer_generates_a_video_watches_it_finish_and_plays_it(
    page: Page, console_server: ServerProcess
) -> None:
    key = _tenant(console_server, "player", "20")
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    base = console_server.base_url
    sign_in(page, base, "portal", key)
    balance_before = _usd(page.get_by_test_id("balance").inner_text())

    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Prompt", exact=True).fill(XSS_PROMPT)
    page.get_by_label("Seconds").select_option("4")
    page.get_by_role("button", name="Price").click()
    shown_price = _usd(page.get_by_test_id("quoted-price").inner_text())
    assert shown_price == Decimal("0.4")  # sora-2, $0.10 a second
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(XSS_PROMPT)  # kept

    page.get_by_role("button", name="Generate").click()
    expect(page).to_have_url(re.compile(r"/portal/jobs/video_"))
    expect(page.get_by_test_id("status")).to_have_text("completed", timeout=60_000)
    expect(page.get_by_test_id("prompt")).to_have_text(XSS_PROMPT)
    assert page.get_by_test_id("price").inner_text() == "$0.4"

    player = page.get_by_test_id("player")
    expect(player).to_be_visible()
    page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=30_000)
    duration = page.evaluate("document.querySelector('video').duration")
    assert duration > 0
    poster = page.evaluate("document.querySelector('video').poster")
    assert httpx.get(poster).status_code in (303, 307)  # only with the session
    download = page.get_by_role("link", name="Download the MP4")
    assert download.get_attribute("download")

    page.get_by_role("link", name="Videos", exact=True).click()
    expect(page.get_by_role("cell", name=XSS_PROMPT)).to_be_visible()
    page.get_by_role("link", name="Account").click()
    assert _usd(page.get_by_test_id("balance").inner_text()) == balance_before - shown_price
    assert page.locator("svg.chart").count() == 2
    expect(page.get_by_role("cell", name="charge", exact=True)).to_be_visible()
    assert dialogs == []


def test_a_tenant_cannot_open_anothers_video_nor_revoke_anothers_key(
    console_server: ServerProcess,
) -> None:
    owner_key = _tenant(console_server, "owner")
    created = httpx.post(
        f"{console_server.base_url}/v1/videos",
        headers={"authorization": f"Bearer {owner_key}"},
        json={"prompt": "owner's own", "model": "sora-2", "seconds": "4"},
    )
    assert created.status_code == 200, created.text
    video_id = created.json()["id"]
    owner, _ = _portal(console_server, owner_key)
    assert owner.get(f"/portal/jobs/{video_id}").status_code == 200
    owner_key_id = re.search(r'data-key-id="([^"]+)"', owner.get("/portal/keys").text)
    assert owner_key_id

    other, token = _portal(console_server, _tenant(console_server, "other"))
    unknown = other.get("/portal/jobs/video_doesnotexist")
    assert unknown.status_code == 404
    for path in ("", "/progress", "/content", "/content?variant=thumbnail"):
        answer = other.get(f"/portal/jobs/{video_id}{path}")
        assert answer.status_code == 404, path
        assert "owner's own" not in answer.text
    assert other.get(f"/portal/jobs/{video_id}").text == unknown.text.replace(
        "video_doesnotexist", video_id
    )
    assert video_id not in other.get("/portal/jobs").text
    assert other.get(f"/portal/jobs?after={video_id}").status_code == 404  # not its cursor
    listed = owner.get("/portal/jobs")
    assert f'href="/portal/jobs/{video_id}"' in listed.text
    after_it = owner.get(f"/portal/jobs?after={video_id}")
    assert after_it.status_code == 200 and "No videos after this point" in after_it.text

    refused = other.post(f"/portal/keys/{owner_key_id.group(1)}/revoke", data={"csrf_token": token})
    assert refused.status_code == 404
    assert owner.get("/portal").status_code == 200  # the owner's key still stands
    models = httpx.get(
        f"{console_server.base_url}/v1/models", headers={"authorization": f"Bearer {owner_key}"}
    )
    assert models.status_code == 200


def test_a_new_key_is_shown_once_and_revoking_it_ends_it(console_server: ServerProcess) -> None:
    client, token = _portal(console_server, _tenant(console_server, "keymaker"))
    made = client.post("/portal/keys", data={"csrf_token": token, "name": "ci <b>bot</b>"})
    assert made.status_code == 200, made.text
    found = re.search(r'data-testid="new-key">([^<]+)<', made.text)
    assert found
    new_key = found.group(1)
    assert "ci &lt;b&gt;bot&lt;/b&gt;" in made.text
    listed = client.get("/portal/keys").text
    assert new_key not in listed and new_key[-4:] in listed  # its hint only, from now on
    headers = {"authorization": f"Bearer {new_key}"}
    assert httpx.get(f"{console_server.base_url}/v1/models", headers=headers).status_code == 200

    row = re.search(r'data-key-id="([^"]+)">\s*<td>ci &lt;b&gt;bot&lt;/b&gt;</td>', listed)
    assert row, listed
    newest = row.group(1)
    revoked = client.post(f"/portal/keys/{newest}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert httpx.get(f"{console_server.base_url}/v1/models", headers=headers).status_code == 401
    assert "revoked" in client.get("/portal/keys").text
    audit = httpx.get(f"{console_server.base_url}/admin/audit", headers=ADMIN).json()["data"]
    mine = [entry for entry in audit if entry["target"] == "keymaker"]
    assert [entry["action"] for entry in mine[:2]] == ["key.revoke", "key.create"]
    assert all(entry["actor"]["kind"] == "tenant" for entry in mine[:2])

    too_long = client.post("/portal/keys", data={"csrf_token": token, "name": "n" * 201})
    assert too_long.status_code == 400
    assert 'class="field-error"' in too_long.text and "n" * 201 in too_long.text


ACTIONS = [
    "/portal/keys",
    "/portal/keys/{key_id}/revoke",
    "/portal/webhooks",
    "/portal/webhooks/{endpoint_id}/remove",
    "/portal/webhooks/secret/rotate",
    "/portal/playground",
    "/portal/sign-out",
]


@pytest.mark.parametrize("action", ACTIONS)
def test_every_portal_action_refuses_a_form_without_its_csrf_token(
    console_server: ServerProcess, action: str
) -> None:
    client, token = _portal(console_server, _tenant(console_server, f"csrf{ACTIONS.index(action)}"))
    key_id = re.findall(r'data-key-id="([^"]+)"', client.get("/portal/keys").text)[0]
    added = client.post(
        "/portal/webhooks", data={"csrf_token": token, "url": "https://hooks.example.com/a"}
    )
    assert added.status_code == 303, added.text
    endpoint_id = re.search(r"/portal/webhooks/([^/]+)/remove", client.get("/portal/webhooks").text)
    assert endpoint_id
    path = action.format(key_id=key_id, endpoint_id=endpoint_id.group(1))
    before = client.get("/portal/keys").text, client.get("/portal/webhooks?reveal=true").text
    form = {
        "name": "x",
        "url": "https://hooks.example.com/b",
        "prompt": "x",
        "model": "sora-2",
        "action": "generate",
    }
    for data in (form, {**form, "csrf_token": "forged"}):
        refused = client.post(path, data=data)
        assert refused.status_code == 403, refused.text
    after = client.get("/portal/keys").text, client.get("/portal/webhooks?reveal=true").text
    assert _without_tokens(after) == _without_tokens(before)  # nothing changed
    assert "video_" not in client.get("/portal/jobs").text


def _without_tokens(pages: tuple[str, str]) -> tuple[str, ...]:
    return tuple(re.sub(r'name="csrf_token" value="[^"]+"', "", page) for page in pages)


def test_webhook_endpoints_and_the_signing_secret(console_server: ServerProcess) -> None:
    client, token = _portal(console_server, _tenant(console_server, "hooked"))
    refused = client.post(
        "/portal/webhooks", data={"csrf_token": token, "url": "http://127.0.0.1/x<y>"}
    )
    assert refused.status_code == 400
    assert 'class="field-error"' in refused.text and "http://127.0.0.1/x&lt;y&gt;" in refused.text

    added = client.post(
        "/portal/webhooks",
        data={
            "csrf_token": token,
            "url": "https://hooks.example.com/done",
            "event_types": "video.completed",
        },
    )
    assert added.status_code == 303
    page = client.get("/portal/webhooks").text
    assert "https://hooks.example.com/done" in page and "video.completed" in page
    assert "whsec_" not in page  # hidden until asked for

    secret = re.search(
        r'data-testid="webhook-secret">([^<]+)<', client.get("/portal/webhooks?reveal=true").text
    )
    assert secret
    rotated = client.post("/portal/webhooks/secret/rotate", data={"csrf_token": token})
    assert rotated.status_code == 303
    new_secret = re.search(
        r'data-testid="webhook-secret">([^<]+)<', client.get(rotated.headers["location"]).text
    )
    assert new_secret and new_secret.group(1) != secret.group(1)

    endpoint_id = re.search(r"/portal/webhooks/([^/]+)/remove", page)
    assert endpoint_id
    other, other_token = _portal(console_server, _tenant(console_server, "unhooked"))
    assert (
        other.post(
            f"/portal/webhooks/{endpoint_id.group(1)}/remove", data={"csrf_token": other_token}
        ).status_code
        == 404
    )
    assert "https://hooks.example.com/done" in client.get("/portal/webhooks").text
    removed = client.post(
        f"/portal/webhooks/{endpoint_id.group(1)}/remove", data={"csrf_token": token}
    )
    assert removed.status_code == 303
    assert "https://hooks.example.com/done" not in client.get("/portal/webhooks").text


def test_the_playground_shows_each_refusal_beside_its_field(
    console_server: ServerProcess,
) -> None:
    client, token = _portal(console_server, _tenant(console_server, "refused", "0.5"))
    form = client.get("/portal/playground?model=sora-2-pro")
    assert form.status_code == 200 and 'value="sora-2-pro" selected' in form.text
    assert 'name="seconds"' in form.text and '<option value="25"' in form.text

    bad_size = client.post(
        "/portal/playground",
        data={"csrf_token": token, "model": "sora-2", "prompt": "a <b>bold</b> cat",
              "size": "640x480", "action": "price"},
    )  # fmt: skip
    assert bad_size.status_code == 400
    assert 'id="size-error"' in bad_size.text
    assert "a &lt;b&gt;bold&lt;/b&gt; cat</textarea>" in bad_size.text  # kept, escaped

    no_prompt = client.post(
        "/portal/playground",
        data={"csrf_token": token, "model": "sora-2", "prompt": "", "action": "generate"},
    )
    assert no_prompt.status_code == 400 and 'id="prompt-error"' in no_prompt.text

    too_dear = client.post(
        "/portal/playground",
        data={"csrf_token": token, "model": "sora-2", "seconds": "12", "prompt": "long",
              "action": "generate"},
    )  # fmt: skip
    assert too_dear.status_code == 429
    assert "Your balance is $0.5" in too_dear.text
    assert "video_" not in client.get("/portal/jobs").text
    assert "$0.5" in client.get("/portal").text  # nothing charged

    unknown = client.get("/portal/playground?model=nope")
    assert unknown.status_code == 400 and 'id="model-error"' in unknown.text


def test_the_ledger_pages_newest_first(console_server: ServerProcess) -> None:
    client, _ = _portal(console_server, _tenant(console_server, "ledgered", "1"))
    admin = httpx.Client(base_url=console_server.base_url, headers=ADMIN)
    for number in range(30):
        topped = admin.post(
            "/admin/tenants/ledgered/topups",
            json={"amount_usd": "0.01", "note": f"top-up #{number} <i>"},
        )
        assert topped.status_code == 200, topped.text
    first = client.get("/portal").text
    assert "top-up #29 &lt;i&gt;" in first and "top-up #5 &lt;i&gt;" in first  # 25 a page
    assert "top-up #4 " not in first
    older = re.search(r'href="(/portal\?before=\d+)#ledger"', first)
    assert older
    second = client.get(older.group(1)).text
    assert "top-up #4 &lt;i&gt;" in second and "top-up #5 " not in second
    assert "initial balance" in second
    assert "$1.3" in first


def test_without_javascript_the_model_is_chosen_by_a_get_and_the_job_page_refreshes_itself(
    browser: Browser, console_server: ServerProcess
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, console_server.base_url, "portal", _tenant(console_server, "nojs"))
        page.goto(f"{console_server.base_url}/portal/playground")
        page.get_by_label("Model").select_option("sora-2-pro")
        page.get_by_role("button", name="Choose").click()
        expect(page).to_have_url(re.compile(r"/portal/playground\?model=sora-2-pro$"))
        expect(page.get_by_label("Seconds").locator("option")).to_have_text(["10", "15", "25"])
        page.get_by_label("Model").select_option("sora-2")
        page.get_by_role("button", name="Choose").click()
        page.get_by_label("Prompt", exact=True).fill("a quiet harbour")
        page.get_by_role("button", name="Generate").click()
        expect(page).to_have_url(re.compile(r"/portal/jobs/video_"))
        expect(page.get_by_test_id("status")).to_have_text("completed", timeout=60_000)
        expect(page.get_by_test_id("player")).to_be_visible()
    finally:
        context.close()


def test_a_key_limited_to_some_models_offers_only_those_and_cannot_widen_itself(
    console_server: ServerProcess,
) -> None:
    admin = httpx.Client(base_url=console_server.base_url, headers=ADMIN)
    assert admin.post("/admin/tenants", json={"name": "narrow", "balance_usd": "5"}).is_success
    limited = admin.post("/admin/tenants/narrow/keys", json={"models": ["sora-2"]}).json()["key"]
    client, token = _portal(console_server, limited)
    playground = client.get("/portal/playground").text
    assert '<option value="sora-2"' in playground and "sora-2-pro" not in playground

    made = client.post("/portal/keys", data={"csrf_token": token})
    found = re.search(r'data-testid="new-key">([^<]+)<', made.text)
    assert found
    refused = httpx.post(
        f"{console_server.base_url}/v1/videos",
        headers={"authorization": f"Bearer {found.group(1)}"},
        json={"prompt": "wider", "model": "sora-2-pro"},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"


ACME = {
    "sizes": ["640x360", "1920x1080"],
    "routes": [{"route_class": "official", "seconds_range": [2, 6]}],
    "params": [
        {"name": "resolution", "type": "enum", "values": ["720p", "1080p"], "default": "720p"},
        {"name": "seed", "type": "int", "min": 0, "max": 4294967295},
        {"name": "generate_audio", "type": "bool", "default": False},
        {"name": "negative_prompt", "type": "string", "max_length": 50},
    ],
}


def test_the_playground_form_follows_the_models_declaration_and_its_prices(
    console_server: ServerProcess,
) -> None:
    admin = httpx.Client(base_url=console_server.base_url, headers=ADMIN)
    assert admin.put("/admin/models/acme-video-1", json=ACME).status_code == 201
    for rule in (
        {"model": "acme-video-1", "per_second_usd": "0.10"},
        {"model": "acme-video-1", "per_second_usd": "0.40", "when": {"resolution": "1080p"}},
    ):
        assert admin.put("/admin/prices", json=rule).is_success
    client, token = _portal(console_server, _tenant(console_server, "acme-user", "5"))
    form = client.get("/portal/playground?model=acme-video-1").text
    assert re.findall(r'<option value="(\d)"', form) == ["2", "3", "4", "5", "6"]
    for field in ('name="resolution"', 'name="seed" type="number"', 'name="generate_audio"'):
        assert field in form, field
    assert 'name="negative_prompt"' in form and 'name="input_reference"' not in form

    order = {
        "csrf_token": token,
        "model": "acme-video-1",
        "seconds": "4",
        "size": "640x360",
        "resolution": "1080p",
        "generate_audio": "",
        "seed": "",
        "negative_prompt": "",
        "prompt": "a paper boat",
    }
    priced = client.post("/portal/playground", data={**order, "action": "price"})
    assert priced.status_code == 200, priced.text
    assert 'data-testid="quoted-price">$1.6<' in priced.text  # 4 s at the 1080p rule
    assert '<option value="1080p" selected>' in priced.text

    bad_seed = client.post("/portal/playground", data={**order, "seed": "-1", "action": "price"})
    assert bad_seed.status_code == 400 and 'id="seed-error"' in bad_seed.text

    made = client.post("/portal/playground", data={**order, "action": "generate"})
    assert made.status_code == 303
    job = client.get(made.headers["location"]).text
    assert "<th>resolution</th><td>1080p</td>" in job and 'data-testid="price">$1.6<' in job
    assert "$3.4" in client.get("/portal").text


def test_the_playground_takes_a_reference_image(console_server: ServerProcess) -> None:
    image = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(image, format="PNG")
    client, token = _portal(console_server, _tenant(console_server, "painter"))
    made = client.post(
        "/portal/playground",
        data={"csrf_token": token, "model": "sora-2", "prompt": "red", "action": "generate"},
        files={"input_reference": ("red.png", image.getvalue(), "image/png")},
    )
    assert made.status_code == 303, made.text
    assert "<th>Reference image</th><td>yes</td>" in client.get(made.headers["location"]).text

    not_an_image = client.post(
        "/portal/playground",
        data={"csrf_token": token, "model": "sora-2", "prompt": "red", "action": "generate"},
        files={"input_reference": ("red.png", b"not a picture", "image/png")},
    )
    assert not_an_image.status_code == 400
    assert 'id="input_reference-error"' in not_an_image.text
