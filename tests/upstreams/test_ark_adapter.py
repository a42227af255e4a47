"""The `ark` adapter against a fake Volcengine Ark over real HTTP (and `httpx.MockTransport`
where one answer is all a test needs).

What reaches the wire (paths, the bearer key, the JSON body: size as ratio and resolution,
seconds as duration, the image as a `data:` URL, declared parameters under Ark's names), every
status word, every error code's failure kind, content retrieval from the signed CDN link (not
there yet, expired), the probe, and that no message carries the host, the key or a task id.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.e2e.server import free_port
from tests.fakes.ark_upstream import DEFAULT_FAILURE, TASKS, FakeArkUpstream
from tests.fakes.media import tiny_image, tiny_mp4
from vidrelay.domain.catalog import Catalog, normalise_request
from vidrelay.domain.declarations import parse_model
from vidrelay.upstreams.ark import ArkUpstream, map_request, state_for_status
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)

KEY = "ark-key-0001-abcdefghijkl"
OTHER_KEY = "ark-key-0002-mnopqrstuvwx"
MODEL = "doubao-seedance-1-5-pro-251215"
SIZES = ["1280x720", "720x1280", "960x960", "1112x834", "834x1112", "1470x630"]
CATALOG = Catalog(
    [
        parse_model(
            {
                "name": "seedance-test",
                "sizes": [*SIZES, "864x496", "1920x1080", "2206x946", "640x360", "1000x500"],
                "capabilities": ["input_reference"],
                "routes": [{"route_class": "official", "seconds_range": [1, 20]}],
                "params": [
                    {"name": "seed", "type": "int"},
                    {"name": "camera_fixed", "type": "bool"},
                    {"name": "watermark", "type": "bool"},
                    {"name": "generate_audio", "type": "bool"},
                    {"name": "resolution", "type": "enum", "values": ["480p", "720p", "1080p"]},
                    {"name": "ratio", "type": "enum", "values": ["adaptive", "16:9"]},
                    {"name": "image_role", "type": "enum", "values": ["reference_image"]},
                    {"name": "frames", "type": "int"},
                    {"name": "duration", "type": "int"},
                    {"name": "motion_strength", "type": "number"},
                ],
            }
        )
    ]
)


@pytest.fixture(scope="module")
def served() -> Iterator[FakeArkUpstream]:
    fake = FakeArkUpstream(keys={KEY, OTHER_KEY})
    with fake.serve():
        yield fake


@pytest.fixture
def fake(served: FakeArkUpstream) -> FakeArkUpstream:
    served.reset()
    return served


@pytest_asyncio.fixture
async def adapter(fake: FakeArkUpstream) -> AsyncIterator[ArkUpstream]:
    upstream = ArkUpstream("fake-ark", fake.url, timeout_s=2.0)
    yield upstream
    await upstream.close()


def request_for(
    prompt: str = "a paper boat on a stream",
    *,
    upstream_model: str = MODEL,
    reference_image: bytes | None = None,
    size: str = "1280x720",
    seconds: str = "5",
    **params: object,
) -> UpstreamRequest:
    normalised = normalise_request(
        CATALOG,
        prompt=prompt,
        model="seedance-test",
        size=size,
        seconds=seconds,
        params=params,
        has_reference=reference_image is not None,
    )
    return UpstreamRequest("video_public_1", normalised, reference_image, upstream_model)


def mocked(handler: Callable[[httpx.Request], httpx.Response]) -> ArkUpstream:
    return ArkUpstream("mocked", "https://ark.example.com", transport=httpx.MockTransport(handler))


def ark_error(status: int, code: str, message: str = "It went wrong.") -> httpx.Response:
    body = {"error": {"code": code, "message": f"{message} Request id: 0217abc", "type": "X"}}
    return httpx.Response(status, json=body)


async def poll_until_settled(
    adapter: ArkUpstream, task_id: str, timeout_s: float = 3.0
) -> list[UpstreamStatus]:
    """Every status seen, up to and including the first that is not running."""
    seen: list[UpstreamStatus] = []
    deadline = time.monotonic() + timeout_s
    while True:
        status = await adapter.poll(task_id, KEY)
        seen.append(status)
        if status.state is not UpstreamState.RUNNING:
            return seen
        assert time.monotonic() < deadline, f"still running: {seen[-1]}"
        await asyncio.sleep(0.03)


async def finished_task(adapter: ArkUpstream) -> str:
    task_id = await adapter.submit(request_for(), KEY)
    assert (await poll_until_settled(adapter, task_id))[-1].state is UpstreamState.COMPLETED
    return task_id


def assert_clean(message: str, fake: FakeArkUpstream, *secrets: str) -> None:
    for secret in ("127.0.0.1", str(fake.port), KEY, OTHER_KEY, "cgt-", *secrets):
        assert secret not in message, message


# -- the request mapper ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio", "resolution"),
    [
        ("1280x720", "16:9", "720p"),
        ("720x1280", "9:16", "720p"),
        ("960x960", "1:1", "720p"),
        ("1112x834", "4:3", "720p"),
        ("834x1112", "3:4", "720p"),
        ("1470x630", "21:9", "720p"),
        ("864x496", "16:9", "480p"),
        ("1920x1080", "16:9", "1080p"),
        ("2206x946", "21:9", "1080p"),
    ],
)
def test_a_size_becomes_the_nearest_ratio_and_resolution(
    size: str, ratio: str, resolution: str
) -> None:
    body = map_request(request_for(size=size))
    assert (body["ratio"], body["resolution"]) == (ratio, resolution)


@pytest.mark.parametrize("size", ["640x360", "1000x500"])
def test_a_size_with_no_ratio_or_resolution_near_it_is_refused_before_any_call(size: str) -> None:
    with pytest.raises(UpstreamError) as raised:
        map_request(request_for(size=size))
    assert raised.value.kind is FailureKind.REJECTED
    assert raised.value.code == "unsupported_by_upstream"
    assert size in raised.value.message


@pytest.mark.parametrize(
    ("model", "seconds", "offered"),
    [
        ("doubao-seedance-1-0-pro-250528", "2", True),
        ("seedance-1-0-pro-250528", "12", True),
        ("seedance-1-0-pro-250528", "13", False),
        ("doubao-seedance-1-5-pro-251215", "3", False),
        ("doubao-seedance-1-5-pro-251215", "4", True),
        ("doubao-seedance-1-5-pro-251215", "12", True),
        ("dreamina-seedance-2-0-260128", "15", True),
        ("ep-20251201123456-abcde", "15", True),
        ("ep-20251201123456-abcde", "16", False),
        ("ep-20251201123456-abcde", "1", False),
    ],
)
def test_seconds_become_the_duration_within_the_model_familys_range(
    model: str, seconds: str, offered: bool
) -> None:
    request = request_for(upstream_model=model, seconds=seconds)
    if offered:
        assert map_request(request)["duration"] == int(seconds)
        return
    with pytest.raises(UpstreamError) as raised:
        map_request(request)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.REJECTED,
        "unsupported_by_upstream",
    )


def test_declared_parameters_go_under_arks_names_at_arks_places() -> None:
    image = tiny_image("PNG")
    body = map_request(
        request_for(
            reference_image=image,
            seed=42,
            camera_fixed=True,
            watermark=False,
            generate_audio=False,
            resolution="1080p",
            ratio="adaptive",
            image_role="reference_image",
            motion_strength=0.5,
            duration=11,
        )
    )
    assert body["seed"] == 42 and body["camera_fixed"] is True and body["watermark"] is False
    assert body["generate_audio"] is False
    assert (body["resolution"], body["ratio"]) == ("1080p", "adaptive")  # params over size
    assert body["content"][1]["role"] == "reference_image"
    assert body["motion_strength"] == 0.5  # a field this adapter does not know, as named
    assert body["duration"] == 5  # the paid length, never a parameter's
    assert "image_role" not in body


def test_frames_replace_the_duration() -> None:
    body = map_request(request_for(frames=121))
    assert body["frames"] == 121 and "duration" not in body


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_the_reference_image_is_a_first_frame_data_url_of_its_type(
    image_format: str, content_type: str
) -> None:
    image = tiny_image(image_format)
    body = map_request(request_for(reference_image=image))
    text, item = body["content"]
    assert text == {"type": "text", "text": "a paper boat on a stream"}
    encoded = base64.b64encode(image).decode()
    assert item == {
        "type": "image_url",
        "image_url": {"url": f"data:{content_type};base64,{encoded}"},
        "role": "first_frame",
    }


def test_text_commands_in_the_prompt_cannot_change_the_paid_length_or_size() -> None:
    body = map_request(request_for("a kite --dur 12 over a beach --rs 1080p --rt 21:9 --cf true"))
    assert body["content"][0]["text"] == "a kite over a beach"
    assert map_request(request_for("a -- b --durable"))["content"][0]["text"] == "a -- b --durable"


# -- submit ---------------------------------------------------------------------------------


async def test_submit_posts_the_json_body_with_the_bearer_key(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    task_id = await adapter.submit(
        request_for("一只红狐狸", size="720x1280", seconds="8", seed=7, camera_fixed=False), KEY
    )

    assert task_id in fake.tasks and task_id.startswith("cgt-")
    [sent] = fake.submits()
    assert sent.key == KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": MODEL,
        "content": [{"type": "text", "text": "一只红狐狸"}],
        "ratio": "9:16",
        "resolution": "720p",
        "duration": 8,
        "seed": 7,
        "camera_fixed": False,
    }


async def test_submit_sends_the_image_inline_and_the_fake_accepts_it(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    image = tiny_image("JPEG")
    await adapter.submit(request_for(reference_image=image), KEY)
    [sent] = fake.submits()
    assert sent.body["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


async def test_a_base_url_ending_in_api_v3_means_the_same_upstream(
    fake: FakeArkUpstream,
) -> None:
    upstream = ArkUpstream("fake-ark", fake.url + "/api/v3/")
    try:
        task_id = await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert task_id in fake.tasks


@pytest.mark.parametrize("body", ['{"status": "queued"}', "<html>ok</html>", '{"id": ""}'])
async def test_a_submit_answer_without_a_task_id_is_unavailable(
    adapter: ArkUpstream, fake: FakeArkUpstream, body: str
) -> None:
    fake.submit_raw_body = body
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE


# -- error answers --------------------------------------------------------------------------


async def test_a_rate_limited_submit_is_rate_limited_with_retry_after_when_given(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.submit_429s = 2
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, None)
    fake.retry_after = "7"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, 7.0)
    assert "RPM" in raised.value.message
    assert await adapter.submit(request_for(), KEY) in fake.tasks


async def test_a_refused_key_is_an_auth_failure_that_does_not_name_the_key(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), "ark-key-unknown-999999")
    assert raised.value.kind is FailureKind.AUTH
    assert "ark-key-unknown-999999" not in raised.value.message


async def test_an_overdue_balance_benches_the_key_with_its_own_code(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.overdue_keys = {KEY}
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.AUTH
    assert raised.value.code == "upstream_balance_exhausted"
    assert "overdue balance" in raised.value.message
    assert await adapter.submit(request_for(), OTHER_KEY) in fake.tasks


async def test_a_moderation_refusal_is_rejected_with_a_message_free_of_host_task_id_and_key(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.moderate_submits = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    error = raised.value
    assert (error.kind, error.code) == (FailureKind.REJECTED, "moderation_blocked")
    assert not error.retryable
    assert "may contain sensitive information" in error.message
    assert_clean(error.message, fake, "http")


async def test_a_bad_parameter_is_rejected(adapter: ArkUpstream, fake: FakeArkUpstream) -> None:
    fake.reject_parameter = "resolution"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (FailureKind.REJECTED, "upstream_rejected")
    assert "`resolution`" in raised.value.message


@pytest.mark.parametrize("fault", ["500", "outage"])
async def test_a_server_error_is_unavailable(
    adapter: ArkUpstream, fake: FakeArkUpstream, fault: str
) -> None:
    if fault == "500":
        fake.submit_500s = 1
    else:
        fake.outage = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE and raised.value.retryable


@pytest.mark.parametrize(
    ("status", "code", "kind", "our_code"),
    [
        (429, "QuotaExceeded", FailureKind.RATE_LIMITED, "upstream_rate_limited"),
        (429, "ModelAccountTpmRateLimitExceeded", FailureKind.RATE_LIMITED, None),
        (429, "ServerOverloaded", FailureKind.RATE_LIMITED, None),
        (429, "SetLimitExceeded", FailureKind.AUTH, "upstream_balance_exhausted"),
        (403, "AccountOverdueError", FailureKind.AUTH, "upstream_balance_exhausted"),
        (403, "AccessDenied", FailureKind.AUTH, "upstream_auth"),
        (401, "AuthenticationError", FailureKind.AUTH, "upstream_auth"),
        (400, "InputImageSensitiveContentDetected", FailureKind.REJECTED, "moderation_blocked"),
        (400, "SensitiveContentDetected.Violence", FailureKind.REJECTED, "moderation_blocked"),
        (400, "InputTextRiskDetection", FailureKind.REJECTED, "moderation_blocked"),
        (400, "InvalidEndpoint.ClosedEndpoint", FailureKind.UNAVAILABLE, None),
        (404, "ModelNotOpen", FailureKind.UNAVAILABLE, None),
        (404, "InvalidEndpointOrModel.NotFound", FailureKind.UNAVAILABLE, None),
        (400, "MissingParameter", FailureKind.REJECTED, "upstream_rejected"),
        (500, "InternalServiceError", FailureKind.UNAVAILABLE, None),
        (502, "", FailureKind.UNAVAILABLE, None),
    ],
)
async def test_the_bodys_error_code_decides_the_failure_kind(
    status: int, code: str, kind: FailureKind, our_code: str | None
) -> None:
    upstream = mocked(lambda request: ark_error(status, code))
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is kind
    if our_code is not None:
        assert raised.value.code == our_code


async def test_the_volcengine_gateway_error_shape_is_read_too() -> None:
    body = {"ResponseMetadata": {"Error": {"Code": "AccountOverdueError", "Message": "Overdue."}}}
    upstream = mocked(lambda request: httpx.Response(403, json=body))
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert (raised.value.code, raised.value.message) == ("upstream_balance_exhausted", "Overdue.")


async def test_a_submit_that_hangs_times_out_as_unavailable() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out talking to ark.example.com", request=request)

    upstream = ArkUpstream("slow", "https://ark.example.com", transport=httpx.MockTransport(slow))
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "timed out" in raised.value.message and "example.com" not in raised.value.message


async def test_a_submit_to_a_port_nobody_listens_on_is_unavailable_without_naming_it() -> None:
    port = free_port()
    upstream = ArkUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "127.0.0.1" not in raised.value.message and str(port) not in raised.value.message


async def test_a_submit_to_a_path_ark_does_not_serve_is_unavailable_not_refused(
    fake: FakeArkUpstream,
) -> None:
    upstream = ArkUpstream("misconfigured", fake.url + "/wrong-prefix")
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert_clean(raised.value.message, fake, "wrong-prefix")


# -- poll -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state", "progress"),
    [
        ("queued", UpstreamState.RUNNING, 5),
        ("QUEUED", UpstreamState.RUNNING, 5),
        ("running", UpstreamState.RUNNING, 50),
        ("Running", UpstreamState.RUNNING, 50),
        ("succeeded", UpstreamState.COMPLETED, 100),
        ("failed", UpstreamState.FAILED, None),
        ("cancelled", UpstreamState.FAILED, None),
        ("expired", UpstreamState.FAILED, None),
        ("weird_state", UpstreamState.RUNNING, None),
        ("", UpstreamState.RUNNING, None),
        (None, UpstreamState.RUNNING, None),
        (3, UpstreamState.RUNNING, None),
    ],
)
def test_status_words_map_to_states_and_progress_and_unknown_ones_count_as_running(
    word: object, state: UpstreamState, progress: int | None
) -> None:
    assert state_for_status(word) == (state, progress)


async def test_a_task_is_followed_from_queued_through_running_to_succeeded(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.job_duration_s = 1.0
    task_id = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, task_id)

    assert [status.progress for status in seen] == sorted(s.progress or 0 for s in seen)
    assert seen[0] == UpstreamStatus(UpstreamState.RUNNING, 5)
    assert UpstreamStatus(UpstreamState.RUNNING, 50) in seen
    assert seen[-1] == UpstreamStatus(UpstreamState.COMPLETED, 100)
    polls = fake.requests_to(f"{TASKS}/{task_id}")
    assert {poll.key for poll in polls} == {KEY}


async def test_an_unknown_status_word_counts_as_running_until_a_known_one_arrives(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.weird_status_s = 0.3
    task_id = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, task_id)

    assert seen[0] == UpstreamStatus(UpstreamState.RUNNING, None)
    assert seen[-1].state is UpstreamState.COMPLETED


@pytest.mark.parametrize(
    ("end", "error", "code", "message"),
    [
        ("failed", DEFAULT_FAILURE, "moderation_blocked", DEFAULT_FAILURE["message"]),
        (
            "failed",
            {"code": "InternalServiceError", "message": "The render crashed."},
            "generation_failed",
            "The render crashed.",
        ),
        ("failed", None, "generation_failed", "The upstream failed to generate the video."),
        ("cancelled", None, "cancelled", "The upstream job was cancelled before it finished."),
        ("expired", None, "expired", "The upstream job expired in the provider's queue"),
    ],
)
async def test_a_task_that_ends_without_a_video_carries_a_code_and_its_reason(
    adapter: ArkUpstream,
    fake: FakeArkUpstream,
    end: str,
    error: dict[str, str] | None,
    code: str,
    message: str,
) -> None:
    fake.fail_jobs, fake.end_status, fake.failure_error = True, end, error
    task_id = await adapter.submit(request_for(), KEY)

    status = await adapter.poll(task_id, KEY)

    assert (status.state, status.error_code) == (UpstreamState.FAILED, code)
    assert status.error_message is not None and status.error_message.startswith(message)


async def test_a_failure_reason_is_cleaned_of_the_host_the_task_ids_and_the_key(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.fail_jobs = True
    task_id = await adapter.submit(request_for(), KEY)
    fake.failure_error = {
        "code": "InternalServiceError",
        "message": f"Task {task_id} (retry of cgt-20250101000000-abcde) on 127.0.0.1:"
        f"{fake.port} with key {KEY} ran out of GPU; see {fake.url}/status",
    }

    status = await adapter.poll(task_id, KEY)

    assert status.error_message is not None and "ran out of GPU" in status.error_message
    assert_clean(status.error_message, fake, task_id, "abcde")


async def test_a_rate_limited_poll_is_rate_limited_and_the_next_one_answers(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.job_duration_s = 60.0
    task_id = await adapter.submit(request_for(), KEY)
    fake.poll_429s, fake.retry_after = 1, "4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.poll(task_id, KEY)

    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, 4.0)
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.RUNNING


async def test_a_task_ark_does_not_know_is_lost(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll("cgt-20250101000000-gone1", KEY)
    task_id = await adapter.submit(request_for(), KEY)
    fake.lose_tasks = 1
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(task_id, KEY)


async def test_a_poll_answered_with_something_not_json_is_unavailable() -> None:
    upstream = mocked(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.poll("cgt-20250101000000-abcde", KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE


# -- content --------------------------------------------------------------------------------


async def test_the_video_comes_from_the_signed_cdn_link_without_the_key(
    adapter: ArkUpstream, fake: FakeArkUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    destination = tmp_path / "not" / "yet" / "video.mp4"

    assert await adapter.fetch_content(task_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert list(destination.parent.iterdir()) == [destination]  # no temporary file left
    [cdn] = fake.requests_to(f"/tos/{task_id}.mp4")
    assert cdn.port == fake.cdn_port and "authorization" not in cdn.headers
    assert cdn.query["X-Tos-Signature"]


@pytest.mark.parametrize("variant", ["thumbnail", "spritesheet"])
async def test_ark_offers_no_previews_so_the_engine_derives_them(
    adapter: ArkUpstream, fake: FakeArkUpstream, tmp_path: Path, variant: str
) -> None:
    task_id = await finished_task(adapter)
    before = len(fake.requests)
    assert not await adapter.fetch_content(task_id, variant, tmp_path / "preview", KEY)
    assert len(fake.requests) == before


async def test_a_link_not_there_yet_is_retried_with_a_fresh_link_at_once(
    adapter: ArkUpstream, fake: FakeArkUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    fake.cdn_404s = 1
    fake.requests.clear()

    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert len(fake.requests_to(f"/tos/{task_id}.mp4")) == 2
    assert len(fake.requests_to(f"{TASKS}/{task_id}")) == 1  # the fresh link


async def test_a_link_that_stays_404_is_content_unavailable_then_arrives_on_a_later_try(
    adapter: ArkUpstream, fake: FakeArkUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    fake.cdn_404s = 2
    destination = tmp_path / "video.mp4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(task_id, "video", destination, KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert not destination.exists()
    assert_clean(raised.value.message, fake, task_id)

    assert await adapter.fetch_content(task_id, "video", destination, KEY)
    assert destination.read_bytes() == tiny_mp4()


async def test_an_expired_link_is_replaced_by_a_fresh_one(
    adapter: ArkUpstream, fake: FakeArkUpstream, tmp_path: Path
) -> None:
    fake.expired_urls = 1
    task_id = await finished_task(adapter)  # its last status named an expired link

    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    downloads = fake.requests_to(f"/tos/{task_id}.mp4")
    assert len(downloads) == 2
    assert int(downloads[0].query["X-Tos-Expires"]) < time.time()
    assert int(downloads[1].query["X-Tos-Expires"]) > time.time()


async def test_an_adapter_that_remembers_no_link_looks_the_task_up_once(
    fake: FakeArkUpstream, adapter: ArkUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    restarted = ArkUpstream("fake-ark", fake.url)
    fake.requests.clear()
    try:
        assert await restarted.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)
    finally:
        await restarted.close()
    assert len(fake.requests_to(f"{TASKS}/{task_id}")) == 1
    assert len(fake.requests_to(f"/tos/{task_id}.mp4")) == 1


async def test_release_forgets_the_link(
    adapter: ArkUpstream, fake: FakeArkUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    await adapter.release(task_id)
    fake.requests.clear()

    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert len(fake.requests_to(f"{TASKS}/{task_id}")) == 1


@pytest.mark.parametrize("gone", ["task_lost", "still_running", "failed"])
async def test_a_task_with_no_video_to_give_is_content_unavailable(
    adapter: ArkUpstream, fake: FakeArkUpstream, tmp_path: Path, gone: str
) -> None:
    fake.job_duration_s = 60.0 if gone == "still_running" else 0.0
    fake.fail_jobs = gone == "failed"
    task_id = await adapter.submit(request_for(), KEY)
    fake.lose_tasks = 1 if gone == "task_lost" else 0

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("cdn", "kind"),
    [
        (httpx.Response(503, text="busy"), FailureKind.UNAVAILABLE),
        (httpx.Response(200, text="<!DOCTYPE html><html>login</html>"), None),
    ],
)
async def test_a_cdn_that_fails_or_sends_a_page_never_leaves_a_file(
    tmp_path: Path, cdn: httpx.Response, kind: FailureKind | None
) -> None:
    task = {
        "id": "cgt-20250101000000-abcde",
        "status": "succeeded",
        "content": {"video_url": "https://cdn.example.net/v.mp4?X-Tos-Expires=9"},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return cdn if request.url.host == "cdn.example.net" else httpx.Response(200, json=task)

    upstream = mocked(handler)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.fetch_content(task["id"], "video", tmp_path / "video.mp4", KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is (kind or FailureKind.CONTENT_UNAVAILABLE)
    assert list(tmp_path.iterdir()) == []


# -- probe ----------------------------------------------------------------------------------


async def test_a_probe_lists_one_task_and_bills_nothing(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    probe = await adapter.probe(KEY)
    assert probe.ok and probe.detail == "the key was accepted (listed generation tasks)"
    assert KEY not in probe.key_hint and probe.key_hint.startswith("ark-k")
    [sent] = fake.requests
    assert (sent.method, sent.path, sent.query) == (
        "GET",
        TASKS,
        {"page_num": "1", "page_size": "1"},
    )
    assert fake.submits() == [] and sent.key == KEY


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        ("ark-key-unknown-999999", "the key was refused (401; listed generation tasks)"),
        (OTHER_KEY, "the account's balance is exhausted (403; listed generation tasks)"),
    ],
)
async def test_a_probe_reports_a_refused_key_or_an_exhausted_balance(
    adapter: ArkUpstream, fake: FakeArkUpstream, key: str, detail: str
) -> None:
    fake.overdue_keys = {OTHER_KEY}
    probe = await adapter.probe(key)
    assert (probe.ok, probe.detail) == (False, detail)


async def test_without_a_task_list_the_probe_looks_up_a_task_that_cannot_exist(
    adapter: ArkUpstream, fake: FakeArkUpstream
) -> None:
    fake.offer_task_list = False
    probe = await adapter.probe(KEY)
    assert probe.ok
    assert probe.detail == "the key was accepted (looked up a task id that cannot exist)"
    assert [sent.path for sent in fake.requests][-1].startswith(f"{TASKS}/cgt-")
    assert not (await adapter.probe("ark-key-unknown-999999")).ok


async def test_a_probe_of_a_base_url_without_ark_behind_it_fails() -> None:
    upstream = mocked(lambda request: httpx.Response(404, text="404 page not found"))
    try:
        probe = await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert not probe.ok


async def test_a_probe_of_an_unreachable_upstream_raises_unavailable() -> None:
    port = free_port()
    upstream = ArkUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert str(port) not in raised.value.message
