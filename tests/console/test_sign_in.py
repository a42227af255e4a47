"""Signing in to the console (admin token) and the portal (API key): sessions, CSRF, framing,
caching and rate limits, in a real browser where a browser is the point."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import sign_in
from tests.e2e.server import ServerProcess


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _signed_in(base_url: str, app: str, secret: str) -> tuple[httpx.Client, str]:
    """An HTTP client signed in through the form, and the CSRF token of its pages."""
    client = httpx.Client(base_url=base_url)
    form = client.get(f"/{app}/sign-in")
    answer = client.post(
        f"/{app}/sign-in", data={"csrf_token": _form_token(form.text), "secret": secret}
    )
    assert answer.status_code == 303, answer.text
    home = client.get(f"/{app}")
    assert home.status_code == 200, home.text
    return client, _form_token(home.text)


def test_operator_signs_in_and_out_in_a_browser(page: Page, console_server: ServerProcess) -> None:
    sign_in(page, console_server.base_url, "console", "not-the-token")
    expect(page.get_by_role("alert")).to_have_text("Incorrect admin token.")
    assert not [c for c in page.context.cookies() if c["name"] == "vidrelay_console"]

    sign_in(page, console_server.base_url, "console", ADMIN_TOKEN)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "vidrelay_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert ADMIN_TOKEN not in cookie["value"]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin token")).to_be_visible()
    page.goto(f"{console_server.base_url}/console")
    expect(page.get_by_label("Admin token")).to_be_visible()  # the session is gone


def test_signed_in_pages_refuse_framing_inline_script_and_caches(
    console_server: ServerProcess,
) -> None:
    client, _ = _signed_in(console_server.base_url, "console", ADMIN_TOKEN)
    for path in ("/console", "/console/sign-in", "/portal/sign-in", "/console/no-such-page"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy, path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["cache-control"] == "no-store", path


def test_a_form_without_its_csrf_token_is_refused(console_server: ServerProcess) -> None:
    client, token = _signed_in(console_server.base_url, "console", ADMIN_TOKEN)
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": "é"}):
        refused = client.post("/console/sign-out", data=data)
        assert refused.status_code == 403, refused.text
        assert "did not come from this site" in refused.text
    cross_site = client.post(
        "/console/sign-out", data={"csrf_token": token}, headers={"origin": "https://evil.test"}
    )
    assert cross_site.status_code == 403
    assert client.get("/console").status_code == 200  # still signed in

    # the sign-in form too: another site cannot sign a browser in
    fresh = httpx.Client(base_url=console_server.base_url)
    refused = fresh.post("/console/sign-in", data={"csrf_token": "x", "secret": ADMIN_TOKEN})
    assert refused.status_code == 403
    assert "vidrelay_console" not in refused.cookies

    assert client.post("/console/sign-out", data={"csrf_token": token}).status_code == 303
    assert client.get("/console").headers["location"] == "/console/sign-in"


def test_a_forged_or_foreign_session_cookie_is_not_a_session(
    console_server: ServerProcess,
) -> None:
    key = console_server.create_key("cookie-tenant", "1")
    portal, _ = _signed_in(console_server.base_url, "portal", key)
    portal_cookie = portal.cookies["vidrelay_portal"]
    for value in (portal_cookie, portal_cookie[:-2] + "xx", "garbage"):
        answer = httpx.get(
            f"{console_server.base_url}/console", cookies={"vidrelay_console": value}
        )
        assert answer.status_code == 303, value


def test_a_tenant_signs_in_with_a_key_and_revoking_it_signs_out(
    console_server: ServerProcess,
) -> None:
    key = console_server.create_key("portal-tenant", "12.5")
    client, _ = _signed_in(console_server.base_url, "portal", key)
    assert "$12.5" in client.get("/portal").text
    cookie = client.cookies["vidrelay_portal"]
    assert key not in cookie and "portal-tenant" not in cookie

    console_server.cli("keys", "revoke", key)
    assert client.get("/portal").headers["location"] == "/portal/sign-in"

    wrong = httpx.Client(base_url=console_server.base_url)
    form = wrong.get("/portal/sign-in")
    refused = wrong.post(
        "/portal/sign-in", data={"csrf_token": _form_token(form.text), "secret": key}
    )
    assert refused.status_code == 401 and "Incorrect api key." in refused.text


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No admin token (the console is off) and three sign-ins a minute per address."""
    data: Path = tmp_path_factory.mktemp("strict") / "data"
    process = ServerProcess(data, console_sign_in_per_minute="3")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_sign_in_attempts_are_rate_limited_per_address(strict_server: ServerProcess) -> None:
    client = httpx.Client(base_url=strict_server.base_url)
    statuses = []
    for _ in range(4):
        token = _form_token(client.get("/portal/sign-in").text)
        answer = client.post("/portal/sign-in", data={"csrf_token": token, "secret": "sk-wrong"})
        statuses.append(answer.status_code)
    assert statuses == [401, 401, 401, 429]
    assert "Too many sign-in attempts" in answer.text
    assert answer.headers["retry-after"].isdigit()


def test_the_console_is_off_without_an_admin_token(strict_server: ServerProcess) -> None:
    for path in ("/console", "/console/sign-in"):
        assert httpx.get(f"{strict_server.base_url}{path}").status_code == 404
