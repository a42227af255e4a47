"""The web console's tests: a real `vidrelay serve` and Debian's Chromium driven by Playwright.

One server per test module (signing in is the costly part, not the server), one browser per
module, one fresh browser context per test. Every test's last page is saved as a screenshot
in `test-artifacts/screenshots/` (the CI artefact the issue asks for).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.e2e.server import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the admin token `tests.conftest.ADMIN_TOKEN` and the built-in renderer."""
    process = ServerProcess(tmp_path_factory.mktemp("console") / "data", admin_token=ADMIN_TOKEN)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API holds an event loop as the running one while it is
    started, so a session-wide browser would break every asyncio test the worker runs after."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium must be installed on CI (scripts/services.sh installs it)")
        pytest.skip("no /usr/bin/chromium (run the tests with scripts/test.sh)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page whose state at the end of the test is saved as a screenshot."""
    opened = browser_context.new_page()
    try:
        yield opened
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
        if not opened.is_closed():
            opened.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base_url: str, app: str, secret: str) -> None:
    """Sign in through the form, as a person would."""
    label = "Admin token" if app == "console" else "API key"
    page.goto(f"{base_url}/{app}/sign-in")
    page.get_by_label(label).fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
