"""The sora2api adapter against a fake sora2api over real HTTP: model names, the request it
streams, progress, results, characters, and every way the stream or the upstream can fail."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import pytest

from tests.e2e.server import free_port
from tests.fakes.http_server import ThreadedServer
from tests.fakes.sora2api_upstream import (
    AVATAR_CREATE_MODEL,
    CHARACTER_VIDEO_PATH,
    DEFAULT_KEY,
    VIDEO_MODEL_CONFIG,
    FakeSora2Api,
    tiny_mp4,
)
from vidrelay.domain.catalog import DEFAULT_CATALOG, normalise_request
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.sora2api import SORA2API_VIDEO_MODELS, Sora2ApiUpstream, sora2api_model

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


def request_for(
    *,
    model: str = "sora-2",
    seconds: str = "10",
    size: str = "1280x720",
    prompt: str = "a red fox running through snow",
    upstream_model: str = "",
    reference_image: bytes | None = None,
    character_url: str | None = None,
) -> UpstreamRequest:
    normalised = normalise_request(
        DEFAULT_CATALOG,
        prompt=prompt,
        model=model,
        seconds=seconds,
        size=size,
        character_url=character_url,
    )
    return UpstreamRequest("video_1", normalised, reference_image, upstream_model)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeSora2Api, ThreadedServer]]:
    fake = FakeSora2Api()
    with ThreadedServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(fake_server: tuple[FakeSora2Api, ThreadedServer]) -> FakeSora2Api:
    fake_server[0].reset()
    return fake_server[0]


@pytest.fixture
def base_url(fake_server: tuple[FakeSora2Api, ThreadedServer]) -> str:
    return fake_server[1].url


@pytest.fixture
async def adapter(base_url: str) -> AsyncIterator[Sora2ApiUpstream]:
    upstream = Sora2ApiUpstream(
        "sora2api-test",
        base_url,
        timeout_s=2.0,
        connect_timeout_s=1.0,
        outbound_allowlist=["127.0.0.1"],
    )
    yield upstream
    await upstream.close()


async def settle(adapter: Sora2ApiUpstream, upstream_job_id: str) -> UpstreamStatus:
    """Poll until the job is no longer running (a lost job raises from here)."""
    deadline = time.monotonic() + 5
    while True:
        status = await adapter.poll(upstream_job_id, DEFAULT_KEY)
        if status.state is not UpstreamState.RUNNING:
            return status
        assert time.monotonic() < deadline, "the job never settled"
        await asyncio.sleep(0.02)


async def raised_by(call: object) -> UpstreamError:
    assert asyncio.iscoroutine(call)
    with pytest.raises(UpstreamError) as caught:
        await call
    return caught.value


# --- model names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "seconds", "size", "expected"),
    [
        ("sora-2", "10", "1280x720", "sora2-landscape-10s"),
        ("sora-2", "10", "720x1280", "sora2-portrait-10s"),
        ("sora-2", "15", "1280x720", "sora2-landscape-15s"),
        ("sora-2", "15", "720x1280", "sora2-portrait-15s"),
        ("sora-2-pro", "10", "1280x720", "sora2pro-landscape-10s"),
        ("sora-2-pro", "15", "720x1280", "sora2pro-portrait-15s"),
        ("sora-2-pro", "25", "1280x720", "sora2pro-landscape-25s"),
        ("sora-2-pro", "25", "720x1280", "sora2pro-portrait-25s"),
        ("sora-2-pro", "10", "1792x1024", "sora2pro-hd-landscape-10s"),
        ("sora-2-pro", "10", "1024x1792", "sora2pro-hd-portrait-10s"),
        ("sora-2-pro", "15", "1792x1024", "sora2pro-hd-landscape-15s"),
        ("sora-2-pro", "15", "1024x1792", "sora2pro-hd-portrait-15s"),
    ],
)
def test_the_model_name_encodes_family_orientation_and_length(
    model: str, seconds: str, size: str, expected: str
) -> None:
    assert sora2api_model(request_for(model=model, seconds=seconds, size=size)) == expected


@pytest.mark.parametrize(
    ("upstream_model", "size", "expected"),
    [
        ("sora-2-pro", "1280x720", "sora2pro-landscape-10s"),  # a mapped public model
        ("sora2pro", "720x1280", "sora2pro-portrait-10s"),  # a mapped family
        ("sora2pro-hd", "1280x720", "sora2pro-hd-landscape-10s"),  # HD chosen by the operator
        ("sora2pro-hd", "1792x1024", "sora2pro-hd-landscape-10s"),
        ("sora2-portrait-15s", "1280x720", "sora2-portrait-15s"),  # a full name wins
        ("sora-video-landscape-10s", "720x1280", "sora-video-landscape-10s"),  # older releases
    ],
)
def test_a_mapped_upstream_model_is_a_family_or_taken_whole_when_it_names_an_orientation(
    upstream_model: str, size: str, expected: str
) -> None:
    request = request_for(seconds="10", size=size, upstream_model=upstream_model)
    assert sora2api_model(request) == expected


@pytest.mark.parametrize(
    ("model", "seconds", "size", "upstream_model", "mentions"),
    [
        ("sora-2-pro", "25", "1792x1024", "", "allowed values: 10, 15"),  # no 25 s in HD
        ("sora-2-pro", "25", "1024x1792", "", "allowed values: 10, 15"),
        ("sora-2", "10", "1792x1024", "", "needs sora-2-pro"),  # sora2 has no HD family
        ("sora-2", "4", "1280x720", "", "allowed values: 10, 15, 25"),  # an official length
        ("sora-2", "10", "1280x720", "veo-3", "no equivalent"),  # a mapping to a stranger
    ],
)
def test_combinations_sora2api_lacks_are_rejected_before_any_call(
    model: str, seconds: str, size: str, upstream_model: str, mentions: str
) -> None:
    request = request_for(model=model, seconds=seconds, size=size, upstream_model=upstream_model)
    with pytest.raises(UpstreamError) as caught:
        sora2api_model(request)
    assert caught.value.kind is FailureKind.REJECTED
    assert mentions in caught.value.message


def test_every_name_the_adapter_can_build_is_in_sora2apis_model_config() -> None:
    assert set(VIDEO_MODEL_CONFIG) == SORA2API_VIDEO_MODELS


# --- the request and a successful job --------------------------------------------------------


async def test_submit_streams_one_chat_completion_with_the_prompt_and_the_image_as_a_data_uri(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    request = request_for(model="sora-2-pro", seconds="15", size="720x1280", reference_image=PNG)
    upstream_job_id = await adapter.submit(request, DEFAULT_KEY)
    assert upstream_job_id.startswith("s2a_")
    [sent] = fake.chat_requests()
    assert sent.key == DEFAULT_KEY
    assert sent.body["model"] == "sora2pro-portrait-15s"
    assert sent.body["stream"] is True
    assert sent.body["messages"][0]["role"] == "user"
    assert sent.content_items() == [
        {"type": "text", "text": "a red fox running through snow"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        },
    ]
    assert (await settle(adapter, upstream_job_id)).state is UpstreamState.COMPLETED
    assert [g.had_image for g in fake.generations] == [True]


async def test_a_request_without_an_image_sends_the_text_item_alone(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    await adapter.submit(request_for(), DEFAULT_KEY)
    [sent] = fake.chat_requests()
    assert sent.content_items() == [{"type": "text", "text": "a red fox running through snow"}]


async def test_progress_from_reasoning_content_shows_through_poll_while_the_stream_runs(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.chunk_delay_s = 0.15
    fake.faults.progress_steps = (10, 45, 80)
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    seen: list[int | None] = []
    deadline = time.monotonic() + 5
    while (status := await adapter.poll(upstream_job_id, DEFAULT_KEY)).state is (
        UpstreamState.RUNNING
    ):
        assert status.poll_after_s is not None
        seen.append(status.progress)
        assert time.monotonic() < deadline
        await asyncio.sleep(0.03)
    assert status.state is UpstreamState.COMPLETED and status.progress == 100
    assert {10, 45, 80} <= {p for p in seen if p is not None}
    assert seen == sorted(seen, key=lambda p: p or 0)  # never goes backwards


async def test_a_completed_job_streams_a_playable_mp4_into_the_destination(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, tmp_path: Path
) -> None:
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    await settle(adapter, upstream_job_id)
    destination = tmp_path / "nested" / "dir" / "video.mp4"
    assert await adapter.fetch_content(upstream_job_id, "video", destination, DEFAULT_KEY)
    assert destination.read_bytes() == tiny_mp4()
    with av.open(io.BytesIO(destination.read_bytes())) as container:
        [stream] = container.streams.video
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 64)
    assert sorted(p.name for p in destination.parent.iterdir()) == ["video.mp4"]
    [download] = [r for r in fake.requests if r.path.startswith("/tmp/")]
    assert download.key == DEFAULT_KEY  # the upstream's own host may see its key


@pytest.mark.parametrize("style", ["relative", "unspecified"])
async def test_a_relative_or_unspecified_host_video_url_is_fetched_from_the_upstream_itself(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, tmp_path: Path, style: str
) -> None:
    fake.faults.video_url_style = style  # "/tmp/x.mp4" or "http://0.0.0.0:PORT/tmp/x.mp4"
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    await settle(adapter, upstream_job_id)
    destination = tmp_path / "video.mp4"
    assert await adapter.fetch_content(upstream_job_id, "video", destination, DEFAULT_KEY)
    assert destination.read_bytes() == tiny_mp4()


async def test_a_video_on_another_host_is_fetched_without_the_upstream_key(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, tmp_path: Path
) -> None:
    cdn = FakeSora2Api(api_key="not-used")
    cdn.faults.serve_any_video = True
    with ThreadedServer(cdn.app) as cdn_server:
        fake.faults.video_base_url = cdn_server.url
        upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
        await settle(adapter, upstream_job_id)
        destination = tmp_path / "video.mp4"
        assert await adapter.fetch_content(upstream_job_id, "video", destination, DEFAULT_KEY)
    assert destination.read_bytes() == tiny_mp4()
    [download] = cdn.requests
    assert "authorization" not in download.headers


async def test_thumbnails_and_spritesheets_are_left_to_the_engine(
    adapter: Sora2ApiUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    await settle(adapter, upstream_job_id)
    for variant in ("thumbnail", "spritesheet"):
        assert not await adapter.fetch_content(
            upstream_job_id, variant, tmp_path / variant, DEFAULT_KEY
        )
    assert list(tmp_path.iterdir()) == []


async def test_a_missing_video_file_is_content_unavailable_and_leaves_no_partial_file(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, tmp_path: Path
) -> None:
    fake.faults.video_missing_times = 1
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    await settle(adapter, upstream_job_id)
    destination = tmp_path / "video.mp4"
    error = await raised_by(adapter.fetch_content(upstream_job_id, "video", destination, "k"))
    assert error.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []
    assert await adapter.fetch_content(upstream_job_id, "video", destination, DEFAULT_KEY)
    assert destination.read_bytes() == tiny_mp4()


async def test_a_broken_video_download_is_unavailable_and_leaves_no_partial_file(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, tmp_path: Path
) -> None:
    fake.faults.video_break_after_bytes = 1000
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    await settle(adapter, upstream_job_id)
    destination = tmp_path / "video.mp4"
    error = await raised_by(adapter.fetch_content(upstream_job_id, "video", destination, "k"))
    assert error.kind is FailureKind.UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


# --- characters ------------------------------------------------------------------------------


async def test_a_character_is_created_first_and_the_generation_prompt_then_names_it(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, base_url: str
) -> None:
    request = request_for(model="sora-2", character_url=base_url + CHARACTER_VIDEO_PATH)
    upstream_job_id = await adapter.submit(request, DEFAULT_KEY)
    create, generate = fake.chat_requests()
    # An older sora2api (no avatar-create model): the video model, the video and no text.
    assert create.body["model"] == "sora2-landscape-10s"
    assert create.body["stream"] is True
    [video_item] = create.content_items()
    assert video_item["type"] == "video_url"
    assert video_item["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert fake.character_videos == [tiny_mp4()]  # downloaded by us, sent as bytes
    assert generate.prompt == "@meowliusma68123 a red fox running through snow"
    assert (await settle(adapter, upstream_job_id)).state is UpstreamState.COMPLETED


async def test_newer_upstreams_create_the_character_with_the_avatar_create_model(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, base_url: str
) -> None:
    fake.reset(avatar_create_model=True)  # and a video on a video model is refused there
    fake.faults.character_username = "foxy.runner42"
    request = request_for(character_url=base_url + CHARACTER_VIDEO_PATH, reference_image=PNG)
    upstream_job_id = await adapter.submit(request, DEFAULT_KEY)
    create, generate = fake.chat_requests()
    assert create.body["model"] == AVATAR_CREATE_MODEL
    assert generate.body["model"] == "sora2-landscape-10s"
    assert generate.prompt == "@foxy.runner42 a red fox running through snow"
    assert generate.item("image_url") is not None
    assert (await settle(adapter, upstream_job_id)).state is UpstreamState.COMPLETED


async def test_a_character_the_upstream_cannot_create_rejects_the_submit(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, base_url: str
) -> None:
    fake.faults.character_failure = "no person found in the video"
    request = request_for(character_url=base_url + CHARACTER_VIDEO_PATH)
    error = await raised_by(adapter.submit(request, DEFAULT_KEY))
    assert error.kind is FailureKind.REJECTED
    assert "no person found in the video" in error.message
    assert len(fake.chat_requests()) == 1  # no generation after a failed character


async def test_a_refused_character_url_is_rejected_without_calling_the_upstream(
    base_url: str, fake: FakeSora2Api
) -> None:
    guarded = Sora2ApiUpstream("sora2api-test", base_url, timeout_s=2.0)  # no allowlist
    try:
        request = request_for(character_url=base_url + CHARACTER_VIDEO_PATH)
        error = await raised_by(guarded.submit(request, DEFAULT_KEY))
    finally:
        await guarded.close()
    assert error.kind is FailureKind.REJECTED
    assert "character_url" in error.message and "loopback" in error.message
    assert fake.requests == []


# --- failures inside the stream --------------------------------------------------------------


async def test_an_error_object_in_the_stream_fails_the_job_with_a_cleaned_message(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, base_url: str
) -> None:
    host_and_port = base_url.removeprefix("http://")
    fake.faults.error_message = (
        "Content policy violation: this prompt may violate our guardrails "
        f"(task task_01k7x9abcdef, upstream {host_and_port}, "
        f"see {base_url}/logs, key {DEFAULT_KEY})"
    )
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    status = await settle(adapter, upstream_job_id)
    assert status.state is UpstreamState.FAILED
    assert status.error_code == "upstream_rejected"
    message = status.error_message or ""
    assert "may violate our guardrails" in message
    for secret in ("127.0.0.1", host_and_port, "task_01k7x9abcdef", DEFAULT_KEY):
        assert secret not in message


async def test_a_draft_refused_by_moderation_fails_the_job_with_the_upstreams_reason(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.violation_reason = "This content may violate our guardrails around likeness."
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    status = await settle(adapter, upstream_job_id)
    assert status.state is UpstreamState.FAILED
    assert "guardrails around likeness" in (status.error_message or "")


async def test_a_transient_error_in_the_stream_is_a_lost_job_not_a_failed_one(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.error_message = "Upstream API timeout: Generation exceeded 1500 seconds limit"
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    with pytest.raises(UpstreamJobLost, match="timeout"):
        await settle(adapter, upstream_job_id)


async def test_no_available_accounts_at_the_start_raise_unavailable_from_submit(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.error_at_start = (
        "No available tokens for video generation. All tokens are either disabled, "
        "cooling down, Sora2 quota exhausted, don't support Sora2, or expired."
    )
    error = await raised_by(adapter.submit(request_for(), DEFAULT_KEY))
    assert error.kind is FailureKind.UNAVAILABLE
    assert "No available tokens" in error.message


async def test_a_connection_reset_mid_stream_is_a_lost_job(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.reset_after_chunks = 2
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    with pytest.raises(UpstreamJobLost, match="broke off"):
        await settle(adapter, upstream_job_id)
    with pytest.raises(UpstreamJobLost):  # forgotten: the engine submits again
        await adapter.poll(upstream_job_id, DEFAULT_KEY)


async def test_a_stream_reset_before_its_first_event_fails_the_submit_as_unavailable(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.reset_after_chunks = 0
    error = await raised_by(adapter.submit(request_for(), DEFAULT_KEY))
    assert error.kind is FailureKind.UNAVAILABLE


@pytest.mark.parametrize("ending", ["done_without_url", "eof_without_done"])
async def test_a_stream_that_ends_without_a_video_url_is_a_lost_job(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, ending: str
) -> None:
    fake.faults.end_without_url = ending == "done_without_url"
    fake.faults.eof_without_done = ending == "eof_without_done"
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    with pytest.raises(UpstreamJobLost, match="without a video"):
        await settle(adapter, upstream_job_id)


async def test_release_closes_a_running_stream_and_forgets_the_job(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.chunk_delay_s = 0.2
    upstream_job_id = await adapter.submit(request_for(), DEFAULT_KEY)
    await adapter.release(upstream_job_id)
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(upstream_job_id, DEFAULT_KEY)
    deadline = time.monotonic() + 3
    while fake.streams_closed_early == 0:
        assert time.monotonic() < deadline, "the upstream never saw the stream close"
        await asyncio.sleep(0.02)


async def test_an_unknown_job_id_is_a_lost_job(adapter: Sora2ApiUpstream, tmp_path: Path) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll("s2a_from_a_previous_process", DEFAULT_KEY)
    with pytest.raises(UpstreamJobLost):
        await adapter.fetch_content("s2a_from_a_previous_process", "video", tmp_path / "v", "k")


# --- failures before the stream --------------------------------------------------------------


async def test_a_500_on_submit_is_unavailable_with_a_cleaned_message(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api, base_url: str
) -> None:
    fake.faults.submit_status = 500
    fake.faults.submit_error_message = f"database is locked at {base_url}/admin"
    error = await raised_by(adapter.submit(request_for(), DEFAULT_KEY))
    assert error.kind is FailureKind.UNAVAILABLE and error.retryable
    assert "HTTP 500" in error.message and "database is locked" in error.message
    assert "127.0.0.1" not in error.message


async def test_a_429_on_submit_is_rate_limited_with_the_retry_after_hint(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    fake.faults.submit_status = 429
    fake.faults.retry_after = "7"
    error = await raised_by(adapter.submit(request_for(), DEFAULT_KEY))
    assert error.kind is FailureKind.RATE_LIMITED
    assert error.retry_after_s == 7.0


async def test_a_refused_key_on_submit_is_an_auth_failure_that_never_shows_the_key(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    error = await raised_by(adapter.submit(request_for(), "sk-wrong-key-1234567890"))
    assert error.kind is FailureKind.AUTH
    assert "HTTP 401" in error.message and "wrong-key" not in error.message
    assert fake.chat_requests()[0].key == "sk-wrong-key-1234567890"


async def test_an_upstream_that_never_answers_times_out_as_unavailable(
    base_url: str, fake: FakeSora2Api
) -> None:
    fake.faults.hang_before_headers_s = 5.0
    impatient = Sora2ApiUpstream("sora2api-test", base_url, timeout_s=0.3, connect_timeout_s=0.3)
    started = time.monotonic()
    try:
        error = await raised_by(impatient.submit(request_for(), DEFAULT_KEY))
    finally:
        await impatient.close()
    assert error.kind is FailureKind.UNAVAILABLE and error.code == "upstream_timeout"
    assert time.monotonic() - started < 2


async def test_an_upstream_that_refuses_connections_is_unavailable() -> None:
    closed = Sora2ApiUpstream("sora2api-test", f"http://127.0.0.1:{free_port()}", timeout_s=1)
    try:
        error = await raised_by(closed.submit(request_for(), DEFAULT_KEY))
    finally:
        await closed.close()
    assert error.kind is FailureKind.UNAVAILABLE
    assert "127.0.0.1" not in error.message


# --- probe -----------------------------------------------------------------------------------


async def test_probe_accepts_a_working_key_and_reports_a_refused_one(
    adapter: Sora2ApiUpstream, fake: FakeSora2Api
) -> None:
    accepted = await adapter.probe(DEFAULT_KEY)
    assert accepted.ok and "16 video models" in accepted.detail
    refused = await adapter.probe("sk-someone-elses-key-abcd")
    assert not refused.ok and "401" in refused.detail
    assert refused.key_hint == "sk-so…abcd"
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/models"]


async def test_probe_raises_unavailable_when_the_upstream_cannot_be_reached() -> None:
    closed = Sora2ApiUpstream("sora2api-test", f"http://127.0.0.1:{free_port()}", timeout_s=1)
    try:
        error = await raised_by(closed.probe(DEFAULT_KEY))
    finally:
        await closed.close()
    assert error.kind is FailureKind.UNAVAILABLE
