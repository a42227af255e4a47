"""The `minimax` adapter against a fake MiniMax video API over real HTTP (and, where a unit is
simpler, `httpx.MockTransport`).

What reaches the wire (paths, bearer key, the JSON body with its resolution word, duration,
first frame and parameters), every status word, every `base_resp` code the docs list, content
through a file look-up and an expiring CDN link, the probe, and that no message carries the
upstream's host, task id or key.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.e2e.server import free_port
from tests.fakes.media import tiny_image, tiny_mp4
from tests.fakes.minimax_upstream import FakeMiniMaxUpstream
from vidrelay.domain.catalog import Catalog, normalise_request
from vidrelay.domain.declarations import parse_model
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.minimax import MiniMaxUpstream, map_request, state_for_status
from vidrelay.upstreams.minimax.errors import meaning

KEY = "sk-mm-test-key-0001-abcdef"
OTHER_KEY = "sk-mm-test-key-0002-ghijkl"
QUERY = "/v1/query/video_generation"
RETRIEVE = "/v1/files/retrieve"
CATALOG = Catalog(
    [
        parse_model(
            {
                "name": "hailuo-test",
                "sizes": ["1280x720", "1366x768", "1920x1080", "720x1280", "854x480", "2560x1440"],
                "capabilities": ["input_reference"],
                "routes": [{"route_class": "official", "seconds": ["6", "10"]}],
                "params": [
                    {"name": "prompt_optimizer", "type": "bool"},
                    {"name": "fast_pretreatment", "type": "bool"},
                    {"name": "watermark", "type": "bool"},
                    {"name": "some_new_field", "type": "string"},
                    {"name": "resolution", "type": "enum", "values": ["768P", "1080P"]},
                ],
            }
        )
    ]
)


@pytest.fixture(scope="module")
def served() -> Iterator[FakeMiniMaxUpstream]:
    fake = FakeMiniMaxUpstream(keys={KEY, OTHER_KEY})
    with fake.serve():
        yield fake


@pytest.fixture
def fake(served: FakeMiniMaxUpstream) -> FakeMiniMaxUpstream:
    served.reset()
    return served


@pytest_asyncio.fixture
async def adapter(fake: FakeMiniMaxUpstream) -> AsyncIterator[MiniMaxUpstream]:
    upstream = MiniMaxUpstream("fake-minimax", fake.url, timeout_s=2.0)
    yield upstream
    await upstream.close()


def request_for(
    prompt: str = "a red fox running through snow",
    *,
    upstream_model: str = "MiniMax-Hailuo-2.3",
    reference_image: bytes | None = None,
    seconds: str = "6",
    size: str = "1280x720",
    params: dict[str, object] | None = None,
) -> UpstreamRequest:
    normalised = normalise_request(
        CATALOG,
        prompt=prompt,
        model="hailuo-test",
        seconds=seconds,
        size=size,
        params=params,
        has_reference=reference_image is not None,
    )
    return UpstreamRequest("video_public_1", normalised, reference_image, upstream_model)


async def finished_job(adapter: MiniMaxUpstream) -> str:
    task_id = await adapter.submit(request_for(), KEY)
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.COMPLETED
    return task_id


def assert_clean(message: str | None, fake: FakeMiniMaxUpstream, *secrets: str) -> None:
    assert message
    for secret in ("127.0.0.1", str(fake.port), str(fake.cdn_port), KEY, OTHER_KEY, *secrets):
        assert secret not in message, message


async def raised_by(call: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as raised:
        await call
    return raised.value


# -- submit: the wire request ---------------------------------------------------------------


async def test_submit_posts_json_with_the_bearer_key_the_mapped_model_and_the_resolution_word(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    task_id = await adapter.submit(request_for("一只红狐狸", seconds="10"), KEY)

    assert task_id in fake.jobs
    [sent] = fake.submits()
    assert sent.key == KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "model": "MiniMax-Hailuo-2.3",
        "prompt": "一只红狐狸",
        "duration": 10,
        "resolution": "768P",
    }


async def test_declared_parameters_go_under_minimax_names_and_new_ones_under_their_own(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    params = {"prompt_optimizer": "false", "watermark": True, "some_new_field": "on"}
    await adapter.submit(request_for(params=params), KEY)

    [sent] = fake.submits()
    assert sent.json["prompt_optimizer"] is False  # typed, not the text "false"
    assert sent.json["aigc_watermark"] is True
    assert sent.json["some_new_field"] == "on"
    assert "watermark" not in sent.json


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
async def test_the_reference_image_is_the_first_frame_as_a_typed_data_url(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, image_format: str, content_type: str
) -> None:
    image = tiny_image(image_format)
    await adapter.submit(request_for(reference_image=image), KEY)

    [sent] = fake.submits()
    encoded = base64.b64encode(image).decode("ascii")
    assert sent.json["first_frame_image"] == f"data:{content_type};base64,{encoded}"


@pytest.mark.parametrize(
    ("model", "size", "seconds", "with_image", "resolution"),
    [
        ("MiniMax-Hailuo-2.3", "1280x720", "6", False, "768P"),
        ("MiniMax-Hailuo-2.3", "1366x768", "10", False, "768P"),
        ("MiniMax-Hailuo-2.3", "854x480", "6", False, "768P"),
        ("MiniMax-Hailuo-2.3", "1920x1080", "6", False, "1080P"),
        ("MiniMax-Hailuo-2.3", "720x1280", "6", True, "768P"),  # the image sets the ratio
        ("MiniMax-Hailuo-2.3-Fast", "1280x720", "10", True, "768P"),
        ("MiniMax-Hailuo-02", "854x480", "10", False, "768P"),  # 512P needs a first frame
        ("MiniMax-Hailuo-02", "854x480", "10", True, "512P"),
        ("MiniMax-Hailuo-02", "1920x1080", "6", False, "1080P"),
        ("T2V-01", "1280x720", "6", False, "720P"),
        ("I2V-01-live", "1280x720", "6", True, "720P"),
        ("MiniMax-Hailuo-9", "1920x1080", "10", False, "1080P"),  # a model it does not know
    ],
)
def test_size_and_seconds_map_to_the_models_resolution_and_duration(
    model: str, size: str, seconds: str, with_image: bool, resolution: str
) -> None:
    image = tiny_image("PNG") if with_image else None
    body = map_request(
        request_for(upstream_model=model, size=size, seconds=seconds, reference_image=image)
    )
    assert (body["model"], body["resolution"], body["duration"]) == (
        model,
        resolution,
        int(seconds),
    )


@pytest.mark.parametrize(
    ("model", "size", "seconds", "with_image", "reason"),
    [
        ("MiniMax-Hailuo-2.3", "1920x1080", "10", False, "for 6 seconds"),
        ("MiniMax-Hailuo-2.3", "720x1280", "6", False, "16:9"),
        ("MiniMax-Hailuo-2.3", "2560x1440", "6", False, "larger than"),
        ("MiniMax-Hailuo-2.3-Fast", "1280x720", "6", False, "from an image"),
        ("T2V-01", "1280x720", "10", False, "for 6 seconds"),
        ("T2V-01", "1920x1080", "6", False, "larger than"),
    ],
)
def test_what_minimax_cannot_render_is_refused_before_anything_is_sent(
    model: str, size: str, seconds: str, with_image: bool, reason: str
) -> None:
    image = tiny_image("PNG") if with_image else None
    with pytest.raises(UpstreamError) as raised:
        map_request(
            request_for(upstream_model=model, size=size, seconds=seconds, reference_image=image)
        )
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.REJECTED,
        "unsupported_by_upstream",
    )
    assert reason in raised.value.message


def test_a_parameter_that_would_override_a_field_vidrelay_sets_is_refused() -> None:
    with pytest.raises(UpstreamError) as raised:
        map_request(request_for(params={"resolution": "1080P"}))
    assert raised.value.code == "unsupported_by_upstream"
    assert "resolution" in raised.value.message


async def test_a_base_url_with_a_trailing_slash_means_the_same_api(
    fake: FakeMiniMaxUpstream,
) -> None:
    upstream = MiniMaxUpstream("fake-minimax", fake.url + "/")
    try:
        assert await upstream.submit(request_for(), KEY) in fake.jobs
    finally:
        await upstream.close()
    assert [sent.path for sent in fake.requests] == ["/v1/video_generation"]


# -- submit: the error mapper ---------------------------------------------------------------


async def test_a_rate_limit_code_is_rate_limited_with_retry_after_when_given(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    fake.submit_rate_limits = 2
    error = await raised_by(adapter.submit(request_for(), KEY))
    assert (error.kind, error.retry_after_s) == (FailureKind.RATE_LIMITED, None)
    assert "rate limit (1002)" in error.message

    fake.retry_after = "7"
    error = await raised_by(adapter.submit(request_for(), KEY))
    assert (error.kind, error.retry_after_s) == (FailureKind.RATE_LIMITED, 7.0)
    assert await adapter.submit(request_for(), KEY) in fake.jobs


async def test_a_refused_key_is_an_auth_failure_that_names_no_key(
    adapter: MiniMaxUpstream,
) -> None:
    wrong = "sk-mm-not-a-known-key-9999"
    error = await raised_by(adapter.submit(request_for(), wrong))
    assert (error.kind, error.code) == (FailureKind.AUTH, "upstream_auth")
    assert "(1004)" in error.message and wrong not in error.message


async def test_an_exhausted_balance_benches_the_key_as_auth_with_its_own_code(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    fake.exhausted_balance = True
    error = await raised_by(adapter.submit(request_for(), KEY))
    assert (error.kind, error.code) == (FailureKind.AUTH, "upstream_balance_exhausted")
    assert "insufficient balance (1008)" in error.message


async def test_a_moderation_refusal_is_rejected_with_the_providers_words_cleaned(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    fake.moderate_submits = True
    error = await raised_by(adapter.submit(request_for(), KEY))

    assert (error.kind, error.code) == (FailureKind.REJECTED, "moderation_blocked")
    assert not error.retryable
    assert "input new_sensitive" in error.message and "(1026)" in error.message
    assert_clean(error.message, fake, "http")
    assert not any(char.isdigit() for char in error.message.replace("(1026)", ""))


async def test_invalid_parameters_are_rejected_with_the_providers_reason(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    # A model the mapper does not know gets no limits of ours: MiniMax judges 1080P for 10 s.
    request = request_for(upstream_model="MiniMax-Hailuo-9", size="1920x1080", seconds="10")
    error = await raised_by(adapter.submit(request, KEY))
    assert (error.kind, error.code) == (FailureKind.REJECTED, "upstream_invalid_parameters")
    assert "1080P supports 6 seconds only" in error.message


@pytest.mark.parametrize("fault", ["unknown_error", "outage"])
async def test_the_upstreams_own_trouble_is_unavailable(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, fault: str
) -> None:
    if fault == "unknown_error":
        fake.submit_unknown_errors = 1
    else:
        fake.outage = True
    error = await raised_by(adapter.submit(request_for(), KEY))
    assert (error.kind, error.code) == (FailureKind.UNAVAILABLE, "upstream_unavailable")
    assert error.retryable


async def test_a_port_nobody_listens_on_is_unavailable_without_naming_it() -> None:
    port = free_port()
    upstream = MiniMaxUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        error = await raised_by(upstream.submit(request_for(), KEY))
    finally:
        await upstream.close()
    assert error.kind is FailureKind.UNAVAILABLE
    assert "127.0.0.1" not in error.message and str(port) not in error.message


async def test_a_base_url_with_a_wrong_prefix_is_unavailable_not_a_refusal(
    fake: FakeMiniMaxUpstream,
) -> None:
    upstream = MiniMaxUpstream("misconfigured", fake.url + "/wrong-prefix")
    try:
        error = await raised_by(upstream.submit(request_for(), KEY))
    finally:
        await upstream.close()
    assert error.kind is FailureKind.UNAVAILABLE
    assert_clean(error.message, fake, "wrong-prefix")


def mock_upstream(handler: Any) -> MiniMaxUpstream:
    return MiniMaxUpstream("mock", "https://api.minimax.io", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>gateway</html>"),
        httpx.Response(200, json={"base_resp": {"status_code": 0, "status_msg": "success"}}),
        httpx.Response(200, json={"task_id": "", "base_resp": {"status_code": 0}}),
    ],
)
async def test_a_malformed_submit_answer_is_unavailable(answer: httpx.Response) -> None:
    upstream = mock_upstream(lambda request: answer)
    try:
        error = await raised_by(upstream.submit(request_for(), KEY))
    finally:
        await upstream.close()
    assert (error.kind, error.code) == (FailureKind.UNAVAILABLE, "upstream_bad_response")


@pytest.mark.parametrize(
    ("code", "kind", "error_code"),
    [
        (1000, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (1001, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (1013, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (1024, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (1033, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (1002, FailureKind.RATE_LIMITED, "upstream_rate_limited"),
        (1039, FailureKind.RATE_LIMITED, "upstream_rate_limited"),
        (1041, FailureKind.RATE_LIMITED, "upstream_rate_limited"),
        (2045, FailureKind.RATE_LIMITED, "upstream_rate_limited"),
        (2056, FailureKind.RATE_LIMITED, "upstream_rate_limited"),
        (1004, FailureKind.AUTH, "upstream_auth"),
        (2049, FailureKind.AUTH, "upstream_auth"),
        (1008, FailureKind.AUTH, "upstream_balance_exhausted"),
        (1026, FailureKind.REJECTED, "moderation_blocked"),
        (1027, FailureKind.REJECTED, "moderation_blocked"),
        (1042, FailureKind.REJECTED, "invalid_prompt"),
        (2013, FailureKind.REJECTED, "upstream_invalid_parameters"),
        (2099, FailureKind.REJECTED, "upstream_rejected"),
        (1099, FailureKind.UNAVAILABLE, "upstream_unavailable"),
    ],
)
async def test_every_documented_code_has_its_failure_kind_on_the_wire(
    code: int, kind: FailureKind, error_code: str
) -> None:
    assert (meaning(code).kind, meaning(code).code) == (kind, error_code)
    body = {"task_id": "", "base_resp": {"status_code": code, "status_msg": "words"}}
    upstream = mock_upstream(lambda request: httpx.Response(200, json=body))
    try:
        error = await raised_by(upstream.submit(request_for(), KEY))
    finally:
        await upstream.close()
    assert (error.kind, error.code) == (kind, error_code)
    assert error.message.endswith(f": words ({code}).")


# -- poll -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        *[
            (word, UpstreamState.RUNNING)
            for word in ("Preparing", "Queueing", "Processing", "PROCESSING", "queued")
        ],
        *[(word, UpstreamState.COMPLETED) for word in ("Success", "success", "SUCCESS")],
        *[(word, UpstreamState.FAILED) for word in ("Fail", "fail", "Failed")],
        ("Rendering", UpstreamState.RUNNING),
        ("", UpstreamState.RUNNING),
        (None, UpstreamState.RUNNING),
        (3, UpstreamState.RUNNING),
    ],
)
def test_status_words_map_to_states_and_unknown_ones_count_as_running(
    word: object, state: UpstreamState
) -> None:
    assert state_for_status(word) is state


async def test_a_job_is_followed_from_preparing_through_processing_to_success(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    fake.job_duration_s = 100.0
    task_id = await adapter.submit(request_for(), KEY)
    seen = []
    for elapsed in (1.0, 10.0, 50.0, 101.0):
        fake.jobs[task_id].created_at = time.time() - elapsed
        seen.append(await adapter.poll(task_id, KEY))

    assert seen == [
        UpstreamStatus(UpstreamState.RUNNING, 5),
        UpstreamStatus(UpstreamState.RUNNING, 5),
        UpstreamStatus(UpstreamState.RUNNING, 50),
        UpstreamStatus(UpstreamState.COMPLETED, 100),
    ]
    polls = fake.requests_to(QUERY)
    assert {sent.query["task_id"] for sent in polls} == {task_id}
    assert {sent.key for sent in polls} == {KEY}


async def test_an_unknown_status_word_counts_as_running_until_a_known_one_arrives(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    fake.weird_status_s = 60.0
    task_id = await adapter.submit(request_for(), KEY)
    assert await adapter.poll(task_id, KEY) == UpstreamStatus(UpstreamState.RUNNING, None)
    fake.weird_status_s = 0.0
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.COMPLETED


@pytest.mark.parametrize(
    ("code", "message", "error_message", "error_code", "words"),
    [
        (1027, "output new_sensitive", None, "moderation_blocked", "output new_sensitive (1027)"),
        (0, "", "the render crashed", "generation_failed", "the render crashed"),
        (0, "", None, "generation_failed", "The upstream failed to generate the video."),
    ],
)
async def test_a_job_that_fails_upstream_carries_its_reason(
    adapter: MiniMaxUpstream,
    fake: FakeMiniMaxUpstream,
    code: int,
    message: str,
    error_message: str | None,
    error_code: str,
    words: str,
) -> None:
    fake.fail_jobs = True
    fake.failure_code, fake.failure_message = code, message
    fake.failure_error_message = error_message
    task_id = await adapter.submit(request_for(), KEY)

    status = await adapter.poll(task_id, KEY)

    assert (status.state, status.error_code) == (UpstreamState.FAILED, error_code)
    assert status.error_message is not None and words in status.error_message


async def test_a_failure_message_is_cleaned_of_the_host_the_task_id_and_the_key(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    fake.fail_jobs = True
    task_id = await adapter.submit(request_for(), KEY)
    file_id = fake.jobs[task_id].file_id
    fake.failure_code = 1000
    fake.failure_message = (
        f"task {task_id} (file {file_id}) on 127.0.0.1:{fake.port} with key {KEY} ran out of GPU"
    )

    status = await adapter.poll(task_id, KEY)

    assert status.state is UpstreamState.FAILED
    assert status.error_message is not None and "ran out of GPU" in status.error_message
    assert_clean(status.error_message, fake, task_id, file_id)


async def test_a_rate_limited_poll_says_so_and_the_next_one_goes_through(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    fake.job_duration_s = 60.0
    task_id = await adapter.submit(request_for(), KEY)
    fake.query_rate_limits = 1
    fake.retry_after = "4"

    error = await raised_by(adapter.poll(task_id, KEY))

    assert (error.kind, error.retry_after_s) == (FailureKind.RATE_LIMITED, 4.0)
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.RUNNING


async def test_a_task_minimax_does_not_know_is_lost(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll("999999999999999", KEY)
    task_id = await adapter.submit(request_for(), KEY)
    fake.lost_queries = 1
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(task_id, KEY)


@pytest.mark.parametrize(
    ("fault", "kind"), [("key", FailureKind.AUTH), ("outage", FailureKind.UNAVAILABLE)]
)
async def test_a_poll_refused_for_the_channels_sake_raises_its_kind(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, fault: str, kind: FailureKind
) -> None:
    task_id = await adapter.submit(request_for(), KEY)
    key = KEY
    if fault == "key":
        key = "sk-mm-not-a-known-key-9999"
    else:
        fake.outage = True
    error = await raised_by(adapter.poll(task_id, key))
    assert error.kind is kind
    assert_clean(error.message, fake, task_id, key)


# -- content --------------------------------------------------------------------------------


async def test_the_video_is_looked_up_by_file_id_and_fetched_from_the_cdn_without_the_key(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    task_id = await finished_job(adapter)
    file_id = fake.jobs[task_id].file_id
    destination = tmp_path / "not" / "yet" / "video.mp4"

    assert await adapter.fetch_content(task_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert list(destination.parent.iterdir()) == [destination]  # no temporary file left
    [looked_up] = fake.requests_to(RETRIEVE)
    assert (looked_up.query, looked_up.key, looked_up.port) == (
        {"file_id": file_id},
        KEY,
        fake.port,
    )
    [cdn] = fake.requests_to(f"/cdn/{file_id}.mp4")
    assert cdn.port == fake.cdn_port and "authorization" not in cdn.headers
    assert len(fake.requests_to(QUERY)) == 1  # the file id came with the poll


async def test_a_video_not_on_the_cdn_yet_is_asked_for_again_with_a_fresh_link(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    task_id = await finished_job(adapter)
    fake.content_404s = 3  # more than one call tries
    destination = tmp_path / "video.mp4"

    error = await raised_by(adapter.fetch_content(task_id, "video", destination, KEY))
    assert (error.kind, error.code) == (FailureKind.CONTENT_UNAVAILABLE, "content_unavailable")
    assert not destination.exists()
    assert await adapter.fetch_content(task_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert len(fake.requests_to(RETRIEVE)) == 4  # a fresh link for every try


async def test_an_expired_link_is_replaced_by_a_fresh_one(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    task_id = await finished_job(adapter)
    fake.expired_links = 1

    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    assert len(fake.requests_to(RETRIEVE)) == 2


async def test_a_video_that_stays_gone_is_content_unavailable_with_a_clean_message(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    task_id = await finished_job(adapter)
    fake.content_404s = 100

    error = await raised_by(adapter.fetch_content(task_id, "video", tmp_path / "v.mp4", KEY))

    assert error.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []
    assert_clean(error.message, fake, task_id, fake.jobs[task_id].file_id, "cdn")


async def test_a_restarted_adapter_asks_for_the_file_id_once_then_fetches(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    task_id = await finished_job(adapter)
    restarted = MiniMaxUpstream("fake-minimax", fake.url)
    fake.requests.clear()
    try:
        assert await restarted.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)
    finally:
        await restarted.close()
    assert [sent.path for sent in fake.requests][:2] == [QUERY, RETRIEVE]
    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()


async def test_release_forgets_the_file_id(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    task_id = await finished_job(adapter)
    await adapter.release(task_id)
    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)
    assert len(fake.requests_to(QUERY)) == 2


async def test_the_video_of_an_unfinished_or_unknown_task_is_content_unavailable(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    fake.job_duration_s = 60.0
    task_id = await adapter.submit(request_for(), KEY)
    for unfinished in (task_id, "999999999999999"):
        error = await raised_by(adapter.fetch_content(unfinished, "video", tmp_path / "v", KEY))
        assert error.kind is FailureKind.CONTENT_UNAVAILABLE
    assert fake.requests_to(RETRIEVE) == []


async def test_previews_are_not_offered_so_the_engine_derives_them(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream, tmp_path: Path
) -> None:
    task_id = await finished_job(adapter)
    fake.requests.clear()
    assert not await adapter.fetch_content(task_id, "thumbnail", tmp_path / "t.webp", KEY)
    assert not await adapter.fetch_content(task_id, "spritesheet", tmp_path / "s.jpg", KEY)
    assert fake.requests == [] and list(tmp_path.iterdir()) == []


def content_handler(cdn: httpx.Response) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == QUERY:
            return httpx.Response(
                200, json={"status": "Success", "file_id": "205258526306433", "base_resp": {}}
            )
        if request.url.path == RETRIEVE:
            file = {"file_id": 205258526306433, "download_url": "https://cdn.example.net/v.mp4"}
            return httpx.Response(200, json={"file": file, "base_resp": {"status_code": 0}})
        return cdn

    return handler


@pytest.mark.parametrize(
    ("cdn", "kind"),
    [
        (httpx.Response(200, text="<!doctype html><p>oops</p>"), FailureKind.CONTENT_UNAVAILABLE),
        (httpx.Response(500, text="<html>down</html>"), FailureKind.UNAVAILABLE),
        (httpx.Response(429, text="slow down"), FailureKind.RATE_LIMITED),
    ],
)
async def test_a_cdn_answer_that_is_not_the_video_has_its_kind(
    cdn: httpx.Response, kind: FailureKind, tmp_path: Path
) -> None:
    upstream = mock_upstream(content_handler(cdn))
    try:
        assert (await upstream.poll("1", KEY)).state is UpstreamState.COMPLETED
        error = await raised_by(upstream.fetch_content("1", "video", tmp_path / "v.mp4", KEY))
    finally:
        await upstream.close()
    assert error.kind is kind
    assert list(tmp_path.iterdir()) == []


# -- probe ----------------------------------------------------------------------------------


async def test_a_probe_looks_up_a_task_that_cannot_exist_and_accepts_a_good_key(
    adapter: MiniMaxUpstream, fake: FakeMiniMaxUpstream
) -> None:
    probe = await adapter.probe(KEY)
    assert probe.ok and "looked up a task id that cannot exist" in probe.detail
    assert KEY not in probe.key_hint and probe.key_hint.startswith("sk-mm")
    assert [(sent.path, sent.query) for sent in fake.requests] == [(QUERY, {"task_id": "0"})]
    assert fake.submits() == []


async def test_a_probe_reports_a_refused_key(adapter: MiniMaxUpstream) -> None:
    probe = await adapter.probe("sk-mm-not-a-known-key-9999")
    assert not probe.ok
    assert "refused the key" in probe.detail and "(1004)" in probe.detail


async def test_a_probe_reports_an_exhausted_balance() -> None:
    body = {"base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}
    upstream = mock_upstream(lambda request: httpx.Response(200, json=body))
    try:
        probe = await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert not probe.ok and "balance is exhausted" in probe.detail


async def test_a_probe_of_an_upstream_down_or_unreachable_raises_unavailable(
    fake: FakeMiniMaxUpstream,
) -> None:
    fake.outage = True
    port = free_port()
    for base_url in (fake.url, f"http://127.0.0.1:{port}"):
        upstream = MiniMaxUpstream("down", base_url, timeout_s=1.0)
        try:
            error = await raised_by(upstream.probe(KEY))
        finally:
            await upstream.close()
        assert error.kind is FailureKind.UNAVAILABLE
        assert str(port) not in error.message and str(fake.port) not in error.message
