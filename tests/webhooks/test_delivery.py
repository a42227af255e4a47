"""Webhooks end to end: a job's terminal state is delivered to its `callback_url` and to the
tenant's endpoints, signed so that the official SDK verifies it, retried, recorded, and never
lost across a restart. The receivers are real HTTP servers on loopback (allow-listed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.webhooks.receiver import Receiver
from vidrelay.api.app import create_app
from vidrelay.settings import Settings
from vidrelay.store import accounts
from vidrelay.store import jobs as job_store

ADMIN = {"Authorization": "Bearer adm"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url,
        outbound_allowlist="127.0.0.1",
        webhook_retry_base_s=0.2,
        webhook_timeout_s=1.0,
        webhook_tick_s=0.05,
        admin_token="adm",
        public_url="https://videos.example",
    )


async def key_of_erin(app: FastAPI) -> str:
    """A key of tenant erin, $10 in hand, on an app started here (not the `app` fixture)."""
    async with app.state.context.db.write() as conn:
        tenant = await accounts.ensure_tenant(conn, "erin")
        await accounts.top_up(conn, tenant.id, 10_000_000, "t")
        _id, key = await accounts.create_key(conn, tenant.id)
    return key


async def started(settings: Settings, served_url: str | None = None) -> tuple[FastAPI, Any]:
    app = create_app(settings, served_url=served_url)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    return app, lifespan


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def wait_until(condition: Any, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def secret_of(client: httpx.AsyncClient, key: str) -> str:
    response = await client.get("/v1/webhooks/secret", headers={"Authorization": f"Bearer {key}"})
    secret: str = response.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


async def test_completion_reaches_callback_and_endpoint_signed_for_the_official_sdk(
    client: httpx.AsyncClient, make_key: Any, receiver: Receiver
) -> None:
    key = await make_key("alice", "10")
    headers = {"Authorization": f"Bearer {key}"}
    endpoint = await client.post(
        "/v1/webhooks", json={"url": f"{receiver.base_url}/ok"}, headers=headers
    )
    assert endpoint.status_code == 200, endpoint.text
    secret = endpoint.json()["secret"]
    video = (
        await client.post(
            "/v1/videos",
            data={"prompt": "a lantern", "callback_url": f"{receiver.base_url}/ok?from=callback"},
            files={"_": (None, "")},
            headers=headers,
        )
    ).json()
    await wait_until(lambda: len(receiver.on("/ok")) >= 2)
    await asyncio.sleep(0.3)
    assert len(receiver.on("/ok")) == 2  # once per destination
    first, second = receiver.on("/ok")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # one event, one id

    sdk = openai.OpenAI(api_key="unused", webhook_secret=secret)
    event = sdk.webhooks.unwrap(first.body, first.headers)
    assert event.type == "video.completed"
    assert event.data.id == video["id"]
    body = json.loads(first.body)
    assert body["object"] == "event" and body["id"] == first.headers["webhook-id"]
    assert body["data"]["video"]["status"] == "completed"
    link = body["data"]["video"]["video_url"]
    assert link.startswith(f"https://videos.example/v1/videos/{video['id']}/content?"), link
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.unwrap(first.body.replace(b"completed", b"failed"), first.headers)


async def test_a_failed_job_sends_video_failed(
    app: FastAPI, client: httpx.AsyncClient, make_key: Any, receiver: Receiver
) -> None:
    key = await make_key("bob", "10")
    video = (
        await client.post(
            "/v1/videos",
            data={"prompt": "x", "seconds": "12", "callback_url": f"{receiver.base_url}/ok"},
            files={"_": (None, "")},
            headers={"Authorization": f"Bearer {key}"},
        )
    ).json()
    async with app.state.context.db.write() as conn:
        failed = await job_store.fail_and_refund(conn, video["id"], "upstream_error", "boom")
    if failed:  # else the renderer won the race and completed it: a completion is delivered
        await wait_until(lambda: len(receiver.on("/ok")) >= 1)
        event = json.loads(receiver.on("/ok")[0].body)
        assert event["type"] == "video.failed"
        assert event["data"]["video"]["error"]["code"] == "upstream_error"


async def test_a_receiver_that_fails_three_times_gets_it_on_the_fourth_with_every_attempt_logged(
    client: httpx.AsyncClient, make_key: Any, receiver: Receiver
) -> None:
    receiver.failures_left["/flaky/a"] = 3
    key = await make_key("carol", "10")
    await client.post(
        "/v1/videos",
        data={"prompt": "x", "callback_url": f"{receiver.base_url}/flaky/a"},
        files={"_": (None, "")},
        headers={"Authorization": f"Bearer {key}"},
    )
    await wait_until(lambda: len(receiver.on("/flaky/a")) >= 4)
    attempts = receiver.on("/flaky/a")
    assert len({attempt.headers["webhook-id"] for attempt in attempts}) == 1
    await asyncio.sleep(0.2)
    deliveries = (await client.get("/admin/deliveries", headers=ADMIN)).json()["data"]
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 500, 200]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempt_log"])

    replay = await client.post(f"/admin/deliveries/{delivery['id']}/replay", headers=ADMIN)
    assert replay.status_code == 200
    await wait_until(lambda: len(receiver.on("/flaky/a")) >= 5)
    assert receiver.on("/flaky/a")[-1].headers["webhook-id"] == attempts[0].headers["webhook-id"]


async def test_a_delivery_refused_once_shows_its_two_attempts_on_the_jobs_timeline(
    client: httpx.AsyncClient, make_key: Any, receiver: Receiver
) -> None:
    receiver.failures_left["/flaky/once"] = 1
    key = await make_key("dora", "10")
    callback = f"{receiver.base_url}/flaky/once"
    video = (
        await client.post(
            "/v1/videos",
            data={"prompt": "x", "callback_url": callback},
            files={"_": (None, "")},
            headers={"Authorization": f"Bearer {key}"},
        )
    ).json()
    job: dict[str, Any] = {}

    async def attempts_recorded() -> list[dict[str, Any]]:
        nonlocal job
        job = (await client.get(f"/admin/jobs/{video['id']}", headers=ADMIN)).json()
        return [e for e in job.get("events", []) if e["kind"] == "webhook_attempt"]

    deadline = asyncio.get_running_loop().time() + 60
    while len(attempts := await attempts_recorded()) < 2:
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)
    refused, accepted = (attempt["details"] for attempt in attempts)
    (delivery,) = job["deliveries"]
    assert refused["delivery_id"] == accepted["delivery_id"] == delivery["id"]
    assert (refused["url"], refused["status_code"], refused["error"]) == (callback, 500, "HTTP 500")
    assert refused["next_attempt_at"] > attempts[0]["at"]
    assert (accepted["status_code"], accepted["error"], accepted["next_attempt_at"]) == (
        200,
        None,
        None,
    )
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]
    kinds = [event["kind"] for event in job["events"]]
    assert kinds.index("completed") < kinds.index("webhook_attempt")


async def test_a_hanging_receiver_times_out_and_is_retried_later(
    client: httpx.AsyncClient, make_key: Any, receiver: Receiver
) -> None:
    key = await make_key("dave", "10")
    await client.post(
        "/v1/videos",
        data={"prompt": "x", "callback_url": f"{receiver.base_url}/hang"},
        files={"_": (None, "")},
        headers={"Authorization": f"Bearer {key}"},
    )

    async def logged() -> list[dict[str, Any]]:
        data = (await client.get("/admin/deliveries", headers=ADMIN)).json()["data"]
        return data[0]["attempt_log"] if data else []

    for _ in range(600):
        if len(await logged()) >= 2:
            break
        await asyncio.sleep(0.05)
    log = await logged()
    assert len(log) >= 2
    assert log[0]["status_code"] is None and log[0]["error"]


async def test_a_redirect_to_a_refused_address_is_not_followed(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    settings = make_settings(
        tmp_path / "data", database_url, outbound_allowlist="localhost",
        webhook_retry_base_s=0.2, webhook_tick_s=0.05, admin_token="adm",
    )  # fmt: skip
    app, lifespan = await started(settings)
    try:
        key = await key_of_erin(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post(
                "/v1/videos",
                data={"prompt": "x", "callback_url": f"http://localhost:{receiver.port}/redirect"},
                files={"_": (None, "")},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 200, response.text
            await wait_until(lambda: len(receiver.on("/redirect")) >= 1)
            await asyncio.sleep(0.5)
            assert receiver.on("/ok") == []  # the hop to 127.0.0.1 was refused
            deliveries = (await http.get("/admin/deliveries", headers=ADMIN)).json()["data"]
            assert deliveries[0]["status"] == "pending"
            assert deliveries[0]["attempt_log"][0]["error"]
    finally:
        await lifespan.__aexit__(None, None, None)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
    ],
)
async def test_refused_callback_urls_are_a_400_at_create(
    tmp_path: Path, database_url: str, url: str
) -> None:
    app, lifespan = await started(make_settings(tmp_path / "data", database_url, engine=False))
    try:
        from vidrelay.store import accounts

        async with app.state.context.db.write() as conn:
            tenant = await accounts.ensure_tenant(conn, "frank")
            await accounts.top_up(conn, tenant.id, 10_000_000, "t")
            _id, key = await accounts.create_key(conn, tenant.id)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = {"Authorization": f"Bearer {key}"}
            response = await http.post(
                "/v1/videos",
                data={"prompt": "x", "callback_url": url},
                files={"_": (None, "")},
                headers=headers,
            )
            assert response.status_code == 400, response.text
            assert response.json()["error"]["param"] == "callback_url"
            endpoint = await http.post("/v1/webhooks", json={"url": url}, headers=headers)
            assert endpoint.status_code == 400
            assert endpoint.json()["error"]["param"] == "url"
            unresolvable = await http.post(
                "/v1/webhooks", json={"url": "https://hooks.does-not-resolve.invalid/x"},
                headers=headers,
            )  # fmt: skip
            assert unresolvable.status_code == 200  # names are checked when the request is made
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_deliveries_survive_a_restart_with_the_same_webhook_id(
    settings: Settings, receiver: Receiver
) -> None:
    receiver.failures_left["/flaky/r"] = 1
    app, lifespan = await started(settings)
    from vidrelay.store import accounts

    async with app.state.context.db.write() as conn:
        tenant = await accounts.ensure_tenant(conn, "gina")
        await accounts.top_up(conn, tenant.id, 10_000_000, "t")
        _id, key = await accounts.create_key(conn, tenant.id)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        await http.post(
            "/v1/videos",
            data={"prompt": "x", "callback_url": f"{receiver.base_url}/flaky/r"},
            files={"_": (None, "")},
            headers={"Authorization": f"Bearer {key}"},
        )
    await wait_until(lambda: len(receiver.on("/flaky/r")) >= 1)
    await lifespan.__aexit__(None, None, None)  # stopped between the failure and its retry

    app, lifespan = await started(settings)
    try:
        await wait_until(lambda: len(receiver.on("/flaky/r")) >= 2)
        first, retry = receiver.on("/flaky/r")[:2]
        assert first.headers["webhook-id"] == retry.headers["webhook-id"]
        assert first.body == retry.body
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_rotating_the_secret_signs_new_events_with_the_new_one(
    client: httpx.AsyncClient, make_key: Any, receiver: Receiver
) -> None:
    key = await make_key("hana", "10")
    headers = {"Authorization": f"Bearer {key}"}
    old = await secret_of(client, key)
    rotated = (await client.post("/v1/webhooks/secret/rotate", headers=headers)).json()["secret"]
    assert rotated != old and rotated == await secret_of(client, key)
    await client.post(
        "/v1/videos",
        data={"prompt": "x", "callback_url": f"{receiver.base_url}/ok"},
        files={"_": (None, "")},
        headers=headers,
    )
    await wait_until(lambda: len(receiver.on("/ok")) >= 1)
    delivered = receiver.on("/ok")[0]
    openai.OpenAI(api_key="x", webhook_secret=rotated).webhooks.unwrap(
        delivered.body, delivered.headers
    )
    with pytest.raises(openai.InvalidWebhookSignatureError):
        openai.OpenAI(api_key="x", webhook_secret=old).webhooks.unwrap(
            delivered.body, delivered.headers
        )


@pytest.mark.parametrize("served_url", [None, "http://127.0.0.1:8123"])
async def test_without_a_public_url_links_root_where_the_server_serves_or_are_left_out(
    tmp_path: Path, database_url: str, receiver: Receiver, served_url: str | None
) -> None:
    """A link to an address nobody serves is worse than none: with neither
    VIDRELAY_PUBLIC_URL nor a known listening address, the payload has no `video_url`."""
    settings = make_settings(
        tmp_path / "data", database_url, outbound_allowlist="127.0.0.1", webhook_tick_s=0.05
    )
    app, lifespan = await started(settings, served_url)
    try:
        key = await key_of_erin(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post(
                "/v1/videos",
                json={"prompt": "x", "seconds": "4", "callback_url": f"{receiver.base_url}/ok"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 200, response.text
            await wait_until(lambda: len(receiver.on("/ok")) >= 1)
    finally:
        await lifespan.__aexit__(None, None, None)
    video = json.loads(receiver.on("/ok")[0].body)["data"]["video"]
    assert video["status"] == "completed"
    if served_url is None:
        assert "video_url" not in video
    else:
        assert video["video_url"].startswith(f"{served_url}/v1/videos/{video['id']}/content?")
