"""Jobs on `minimax`-protocol channels, end to end: vidrelay's real adapter, engine and store in
front of a fake MiniMax video API over real HTTP, for a shipped model (`minimax-hailuo-2.3`)
mapped to MiniMax's own id. For every fault the job ends `completed` or `failed`, the balance is
exact (charged once, refunded exactly once on failure), and no MiniMax task id, host or key
reaches the client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from tests.channels.relay import STARTING_BALANCE, Relay, running_relay
from tests.fakes.media import assert_fitted_reference, tiny_image, tiny_mp4
from tests.fakes.minimax_upstream import FakeMiniMaxUpstream
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.services.catalog import declare_models, set_price
from vidrelay.shipped_models import shipped_models

MODEL = "minimax-hailuo-2.3"
UPSTREAM_MODEL = "MiniMax-Hailuo-2.3"
KEY_A, KEY_B = "sk-mm-a1-0123456789", "sk-mm-b1-9876543210"
ENTRY = next(entry for entry in shipped_models() if entry.model.name == MODEL)
PRICE_6S = 280_000  # MiniMax's list price of a 6 s video at 768P: $0.28
PRICE_10S = 560_000  # and of a 10 s one: $0.56


@pytest.fixture
def vendor_a() -> Iterator[FakeMiniMaxUpstream]:
    fake = FakeMiniMaxUpstream(keys={KEY_A})
    with fake.serve():
        yield fake


@pytest.fixture
def vendor_b() -> Iterator[FakeMiniMaxUpstream]:
    fake = FakeMiniMaxUpstream(keys={KEY_B})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(tmp_path: Path, database_url: str) -> AsyncIterator[Relay]:
    """On SQLite and on PostgreSQL, with the shipped model declared at its list price."""
    async with running_relay(tmp_path / "data", database_url) as relay:
        await declare_models(relay.context.db, [ENTRY.model], actor=CLI)
        for price in ENTRY.prices():
            await set_price(relay.context.db, price, actor=CLI)
        relay.context.models.invalidate()
        yield relay


def minimax_channel(name: str, fake: FakeMiniMaxUpstream, key: str, **overrides: Any) -> Channel:
    values: dict[str, Any] = {
        "name": name,
        "protocol": ChannelProtocol.MINIMAX,
        "route_class": RouteClass.OFFICIAL,
        "models": (MODEL,),
        "model_map": {MODEL: UPSTREAM_MODEL},
        "base_url": fake.url,
        "keys": (key,),
    }
    values.update(overrides)
    return Channel(**values).validate(catalog_models=None)


async def submit(relay: Relay, **fields: str) -> str:
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        data={"prompt": "a lighthouse at dusk", "model": MODEL, "seconds": "6", **fields},
    )
    assert response.status_code == 200, response.text
    video_id: str = response.json()["id"]
    return video_id


def assert_nothing_leaks(video: dict[str, Any], *fakes: FakeMiniMaxUpstream) -> None:
    text = str(video)
    for fake in fakes:
        for task_id in fake.jobs:
            assert task_id not in text
        assert f":{fake.port}" not in text and f":{fake.cdn_port}" not in text
    assert "sk-mm" not in text and "127.0.0.1" not in text
    assert video["id"].startswith("video_")


async def test_the_official_sdk_runs_a_job_on_minimax_and_sees_only_vidrelay(
    relay: Relay, vendor_a: FakeMiniMaxUpstream
) -> None:
    await relay.declare(minimax_channel("minimax-a", vendor_a, KEY_A))
    client = openai.AsyncOpenAI(
        api_key=relay.key,
        base_url="http://testserver/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=relay.app), base_url="http://testserver"
        ),
    )
    async with client:
        created = await client.videos.create(
            prompt="a paper boat on a rainy street",
            model=MODEL,
            seconds="6",
            size="1280x720",
            extra_body={"prompt_optimizer": False, "aigc_watermark": True},
        )
        video = await client.videos.poll(created.id, poll_interval_ms=50)
        content = await client.videos.download_content(video.id)

    assert video.status == "completed", video
    assert (video.model, video.seconds, video.size) == (MODEL, "6", "1280x720")
    assert content.read() == tiny_mp4()
    [sent] = vendor_a.submits()
    assert sent.key == KEY_A
    assert sent.json == {
        "model": UPSTREAM_MODEL,
        "prompt": "a paper boat on a rainy street",
        "duration": 6,
        "resolution": "768P",
        "prompt_optimizer": False,
        "fast_pretreatment": False,  # the declared default, filled in
        "aigc_watermark": True,
    }
    assert_nothing_leaks(video.model_dump(), vendor_a)
    assert await relay.money() == (STARTING_BALANCE - PRICE_6S,) * 2


async def test_the_reference_image_reaches_minimax_as_the_first_frame(
    relay: Relay, vendor_a: FakeMiniMaxUpstream
) -> None:
    await relay.declare(minimax_channel("minimax-a", vendor_a, KEY_A))
    image = tiny_image("PNG")
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        data={"prompt": "a red fox", "model": MODEL, "seconds": "10", "size": "1366x768"},
        files={"input_reference": ("fox.png", image, "image/png")},
    )
    assert response.status_code == 200, response.text
    video = await relay.finished(response.json()["id"])
    assert video["status"] == "completed", video
    [sent] = vendor_a.submits()
    assert_fitted_reference(sent.json["first_frame_image"], (1366, 768))
    assert (sent.json["duration"], sent.json["resolution"]) == (10, "768P")
    price_10s = PRICE_10S
    assert await relay.money() == (STARTING_BALANCE - price_10s,) * 2


@pytest.mark.parametrize(
    "quirk",
    [
        "walks_the_status_words",
        "rate_limited",
        "unknown_status_word",
        "video_404_then_200",
        "expired_link",
        "task_not_found",
    ],
)
async def test_tolerated_faults_still_complete_the_job_charged_once(
    relay: Relay, vendor_a: FakeMiniMaxUpstream, quirk: str
) -> None:
    if quirk == "walks_the_status_words":
        vendor_a.job_duration_s = 0.6
    elif quirk == "rate_limited":
        vendor_a.submit_rate_limits = 2
        vendor_a.query_rate_limits = 2
        vendor_a.retry_after = "0.1"
    elif quirk == "unknown_status_word":
        vendor_a.weird_status_s = 0.5
    elif quirk == "video_404_then_200":
        vendor_a.content_404s = 3
    elif quirk == "expired_link":
        vendor_a.expired_links = 1
    else:
        vendor_a.lost_queries = 1
    await relay.declare(minimax_channel("minimax-a", vendor_a, KEY_A))

    video_id = await submit(relay)
    video = await relay.finished(video_id, timeout_s=20)

    assert video["status"] == "completed", video
    content = await relay.client.get(f"/v1/videos/{video_id}/content", headers=relay.auth)
    assert content.content == tiny_mp4()
    thumbnail = await relay.client.get(
        f"/v1/videos/{video_id}/content?variant=thumbnail", headers=relay.auth
    )
    assert thumbnail.status_code == 200 and thumbnail.content  # derived by vidrelay
    expected_submits = {"rate_limited": 3, "task_not_found": 2}.get(quirk, 1)
    assert len(vendor_a.submits()) == expected_submits
    assert_nothing_leaks(video, vendor_a)
    assert await relay.money() == (STARTING_BALANCE - PRICE_6S,) * 2


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("moderated_prompt", "moderation_blocked", "input new_sensitive"),
        ("moderated_video", "moderation_blocked", "output new_sensitive"),
        ("invalid_parameters", "upstream_invalid_parameters", "invalid params"),
        ("video_stays_gone", "content_unavailable", "no video"),
    ],
)
async def test_a_job_minimax_refuses_fails_with_a_clean_message_and_is_refunded_once(
    relay: Relay,
    vendor_a: FakeMiniMaxUpstream,
    vendor_b: FakeMiniMaxUpstream,
    fault: str,
    code: str,
    words: str,
) -> None:
    model_map = {MODEL: UPSTREAM_MODEL}
    if fault == "moderated_prompt":
        vendor_a.moderate_submits = True
    elif fault == "moderated_video":
        vendor_a.fail_jobs = True
    elif fault == "invalid_parameters":
        model_map = {MODEL: "hailuo-2-3-typo"}
    else:
        vendor_a.content_404s = 1000
    await relay.declare(
        minimax_channel("minimax-a", vendor_a, KEY_A, model_map=model_map, priority=10),
        minimax_channel("minimax-b", vendor_b, KEY_B),
    )

    video = await relay.finished(await submit(relay), timeout_s=20)

    assert video["status"] == "failed", video
    assert video["error"]["code"] == code
    assert words in video["error"]["message"], video["error"]
    assert_nothing_leaks(video, vendor_a, vendor_b)
    assert "http" not in video["error"]["message"]
    assert vendor_b.submits() == []  # another channel would refuse it too
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


@pytest.mark.parametrize(
    "fault", ["refused_key", "exhausted_balance", "unknown_error", "outage", "unreachable"]
)
async def test_a_channel_that_cannot_take_the_job_hands_it_to_the_next(
    relay: Relay, vendor_a: FakeMiniMaxUpstream, vendor_b: FakeMiniMaxUpstream, fault: str
) -> None:
    key_a, base = KEY_A, {}
    if fault == "refused_key":
        key_a = "sk-mm-revoked-000000"
    elif fault == "exhausted_balance":
        vendor_a.exhausted_balance = True
    elif fault == "unknown_error":
        vendor_a.submit_unknown_errors = 1
    elif fault == "outage":
        vendor_a.outage = True
    else:
        base = {"base_url": "http://127.0.0.1:9"}  # nothing listens there
    await relay.declare(
        minimax_channel("minimax-a", vendor_a, key_a, priority=10, **base),
        minimax_channel("minimax-b", vendor_b, KEY_B),
    )

    video = await relay.finished(await submit(relay), timeout_s=20)

    assert video["status"] == "completed", video
    assert len(vendor_b.submits()) == 1
    if fault != "unreachable":
        assert len(vendor_a.submits()) == 1
    assert_nothing_leaks(video, vendor_a, vendor_b)
    assert await relay.money() == (STARTING_BALANCE - PRICE_6S,) * 2


async def test_what_minimax_cannot_render_is_refused_at_create_for_a_shipped_model(
    relay: Relay, vendor_a: FakeMiniMaxUpstream
) -> None:
    await relay.declare(minimax_channel("minimax-a", vendor_a, KEY_A))
    for fields in ({"seconds": "8"}, {"size": "1920x1080"}, {"size": "720x1280"}):
        response = await relay.client.post(
            "/v1/videos",
            headers=relay.auth,
            data={"prompt": "a lighthouse", "model": MODEL, "seconds": "6", **fields},
        )
        assert response.status_code == 400, response.text
    assert vendor_a.requests == []
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)
