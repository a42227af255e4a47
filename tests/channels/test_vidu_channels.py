"""Jobs on `vidu` channels, end to end: vidrelay's engine, store and the real `vidu` adapter in
front of a fake Vidu API over real HTTP, on SQLite and PostgreSQL, for the shipped Vidu models.

For every fault the job ends `completed` or `failed`, is charged once and refunded exactly once
when it fails, nothing is left running, and no task id, host or key reaches the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from tests.channels.relay import STARTING_BALANCE, Relay, running_relay
from tests.fakes.media import assert_fitted_reference, tiny_image, tiny_mp4
from tests.fakes.vidu_upstream import FakeViduUpstream
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.services.catalog import declare_models, set_price
from vidrelay.shipped_models import ShippedModel, shipped_models
from vidrelay.store.channels import find_channel

KEYS = ("vidu-key-a1-000001", "vidu-key-a2-000002")
SHIPPED = {entry.model.name: entry for entry in shipped_models() if entry.protocol.value == "vidu"}
Q3_720P_4S = 600_000  # viduq3-pro at its default 720p: $0.15 a second, 4 s


@pytest.fixture
def vidu() -> Iterator[FakeViduUpstream]:
    fake = FakeViduUpstream(keys=set(KEYS))
    with fake.serve():
        yield fake


@pytest.fixture
def vidu_b() -> Iterator[FakeViduUpstream]:
    fake = FakeViduUpstream(keys={"vidu-key-b1-000001"})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(tmp_path: Path, database_url: str) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path / "data", database_url) as relay:
        entries = list(SHIPPED.values())
        await declare_models(relay.context.db, [entry.model for entry in entries], actor=CLI)
        for entry in entries:
            for price in entry.prices():
                await set_price(relay.context.db, price, actor=CLI)
        relay.context.models.invalidate()
        yield relay


def vidu_channel(name: str, fake: FakeViduUpstream, **overrides: Any) -> Channel:
    entries: list[ShippedModel] = list(SHIPPED.values())
    values: dict[str, Any] = {
        "name": name,
        "protocol": ChannelProtocol.VIDU,
        "route_class": RouteClass.OFFICIAL,
        "models": tuple(entry.model.name for entry in entries),
        "model_map": {entry.model.name: entry.upstream_model for entry in entries},
        "base_url": fake.url,
        "keys": KEYS,
    }
    values.update(overrides)
    return Channel(**values).validate(catalog_models=None)


def assert_nothing_leaks(video: dict[str, Any], *fakes: FakeViduUpstream) -> None:
    text = str(video)
    for fake in fakes:
        for secret in (*fake.tasks, f":{fake.port}", f":{fake.cdn_port}", "127.0.0.1", *KEYS):
            assert secret not in text, (secret, text)
    assert "vidu-key" not in text


async def test_the_official_sdk_drives_a_vidu_job_from_create_to_download(
    relay: Relay, vidu: FakeViduUpstream
) -> None:
    await relay.declare(vidu_channel("vidu", vidu))
    client = openai.AsyncOpenAI(
        api_key=relay.key,
        base_url="http://testserver/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=relay.app), base_url="http://testserver"
        ),
    )
    created = await client.videos.create(
        model="viduq3-pro",
        prompt="a red fox in the snow",
        seconds="8",
        size="1280x720",
        extra_body={"resolution": "1080p", "generate_audio": False, "seed": 42},
    )
    deadline = time.monotonic() + 15
    video = await client.videos.retrieve(created.id)
    while video.status not in ("completed", "failed"):
        assert time.monotonic() < deadline, video
        await asyncio.sleep(0.05)
        video = await client.videos.retrieve(created.id)
    assert video.status == "completed", video
    content = await client.videos.download_content(created.id)
    assert content.read() == tiny_mp4()
    await client.close()

    [submitted] = vidu.submits()
    assert (submitted.path, submitted.key) == ("/ent/v2/text2video", KEYS[0])
    assert submitted.json == {
        "model": "viduq3-pro",
        "prompt": "a red fox in the snow",
        "duration": 8,
        "resolution": "1080p",
        "aspect_ratio": "16:9",
        "audio": False,
        "seed": 42,
    }
    [task_id] = vidu.tasks
    polls = vidu.requests_to(f"/ent/v2/tasks/{task_id}/creations")
    assert polls and {poll.key for poll in polls} == {KEYS[0]}  # the submitting key
    assert_nothing_leaks(video.model_dump(), vidu)
    assert await relay.money() == (STARTING_BALANCE - 1_280_000,) * 2  # $0.16 x 8 s at 1080p


async def test_an_image_job_goes_to_img2video_with_the_image_as_a_data_url(
    relay: Relay, vidu: FakeViduUpstream
) -> None:
    await relay.declare(vidu_channel("vidu", vidu))
    image = tiny_image("PNG")
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        data={"prompt": "the fox turns its head", "model": "viduq1", "size": "1080x1920"},
        files={"input_reference": ("fox.png", image, "image/png")},
    )
    assert response.status_code == 200, response.text
    video = await relay.finished(response.json()["id"], timeout_s=15)
    assert video["status"] == "completed", video

    [submitted] = vidu.submits()
    assert submitted.path == "/ent/v2/img2video" and submitted.json is not None
    [sent_image] = submitted.json["images"]
    assert_fitted_reference(sent_image, (1080, 1920))
    assert {k: submitted.json[k] for k in ("model", "duration", "resolution", "bgm")} == {
        "model": "viduq1",
        "duration": 5,
        "resolution": "1080p",
        "bgm": False,
    }
    assert "aspect_ratio" not in submitted.json and "style" not in submitted.json
    assert await relay.money() == (STARTING_BALANCE - 400_000,) * 2  # $0.08 x 5 s


FAULTS: dict[str, tuple[dict[str, Any], str, str | None]] = {
    # fault: (fake attributes, final status, error code)
    "rate_limited_submits": ({"rate_limited_submits": 2, "retry_after": "0.2"}, "completed", None),
    "rate_limited_polls": ({"rate_limited_polls": 3, "retry_after": "0"}, "completed", None),
    "unknown_state_word": ({"unknown_state_s": 0.6}, "completed", None),
    "content_404_then_200": ({"content_404s": 2}, "completed", None),
    "expired_content_url": ({"expired_urls": 1}, "completed", None),
    "moderation_refusal": ({"moderate_submits": True}, "failed", "moderation_blocked"),
    "generated_video_refused": (
        {"fail_tasks_with": "CreationPolicyViolation"},
        "failed",
        "moderation_blocked",
    ),
    "upstream_failure": (
        {"fail_tasks_with": "InternalServiceFailure"},
        "failed",
        "generation_failed",
    ),
    "task_not_found": ({"lose_tasks": True}, "failed", "upstream_job_lost"),
    "content_url_stays_expired": ({"url_ttl_s": -60}, "failed", "content_unavailable"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_each_fault_ends_the_job_with_exact_money_and_nothing_leaked(
    relay: Relay, vidu: FakeViduUpstream, fault: str
) -> None:
    attributes, status, code = FAULTS[fault]
    vidu.job_duration_s = 0.3
    vidu.moderation_message = "submit is illegal: task {task_id} on {host} with key {key}"
    for name, value in attributes.items():
        setattr(vidu, name, value)
    await relay.declare(vidu_channel("vidu", vidu))

    video = await relay.finished(await relay.submit(model="viduq3-pro"), timeout_s=20)

    assert video["status"] == status, video
    charged = Q3_720P_4S if status == "completed" else 0
    assert await relay.money() == (STARTING_BALANCE - charged,) * 2
    assert_nothing_leaks(video, vidu)
    if status == "completed":
        content = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=relay.auth)
        assert content.content == tiny_mp4()
    else:
        assert video["error"]["code"] == code, video
    if fault == "moderation_refusal":
        assert "illegal" in video["error"]["message"]
        assert len(vidu.submits()) == 1  # another channel would refuse it too
    if fault == "task_not_found":
        assert len(vidu.submits()) == 3  # submitted again after each loss, then given up
    if fault == "rate_limited_submits":
        assert len(vidu.submits()) == 3


async def test_a_refused_key_is_benched_and_the_next_key_of_the_pool_serves(
    relay: Relay, vidu: FakeViduUpstream
) -> None:
    await relay.declare(vidu_channel("vidu", vidu, keys=("vidu-key-wrong-0001", KEYS[1])))
    for _ in range(2):
        video = await relay.finished(await relay.submit(model="viduq3-pro"), timeout_s=15)
        assert video["status"] == "completed", video
    assert [sent.key for sent in vidu.submits()] == ["vidu-key-wrong-0001", KEYS[1], KEYS[1]]
    assert await relay.money() == (STARTING_BALANCE - 2 * Q3_720P_4S,) * 2


async def test_an_exhausted_balance_benches_the_key_and_the_job_runs_on_another_channel(
    relay: Relay, vidu: FakeViduUpstream, vidu_b: FakeViduUpstream
) -> None:
    vidu.balance_exhausted = True
    await relay.declare(
        vidu_channel("vidu-a", vidu, keys=(KEYS[0],), priority=10),
        vidu_channel("vidu-b", vidu_b, keys=("vidu-key-b1-000001",)),
    )
    for _ in range(2):
        video = await relay.finished(await relay.submit(model="viduq3-pro"), timeout_s=15)
        assert video["status"] == "completed", video
        assert_nothing_leaks(video, vidu, vidu_b)
    assert len(vidu.submits()) == 1  # benched after its refusal: the second job skips it
    assert len(vidu_b.submits()) == 2
    async with relay.context.db.read() as conn:
        benched = await find_channel(conn, "vidu-a")
    assert benched is not None and benched.disabled_reason  # the probe sees no credits either
    assert "credits" in benched.disabled_reason.lower() and KEYS[0] not in benched.disabled_reason
    assert await relay.money() == (STARTING_BALANCE - 2 * Q3_720P_4S,) * 2
