"""The `vidu` adapter against a fake Vidu API over real HTTP (and `httpx.MockTransport` where
one answer is all a test needs).

What reaches the wire (paths, `Token` auth, the body Vidu documents), how each state word and
each error reason maps, how the video is collected from URLs that expire, what the probe asks,
and that no message carries the channel's host, its key or Vidu's task id.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.e2e.server import free_port
from tests.fakes.media import tiny_image, tiny_mp4
from tests.fakes.vidu_upstream import FakeViduUpstream
from vidrelay.domain.catalog import Catalog, normalise_request
from vidrelay.domain.declarations import parse_model
from vidrelay.shipped_models import shipped_models
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.vidu import ViduUpstream, map_request, state_for_status
from vidrelay.upstreams.vidu.status import credits_exhausted

KEY = "vidu-key-test-0001-abcdef"
OTHER_KEY = "vidu-key-test-0002-ghijkl"

TEST_MODEL = parse_model(
    {
        "name": "vidu-test",
        "sizes": [
            "1280x720", "720x1280", "720x720", "960x960", "960x720", "720x960", "1920x1080",
            "1080x1920", "1080x1080", "960x540", "640x360", "1104x816", "1280x800", "1000x1000",
        ],
        "routes": [{"route_class": "official", "seconds_range": [1, 16]}],
        "params": [
            {"name": "seed", "type": "int"},
            {"name": "movement_amplitude", "type": "string"},
            {"name": "generate_audio", "type": "bool"},
            {"name": "bgm", "type": "bool"},
            {"name": "style", "type": "enum", "values": ["general", "anime"]},
            {"name": "resolution", "type": "enum", "values": ["540p", "720p", "1080p"]},
            {"name": "aspect_ratio", "type": "enum", "values": ["16:9", "1:1"]},
            {"name": "new_vidu_field", "type": "string"},
            {"name": "duration", "type": "int"},
        ],
    }
)  # fmt: skip
CATALOG = Catalog([TEST_MODEL, *(entry.model for entry in shipped_models())])


@pytest.fixture(scope="module")
def served() -> Iterator[FakeViduUpstream]:
    fake = FakeViduUpstream(keys={KEY, OTHER_KEY})
    with fake.serve():
        yield fake


@pytest.fixture
def fake(served: FakeViduUpstream) -> FakeViduUpstream:
    served.reset()
    return served


@pytest_asyncio.fixture
async def adapter(fake: FakeViduUpstream) -> AsyncIterator[ViduUpstream]:
    upstream = ViduUpstream("fake-vidu", fake.url + "/", timeout_s=2.0)
    yield upstream
    await upstream.close()


def request_for(
    prompt: str = "a red fox running through snow",
    *,
    model: str = "vidu-test",
    upstream_model: str = "viduq3-pro",
    reference_image: bytes | None = None,
    **fields: object,
) -> UpstreamRequest:
    fields.setdefault("seconds", "5")
    normalised = normalise_request(CATALOG, prompt=prompt, model=model, **fields)
    return UpstreamRequest("video_public_1", normalised, reference_image, upstream_model)


def mocked(answer: Callable[[httpx.Request], httpx.Response]) -> ViduUpstream:
    return ViduUpstream("mocked", "https://api.vidu.example", transport=httpx.MockTransport(answer))


def vidu_error(status: int, reason: str, message: str, **headers: str) -> httpx.Response:
    body = {"code": status, "reason": reason, "message": message, "metadata": {}}
    return httpx.Response(status, json=body, headers=headers)


async def poll_until_settled(
    adapter: ViduUpstream, task_id: str, timeout_s: float = 3.0
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


async def finished_task(adapter: ViduUpstream) -> str:
    task_id = await adapter.submit(request_for(), KEY)
    assert (await poll_until_settled(adapter, task_id))[-1].state is UpstreamState.COMPLETED
    return task_id


def assert_clean(message: str, fake: FakeViduUpstream, *secrets: str) -> None:
    for secret in ("127.0.0.1", str(fake.port), KEY, OTHER_KEY, *secrets):
        assert secret not in message, message


# -- the request mapper -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio", "resolution"),
    [
        ("1280x720", "16:9", "720p"),
        ("720x1280", "9:16", "720p"),
        ("720x720", "1:1", "720p"),
        ("960x960", "1:1", "720p"),  # Vidu's square 720p: the pixels of 1280x720
        ("960x720", "4:3", "720p"),
        ("720x960", "3:4", "720p"),
        ("1104x816", "4:3", "720p"),
        ("1920x1080", "16:9", "1080p"),
        ("1080x1920", "9:16", "1080p"),
        ("960x540", "16:9", "540p"),
        ("640x360", "16:9", "360p"),
    ],
)
def test_a_size_becomes_vidus_aspect_ratio_and_resolution(
    size: str, ratio: str, resolution: str
) -> None:
    body = map_request(request_for(size=size, upstream_model="vidu-next"))
    assert (body["aspect_ratio"], body["resolution"]) == (ratio, resolution)


@pytest.mark.parametrize(
    ("upstream_model", "fields", "problem"),
    [
        ("vidu-next", {"size": "1280x800"}, "aspect ratio"),
        ("vidu-next", {"size": "1000x1000"}, "resolution"),
        ("viduq1", {"size": "1920x1080", "seconds": "4"}, "4 s"),
        ("viduq1", {"size": "1280x720"}, "720p"),
        ("viduq1", {"size": "960x720"}, "4:3"),
        ("vidu2.0", {"size": "1920x1080", "seconds": "8"}, "1080p"),
        ("viduq3-pro", {"size": "640x360"}, "360p"),
        ("viduq2", {"seconds": "12"}, "12 s"),
    ],
)
def test_what_the_model_cannot_make_is_refused_before_anything_is_sent(
    upstream_model: str, fields: dict[str, str], problem: str
) -> None:
    with pytest.raises(UpstreamError) as raised:
        map_request(request_for(upstream_model=upstream_model, **fields))
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.REJECTED,
        "unsupported_by_upstream",
    )
    assert problem in raised.value.message


def test_what_each_known_model_allows_is_accepted() -> None:
    assert map_request(request_for(upstream_model="viduq1", size="1080x1080"))["duration"] == 5
    assert map_request(request_for(upstream_model="vidu1.5", size="640x360", seconds="4"))
    assert map_request(request_for(upstream_model="viduq3-pro", seconds="16"))["duration"] == 16
    assert map_request(request_for(upstream_model="VIDUQ2", size="720x960", seconds="10"))


def test_declared_parameters_go_under_vidus_names_and_unknown_ones_as_they_are() -> None:
    body = map_request(
        request_for(
            size="1920x1080",
            params={
                "seed": "42",
                "movement_amplitude": "small",
                "generate_audio": "false",
                "bgm": "true",
                "style": "anime",
                "new_vidu_field": "as-is",
            },
        )
    )
    assert body == {
        "model": "viduq3-pro",
        "prompt": "a red fox running through snow",
        "duration": 5,
        "resolution": "1080p",
        "aspect_ratio": "16:9",
        "seed": 42,
        "movement_amplitude": "small",
        "audio": False,
        "bgm": True,
        "style": "anime",
        "new_vidu_field": "as-is",
    }


def test_a_declared_resolution_or_aspect_ratio_wins_over_the_size() -> None:
    body = map_request(request_for(params={"resolution": "1080p", "aspect_ratio": "1:1"}))
    assert (body["resolution"], body["aspect_ratio"]) == ("1080p", "1:1")
    with pytest.raises(UpstreamError, match="540p"):
        map_request(
            request_for(upstream_model="viduq1", size="1920x1080", params={"resolution": "540p"})
        )


def test_a_parameter_may_not_override_what_the_request_sets() -> None:
    with pytest.raises(UpstreamError) as raised:
        map_request(request_for(params={"duration": "16"}))
    assert raised.value.code == "unsupported_by_upstream"


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_the_reference_image_is_a_data_url_with_its_type_and_no_aspect_ratio_or_style(
    image_format: str, content_type: str
) -> None:
    image = tiny_image(image_format)
    body = map_request(request_for(reference_image=image, params={"style": "anime"}))
    [sent] = body["images"]
    prefix, _, data = sent.partition(",")
    assert prefix == f"data:{content_type};base64"
    assert base64.b64decode(data) == image
    assert "aspect_ratio" not in body and "style" not in body
    assert body["resolution"] == "720p"


# -- submit -----------------------------------------------------------------------------------


async def test_a_text_job_is_posted_to_text2video_with_the_token_and_the_documented_body(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    task_id = await adapter.submit(
        request_for("一只红狐狸", size="720x1280", seconds="8", params={"seed": "7"}), KEY
    )

    assert task_id in fake.tasks and task_id.isdigit()
    [sent] = fake.submits()
    assert (sent.method, sent.path) == ("POST", "/ent/v2/text2video")
    assert sent.headers["authorization"] == f"Token {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "model": "viduq3-pro",
        "prompt": "一只红狐狸",
        "duration": 8,
        "resolution": "720p",
        "aspect_ratio": "9:16",
        "seed": 7,
    }


async def test_an_image_job_is_posted_to_img2video_with_the_image_as_a_data_url(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    image = tiny_image("PNG")
    task_id = await adapter.submit(request_for(reference_image=image, upstream_model="viduq1",
                                               size="1920x1080"), KEY)  # fmt: skip

    [sent] = fake.submits()
    assert sent.path == "/ent/v2/img2video"
    assert sent.json is not None
    assert sent.json["images"] == ["data:image/png;base64," + base64.b64encode(image).decode()]
    assert (sent.json["model"], sent.json["resolution"]) == ("viduq1", "1080p")
    assert fake.tasks[task_id].kind == "img2video"


async def test_a_submit_answered_429_is_rate_limited_with_the_retry_after_seconds(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.rate_limited_submits = 1
    fake.retry_after = "7"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, 7.0)
    assert "TooManyRequests" in raised.value.message
    assert await adapter.submit(request_for(), KEY) in fake.tasks


@pytest.mark.parametrize("reason", ["QuotaExceeded", "SystemThrottling"])
async def test_vidus_other_throttling_reasons_are_rate_limits_too(reason: str) -> None:
    upstream = mocked(lambda request: vidu_error(429, reason, "slow down", **{"retry-after": "2"}))
    with pytest.raises(UpstreamError) as raised:
        await upstream.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, 2.0)
    await upstream.close()


async def test_a_refused_key_is_an_auth_failure_that_does_not_show_the_key(
    adapter: ViduUpstream,
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), "vidu-key-not-known-9999")
    assert raised.value.kind is FailureKind.AUTH
    assert "vidu-key-not-known-9999" not in raised.value.message


async def test_an_exhausted_balance_benches_the_key_with_its_own_code(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.balance_exhausted = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.AUTH,
        "upstream_balance_exhausted",
    )
    assert "credits" in raised.value.message


async def test_a_moderation_refusal_is_rejected_with_vidus_reason_cleaned(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.moderate_submits = True
    fake.moderation_message = (
        "submit is illegal: task {task_id} on {host} (key {key}) see https://{host}/audit"
    )
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)

    error = raised.value
    assert (error.kind, error.code, error.retryable) == (
        FailureKind.REJECTED,
        "moderation_blocked",
        False,
    )
    assert error.message.startswith("Submit is illegal") and "AuditSubmitIllegal" in error.message
    assert_clean(error.message, fake, "https://")
    assert not re.search(r"[0-9]{6,}", error.message)  # no task id, ours or another


async def test_a_bad_parameter_is_rejected_with_vidus_words(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(params={"movement_amplitude": "enormous"}), KEY)
    assert (raised.value.kind, raised.value.code) == (FailureKind.REJECTED, "upstream_rejected")
    assert raised.value.message == "Invalid field: movement_amplitude (FieldInvalid)"


@pytest.mark.parametrize("reason", ["ModelUnavailable", "OperationInProcess"])
async def test_a_model_or_operation_vidu_cannot_take_now_is_unavailable_not_refused(
    reason: str,
) -> None:
    upstream = mocked(lambda request: vidu_error(400, reason, "try later"))
    with pytest.raises(UpstreamError) as raised:
        await upstream.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE
    await upstream.close()


async def test_a_submit_answered_500_is_unavailable(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.submit_500s = 1
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE and raised.value.retryable


@pytest.mark.parametrize("body", ['{"state": "created"}', "<html>ok</html>", '{"task_id": ""}'])
async def test_a_submit_answer_without_a_task_id_is_unavailable(
    adapter: ViduUpstream, fake: FakeViduUpstream, body: str
) -> None:
    fake.submit_raw_body = body
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.UNAVAILABLE,
        "upstream_bad_response",
    )


async def test_a_submit_that_times_out_or_reaches_nobody_is_unavailable_without_a_host() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out talking to api.vidu.example")

    upstream = mocked(hang)
    with pytest.raises(UpstreamError) as raised:
        await upstream.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE and "timed out" in raised.value.message
    assert "vidu.example" not in raised.value.message
    await upstream.close()

    port = free_port()
    nobody = ViduUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    with pytest.raises(UpstreamError) as raised:
        await nobody.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE and str(port) not in raised.value.message
    await nobody.close()


async def test_a_wrong_base_url_is_unavailable_not_a_refusal(fake: FakeViduUpstream) -> None:
    upstream = ViduUpstream("misconfigured", fake.url + "/wrong-prefix")
    with pytest.raises(UpstreamError) as raised:
        await upstream.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert_clean(raised.value.message, fake, "wrong-prefix")
    await upstream.close()


async def test_no_error_message_carries_the_host_the_key_or_a_task_id() -> None:
    leak = (
        "invalid field: duration for task 889912345678901234 of key {key} at "
        "api.vidu.example, see https://api.vidu.example/docs"
    )
    upstream = mocked(lambda request: vidu_error(400, "FieldInvalid", leak.format(key=KEY)))
    with pytest.raises(UpstreamError) as raised:
        await upstream.submit(request_for(), KEY)
    message = raised.value.message
    assert message.startswith("Invalid field: duration")
    for secret in ("889912345678901234", KEY, "api.vidu.example", "https://"):
        assert secret not in message, message
    await upstream.close()


# -- poll -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state", "progress"),
    [
        ("created", UpstreamState.RUNNING, 5),
        ("queueing", UpstreamState.RUNNING, 5),
        ("QUEUEING", UpstreamState.RUNNING, 5),
        ("processing", UpstreamState.RUNNING, 50),
        (" Processing ", UpstreamState.RUNNING, 50),
        ("success", UpstreamState.COMPLETED, 100),
        ("SUCCESS", UpstreamState.COMPLETED, 100),
        ("failed", UpstreamState.FAILED, None),
        ("scheduling", UpstreamState.RUNNING, None),
        ("", UpstreamState.RUNNING, None),
        (None, UpstreamState.RUNNING, None),
        (3, UpstreamState.RUNNING, None),
    ],
)
def test_state_words_map_to_states_and_progress_and_unknown_ones_count_as_running(
    word: object, state: UpstreamState, progress: int | None
) -> None:
    assert state_for_status(word) == (state, progress)


async def test_a_task_is_followed_from_created_through_processing_to_success(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.job_duration_s = 0.6
    task_id = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, task_id)

    assert seen[0] == UpstreamStatus(UpstreamState.RUNNING, 5)
    assert UpstreamStatus(UpstreamState.RUNNING, 50) in seen
    assert seen[-1] == UpstreamStatus(UpstreamState.COMPLETED, 100)
    progress = [status.progress for status in seen if status.progress is not None]
    assert progress == sorted(progress)
    polls = fake.requests_to(f"/ent/v2/tasks/{task_id}/creations", "GET")
    assert {poll.key for poll in polls} == {KEY}


async def test_an_unknown_state_counts_as_running_until_a_known_one_arrives(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.unknown_state_s = 0.3
    task_id = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, task_id)

    assert seen[0] == UpstreamStatus(UpstreamState.RUNNING, None)
    assert seen[-1].state is UpstreamState.COMPLETED


async def test_a_progress_number_in_the_body_is_taken_over_the_word() -> None:
    upstream = mocked(lambda request: httpx.Response(200, json={"state": "processing",
                                                                "progress": 42}))  # fmt: skip
    assert await upstream.poll("889912345678901234", KEY) == UpstreamStatus(
        UpstreamState.RUNNING, 42
    )
    await upstream.close()


@pytest.mark.parametrize(
    ("err_code", "code", "words"),
    [
        ("CreationPolicyViolation", "moderation_blocked", "safety review"),
        ("AuditSubmitIllegal", "moderation_blocked", "safety review"),
        ("CreditInsufficient", "upstream_balance_exhausted", "credits"),
        ("UserCancelled", "upstream_cancelled", "cancelled"),
        ("InternalServiceFailure", "generation_failed", "internal failure"),
        ("SomethingNew", "generation_failed", "(SomethingNew)"),
        ("", "generation_failed", "failed to generate the video."),
    ],
)
async def test_a_failed_task_carries_the_reason_its_err_code_names(
    adapter: ViduUpstream, fake: FakeViduUpstream, err_code: str, code: str, words: str
) -> None:
    fake.fail_tasks_with = err_code
    task_id = await adapter.submit(request_for(), KEY)

    status = await adapter.poll(task_id, KEY)

    assert (status.state, status.error_code) == (UpstreamState.FAILED, code)
    assert status.error_message is not None and words in status.error_message
    assert_clean(status.error_message, fake, task_id)


async def test_a_rate_limited_poll_says_when_to_come_back(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.job_duration_s = 60.0
    task_id = await adapter.submit(request_for(), KEY)
    fake.rate_limited_polls = 1
    fake.retry_after = "4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.poll(task_id, KEY)

    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, 4.0)
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.RUNNING


async def test_a_task_vidu_does_not_know_is_lost(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll("880000000000000001", KEY)
    task_id = await adapter.submit(request_for(), KEY)
    fake.lose_tasks = True
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(task_id, KEY)


async def test_task_not_found_under_another_status_is_lost_too() -> None:
    upstream = mocked(lambda request: vidu_error(400, "TaskNotFound", "task not found"))
    with pytest.raises(UpstreamJobLost):
        await upstream.poll("889912345678901234", KEY)
    await upstream.close()


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(200, text="<html>gateway</html>"), FailureKind.UNAVAILABLE),
        (httpx.Response(502, text="bad gateway"), FailureKind.UNAVAILABLE),
        (vidu_error(401, "Unauthorized", "unauthorized"), FailureKind.AUTH),
    ],
)
async def test_a_poll_that_gets_no_usable_answer_fails_by_kind(
    answer: httpx.Response, kind: FailureKind
) -> None:
    upstream = mocked(lambda request: answer)
    with pytest.raises(UpstreamError) as raised:
        await upstream.poll("889912345678901234", KEY)
    assert raised.value.kind is kind
    assert "889912345678901234" not in raised.value.message
    await upstream.close()


# -- content ----------------------------------------------------------------------------------


async def test_the_video_comes_from_the_cdn_url_the_task_names_without_the_key(
    adapter: ViduUpstream, fake: FakeViduUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    destination = tmp_path / "not" / "yet" / "video.mp4"

    assert await adapter.fetch_content(task_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert list(destination.parent.iterdir()) == [destination]  # no temporary file left
    [download] = [r for r in fake.requests if r.path.startswith(f"/cdn/{task_id}/")]
    assert download.port == fake.cdn_port
    assert "authorization" not in download.headers


async def test_previews_are_left_to_the_engine(
    adapter: ViduUpstream, fake: FakeViduUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    before = len(fake.requests)

    assert not await adapter.fetch_content(task_id, "thumbnail", tmp_path / "t.webp", KEY)
    assert not await adapter.fetch_content(task_id, "spritesheet", tmp_path / "s.jpg", KEY)

    assert len(fake.requests) == before
    assert list(tmp_path.iterdir()) == []


async def test_a_video_that_is_404_first_is_not_there_yet_then_arrives(
    adapter: ViduUpstream, fake: FakeViduUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    fake.content_404s = 1
    destination = tmp_path / "video.mp4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(task_id, "video", destination, KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert not destination.exists()
    assert_clean(raised.value.message, fake, task_id)

    assert await adapter.fetch_content(task_id, "video", destination, KEY)
    assert destination.read_bytes() == tiny_mp4()


async def test_an_expired_url_is_replaced_by_a_fresh_one_from_the_task(
    adapter: ViduUpstream, fake: FakeViduUpstream, tmp_path: Path
) -> None:
    fake.expired_urls = 1  # the status that says `success` names a URL already expired
    task_id = await finished_task(adapter)
    polls_before = len(fake.requests_to(f"/ent/v2/tasks/{task_id}/creations"))

    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    downloads = [r for r in fake.requests if r.path.startswith(f"/cdn/{task_id}/")]
    assert len(downloads) == 2 and downloads[0].query != downloads[1].query
    assert len(fake.requests_to(f"/ent/v2/tasks/{task_id}/creations")) == polls_before + 1


async def test_a_url_that_stays_expired_is_content_unavailable_and_leaves_no_file(
    adapter: ViduUpstream, fake: FakeViduUpstream, tmp_path: Path
) -> None:
    fake.url_ttl_s = -60
    task_id = await finished_task(adapter)

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


async def test_an_adapter_that_knows_no_url_asks_the_task_for_one(
    fake: FakeViduUpstream, adapter: ViduUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    restarted = ViduUpstream("fake-vidu", fake.url)
    fake.requests.clear()
    try:
        assert await restarted.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)
    finally:
        await restarted.close()
    assert fake.requests[0].path == f"/ent/v2/tasks/{task_id}/creations"
    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()


async def test_a_task_without_a_video_or_gone_is_content_unavailable(
    adapter: ViduUpstream, fake: FakeViduUpstream, tmp_path: Path
) -> None:
    fake.job_duration_s = 60.0
    running = await adapter.submit(request_for(), KEY)
    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(running, "video", tmp_path / "video.mp4", KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE

    fake.lose_tasks = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(running, "video", tmp_path / "video.mp4", KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE


async def test_release_forgets_the_url(
    adapter: ViduUpstream, fake: FakeViduUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter)
    await adapter.release(task_id)
    polls_before = len(fake.requests_to(f"/ent/v2/tasks/{task_id}/creations"))

    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert len(fake.requests_to(f"/ent/v2/tasks/{task_id}/creations")) == polls_before + 1


async def test_a_cdn_that_fails_with_a_5xx_is_unavailable(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.vidu.example":
            return httpx.Response(503, text="busy")
        url = "https://cdn.vidu.example/v.mp4?sig=1"
        return httpx.Response(200, json={"state": "success", "creations": [{"url": url}]})

    upstream = mocked(answer)
    with pytest.raises(UpstreamError) as raised:
        await upstream.fetch_content("889912345678901234", "video", tmp_path / "v.mp4", KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE
    await upstream.close()


# -- probe ------------------------------------------------------------------------------------


async def test_a_probe_asks_the_accounts_credits_and_accepts_a_good_key(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    probe = await adapter.probe(KEY)

    assert probe.ok
    assert probe.detail == "the key was accepted (asked the account's credits)"
    assert KEY not in probe.key_hint and probe.key_hint.startswith("vidu-")
    [sent] = fake.requests
    assert (sent.method, sent.path, sent.key) == ("GET", "/ent/v2/credits", KEY)
    assert sent.query == {"show_detail": "false"}
    assert fake.tasks == {}


async def test_a_probe_reports_an_account_without_credits(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.balance_exhausted = True
    probe = await adapter.probe(KEY)
    assert not probe.ok
    assert "no credits left" in probe.detail


async def test_without_a_credits_look_up_a_probe_looks_up_a_task_that_cannot_exist(
    adapter: ViduUpstream, fake: FakeViduUpstream
) -> None:
    fake.offer_credits_lookup = False
    probe = await adapter.probe(KEY)

    assert probe.ok and "looked up task 0" in probe.detail
    assert [sent.path for sent in fake.requests] == [
        "/ent/v2/credits",
        "/ent/v2/tasks/0/creations",
    ]
    assert fake.tasks == {}


async def test_a_probe_reports_a_refused_key(adapter: ViduUpstream) -> None:
    probe = await adapter.probe("vidu-key-not-known-9999")
    assert not probe.ok
    assert probe.detail == "the key was refused (401, asked the account's credits)"


async def test_a_probe_of_an_upstream_that_is_down_or_unreachable(fake: FakeViduUpstream) -> None:
    fake.outage = True
    upstream = ViduUpstream("fake-vidu", fake.url)
    probe = await upstream.probe(KEY)
    assert not probe.ok and "unavailable" in probe.detail.lower()
    await upstream.close()

    port = free_port()
    gone = ViduUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    with pytest.raises(UpstreamError) as raised:
        await gone.probe(KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE and str(port) not in raised.value.message
    await gone.close()


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (vidu_error(429, "QuotaExceeded", "quota exceeded"), True),
        (vidu_error(400, "FieldInvalid", "invalid field: id"), True),
        (vidu_error(400, "CreditInsufficient", "insufficient credits"), False),
        (httpx.Response(404, text="<html>no such path</html>"), False),
    ],
)
async def test_a_probe_reads_vidus_reason(answer: httpx.Response, ok: bool) -> None:
    upstream = mocked(lambda request: answer)
    probe = await upstream.probe(KEY)
    assert probe.ok is ok, probe.detail
    await upstream.close()


@pytest.mark.parametrize(
    ("body", "exhausted"),
    [
        ({"remains": [{"type": "metered", "credit_remain": 0}]}, True),
        ({"remaining_credits": [{"type": "test", "credit_remain": 0}]}, True),
        ({"remains": [{"type": "metered", "credit_remain": 0},
                      {"type": "test", "credit_remain": 12}]}, False),
        ({"remains": [{"type": "concurrent", "credit_remain": 0}]}, False),
        ({"remains": []}, False),
        ({}, False),
    ],
)  # fmt: skip
def test_the_credits_answer_says_when_the_account_can_pay_for_nothing(
    body: dict[str, Any], exhausted: bool
) -> None:
    assert credits_exhausted(body) is exhausted


def test_the_fake_speaks_json_errors_as_the_docs_show() -> None:
    """The fake's error body is the documented shape, so the adapter is tested against it."""
    fake = FakeViduUpstream()
    with fake.serve():
        answer = httpx.get(fake.url + "/ent/v2/tasks/1/creations")
    body: dict[str, Any] = json.loads(answer.text)
    assert answer.status_code == 401
    assert body == {"code": 401, "reason": "Unauthorized", "message": "unauthorized",
                    "metadata": {}}  # fmt: skip
