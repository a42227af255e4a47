"""Jobs on `gemini`-protocol channels (Google Veo through the Gemini API), end to end: vidrelay's
real adapter, engine and store in front of fake Gemini APIs that speak the wire protocol over
real HTTP, with a shipped Veo model declared and priced at its list price. For every fault the
job ends `completed` or `failed`, the balance is exact (charged once, refunded exactly once on
failure), nothing is stuck, and no operation name, host or key reaches the client."""

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
from tests.fakes.gemini_upstream import FakeGeminiUpstream, tiny_image, tiny_mp4
from tests.fakes.media import assert_fitted_reference
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.services.catalog import declare_models, set_price
from vidrelay.shipped_models import ShippedModel, shipped_models

SHIPPED = {entry.model.name: entry for entry in shipped_models()}
FAST = SHIPPED["veo-3.1-fast"]  # $0.10 a second, 720p, 4, 6 or 8 s
PRICE_4S = 400_000
KEY_A, KEY_B = "AIzaSy-channel-a-0001", "AIzaSy-channel-b-0001"


@pytest.fixture
def google_a() -> Iterator[FakeGeminiUpstream]:
    fake = FakeGeminiUpstream(keys={KEY_A})
    with fake.serve():
        yield fake


@pytest.fixture
def google_b() -> Iterator[FakeGeminiUpstream]:
    fake = FakeGeminiUpstream(keys={KEY_B})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(tmp_path: Path, database_url: str) -> AsyncIterator[Relay]:
    """On SQLite and on PostgreSQL: routing counts and claims jobs in SQL."""
    async with running_relay(tmp_path / "data", database_url) as relay:
        yield relay


async def declare_shipped(relay: Relay, entry: ShippedModel = FAST) -> None:
    """The shipped model in the catalog at its list price, as `vidrelay models import` does."""
    await declare_models(relay.context.db, [entry.model], actor=CLI)
    for price in entry.prices():
        await set_price(relay.context.db, price, actor=CLI)
    relay.context.models.invalidate()


def gemini_channel(
    name: str, fake: FakeGeminiUpstream, entry: ShippedModel = FAST, **overrides: Any
) -> Channel:
    values: dict[str, Any] = {
        "name": name,
        "protocol": ChannelProtocol.GEMINI,
        "route_class": RouteClass.OFFICIAL,
        "models": (entry.model.name,),
        "model_map": {entry.model.name: entry.upstream_model},
        "base_url": fake.url,
        "keys": (KEY_A,),
    }
    values.update(overrides)
    return Channel(**values)


async def one_channel(relay: Relay, fake: FakeGeminiUpstream) -> None:
    await declare_shipped(relay)
    await relay.declare(gemini_channel("google", fake))


async def two_tiers(relay: Relay, a: FakeGeminiUpstream, b: FakeGeminiUpstream) -> None:
    """google-a is preferred (priority 10); google-b is the fallback."""
    await declare_shipped(relay)
    await relay.declare(
        gemini_channel("google-a", a, priority=10),
        gemini_channel("google-b", b, keys=(KEY_B,)),
    )


async def submit_veo(relay: Relay, **fields: str) -> str:
    return await relay.submit(model="veo-3.1-fast", **fields)


def assert_nothing_upstream_leaks(text: str, *fakes: FakeGeminiUpstream) -> None:
    for fake in fakes:
        for secret in (
            "127.0.0.1",
            f":{fake.port}",
            f":{fake.cdn_port}",
            *fake.operations,
            *(operation.id for operation in fake.operations.values()),
        ):
            assert secret not in text, (secret, text)
    for secret in (KEY_A, KEY_B, "AIzaSy", "operations/", "files/", "generativelanguage"):
        assert secret not in text, (secret, text)


async def test_the_official_sdk_makes_a_veo_video_from_a_first_frame_with_declared_params(
    relay: Relay, google_a: FakeGeminiUpstream
) -> None:
    await one_channel(relay, google_a)
    image = tiny_image("PNG")
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
            prompt="a red fox trotting through snow",
            model="veo-3.1-fast",  # type: ignore[arg-type]
            seconds="4",
            size="720x1280",
            input_reference=("fox.png", image, "image/png"),
            extra_body={"negative_prompt": "rain, text overlays"},
        )
        deadline = time.monotonic() + 15
        video = made
        while video.status not in ("completed", "failed"):
            assert time.monotonic() < deadline, video
            await asyncio.sleep(0.05)
            video = await client.videos.retrieve(made.id)
        assert video.status == "completed", video
        assert (video.model, video.seconds, video.size) == ("veo-3.1-fast", "4", "720x1280")
        content = await client.videos.download_content(video.id)
        assert content.content == tiny_mp4()
    finally:
        await client.close()
        await http_client.aclose()

    [submitted] = google_a.submits()
    sent_image = submitted.json["instances"][0]["image"]
    assert_fitted_reference(sent_image["bytesBase64Encoded"], (720, 1280))
    assert submitted.path == "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning"
    assert submitted.key == KEY_A and submitted.query == {}
    assert submitted.json == {
        "instances": [
            {
                "prompt": "a red fox trotting through snow",
                "image": {
                    "bytesBase64Encoded": sent_image["bytesBase64Encoded"],
                    "mimeType": "image/jpeg",
                },
            }
        ],
        "parameters": {
            "negativePrompt": "rain, text overlays",
            "aspectRatio": "9:16",
            "resolution": "720p",
            "durationSeconds": 4,
        },
    }
    [name] = google_a.operations
    polls = google_a.requests_to(f"/v1beta/{name}", "GET")
    assert polls and {poll.key for poll in polls} == {KEY_A}
    stored = [sent for sent in google_a.requests if sent.path.startswith("/cdn/")]
    assert stored and all(sent.key is None for sent in stored)
    assert_nothing_upstream_leaks(video.model_dump_json(), google_a)
    assert await relay.money() == (STARTING_BALANCE - PRICE_4S,) * 2


@pytest.mark.parametrize(
    "quirk",
    [
        "rate_limited",
        "poll_rate_limited",
        "unknown_status",
        "content_404_then_200",
        "expired_link",
        "lost_once",
    ],
)
async def test_tolerated_faults_still_complete_the_job_charged_once(
    relay: Relay, google_a: FakeGeminiUpstream, quirk: str
) -> None:
    google_a.retry_delay = "0.1s"
    if quirk == "rate_limited":
        google_a.submit_429s = 2
    elif quirk == "poll_rate_limited":
        google_a.job_duration_s = 0.3
        google_a.poll_429s = 2
    elif quirk == "unknown_status":
        google_a.weird_status_s = google_a.job_duration_s = 0.4
    elif quirk == "content_404_then_200":
        google_a.content_404s = 2
    elif quirk == "expired_link":
        google_a.stale_links = 1
    else:
        google_a.lost_polls = 1
    await one_channel(relay, google_a)

    video = await relay.finished(await submit_veo(relay))

    assert video["status"] == "completed", video
    content = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=relay.auth)
    assert content.content == tiny_mp4()
    expected_submits = {"rate_limited": 3, "lost_once": 2}.get(quirk, 1)
    assert len(google_a.submits()) == expected_submits
    assert_nothing_upstream_leaks(str(video), google_a)
    assert await relay.money() == (STARTING_BALANCE - PRICE_4S,) * 2


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("moderated_submit", "moderation_blocked", "usage guidelines"),
        ("upstream_failure", "internal", "internal error"),
        ("safety_filtered", "moderation_blocked", "safety settings"),
        ("content_gone", "content_unavailable", "not ready"),
        ("lost_for_good", "upstream_job_lost", "lost the job"),
    ],
)
async def test_a_job_that_cannot_be_made_fails_with_a_clean_reason_and_is_refunded_once(
    relay: Relay, google_a: FakeGeminiUpstream, fault: str, code: str, words: str
) -> None:
    if fault == "moderated_submit":
        google_a.moderate_submits = True
    elif fault == "upstream_failure":
        google_a.fail_jobs = True
    elif fault == "safety_filtered":
        google_a.filter_jobs = True
    elif fault == "content_gone":
        google_a.content_404s = 1000
    else:
        google_a.lost_polls = 1000
    await one_channel(relay, google_a)

    video = await relay.finished(await submit_veo(relay))

    assert video["status"] == "failed", video
    assert video["error"]["code"] == code
    assert words in video["error"]["message"], video["error"]
    assert_nothing_upstream_leaks(str(video), google_a)
    # charged at accept, refunded once: twice would leave more than the starting balance
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


@pytest.mark.parametrize("fault", ["refused_key", "balance_exhausted", "500", "outage", "model"])
async def test_a_channel_that_cannot_take_the_job_fails_over_to_the_next(
    relay: Relay, google_a: FakeGeminiUpstream, google_b: FakeGeminiUpstream, fault: str
) -> None:
    await two_tiers(relay, google_a, google_b)
    if fault == "refused_key":
        google_a.keys = {"AIzaSy-someone-else"}
    elif fault == "balance_exhausted":
        google_a.balance_exhausted = True
    elif fault == "500":
        google_a.submit_500s = 1
    elif fault == "outage":
        google_a.outage = True
    else:  # the channel's model map names a model this Gemini project does not have
        await relay.declare(
            gemini_channel("google-a", google_a, priority=10, model_map={"veo-3.1-fast": "veo-x"})
        )

    video = await relay.finished(await submit_veo(relay))

    assert video["status"] == "completed", video
    assert len(google_b.submits()) == 1
    assert len(google_a.submits()) == 1
    assert_nothing_upstream_leaks(str(video), google_a, google_b)
    assert await relay.money() == (STARTING_BALANCE - PRICE_4S,) * 2


async def test_a_moderation_refusal_is_not_tried_on_another_channel(
    relay: Relay, google_a: FakeGeminiUpstream, google_b: FakeGeminiUpstream
) -> None:
    google_a.moderate_submits = True
    await two_tiers(relay, google_a, google_b)

    video = await relay.finished(await submit_veo(relay))

    assert video["status"] == "failed" and video["error"]["code"] == "moderation_blocked"
    assert google_b.submits() == []  # another channel would refuse it too
    assert_nothing_upstream_leaks(str(video), google_a, google_b)
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


async def test_what_a_shipped_veo_model_does_not_offer_is_refused_at_accept_uncharged(
    relay: Relay, google_a: FakeGeminiUpstream
) -> None:
    hd = SHIPPED["veo-3.1-fast-1080p"]
    await declare_shipped(relay, FAST)
    await declare_shipped(relay, hd)
    await relay.declare(gemini_channel("google", google_a, models=(FAST.model.name,)))
    await relay.declare(
        gemini_channel(
            "google",
            google_a,
            models=(FAST.model.name, hd.model.name),
            model_map={FAST.model.name: FAST.upstream_model, hd.model.name: hd.upstream_model},
        )
    )
    for fields in (
        {"model": "veo-3.1-fast", "size": "1920x1080"},  # 1080p is its own model
        {"model": "veo-3.1-fast-1080p", "seconds": "4"},  # 1080p is made at 8 s only
        {"model": "veo-3.1-fast", "seconds": "5"},
    ):
        response = await relay.create(**fields)
        assert response.status_code == 400, response.text
    hd_video = await relay.finished(
        await relay.submit(model="veo-3.1-fast-1080p", seconds="8", size="1080x1920")
    )
    assert hd_video["status"] == "completed", hd_video
    [submitted] = google_a.submits()
    assert submitted.json["parameters"] == {
        "aspectRatio": "9:16",
        "resolution": "1080p",
        "durationSeconds": 8,
    }
    hd_price = 8 * 120_000  # $0.12 a second at 1080p
    assert await relay.money() == (STARTING_BALANCE - hd_price,) * 2
