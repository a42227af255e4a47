"""The `openai` adapter against a fake OpenAI Videos upstream over real HTTP.

Each fault mode of the fake meets the real adapter: what reaches the wire, which failure kind
comes back, and that no message carries the upstream's host, job id or key.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.server import free_port
from tests.fakes.openai_upstream import DEFAULT_FAILURE, FakeOpenAIUpstream, tiny_image, tiny_mp4
from vidrelay.domain.catalog import DEFAULT_CATALOG, normalise_request
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.openai import OpenAIUpstream, state_for_status

KEY = "sk-up-test-key-0001-abcdef"
OTHER_KEY = "sk-up-test-key-0002-ghijkl"


@pytest.fixture(scope="module")
def served() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={KEY, OTHER_KEY})
    with fake.serve():
        yield fake


@pytest.fixture
def fake(served: FakeOpenAIUpstream) -> FakeOpenAIUpstream:
    served.reset()
    return served


@pytest_asyncio.fixture
async def adapter(fake: FakeOpenAIUpstream) -> AsyncIterator[OpenAIUpstream]:
    upstream = OpenAIUpstream("fake-openai", fake.url, timeout_s=2.0)
    yield upstream
    await upstream.close()


def request_for(
    prompt: str = "a red fox running through snow",
    *,
    upstream_model: str = "",
    reference_image: bytes | None = None,
    **fields: object,
) -> UpstreamRequest:
    normalised = normalise_request(DEFAULT_CATALOG, prompt=prompt, **fields)
    return UpstreamRequest(
        job_id="video_public_1",
        request=normalised,
        reference_image=reference_image,
        upstream_model=upstream_model,
    )


async def poll_until_settled(
    adapter: OpenAIUpstream, upstream_job_id: str, timeout_s: float = 2.0
) -> list[UpstreamStatus]:
    """Every status seen, up to and including the first that is not running."""
    seen: list[UpstreamStatus] = []
    deadline = time.monotonic() + timeout_s
    while True:
        status = await adapter.poll(upstream_job_id, KEY)
        seen.append(status)
        if status.state is not UpstreamState.RUNNING:
            return seen
        assert time.monotonic() < deadline, f"still running: {seen[-1]}"
        await asyncio.sleep(0.05)


async def finished_job(adapter: OpenAIUpstream) -> str:
    upstream_job_id = await adapter.submit(request_for(), KEY)
    assert (await poll_until_settled(adapter, upstream_job_id))[-1].state is (
        UpstreamState.COMPLETED
    )
    return upstream_job_id


def assert_clean(message: str, fake: FakeOpenAIUpstream, *secrets: str) -> None:
    for secret in ("127.0.0.1", str(fake.port), KEY, OTHER_KEY, *secrets):
        assert secret not in message


# -- submit ---------------------------------------------------------------------------------


async def test_submit_sends_multipart_fields_with_the_mapped_model_and_the_bearer_key(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    upstream_job_id = await adapter.submit(
        request_for("一只红狐狸", upstream_model="sora-2-2025-10-06", seconds="8"), KEY
    )

    assert upstream_job_id in fake.jobs
    [sent] = fake.requests_to("/v1/videos", "POST")
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.key == KEY
    assert sent.form == {
        "model": "sora-2-2025-10-06",
        "prompt": "一只红狐狸",
        "seconds": "8",
        "size": "720x1280",
    }
    assert sent.files == {}


@pytest.mark.parametrize(
    ("image_format", "filename", "content_type"),
    [
        ("PNG", "reference.png", "image/png"),
        ("JPEG", "reference.jpg", "image/jpeg"),
        ("WEBP", "reference.webp", "image/webp"),
    ],
)
async def test_the_reference_image_is_a_file_part_typed_from_its_magic_bytes(
    adapter: OpenAIUpstream,
    fake: FakeOpenAIUpstream,
    image_format: str,
    filename: str,
    content_type: str,
) -> None:
    image = tiny_image(image_format)
    await adapter.submit(request_for(reference_image=image), KEY)

    [sent] = fake.requests_to("/v1/videos", "POST")
    part = sent.files["input_reference"]
    assert (part.filename, part.content_type, part.data) == (filename, content_type, image)


async def test_character_url_and_timestamps_are_passed_through(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    request = request_for(
        character_url="https://cdn.example.com/cat.mp4", character_timestamps="1.5,3"
    )
    await adapter.submit(request, KEY)

    [sent] = fake.requests_to("/v1/videos", "POST")
    assert sent.form["character_url"] == "https://cdn.example.com/cat.mp4"
    assert sent.form["character_timestamps"] == "1.5,3"
    assert sent.form["seconds"] == "10"  # the reverse route's default


async def test_a_submit_answered_500_is_unavailable(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.submit_500s = 1
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert raised.value.retryable
    assert await adapter.submit(request_for(), KEY) in fake.jobs  # the next one goes through


async def test_a_submit_answered_429_is_rate_limited_with_the_retry_after_seconds(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.submit_429s = 2
    fake.retry_after = "7"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.RATE_LIMITED
    assert raised.value.retry_after_s == 7.0

    fake.retry_after = email.utils.formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.retry_after_s is not None
    assert 25 <= raised.value.retry_after_s <= 31


async def test_a_submit_that_hangs_times_out_as_unavailable(fake: FakeOpenAIUpstream) -> None:
    fake.submit_hang_s = 5.0
    upstream = OpenAIUpstream("fake-openai", fake.url, timeout_s=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert time.monotonic() - started < 2
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "timed out" in raised.value.message


async def test_a_submit_to_a_port_nobody_listens_on_is_unavailable_without_naming_it() -> None:
    port = free_port()
    upstream = OpenAIUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "127.0.0.1" not in raised.value.message
    assert str(port) not in raised.value.message


async def test_a_submit_to_a_path_the_upstream_does_not_serve_is_unavailable_not_refused(
    fake: FakeOpenAIUpstream,
) -> None:
    upstream = OpenAIUpstream("misconfigured", fake.url + "/wrong-prefix")
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert_clean(raised.value.message, fake, "wrong-prefix")


async def test_a_moderation_refusal_is_rejected_with_a_message_free_of_host_id_and_key(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.moderate_submits = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)

    error = raised.value
    assert error.kind is FailureKind.REJECTED
    assert not error.retryable
    assert error.code == "moderation_blocked"
    assert "blocked by moderation" in error.message
    assert_clean(error.message, fake, "vid_up_", "http")


async def test_a_refused_key_is_an_auth_failure(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), "sk-up-not-a-known-key-9999")
    assert raised.value.kind is FailureKind.AUTH
    assert "sk-up-not-a-known-key-9999" not in raised.value.message


@pytest.mark.parametrize("body", ['{"object": "video", "status": "queued"}', "<html>ok</html>"])
async def test_a_submit_answer_without_a_job_id_is_unavailable(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, body: str
) -> None:
    fake.submit_raw_body = body
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE


async def test_a_submit_that_already_says_failed_still_returns_the_id_and_poll_reports_it(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.fail_jobs = True
    upstream_job_id = await adapter.submit(request_for(), KEY)
    status = await adapter.poll(upstream_job_id, KEY)
    assert status.state is UpstreamState.FAILED


async def test_a_base_url_ending_in_v1_means_the_same_upstream(fake: FakeOpenAIUpstream) -> None:
    upstream = OpenAIUpstream("fake-openai", fake.url + "/v1/")
    try:
        upstream_job_id = await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert upstream_job_id in fake.jobs


# -- poll -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        *[
            (word, UpstreamState.RUNNING)
            for word in (
                "queued",
                "pending",
                "not_start",
                "NOT_STARTED",
                "submitted",
                "processing",
                "in_progress",
                "IN-PROGRESS",
                "running",
            )
        ],
        *[
            (word, UpstreamState.COMPLETED)
            for word in ("succeeded", "SUCCESS", "completed", "complete", "done")
        ],
        *[
            (word, UpstreamState.FAILED)
            for word in ("failed", "FAILURE", "error", "cancelled", "canceled", "expired")
        ],
        ("weird_state", UpstreamState.RUNNING),
        ("", UpstreamState.RUNNING),
        (None, UpstreamState.RUNNING),
        (3, UpstreamState.RUNNING),
    ],
)
def test_status_words_map_to_states_and_unknown_ones_count_as_running(
    word: object, state: UpstreamState
) -> None:
    assert state_for_status(word) is state


@pytest.mark.parametrize("vocabulary", ["openai", "relay", "task"])
async def test_each_vocabulary_is_followed_from_running_to_completed(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, vocabulary: str
) -> None:
    fake.vocabulary = vocabulary
    fake.job_duration_s = 0.3
    upstream_job_id = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, upstream_job_id)

    assert seen[0].state is UpstreamState.RUNNING
    assert seen[-1] == UpstreamStatus(UpstreamState.COMPLETED, 100)
    progress = [status.progress for status in seen if status.progress is not None]
    assert progress == sorted(progress)


async def test_an_unknown_status_counts_as_running_until_a_known_one_arrives(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.weird_status_s = 0.3
    upstream_job_id = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, upstream_job_id)

    assert seen[0].state is UpstreamState.RUNNING
    assert seen[-1].state is UpstreamState.COMPLETED


@pytest.mark.parametrize(
    ("style", "expected"), [("percent", 50), ("fraction", 50), ("string", 50), ("omitted", None)]
)
async def test_progress_is_read_as_percent_fraction_or_string_and_none_when_omitted(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, style: str, expected: int | None
) -> None:
    fake.progress_style = style
    fake.job_duration_s = 100.0
    upstream_job_id = await adapter.submit(request_for(), KEY)
    fake.jobs[upstream_job_id].created_at = time.time() - 50.0  # half-way, whatever the clock

    status = await adapter.poll(upstream_job_id, KEY)

    assert status.state is UpstreamState.RUNNING
    if expected is None:
        assert status.progress is None
    else:
        assert status.progress is not None and abs(status.progress - expected) <= 1


async def test_seconds_sent_back_as_an_integer_do_not_disturb_polling(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.seconds_as_int = True
    upstream_job_id = await adapter.submit(request_for(), KEY)
    assert (await adapter.poll(upstream_job_id, KEY)).state is UpstreamState.COMPLETED


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (DEFAULT_FAILURE, "moderation_blocked", DEFAULT_FAILURE["message"]),
        ("The render crashed.", "generation_failed", "The render crashed."),
        (None, "generation_failed", "The upstream failed to generate the video."),
    ],
)
async def test_a_job_that_fails_upstream_carries_the_upstream_code_and_message(
    adapter: OpenAIUpstream,
    fake: FakeOpenAIUpstream,
    error: object,
    code: str,
    message: str,
) -> None:
    fake.fail_jobs = True
    fake.failure_error = error
    upstream_job_id = await adapter.submit(request_for(), KEY)

    status = await adapter.poll(upstream_job_id, KEY)

    assert (status.state, status.error_code, status.error_message) == (
        UpstreamState.FAILED,
        code,
        message,
    )


async def test_a_failure_message_is_cleaned_of_the_host_the_job_id_and_the_key(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.fail_jobs = True
    upstream_job_id = await adapter.submit(request_for(), KEY)
    fake.failure_error = {
        "code": "internal",
        "message": f"Job {upstream_job_id} on 127.0.0.1:{fake.port} (key {KEY}) ran out of GPU.",
    }

    status = await adapter.poll(upstream_job_id, KEY)

    assert status.error_message is not None
    assert "ran out of GPU" in status.error_message
    assert_clean(status.error_message, fake, upstream_job_id)


async def test_the_poll_after_header_becomes_poll_after_s(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.poll_after_ms = 2500
    fake.job_duration_s = 60.0
    upstream_job_id = await adapter.submit(request_for(), KEY)
    assert (await adapter.poll(upstream_job_id, KEY)).poll_after_s == 2.5


async def test_a_rate_limited_poll_says_when_to_come_back(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.job_duration_s = 60.0
    upstream_job_id = await adapter.submit(request_for(), KEY)
    fake.poll_429s = 1
    fake.retry_after = "4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.poll(upstream_job_id, KEY)

    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, 4.0)
    assert (await adapter.poll(upstream_job_id, KEY)).state is UpstreamState.RUNNING


async def test_a_job_the_upstream_does_not_know_is_lost(adapter: OpenAIUpstream) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll("vid_up_forgotten0001", KEY)


# -- content --------------------------------------------------------------------------------


async def test_the_video_is_streamed_into_a_new_directory_with_the_key(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    destination = tmp_path / "not" / "yet" / "video.mp4"

    assert await adapter.fetch_content(upstream_job_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert list(destination.parent.iterdir()) == [destination]  # no temporary file left
    [sent] = fake.requests_to(f"/v1/videos/{upstream_job_id}/content")
    assert sent.key == KEY


async def test_a_content_redirect_is_followed_and_the_cdn_never_sees_the_key(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake.redirect_content = True
    upstream_job_id = await finished_job(adapter)

    assert await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    [cdn] = fake.requests_to(f"/cdn/{upstream_job_id}.mp4")
    assert cdn.port == fake.cdn_port
    assert "authorization" not in cdn.headers


async def test_a_video_url_from_the_status_is_downloaded_without_the_key(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake.video_url_only = True
    upstream_job_id = await finished_job(adapter)

    assert await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    assert fake.requests_to(f"/v1/videos/{upstream_job_id}/content") == []
    [cdn] = fake.requests_to(f"/cdn/{upstream_job_id}.mp4")
    assert "authorization" not in cdn.headers


async def test_when_content_is_404_the_job_is_looked_up_once_for_a_video_url(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake.video_url_only = True
    upstream_job_id = await finished_job(adapter)
    restarted = OpenAIUpstream("fake-openai", fake.url)  # remembers no video url
    fake.requests.clear()

    try:
        assert await restarted.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)
    finally:
        await restarted.close()

    assert len(fake.requests_to(f"/v1/videos/{upstream_job_id}/content")) == 1
    assert len(fake.requests_to(f"/v1/videos/{upstream_job_id}")) == 1
    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()


async def test_release_forgets_the_video_url(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake.video_url_only = True
    upstream_job_id = await finished_job(adapter)
    await adapter.release(upstream_job_id)

    await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert len(fake.requests_to(f"/v1/videos/{upstream_job_id}/content")) == 1


async def test_content_that_stays_404_is_content_unavailable(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    fake.content_404s = 100

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert not (tmp_path / "video.mp4").exists()
    assert_clean(raised.value.message, fake, upstream_job_id)


async def test_content_that_is_404_once_arrives_on_the_next_try(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    fake.content_404s = 1
    destination = tmp_path / "video.mp4"

    with pytest.raises(UpstreamError):
        await adapter.fetch_content(upstream_job_id, "video", destination, KEY)
    assert await adapter.fetch_content(upstream_job_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()


async def test_a_broken_transfer_is_unavailable_and_leaves_no_partial_file(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    fake.break_content = True

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


async def test_slow_content_that_keeps_arriving_is_saved_whole(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    fake.content_trickle_s = 0.3

    assert await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()


async def test_a_page_served_as_the_video_is_refused_and_not_kept(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    fake.content_is_html_page = True

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


async def test_a_remembered_video_url_that_fails_falls_back_to_content(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake.video_url_only = True
    upstream_job_id = await finished_job(adapter)
    fake.video_url_only = False
    fake.cdn_links_expired = True
    cdn = f"/cdn/{upstream_job_id}.mp4"

    assert await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    assert len(fake.requests_to(cdn)) == 1
    assert len(fake.requests_to(f"/v1/videos/{upstream_job_id}/content")) == 1


async def test_offered_variants_are_downloaded(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)

    assert await adapter.fetch_content(upstream_job_id, "thumbnail", tmp_path / "t.webp", KEY)
    assert await adapter.fetch_content(upstream_job_id, "spritesheet", tmp_path / "s.jpg", KEY)

    assert (tmp_path / "t.webp").read_bytes() == tiny_image("WEBP")
    assert (tmp_path / "s.jpg").read_bytes() == tiny_image("JPEG")
    asked = fake.requests_to(f"/v1/videos/{upstream_job_id}/content")
    assert [sent.query for sent in asked] == [{"variant": "thumbnail"}, {"variant": "spritesheet"}]


@pytest.mark.parametrize("refusal", [400, 404])
async def test_an_upstream_without_variants_is_asked_once_not_for_every_job(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path, refusal: int
) -> None:
    fake.offer_variants = False
    fake.variant_refusal_status = refusal
    first, second = await finished_job(adapter), await finished_job(adapter)

    assert not await adapter.fetch_content(first, "thumbnail", tmp_path / "t1.webp", KEY)
    assert not await adapter.fetch_content(first, "spritesheet", tmp_path / "s1.jpg", KEY)
    assert not await adapter.fetch_content(second, "thumbnail", tmp_path / "t2.webp", KEY)

    assert len(fake.requests_to(f"/v1/videos/{first}/content")) == 1
    assert fake.requests_to(f"/v1/videos/{second}/content") == []
    assert list(tmp_path.iterdir()) == []


async def test_a_relay_that_answers_a_variant_with_the_video_offers_no_variants(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake.ignore_variant_param = True
    upstream_job_id = await finished_job(adapter)

    assert not await adapter.fetch_content(upstream_job_id, "thumbnail", tmp_path / "t.webp", KEY)
    assert not await adapter.fetch_content(upstream_job_id, "spritesheet", tmp_path / "s.jpg", KEY)

    assert len(fake.requests_to(f"/v1/videos/{upstream_job_id}/content")) == 1
    assert list(tmp_path.iterdir()) == []


# -- probe ----------------------------------------------------------------------------------


async def test_a_probe_accepts_a_good_key_and_shows_only_its_hint(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    probe = await adapter.probe(KEY)
    assert probe.ok
    assert KEY not in probe.key_hint and probe.key_hint.startswith("sk-up")
    assert [sent.path for sent in fake.requests] == ["/v1/models"]


async def test_a_probe_reports_a_refused_key(adapter: OpenAIUpstream) -> None:
    probe = await adapter.probe("sk-up-not-a-known-key-9999")
    assert not probe.ok
    assert probe.detail == "the key was refused (401)"


async def test_a_probe_lists_videos_when_the_upstream_has_no_model_list(
    adapter: OpenAIUpstream, fake: FakeOpenAIUpstream
) -> None:
    fake.offer_models_list = False
    assert (await adapter.probe(KEY)).ok
    listed = fake.requests_to("/v1/videos", "GET")
    assert [sent.query for sent in listed] == [{"limit": "1"}]


async def test_a_probe_of_an_unreachable_upstream_raises_unavailable() -> None:
    port = free_port()
    upstream = OpenAIUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert str(port) not in raised.value.message
