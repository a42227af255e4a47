"""Jobs on `openai`-protocol channels, end to end: vidrelay's real adapter, engine and store in
front of fake upstreams that speak the wire protocol over real HTTP. For every fault the job
ends `completed` or `failed`, the balance is exact, and nothing is stuck."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.channels.relay import STARTING_BALANCE, Relay, openai_channel, running_relay
from tests.fakes.media import assert_fitted_reference
from tests.fakes.openai_upstream import FakeOpenAIUpstream, tiny_image, tiny_mp4
from vidrelay.domain.catalog import RouteClass

PRICE_4S = 400_000  # sora-2, 4 s, at the default $0.10 a second


@pytest.fixture
def vendor_a() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={"sk-up-a1", "sk-up-a2"})
    with fake.serve():
        yield fake


@pytest.fixture
def vendor_b() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={"sk-up-b1"})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(tmp_path: Path, database_url: str) -> AsyncIterator[Relay]:
    """On SQLite and on PostgreSQL: routing counts and claims jobs in SQL."""
    async with running_relay(tmp_path / "data", database_url) as relay:
        yield relay


async def two_tiers(relay: Relay, a: FakeOpenAIUpstream, b: FakeOpenAIUpstream) -> None:
    """vendor-a is preferred (priority 10); vendor-b is the fallback."""
    await relay.declare(
        openai_channel("vendor-a", a.url, keys=("sk-up-a1",), priority=10),
        openai_channel("vendor-b", b.url, keys=("sk-up-b1",), priority=0),
    )


def submits(fake: FakeOpenAIUpstream) -> int:
    return len(fake.requests_to("/v1/videos", "POST"))


async def test_a_job_runs_upstream_with_the_mapped_model_and_the_client_sees_only_vidrelay(
    relay: Relay, vendor_a: FakeOpenAIUpstream
) -> None:
    await relay.declare(
        openai_channel(
            "vendor-a",
            vendor_a.url,
            keys=("sk-up-a1", "sk-up-a2"),
            model_map={"sora-2": "sora-2-2025-12-08"},
        )
    )
    image = tiny_image("png")
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        data={"prompt": "a red fox", "seconds": "8", "size": "1280x720"},
        files={"input_reference": ("fox.png", image, "image/png")},
    )
    assert response.status_code == 200, response.text
    video = await relay.finished(response.json()["id"])
    assert video["status"] == "completed", video
    (submitted,) = vendor_a.requests_to("/v1/videos", "POST")
    assert submitted.form["model"] == "sora-2-2025-12-08"
    assert submitted.form["seconds"] == "8" and submitted.form["size"] == "1280x720"
    assert_fitted_reference(submitted.files["input_reference"].data, (1280, 720))
    upstream_id = next(iter(vendor_a.jobs))
    polls = vendor_a.requests_to(f"/v1/videos/{upstream_id}", "GET")
    assert polls and {poll.key for poll in polls} == {submitted.key}  # the submitting key
    content = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=relay.auth)
    assert content.content == tiny_mp4()
    text = str(video)
    assert upstream_id not in text and f":{vendor_a.port}" not in text
    assert "sk-up" not in text and video["id"].startswith("video_")
    assert await relay.money() == (STARTING_BALANCE - 800_000,) * 2


@pytest.mark.parametrize("fault", ["500", "429", "hang", "refused"])
async def test_a_submit_that_fails_retryably_fails_over_to_the_next_channel(
    relay: Relay, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream, fault: str
) -> None:
    if fault == "500":
        vendor_a.submit_500s = 1
    elif fault == "429":
        vendor_a.submit_429s = 1
    elif fault == "hang":
        vendor_a.submit_hang_s = 30
    await two_tiers(relay, vendor_a, vendor_b)
    if fault == "refused":  # nothing listens there at all
        await relay.declare(openai_channel("vendor-a", "http://127.0.0.1:9", priority=10))
    video = await relay.finished(await relay.submit(), timeout_s=30)
    assert video["status"] == "completed", video
    assert submits(vendor_b) == 1
    if fault != "refused":
        assert submits(vendor_a) == 1
    assert await relay.money() == (STARTING_BALANCE - PRICE_4S,) * 2


async def test_a_rate_limited_only_channel_makes_the_job_wait_not_fail(
    relay: Relay, vendor_a: FakeOpenAIUpstream
) -> None:
    vendor_a.submit_429s = 5  # more rounds than max_attempts
    vendor_a.retry_after = "0.2"
    await relay.declare(openai_channel("vendor-a", vendor_a.url))
    video = await relay.finished(await relay.submit())
    assert video["status"] == "completed", video
    assert submits(vendor_a) == 6
    assert await relay.money() == (STARTING_BALANCE - PRICE_4S,) * 2


async def test_an_upstream_rejection_fails_the_job_with_a_clean_message_and_refunds(
    relay: Relay, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    vendor_a.moderate_submits = True
    await two_tiers(relay, vendor_a, vendor_b)
    video = await relay.finished(await relay.submit())
    assert video["status"] == "failed"
    message = video["error"]["message"]
    assert "content" in message.lower() or "policy" in message.lower() or message
    for leak in ("127.0.0.1", f":{vendor_a.port}", "sk-up-a1", "vid_up_"):
        assert leak not in message, message
    assert submits(vendor_b) == 0  # another channel would refuse it too
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


async def test_a_job_that_fails_upstream_is_failed_with_its_reason_and_refunded(
    relay: Relay, vendor_a: FakeOpenAIUpstream
) -> None:
    vendor_a.fail_jobs = True
    await relay.declare(openai_channel("vendor-a", vendor_a.url))
    video = await relay.finished(await relay.submit())
    assert video["status"] == "failed"
    assert video["error"]["code"] == "moderation_blocked"
    assert "content policy" in video["error"]["message"]
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


@pytest.mark.parametrize(
    "quirk",
    ["relay_vocabulary", "task_vocabulary", "weird_status", "poll_429", "no_progress", "int"],
)
async def test_tolerated_status_quirks_still_complete_the_job(
    relay: Relay, vendor_a: FakeOpenAIUpstream, quirk: str
) -> None:
    vendor_a.job_duration_s = 0.5
    if quirk == "relay_vocabulary":
        vendor_a.vocabulary = "relay"
    elif quirk == "task_vocabulary":
        vendor_a.vocabulary = "task"
    elif quirk == "weird_status":
        vendor_a.weird_status_s = 0.6
    elif quirk == "poll_429":
        vendor_a.poll_429s = 3
        vendor_a.retry_after = "0"
    elif quirk == "no_progress":
        vendor_a.progress_style = "omitted"
    else:
        vendor_a.seconds_as_int = True
    await relay.declare(openai_channel("vendor-a", vendor_a.url))
    video = await relay.finished(await relay.submit())
    assert video["status"] == "completed", video
    assert await relay.money() == (STARTING_BALANCE - PRICE_4S,) * 2


@pytest.mark.parametrize(
    "quirk", ["content_404_then_200", "video_url", "redirect", "slow", "broken_once"]
)
async def test_the_video_is_collected_however_the_upstream_serves_it(
    relay: Relay, vendor_a: FakeOpenAIUpstream, quirk: str
) -> None:
    if quirk == "content_404_then_200":
        vendor_a.content_404s = 2
    elif quirk == "video_url":
        vendor_a.video_url_only = True
    elif quirk == "redirect":
        vendor_a.redirect_content = True
    elif quirk == "slow":
        vendor_a.content_trickle_s = 1.0
    await relay.declare(openai_channel("vendor-a", vendor_a.url))
    video_id = await relay.submit()
    if quirk == "broken_once":
        vendor_a.break_content = True
    video = await relay.finished(video_id)
    if quirk == "broken_once":
        assert video["status"] in ("completed", "failed")
    else:
        assert video["status"] == "completed", video
        content = await relay.client.get(f"/v1/videos/{video_id}/content", headers=relay.auth)
        assert content.content == tiny_mp4()
        thumbnail = await relay.client.get(
            f"/v1/videos/{video_id}/content?variant=thumbnail", headers=relay.auth
        )
        assert thumbnail.status_code == 200 and thumbnail.content
    balance = await relay.money()
    expected = STARTING_BALANCE - (PRICE_4S if video["status"] == "completed" else 0)
    assert balance == (expected, expected)


async def test_a_video_that_stays_gone_fails_the_job_and_refunds(
    relay: Relay, vendor_a: FakeOpenAIUpstream
) -> None:
    vendor_a.content_404s = 1000
    await relay.declare(openai_channel("vendor-a", vendor_a.url))
    video = await relay.finished(await relay.submit())
    assert video["status"] == "failed"
    assert video["error"]["code"] == "content_unavailable"
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


async def test_a_model_no_channel_serves_is_refused_at_accept_and_nothing_is_charged(
    relay: Relay, vendor_a: FakeOpenAIUpstream
) -> None:
    await relay.declare(openai_channel("vendor-a", vendor_a.url))
    response = await relay.create(model="sora-2-pro", seconds="10")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "model_not_served" and error["param"] == "model"
    assert "sora-2-pro" in error["message"] and "reverse" in error["message"]
    response = await relay.create(seconds="10")  # sora-2 on the reverse route
    assert response.status_code == 400
    assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


async def test_a_job_waits_while_every_channel_is_full_then_fails_after_the_queue_wait(
    tmp_path: Path, vendor_a: FakeOpenAIUpstream
) -> None:
    vendor_a.job_duration_s = 3.0
    async with running_relay(
        tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path}/v.db", queue_wait_s=1.0
    ) as relay:
        await relay.declare(openai_channel("vendor-a", vendor_a.url, max_concurrency=1))
        first = await relay.submit()
        second = await relay.submit()
        failed = await relay.finished(second)
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "no_channel_available"
        assert (await relay.finished(first))["status"] == "completed"
        assert submits(vendor_a) == 1
        assert await relay.money() == (STARTING_BALANCE - PRICE_4S,) * 2


async def test_a_job_past_its_deadline_fails_and_is_refunded(
    tmp_path: Path, vendor_a: FakeOpenAIUpstream
) -> None:
    vendor_a.job_duration_s = 60.0
    async with running_relay(
        tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path}/v.db", job_deadline_s=1.0
    ) as relay:
        await relay.declare(openai_channel("vendor-a", vendor_a.url))
        video = await relay.finished(await relay.submit())
        assert video["status"] == "failed"
        assert video["error"]["code"] == "deadline_exceeded"
        assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)


async def test_a_client_poll_never_reaches_the_upstream(
    tmp_path: Path, vendor_a: FakeOpenAIUpstream
) -> None:
    vendor_a.job_duration_s = 60.0
    async with running_relay(  # the engine's own first poll is an hour away: no timing window
        tmp_path / "data",
        f"sqlite+aiosqlite:///{tmp_path}/v.db",
        poll_first_s=3600.0,
        poll_steady_s=3600.0,
    ) as relay:
        await relay.declare(openai_channel("vendor-a", vendor_a.url))
        video_id = await relay.submit()
        while submits(vendor_a) == 0:
            await relay.video(video_id)
        before = len(vendor_a.requests)
        for _ in range(25):
            assert (await relay.video(video_id))["status"] in ("pending", "processing")
        assert len(vendor_a.requests) == before


async def test_a_restarted_relay_resumes_polling_the_job_it_submitted_before(
    tmp_path: Path, vendor_a: FakeOpenAIUpstream
) -> None:
    vendor_a.job_duration_s = 1.5
    database_url = f"sqlite+aiosqlite:///{tmp_path}/v.db"
    async with running_relay(tmp_path / "data", database_url) as relay:
        await relay.declare(openai_channel("vendor-a", vendor_a.url))
        video_id = await relay.submit()
        while submits(vendor_a) == 0:
            await relay.video(video_id)
        key = relay.key
    async with running_relay(tmp_path / "data", database_url) as relay:
        relay.key = key
        video = await relay.finished(video_id)
    assert video["status"] == "completed"
    assert submits(vendor_a) == 1


async def test_a_failing_channel_is_tripped_switched_off_with_a_reason_then_probed_back(
    tmp_path: Path, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    vendor_a.outage = True
    async with running_relay(
        tmp_path / "data",
        f"sqlite+aiosqlite:///{tmp_path}/v.db",
        circuit_failure_threshold=2,
        channel_disable_after_trips=1,
        admin_token="admin-secret",
        channel_probe_s=0.3,
    ) as relay:
        await two_tiers(relay, vendor_a, vendor_b)
        for _ in range(4):
            assert (await relay.finished(await relay.submit()))["status"] == "completed"
        assert submits(vendor_a) == 2  # tripped after two failures; no more traffic
        admin = {"Authorization": "Bearer admin-secret"}
        channels = (await relay.client.get("/admin/channels", headers=admin)).json()["data"]
        state = {c["name"]: c for c in channels}
        assert state["vendor-a"]["status"] == "auto_disabled"
        assert "failures in a row" in state["vendor-a"]["disabled_reason"]
        assert f":{vendor_a.port}" not in state["vendor-a"]["disabled_reason"]
        vendor_a.outage = False
        vendor_a.offer_models_list = False  # the probe falls back to listing videos
        for _ in range(100):
            view = (await relay.client.get("/admin/channels/vendor-a", headers=admin)).json()
            if view["status"] == "enabled":
                break
            await asyncio.sleep(0.05)
        assert view["status"] == "enabled" and view["disabled_reason"] is None
        a_before = submits(vendor_a)
        assert (await relay.finished(await relay.submit()))["status"] == "completed"
        assert submits(vendor_a) == a_before + 1  # the preferred channel takes work again
        assert (await relay.money())[0] == (await relay.money())[1]


async def test_a_channel_whose_keys_are_all_refused_is_switched_off_and_jobs_go_elsewhere(
    relay: Relay, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    await relay.declare(
        openai_channel("vendor-a", vendor_a.url, keys=("sk-wrong",), priority=10),
        openai_channel("vendor-b", vendor_b.url, keys=("sk-up-b1",)),
    )
    for _ in range(3):
        assert (await relay.finished(await relay.submit()))["status"] == "completed"
    assert submits(vendor_a) == 1 and submits(vendor_b) == 3
    async with relay.context.db.read() as conn:
        from vidrelay.store.channels import find_channel

        channel = await find_channel(conn, "vendor-a")
    assert channel is not None and channel.disabled_reason
    assert "refused" in channel.disabled_reason


async def test_a_reverse_request_goes_only_to_a_reverse_channel_with_its_character(
    relay: Relay, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    await relay.declare(
        openai_channel("official", vendor_a.url),
        openai_channel(
            "reverse",
            vendor_b.url,
            keys=("sk-up-b1",),
            route_class=RouteClass.REVERSE,
            models=("sora-2", "sora-2-pro"),
        ),
    )
    video_id = await relay.submit(
        model="sora-2-pro",
        seconds="10",
        character_url="https://cdn.example.com/cameo.mp4",
        character_timestamps="1,3",
    )
    assert (await relay.finished(video_id))["status"] == "completed"
    (submitted,) = vendor_b.requests_to("/v1/videos", "POST")
    assert submitted.form["character_url"] == "https://cdn.example.com/cameo.mp4"
    assert submitted.form["character_timestamps"] == "1,3"
    assert submits(vendor_a) == 0


async def test_a_declared_models_parameters_reach_the_upstream_as_the_fields_an_sdk_sends(
    relay: Relay, vendor_a: FakeOpenAIUpstream
) -> None:
    from vidrelay.domain.audit import CLI
    from vidrelay.domain.channels import Channel, ChannelProtocol
    from vidrelay.domain.declarations import parse_model
    from vidrelay.domain.pricing import PriceDeclaration
    from vidrelay.services.catalog import declare_models, set_price

    model = parse_model(
        {
            "name": "acme-video-1",
            "sizes": ["1280x720"],
            "routes": [{"route_class": "official", "seconds": ["5"]}],
            "params": [
                {"name": "resolution", "type": "enum", "values": ["720p", "1080p"]},
                {"name": "seed", "type": "int"},
                {"name": "generate_audio", "type": "bool", "default": False},
                {"name": "cfg_scale", "type": "number"},
            ],
        }
    )
    await declare_models(relay.context.db, [model], actor=CLI)
    price = PriceDeclaration("acme-video-1", per_request_micros=1)
    await set_price(relay.context.db, price, actor=CLI)
    relay.context.models.invalidate()
    await relay.declare(
        Channel(
            name="acme",
            protocol=ChannelProtocol.OPENAI,
            route_class=RouteClass.OFFICIAL,
            models=("acme-video-1",),
            model_map={"acme-video-1": "acme-v1-20261101"},
            base_url=vendor_a.url,
            keys=("sk-up-a1",),
        )
    )
    response = await relay.client.post(
        "/v1/videos",
        headers=relay.auth,
        json={
            "prompt": "a red fox",
            "model": "acme-video-1",
            "resolution": "1080p",
            "seed": 7,
            "cfg_scale": "0.5",
        },
    )
    assert response.status_code == 200, response.text
    assert (await relay.finished(response.json()["id"]))["status"] == "completed"
    (submitted,) = vendor_a.requests_to("/v1/videos", "POST")
    assert submitted.form["model"] == "acme-v1-20261101"
    assert (submitted.form["seconds"], submitted.form["size"]) == ("5", "1280x720")
    assert submitted.form["resolution"] == "1080p"
    assert submitted.form["seed"] == "7"
    assert submitted.form["generate_audio"] == "false"  # the declared default, filled in
    assert submitted.form["cfg_scale"] == "0.5"
    assert await relay.money() == (STARTING_BALANCE - 1, STARTING_BALANCE - 1)
