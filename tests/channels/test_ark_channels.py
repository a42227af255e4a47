"""Jobs on `ark` channels end to end: vidrelay's real adapter, engine and store in front of a
fake Volcengine Ark over real HTTP, selling the shipped `seedance-1-5-pro` at its list price.
For every fault the job ends `completed` or `failed`, the balance is exact (charged once,
refunded exactly once on failure), nothing is stuck, and no task id, host or key reaches the
client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from tests.channels.relay import STARTING_BALANCE, Relay, running_relay
from tests.fakes.ark_upstream import TASKS, FakeArkUpstream
from tests.fakes.media import assert_fitted_reference, tiny_image, tiny_mp4
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.services.catalog import declare_models, set_price
from vidrelay.shipped_models import shipped_models

MODEL = "seedance-1-5-pro"
ARK_MODEL = "doubao-seedance-1-5-pro-251215"
KEY_1, KEY_2 = "ark-key-0001-abcdefghijkl", "ark-key-0002-mnopqrstuvwx"
PRICE_5S = 259_200  # 5 s at the defaults, 720p with sound: $0.05184 a second
PRICE_8S_480P_SILENT = 96_424  # 8 s at 480p without sound: $0.012053 a second


@pytest.fixture
def ark() -> Iterator[FakeArkUpstream]:
    fake = FakeArkUpstream(keys={KEY_1, KEY_2})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(tmp_path: Path, database_url: str) -> AsyncIterator[Relay]:
    """On SQLite and on PostgreSQL, with the shipped model declared at its list price."""
    async with running_relay(tmp_path / "data", database_url) as relay:
        entry = next(entry for entry in shipped_models() if entry.model.name == MODEL)
        await declare_models(relay.context.db, [entry.model], actor=CLI)
        for price in entry.prices():
            await set_price(relay.context.db, price, actor=CLI)
        relay.context.models.invalidate()
        yield relay


def ark_channel(name: str, base_url: str, **overrides: Any) -> Channel:
    values: dict[str, Any] = {
        "name": name,
        "protocol": ChannelProtocol.ARK,
        "route_class": RouteClass.OFFICIAL,
        "models": (MODEL,),
        "model_map": {MODEL: ARK_MODEL},
        "base_url": base_url,
        "keys": (KEY_1,),
    }
    values.update(overrides)
    return Channel(**values).validate(None)


async def submit(relay: Relay, **fields: str) -> str:
    return await relay.submit(model=MODEL, seconds="5", **fields)


def assert_nothing_leaks(video: dict[str, Any], fake: FakeArkUpstream) -> None:
    text = str(video)
    for leak in ("127.0.0.1", f":{fake.port}", f":{fake.cdn_port}", KEY_1, KEY_2, "cgt-"):
        assert leak not in text, text
    for task_id in fake.tasks:
        assert task_id not in text


def keys_of_submits(fake: FakeArkUpstream) -> list[str | None]:
    return [sent.key for sent in fake.submits()]


async def test_a_job_made_with_the_official_sdk_reaches_ark_as_its_own_body(
    relay: Relay, ark: FakeArkUpstream
) -> None:
    await relay.declare(ark_channel("ark-a", ark.url))
    http_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=relay.app), base_url="http://testserver"
    )
    client = openai.AsyncOpenAI(
        api_key=relay.key,
        base_url="http://testserver/v1",
        max_retries=0,
        http_client=http_client,
    )
    try:
        made = await client.videos.create(
            prompt="a paper boat on a stream",
            model=MODEL,  # type: ignore[arg-type]
            size="720x1280",
            seconds="8",
            extra_body={
                "resolution": "480p",
                "generate_audio": False,
                "seed": 42,
                "camera_fixed": True,
            },
        )
        finished = await client.videos.poll(made.id, poll_interval_ms=50)
        assert finished.status == "completed", finished
        assert (finished.model, finished.seconds, finished.size) == (MODEL, "8", "720x1280")
        content = await client.videos.download_content(made.id)
        assert content.content == tiny_mp4()
    finally:
        await client.close()

    [sent] = ark.submits()
    assert sent.key == KEY_1 and sent.path == TASKS
    assert sent.body == {
        "model": ARK_MODEL,
        "content": [{"type": "text", "text": "a paper boat on a stream"}],
        "ratio": "9:16",
        "resolution": "480p",
        "duration": 8,
        "generate_audio": False,
        "seed": 42,
        "camera_fixed": True,
        "watermark": False,
    }
    [task_id] = ark.tasks
    assert {poll.key for poll in ark.requests_to(f"{TASKS}/{task_id}")} == {KEY_1}
    [download] = ark.requests_to(f"/tos/{task_id}.mp4")
    assert "authorization" not in download.headers
    assert_nothing_leaks(finished.model_dump(), ark)
    assert await relay.money() == (STARTING_BALANCE - PRICE_8S_480P_SILENT,) * 2


async def test_an_input_reference_reaches_ark_as_the_first_frame(
    relay: Relay, ark: FakeArkUpstream
) -> None:
    await relay.declare(ark_channel("ark-a", ark.url))
    image = tiny_image("PNG")
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        data={"prompt": "the fox turns its head", "model": MODEL, "size": "1280x720"},
        files={"input_reference": ("fox.png", image, "image/png")},
    )
    assert response.status_code == 200, response.text
    video = await relay.finished(response.json()["id"])
    assert video["status"] == "completed", video
    [sent] = ark.submits()
    first_frame = sent.body["content"][1]
    assert_fitted_reference(first_frame["image_url"]["url"], (1280, 720))
    assert (first_frame["type"], first_frame["role"]) == ("image_url", "first_frame")
    assert (sent.body["ratio"], sent.body["resolution"], sent.body["duration"]) == (
        "16:9",
        "720p",
        5,
    )
    assert await relay.money() == (STARTING_BALANCE - PRICE_5S,) * 2


@pytest.mark.parametrize(
    "fault",
    [
        "rate_limited",
        "poll_rate_limited",
        "unknown_status",
        "content_404_then_200",
        "expired_url",
        "task_not_found",
    ],
)
async def test_faults_ark_recovers_from_still_complete_the_job_charged_once(
    relay: Relay, ark: FakeArkUpstream, fault: str
) -> None:
    ark.job_duration_s = 0.3
    ark.retry_after = "0.2"
    if fault == "rate_limited":
        ark.submit_429s = 2
    elif fault == "poll_rate_limited":
        ark.poll_429s = 2
    elif fault == "unknown_status":
        ark.weird_status_s = 0.6
    elif fault == "content_404_then_200":
        ark.cdn_404s = 3
    elif fault == "expired_url":
        ark.expired_urls = 1
    else:
        ark.lose_tasks = 1
    await relay.declare(ark_channel("ark-a", ark.url))

    video = await relay.finished(await submit(relay), timeout_s=20)

    assert video["status"] == "completed", video
    content = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=relay.auth)
    assert content.content == tiny_mp4()
    expected_submits = {"rate_limited": 3, "task_not_found": 2}.get(fault, 1)
    assert len(ark.submits()) == expected_submits
    assert_nothing_leaks(video, ark)
    assert await relay.money() == (STARTING_BALANCE - PRICE_5S,) * 2


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("moderation", "moderation_blocked", "may contain sensitive information"),
        ("job_fails", "moderation_blocked", "output video may contain sensitive information"),
        ("cancelled", "cancelled", "cancelled"),
        ("bad_parameter", "upstream_rejected", "`ratio`"),
    ],
)
async def test_a_job_ark_refuses_or_fails_is_failed_with_a_clean_reason_and_refunded_once(
    relay: Relay, ark: FakeArkUpstream, fault: str, code: str, words: str
) -> None:
    if fault == "moderation":
        ark.moderate_submits = True
    elif fault == "job_fails":
        ark.fail_jobs = True
    elif fault == "cancelled":
        ark.fail_jobs, ark.end_status, ark.failure_error = True, "cancelled", None
    else:
        ark.reject_parameter = "ratio"
    second = FakeArkUpstream(keys={KEY_1})
    with second.serve():
        await relay.declare(
            ark_channel("ark-a", ark.url, priority=10), ark_channel("ark-b", second.url)
        )
        video = await relay.finished(await submit(relay))
        assert second.submits() == []  # another channel would refuse it too
    assert video["status"] == "failed", video
    assert video["error"]["code"] == code
    assert words in video["error"]["message"]
    assert_nothing_leaks(video, ark)
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


@pytest.mark.parametrize("fault", ["refused_key", "exhausted_balance"])
async def test_a_refused_or_broke_key_is_benched_and_the_pools_other_key_does_the_work(
    relay: Relay, ark: FakeArkUpstream, fault: str
) -> None:
    ark.keys = {KEY_2} if fault == "refused_key" else {KEY_1, KEY_2}
    ark.overdue_keys = {KEY_1} if fault == "exhausted_balance" else set()
    await relay.declare(ark_channel("ark-a", ark.url, keys=(KEY_1, KEY_2)))

    first = await relay.finished(await submit(relay), timeout_s=20)
    second = await relay.finished(await submit(relay), timeout_s=20)

    assert (first["status"], second["status"]) == ("completed", "completed")
    assert keys_of_submits(ark) == [KEY_1, KEY_2, KEY_2]  # benched after one refusal
    assert await relay.money() == (STARTING_BALANCE - 2 * PRICE_5S,) * 2


async def test_a_model_moves_from_a_failing_ark_channel_to_an_openai_one_and_is_charged_once(
    relay: Relay, ark: FakeArkUpstream
) -> None:
    ark.submit_500s = 100
    fallback = FakeOpenAIUpstream(keys={"sk-up-b1"})
    with fallback.serve():
        await relay.declare(
            ark_channel("ark-a", ark.url, priority=10),
            Channel(
                name="relay-b",
                protocol=ChannelProtocol.OPENAI,
                route_class=RouteClass.OFFICIAL,
                models=(MODEL,),
                model_map={MODEL: "seedance-1.5-pro-via-relay"},
                base_url=fallback.url,
                keys=("sk-up-b1",),
                priority=0,
            ).validate(None),
        )
        video = await relay.finished(await submit(relay), timeout_s=20)
        assert video["status"] == "completed", video
        [forwarded] = fallback.requests_to("/v1/videos", "POST")
    assert len(ark.submits()) == 1
    assert forwarded.form["model"] == "seedance-1.5-pro-via-relay"
    assert (forwarded.form["seconds"], forwarded.form["size"]) == ("5", "1280x720")
    assert forwarded.form["resolution"] == "720p"  # the declared parameters travel along
    assert_nothing_leaks(video, ark)
    assert await relay.money() == (STARTING_BALANCE - PRICE_5S,) * 2
