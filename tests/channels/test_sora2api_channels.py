"""Jobs on `sora2api` channels end to end: the whole generation is one SSE stream, so a stream
that breaks midway must not lose the job: it fails over, or fails and is refunded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.channels.relay import STARTING_BALANCE, Relay, openai_channel, running_relay
from tests.fakes.http_server import ThreadedServer
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.sora2api_upstream import (
    CHARACTER_VIDEO_PATH,
    DEFAULT_KEY,
    FakeSora2Api,
    tiny_mp4,
)
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol

PRICE_PRO_10S = 3_000_000  # sora-2-pro, 10 s, reverse, standard size: $0.30 a second


@pytest.fixture
def sora() -> Iterator[tuple[FakeSora2Api, str]]:
    fake = FakeSora2Api()
    with ThreadedServer(fake.app) as server:
        yield fake, server.url


@pytest.fixture
def reverse_relay_b() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={"sk-up-b1"})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    async with running_relay(
        tmp_path / "data",
        f"sqlite+aiosqlite:///{tmp_path}/v.db",
        outbound_allowlist="127.0.0.1",
    ) as relay:
        yield relay


def sora_channel(base_url: str, **overrides: object) -> Channel:
    values: dict[str, object] = {
        "name": "sora-pool",
        "protocol": ChannelProtocol.SORA2API,
        "route_class": RouteClass.REVERSE,
        "models": ("sora-2", "sora-2-pro"),
        "base_url": base_url,
        "keys": (DEFAULT_KEY,),
        "priority": 10,
    }
    values.update(overrides)
    return Channel(**values).validate()  # type: ignore[arg-type]


async def price_of(relay: Relay) -> int:
    balance, ledger = await relay.money()
    assert balance == ledger
    return STARTING_BALANCE - balance


async def test_a_reverse_job_streams_through_sora2api_and_is_collected(
    relay: Relay, sora: tuple[FakeSora2Api, str]
) -> None:
    fake, url = sora
    await relay.declare(sora_channel(url))
    video_id = await relay.submit(model="sora-2-pro", seconds="10", size="1280x720")
    video = await relay.finished(video_id)
    assert video["status"] == "completed", video
    (generation,) = fake.generations
    assert generation.model == "sora2pro-landscape-10s"
    content = await relay.client.get(f"/v1/videos/{video_id}/content", headers=relay.auth)
    assert content.content == tiny_mp4()
    assert await price_of(relay) == PRICE_PRO_10S


@pytest.mark.parametrize("fault", ["reset_midway", "500", "429", "hang"])
async def test_a_sora2api_failure_fails_over_to_another_reverse_channel(
    relay: Relay, sora: tuple[FakeSora2Api, str], reverse_relay_b: FakeOpenAIUpstream, fault: str
) -> None:
    fake, url = sora
    if fault == "reset_midway":
        fake.faults.reset_after_chunks = 2
    elif fault == "hang":
        fake.faults.hang_before_headers_s = 30
    else:
        fake.faults.submit_status = int(fault)
    await relay.declare(
        sora_channel(url),
        openai_channel(
            "vendor-b",
            reverse_relay_b.url,
            keys=("sk-up-b1",),
            route_class=RouteClass.REVERSE,
            models=("sora-2-pro",),
        ),
    )
    video = await relay.finished(await relay.submit(model="sora-2-pro", seconds="10"))
    assert video["status"] == "completed", video
    assert len(fake.chat_requests()) == 1
    assert len(reverse_relay_b.requests_to("/v1/videos", "POST")) == 1
    assert await price_of(relay) == PRICE_PRO_10S


async def test_a_stream_that_keeps_breaking_on_the_only_channel_fails_and_is_refunded(
    relay: Relay, sora: tuple[FakeSora2Api, str]
) -> None:
    fake, url = sora
    fake.faults.reset_after_chunks = 1
    await relay.declare(sora_channel(url))
    video = await relay.finished(await relay.submit(model="sora-2-pro", seconds="10"))
    assert video["status"] == "failed"
    assert video["error"]["code"] == "upstream_job_lost"
    assert 1 < len(fake.chat_requests()) <= relay.context.settings.max_attempts
    assert await price_of(relay) == 0


async def test_an_error_object_in_the_stream_fails_the_job_cleanly_and_refunds(
    relay: Relay, sora: tuple[FakeSora2Api, str]
) -> None:
    fake, url = sora
    fake.faults.error_message = f"Content policy violation at {url}"
    await relay.declare(sora_channel(url))
    video = await relay.finished(await relay.submit(model="sora-2-pro", seconds="10"))
    assert video["status"] == "failed"
    assert "policy" in video["error"]["message"].lower()
    assert "127.0.0.1" not in video["error"]["message"]
    assert await price_of(relay) == 0


async def test_a_character_job_creates_the_character_then_names_it_in_the_prompt(
    relay: Relay, sora: tuple[FakeSora2Api, str]
) -> None:
    fake, url = sora
    fake.faults.character_username = "foxy.runner42"
    await relay.declare(sora_channel(url))
    video_id = await relay.submit(
        model="sora-2", seconds="10", character_url=url + CHARACTER_VIDEO_PATH
    )
    assert (await relay.finished(video_id))["status"] == "completed"
    assert fake.character_videos == [tiny_mp4()]
    assert fake.generations[-1].prompt.startswith("@foxy.runner42")
