"""Jobs on `kling` channels, end to end: vidrelay's real adapter, engine and store in front of
fake Kling APIs over real HTTP, for the shipped Kling models. For every fault the job ends
`completed` or `failed`, the balance is exact (charged once, refunded exactly once), nothing is
stuck, and no Kling task id, host or key half reaches the client."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from tests.channels.relay import STARTING_BALANCE, Relay, running_relay
from tests.fakes.kling_upstream import DEFAULT_FAILURE, FakeKlingUpstream
from tests.fakes.media import assert_fitted_reference, tiny_image, tiny_mp4
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.services.catalog import declare_models, set_price
from vidrelay.shipped_models import shipped_models
from vidrelay.store.channels import find_channel

KEY_A1 = "AKvendorA0000001:SKvendorA-secret-0001-abcdefghijklmnop"
KEY_A2 = "AKvendorA0000002:SKvendorA-secret-0002-abcdefghijklmnop"
KEY_B1 = "AKvendorB0000001:SKvendorB-secret-0001-abcdefghijklmnop"
KLING_ENTRIES = [entry for entry in shipped_models() if entry.protocol is ChannelProtocol.KLING]
PRICE_V3_5S = 420_000  # kling-v3 (std), 5 s at $0.084 a second, silent
PRICE_V3_PRO_5S_SOUND = 840_000  # kling-v3-pro, 5 s at $0.168 a second with sound


@pytest.fixture
def kling_a() -> Iterator[FakeKlingUpstream]:
    fake = FakeKlingUpstream(keys={KEY_A1, KEY_A2})
    with fake.serve():
        yield fake


@pytest.fixture
def kling_b() -> Iterator[FakeKlingUpstream]:
    fake = FakeKlingUpstream(keys={KEY_B1})
    with fake.serve():
        yield fake


async def declare_kling_models(relay: Relay) -> None:
    """The shipped Kling models, at their list prices."""
    await declare_models(relay.context.db, [entry.model for entry in KLING_ENTRIES], actor=CLI)
    for entry in KLING_ENTRIES:
        for price in entry.prices():
            await set_price(relay.context.db, price, actor=CLI)
    relay.context.models.invalidate()


@pytest_asyncio.fixture
async def relay(tmp_path: Path, database_url: str) -> AsyncIterator[Relay]:
    """On SQLite and on PostgreSQL."""
    async with running_relay(tmp_path / "data", database_url) as relay:
        await declare_kling_models(relay)
        yield relay


def kling_channel(name: str, fake: FakeKlingUpstream, **overrides: Any) -> Channel:
    values: dict[str, Any] = {
        "name": name,
        "protocol": ChannelProtocol.KLING,
        "route_class": RouteClass.OFFICIAL,
        "models": tuple(entry.model.name for entry in KLING_ENTRIES),
        "model_map": {entry.model.name: entry.upstream_model for entry in KLING_ENTRIES},
        "base_url": fake.url,
        "keys": (KEY_A1,),
    }
    values.update(overrides)
    return Channel(**values).validate(None)


async def two_tiers(
    relay: Relay, a: FakeKlingUpstream, b: FakeKlingUpstream, **a_fields: Any
) -> None:
    """kling-a is preferred (priority 10); kling-b is the fallback."""
    await relay.declare(
        kling_channel("kling-a", a, priority=10, **a_fields),
        kling_channel("kling-b", b, keys=(KEY_B1,), priority=0),
    )


async def submit_v3(relay: Relay, **fields: Any) -> str:
    return await relay.submit(model="kling-v3", seconds="5", size="1280x720", **fields)


def assert_nothing_leaks(text: str, *fakes: FakeKlingUpstream) -> None:
    for fake in fakes:
        for secret in ("127.0.0.1", f":{fake.port}", f":{fake.cdn_port}", *fake.tasks):
            assert secret not in text, text
    for key in (KEY_A1, KEY_A2, KEY_B1):
        for half in key.split(":"):
            assert half not in text, text


async def assert_charged(relay: Relay, micros: int) -> None:
    assert await relay.money() == (STARTING_BALANCE - micros,) * 2


async def test_an_image_job_runs_on_kling_and_the_client_sees_only_vidrelay(
    relay: Relay, kling_a: FakeKlingUpstream
) -> None:
    await relay.declare(kling_channel("kling-a", kling_a, keys=(KEY_A1, KEY_A2)))
    image = tiny_image("PNG")
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        data={
            "prompt": "a red fox",
            "model": "kling-v3-pro",
            "seconds": "5",
            "size": "1080x1920",
            "generate_audio": "true",
        },
        files={"input_reference": ("fox.png", image, "image/png")},
    )
    assert response.status_code == 200, response.text
    video = await relay.finished(response.json()["id"])
    assert video["status"] == "completed", video

    [submitted] = kling_a.submits()
    assert submitted.path == "/v1/videos/image2video"
    assert submitted.body["model_name"] == "kling-v3"  # the channel's model_map
    assert (submitted.body["mode"], submitted.body["duration"]) == ("pro", "5")
    assert submitted.body["sound"] == "on"
    assert_fitted_reference(submitted.body["image"], (1080, 1920))
    [task_id] = kling_a.tasks
    polls = kling_a.requests_to(f"/v1/videos/image2video/{task_id}")
    assert polls and {poll.access_key for poll in polls} == {submitted.access_key}
    content = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=relay.auth)
    assert content.content == tiny_mp4()
    thumbnail = await relay.client.get(
        f"/v1/videos/{video['id']}/content?variant=thumbnail", headers=relay.auth
    )
    assert thumbnail.status_code == 200 and thumbnail.content  # derived by vidrelay
    assert_nothing_leaks(str(video), kling_a)
    await assert_charged(relay, PRICE_V3_PRO_5S_SOUND)


async def test_the_official_sdk_drives_a_kling_job_with_declared_parameters(
    relay: Relay, kling_a: FakeKlingUpstream
) -> None:
    await relay.declare(kling_channel("kling-a", kling_a))
    transport = httpx.ASGITransport(app=relay.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        client = openai.AsyncOpenAI(
            api_key=relay.key,
            base_url="http://testserver/v1",
            max_retries=0,
            http_client=http,
        )
        video = await client.videos.create(
            prompt="a lighthouse at dusk",
            model="kling-v3",  # type: ignore[arg-type]
            seconds="10",  # type: ignore[arg-type]
            size="720x1280",  # type: ignore[arg-type]
            extra_body={"generate_audio": True, "negative_prompt": "blurry, text"},
        )
        deadline = time.monotonic() + 15
        while video.status not in ("completed", "failed"):
            assert time.monotonic() < deadline, video
            await asyncio.sleep(0.05)
            video = await client.videos.retrieve(video.id)
        assert video.status == "completed", video
        content = await client.videos.download_content(video.id)
        assert await content.aread() == tiny_mp4()

    [submitted] = kling_a.submits()
    assert submitted.path == "/v1/videos/text2video"
    # a token of this submission names the task: a run after a crash can ask Kling for it
    assert re.fullmatch("[0-9a-f]{32}", submitted.body.pop("external_task_id"))
    assert submitted.body == {
        "model_name": "kling-v3",
        "prompt": "a lighthouse at dusk",
        "mode": "std",
        "aspect_ratio": "9:16",
        "duration": "10",
        "sound": "on",
        "negative_prompt": "blurry, text",
    }
    await assert_charged(relay, 1_260_000)  # 10 s at $0.126 a second, with sound


@pytest.mark.parametrize(
    "fault",
    ["rate_limit", "concurrency", "server_error", "unknown_status", "content_404", "expired_link"],
)
async def test_a_tolerated_fault_still_completes_the_job_charged_once(
    relay: Relay, kling_a: FakeKlingUpstream, fault: str
) -> None:
    kling_a.job_duration_s = 0.2
    if fault == "rate_limit":
        kling_a.rate_limit_submits = 2
        kling_a.retry_after = "0.2"
    elif fault == "concurrency":
        kling_a.concurrency_limit_submits = 1
        kling_a.retry_after = "0.2"
    elif fault == "server_error":
        kling_a.server_error_submits = 1
    elif fault == "unknown_status":
        kling_a.weird_status_s = 0.5
    elif fault == "content_404":
        kling_a.content_404s = 3
    else:  # the first link has expired by the time it is used: a fresh one is asked for
        kling_a.expired_links = 1
    await relay.declare(kling_channel("kling-a", kling_a))

    video = await relay.finished(await submit_v3(relay))

    assert video["status"] == "completed", video
    content = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=relay.auth)
    assert content.content == tiny_mp4()
    [task_id] = kling_a.tasks
    if fault == "expired_link":
        assert len(kling_a.requests_to(f"/cdn/{task_id}.mp4")) >= 2
    assert_nothing_leaks(str(video), kling_a)
    await assert_charged(relay, PRICE_V3_5S)


async def test_a_content_security_refusal_fails_the_job_cleanly_and_refunds_without_failover(
    relay: Relay, kling_a: FakeKlingUpstream, kling_b: FakeKlingUpstream
) -> None:
    kling_a.moderate_submits = True
    await two_tiers(relay, kling_a, kling_b)

    video = await relay.finished(await submit_v3(relay))

    assert video["status"] == "failed"
    assert video["error"]["code"] == "moderation_blocked"
    assert "content security policy" in video["error"]["message"]
    assert_nothing_leaks(str(video), kling_a, kling_b)
    assert "http" not in video["error"]["message"]
    assert kling_b.submits() == []  # another channel would refuse it too
    await assert_charged(relay, 0)


@pytest.mark.parametrize("reason", ["risk_control", "leaky"])
async def test_a_task_that_fails_upstream_fails_the_job_with_its_reason_and_refunds(
    relay: Relay, kling_a: FakeKlingUpstream, reason: str
) -> None:
    kling_a.fail_jobs = True
    if reason == "leaky":
        kling_a.failure_reason = (
            f"Render of task 831922345719271433 on 127.0.0.1:{kling_a.port} for "
            f"{KEY_A1} ran out of GPU"
        )
    await relay.declare(kling_channel("kling-a", kling_a))

    video = await relay.finished(await submit_v3(relay))

    assert video["status"] == "failed"
    message = video["error"]["message"]
    if reason == "risk_control":
        assert video["error"]["code"] == "moderation_blocked"
        assert message == DEFAULT_FAILURE
    else:
        assert video["error"]["code"] == "generation_failed"
        assert "ran out of GPU" in message and "831922345719271433" not in message
    assert_nothing_leaks(str(video), kling_a)
    await assert_charged(relay, 0)


@pytest.mark.parametrize("fault", ["balance_exhausted", "refused_credential", "plain_key"])
async def test_a_refused_or_exhausted_key_pair_benches_the_channel_and_the_job_goes_elsewhere(
    tmp_path: Path,
    database_url: str,
    kling_a: FakeKlingUpstream,
    kling_b: FakeKlingUpstream,
    fault: str,
) -> None:
    if fault == "balance_exhausted":
        kling_a.balance_exhausted = True
    elif fault == "refused_credential":
        kling_a.refuse_credentials = True
    keys = ("AKplainkeywithoutsecret",) if fault == "plain_key" else (KEY_A1,)
    # No probe meanwhile: listing tasks works with an empty balance and would re-enable it.
    async with running_relay(tmp_path / "data", database_url, channel_probe_s=60.0) as relay:
        await declare_kling_models(relay)
        await two_tiers(relay, kling_a, kling_b, keys=keys)

        for _ in range(2):
            video = await relay.finished(await submit_v3(relay))
            assert video["status"] == "completed", video
            assert_nothing_leaks(str(video), kling_a, kling_b)

        assert len(kling_a.submits()) == (0 if fault == "plain_key" else 1)  # then benched
        assert len(kling_b.submits()) == 2
        async with relay.context.db.read() as conn:
            channel = await find_channel(conn, "kling-a")
        assert channel is not None and channel.disabled_reason
        assert "refused" in channel.disabled_reason
        assert_nothing_leaks(channel.disabled_reason, kling_a, kling_b)
        await assert_charged(relay, 2 * PRICE_V3_5S)


async def test_a_video_that_stays_gone_fails_the_job_and_refunds(
    relay: Relay, kling_a: FakeKlingUpstream
) -> None:
    kling_a.content_404s = 10_000
    await relay.declare(kling_channel("kling-a", kling_a))
    video = await relay.finished(await submit_v3(relay))
    assert video["status"] == "failed"
    assert video["error"]["code"] == "content_unavailable"
    assert_nothing_leaks(str(video), kling_a)
    await assert_charged(relay, 0)


async def test_a_task_kling_keeps_losing_is_resubmitted_then_failed_and_refunded_once(
    relay: Relay, kling_a: FakeKlingUpstream
) -> None:
    kling_a.forget_tasks = True
    kling_a.job_duration_s = 5.0
    await relay.declare(kling_channel("kling-a", kling_a))
    video = await relay.finished(await submit_v3(relay))
    assert video["status"] == "failed"
    assert video["error"]["code"] == "upstream_job_lost"
    assert len(kling_a.submits()) > 1
    assert_nothing_leaks(str(video), kling_a)
    await assert_charged(relay, 0)


async def test_a_task_lost_once_is_submitted_again_and_completes(
    relay: Relay, kling_a: FakeKlingUpstream
) -> None:
    kling_a.forget_tasks = True
    kling_a.job_duration_s = 0.2
    await relay.declare(kling_channel("kling-a", kling_a))
    video_id = await submit_v3(relay)
    deadline = time.monotonic() + 10
    while not any(request.path.count("/") == 4 for request in kling_a.requests):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)  # until the first query, answered "task not found"
    kling_a.forget_tasks = False

    video = await relay.finished(video_id)

    assert video["status"] == "completed", video
    assert len(kling_a.submits()) == 2
    await assert_charged(relay, PRICE_V3_5S)


async def test_a_restarted_relay_queries_an_image_task_where_it_was_made(
    tmp_path: Path, kling_a: FakeKlingUpstream
) -> None:
    kling_a.job_duration_s = 1.0
    database_url = f"sqlite+aiosqlite:///{tmp_path}/v.db"
    image = tiny_image("JPEG")
    async with running_relay(tmp_path / "data", database_url) as relay:
        await declare_kling_models(relay)
        await relay.declare(kling_channel("kling-a", kling_a))
        response = await relay.client.post(
            "/v1/videos",
            headers=relay.auth,
            data={"prompt": "a kite", "model": "kling-v3", "seconds": "5"},
            files={"input_reference": ("kite.jpg", image, "image/jpeg")},
        )
        video_id = response.json()["id"]
        while not kling_a.submits():
            await relay.video(video_id)
        key = relay.key
    async with running_relay(tmp_path / "data", database_url) as relay:
        relay.key = key
        video = await relay.finished(video_id)
    assert video["status"] == "completed", video
    assert len(kling_a.submits()) == 1
    [task_id] = kling_a.tasks
    assert kling_a.requests_to(f"/v1/videos/image2video/{task_id}")
    assert kling_a.requests_to(f"/v1/videos/text2video/{task_id}") == []
