"""Jobs on `dashscope` channels end to end: vidrelay's real adapter, engine and store (SQLite and
PostgreSQL) in front of fake DashScopes speaking the Wan wire protocol over real HTTP, with the
shipped Wan models declared and priced. For every fault the job ends `completed` or `failed`,
the balance is exact (charged once, refunded once), and no task id, host or key reaches the
client."""

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
from tests.fakes.dashscope_upstream import FakeDashScope
from tests.fakes.media import assert_fitted_reference, tiny_image, tiny_mp4
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.services.catalog import declare_models, set_price
from vidrelay.shipped_models import ShippedModel, shipped_models
from vidrelay.upstreams import dashscope

SHIPPED = {entry.model.name: entry for entry in shipped_models()}
T2V, I2V = SHIPPED["wan2.7-t2v"], SHIPPED["wan2.6-i2v"]
MODEL_MAP = {"wan2.7-t2v": "wan2.7-t2v", "wan2.6-i2v": "wan2.6-i2v-us"}  # the US region's id
KEY_A, KEY_B = "sk-ds-a1-0001-abcdef", "sk-ds-b1-0001-ghijkl"
PRICE_5S_1080P = 750_000  # $0.15 a second, the default resolution
PRICE_5S_720P = 500_000


@pytest.fixture
def vendor_a() -> Iterator[FakeDashScope]:
    fake = FakeDashScope(keys={KEY_A})
    with fake.serve():
        yield fake


@pytest.fixture
def vendor_b() -> Iterator[FakeDashScope]:
    fake = FakeDashScope(keys={KEY_B})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(tmp_path: Path, database_url: str) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path / "data", database_url) as relay:
        await declare_shipped(relay, T2V, I2V)
        yield relay


async def declare_shipped(relay: Relay, *entries: ShippedModel) -> None:
    await declare_models(relay.context.db, [entry.model for entry in entries], actor=CLI)
    for entry in entries:
        for price in entry.prices():
            await set_price(relay.context.db, price, actor=CLI)
    relay.context.models.invalidate()


def wan_channel(name: str, base_url: str, **overrides: Any) -> Channel:
    values: dict[str, Any] = {
        "name": name,
        "protocol": ChannelProtocol.DASHSCOPE,
        "route_class": RouteClass.OFFICIAL,
        "models": tuple(MODEL_MAP),
        "model_map": MODEL_MAP,
        "base_url": base_url,
        "keys": (KEY_A,),
    }
    values.update(overrides)
    return Channel(**values).validate(catalog_models=None)


async def two_tiers(relay: Relay, a: FakeDashScope, b: FakeDashScope, **a_overrides: Any) -> None:
    """vendor-a is preferred (priority 10); vendor-b is the fallback."""
    await relay.declare(
        wan_channel("vendor-a", a.url, priority=10, **a_overrides),
        wan_channel("vendor-b", b.url, keys=(KEY_B,), priority=0),
    )


def assert_nothing_upstream_shows(video: dict[str, Any], *fakes: FakeDashScope) -> None:
    text = str(video)
    for fake in fakes:
        for task_id in fake.tasks:
            assert task_id not in text, text
        assert f":{fake.port}" not in text and f":{fake.cdn_port}" not in text
    assert "127.0.0.1" not in text and "sk-ds" not in text


async def test_a_job_driven_by_the_official_sdk_runs_on_wan_with_its_parameters(
    relay: Relay, vendor_a: FakeDashScope
) -> None:
    await relay.declare(wan_channel("vendor-a", vendor_a.url))
    http_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=relay.app), base_url="http://testserver"
    )
    client = openai.AsyncOpenAI(
        api_key=relay.key, base_url="http://testserver/v1", max_retries=0, http_client=http_client
    )
    try:
        created = await client.videos.create(
            model="wan2.7-t2v",
            prompt="a lighthouse at dusk",
            seconds="5",  # type: ignore[arg-type]
            size="720x1280",
            extra_body={
                "resolution": "720p",
                "seed": 7,
                "negative_prompt": "blurry",
                "prompt_extend": False,
            },
        )
        deadline = time.monotonic() + 15
        video = created
        while video.status not in ("completed", "failed"):
            assert time.monotonic() < deadline, video
            await asyncio.sleep(0.05)
            video = await client.videos.retrieve(created.id)
        assert video.status == "completed", video
        content = await client.videos.download_content(video.id)
        assert content.content == tiny_mp4()
    finally:
        await client.close()
    [submitted] = vendor_a.submits()
    assert submitted.key == KEY_A and submitted.headers["x-dashscope-async"] == "enable"
    assert submitted.body == {
        "model": "wan2.7-t2v",
        "input": {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry"},
        "parameters": {
            "resolution": "720P",
            "ratio": "9:16",
            "duration": 5,
            "prompt_extend": False,
            "watermark": False,  # the declared default, filled in
            "seed": 7,
        },
    }
    [task_id] = vendor_a.tasks
    assert {poll.key for poll in vendor_a.requests_to(f"/api/v1/tasks/{task_id}")} == {KEY_A}
    assert_nothing_upstream_shows(video.model_dump(), vendor_a)
    assert video.id.startswith("video_")
    assert await relay.money() == (STARTING_BALANCE - PRICE_5S_720P,) * 2


async def test_an_image_job_goes_to_the_mapped_i2v_model_with_the_image_inline(
    relay: Relay, vendor_a: FakeDashScope
) -> None:
    await relay.declare(wan_channel("vendor-a", vendor_a.url))
    image = tiny_image("PNG")
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        data={"prompt": "the fox runs", "model": "wan2.6-i2v", "seconds": "10"},
        files={"input_reference": ("fox.png", image, "image/png")},
    )
    assert response.status_code == 200, response.text
    video = await relay.finished(response.json()["id"], timeout_s=15)
    assert video["status"] == "completed", video
    [submitted] = vendor_a.submits()
    img_url = submitted.body["input"]["img_url"]
    assert_fitted_reference(img_url, (1920, 1080))
    assert submitted.body == {
        "model": "wan2.6-i2v-us",
        "input": {"prompt": "the fox runs", "img_url": img_url},
        "parameters": {
            "resolution": "1080P",
            "duration": 10,
            "prompt_extend": True,
            "audio": True,
            "shot_type": "single",
            "watermark": False,
        },
    }
    assert_nothing_upstream_shows(video, vendor_a)
    assert await relay.money() == (STARTING_BALANCE - 2 * PRICE_5S_1080P,) * 2


async def test_the_same_model_without_an_image_goes_to_its_text_to_video_twin(
    relay: Relay, vendor_a: FakeDashScope
) -> None:
    await relay.declare(wan_channel("vendor-a", vendor_a.url))
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        json={"prompt": "a kite", "model": "wan2.6-i2v", "size": "1280x720", "resolution": "720p"},
    )
    assert response.status_code == 200, response.text
    assert (await relay.finished(response.json()["id"], timeout_s=15))["status"] == "completed"
    [submitted] = vendor_a.submits()
    assert submitted.body is not None
    assert submitted.body["model"] == "wan2.6-t2v-us"
    assert submitted.body["parameters"]["size"] == "1280*720"
    assert await relay.money() == (STARTING_BALANCE - PRICE_5S_720P,) * 2


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("rate_limited", "completed"),
        ("refused_key", "completed"),
        ("balance_exhausted", "completed"),
        ("moderation", "failed"),
        ("task_failed", "failed"),
        ("task_canceled", "failed"),
        ("content_404_then_200", "completed"),
        ("expired_url", "completed"),
        ("unknown_status_word", "completed"),
        ("task_not_found", "completed"),
    ],
)
async def test_each_fault_ends_the_job_with_an_exact_balance_and_nothing_upstream_shown(
    relay: Relay,
    vendor_a: FakeDashScope,
    vendor_b: FakeDashScope,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    outcome: str,
) -> None:
    a_overrides: dict[str, Any] = {}
    if fault == "rate_limited":
        vendor_a.submit_429s = 1
        vendor_a.retry_after = "0.2"
    elif fault == "refused_key":
        a_overrides["keys"] = ("sk-ds-wrong-0000-zzzzzz",)
    elif fault == "balance_exhausted":
        vendor_a.arrearage = True
    elif fault == "moderation":
        vendor_a.moderate_submits = True
    elif fault == "task_failed":
        vendor_a.fail_tasks = True
    elif fault == "task_canceled":
        vendor_a.cancel_tasks = True
    elif fault == "content_404_then_200":
        vendor_a.content_404s = 2
    elif fault == "expired_url":
        vendor_a.expire_urls = 1
    elif fault == "unknown_status_word":
        vendor_a.job_duration_s = 0.5
        vendor_a.weird_status_s = 0.4
    else:
        vendor_a.forget_tasks = 1
        monkeypatch.setattr(dashscope.adapter, "UNKNOWN_GRACE_S", 0.0)
    await two_tiers(relay, vendor_a, vendor_b, **a_overrides)

    video = await relay.finished(await relay.submit(model="wan2.7-t2v", seconds="5"), 15)

    assert video["status"] == outcome, video
    charged = PRICE_5S_1080P if outcome == "completed" else 0
    assert await relay.money() == (STARTING_BALANCE - charged,) * 2
    assert_nothing_upstream_shows(video, vendor_a, vendor_b)
    a_submits, b_submits = len(vendor_a.submits()), len(vendor_b.submits())
    if fault in ("refused_key", "balance_exhausted"):
        assert (a_submits, b_submits) == (1, 1)  # the key is benched, the job goes elsewhere
    elif fault == "rate_limited":
        assert a_submits + b_submits == 2
    elif fault == "task_not_found":
        assert a_submits + b_submits == 2  # submitted again, charged once
    else:
        assert (a_submits, b_submits) == (1, 0)
    if fault in ("content_404_then_200", "expired_url"):
        [task_id] = vendor_a.tasks
        cdn = vendor_a.requests_to(f"/cdn/{task_id}.mp4")
        assert len(cdn) == (3 if fault == "content_404_then_200" else 2)
        assert all("authorization" not in fetch.headers for fetch in cdn)
    if outcome == "completed":
        content = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=relay.auth)
        assert content.content == tiny_mp4()
        return
    error = video["error"]
    if fault == "moderation":
        assert error["code"] == "moderation_blocked"
        assert "inappropriate content" in error["message"]
    elif fault == "task_failed":
        assert error["code"] == "generation_failed"
        assert "could not be generated" in error["message"]
    else:
        assert "canceled" in error["message"]


async def test_a_video_that_stays_gone_fails_the_job_and_refunds(
    relay: Relay, vendor_a: FakeDashScope
) -> None:
    vendor_a.content_404s = 10_000
    await relay.declare(wan_channel("vendor-a", vendor_a.url))
    video = await relay.finished(await relay.submit(model="wan2.7-t2v", seconds="5"), 15)
    assert video["status"] == "failed"
    assert video["error"]["code"] == "content_unavailable"
    assert_nothing_upstream_shows(video, vendor_a)
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


async def test_a_size_wan_lacks_is_refused_at_create_and_nothing_is_charged(
    relay: Relay, vendor_a: FakeDashScope
) -> None:
    await relay.declare(wan_channel("vendor-a", vendor_a.url))
    for fields in ({"size": "832x480"}, {"seconds": "20"}, {"seconds": "4", "model": "wan2.6-i2v"}):
        response = await relay.create(**{"model": "wan2.7-t2v", **fields})
        assert response.status_code == 400, response.text
    assert vendor_a.submits() == []
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)
