"""The `dashscope` adapter against a fake DashScope over real HTTP (and `httpx.MockTransport`
where one answer is all a test needs).

What reaches the wire (paths, auth, the body in both Wan dialects), every status word, every
error code, content retrieval from expiring URLs, the probe, and that no message carries the
channel's host, its key or a task id.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.e2e.server import free_port
from tests.fakes.dashscope_upstream import (
    DEFAULT_FAILURE,
    WEIRD_STATUS,
    FakeDashScope,
)
from tests.fakes.media import tiny_image, tiny_mp4
from vidrelay.domain.catalog import Catalog, normalise_request
from vidrelay.domain.declarations import parse_model
from vidrelay.upstreams import dashscope
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.dashscope import DashScopeUpstream, map_request, state_for_status

KEY = "sk-ds-test-key-0001-abcdef"
OTHER_KEY = "sk-ds-test-key-0002-ghijkl"
WAN = parse_model(
    {
        "name": "wan-test",
        "sizes": [
            "1280x720", "720x1280", "960x960", "1088x832", "832x1088", "1920x1080",
            "1080x1920", "1440x1440", "1632x1248", "1248x1632", "832x480", "624x624",
            "640x480", "1792x1024", "1600x500", "320x180",
        ],
        "routes": [{"route_class": "official", "seconds_range": [1, 20]}],
        "capabilities": ["input_reference", "audio"],
        "params": [
            {"name": "resolution", "type": "enum", "values": ["480p", "720p", "1080p"]},
            {"name": "negative_prompt", "type": "string"},
            {"name": "seed", "type": "int", "min": 0, "max": 2147483647},
            {"name": "prompt_extend", "type": "bool"},
            {"name": "watermark", "type": "bool"},
            {"name": "audio", "type": "bool"},
            {"name": "generate_audio", "type": "bool"},
            {"name": "shot_type", "type": "enum", "values": ["single", "multi"]},
            {"name": "cfg_scale", "type": "number"},
        ],
    }
)  # fmt: skip
CATALOG = Catalog([WAN])


@pytest.fixture(scope="module")
def served() -> Iterator[FakeDashScope]:
    fake = FakeDashScope(keys={KEY, OTHER_KEY})
    with fake.serve():
        yield fake


@pytest.fixture
def fake(served: FakeDashScope) -> FakeDashScope:
    served.reset()
    return served


@pytest_asyncio.fixture
async def adapter(fake: FakeDashScope) -> AsyncIterator[DashScopeUpstream]:
    upstream = DashScopeUpstream("fake-dashscope", fake.url, timeout_s=2.0)
    yield upstream
    await upstream.close()


def request_for(
    model: str = "wan2.7-t2v",
    *,
    prompt: str = "a red fox running through snow",
    image: bytes | None = None,
    seconds: str = "5",
    size: str = "1280x720",
    **params: object,
) -> UpstreamRequest:
    normalised = normalise_request(
        CATALOG,
        prompt=prompt,
        model="wan-test",
        seconds=seconds,
        size=size,
        params=params,
        has_reference=image is not None,
    )
    return UpstreamRequest("video_public_1", normalised, image, upstream_model=model)


def rejected(request: UpstreamRequest) -> UpstreamError:
    with pytest.raises(UpstreamError) as raised:
        map_request(request)
    return raised.value


async def finished_task(adapter: DashScopeUpstream, fake: FakeDashScope) -> str:
    task_id = await adapter.submit(request_for(), KEY)
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.COMPLETED
    fake.requests.clear()
    return task_id


def assert_clean(message: str | None, fake: FakeDashScope, *secrets: str) -> None:
    assert message
    for secret in ("127.0.0.1", str(fake.port), KEY, OTHER_KEY, *secrets):
        assert secret not in message, message


def answering(status: int, body: object) -> DashScopeUpstream:
    """An adapter whose every request gets this one answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return DashScopeUpstream(
        "mocked", "https://dashscope-intl.aliyuncs.com", transport=httpx.MockTransport(handler)
    )


# -- the request mapper -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "resolution", "ratio"),
    [
        ("1280x720", "720P", "16:9"),
        ("720x1280", "720P", "9:16"),
        ("960x960", "720P", "1:1"),
        ("1088x832", "720P", "4:3"),
        ("832x1088", "720P", "3:4"),
        ("1920x1080", "1080P", "16:9"),
        ("1080x1920", "1080P", "9:16"),
        ("1440x1440", "1080P", "1:1"),
        ("1632x1248", "1080P", "4:3"),
        ("1248x1632", "1080P", "3:4"),
        ("1792x1024", "1080P", "16:9"),
    ],
)
def test_the_new_protocol_gets_a_resolution_and_a_ratio_from_the_size(
    size: str, resolution: str, ratio: str
) -> None:
    body = map_request(request_for("wan2.7-t2v", size=size, seconds="12"))
    assert body == {
        "model": "wan2.7-t2v",
        "input": {"prompt": "a red fox running through snow"},
        "parameters": {"resolution": resolution, "ratio": ratio, "duration": 12},
    }


@pytest.mark.parametrize(
    ("model", "size", "wire_size"),
    [
        ("wan2.6-t2v", "1280x720", "1280*720"),
        ("wan2.6-t2v", "1088x832", "1088*832"),
        ("wan2.6-t2v", "1080x1920", "1080*1920"),
        ("wan2.6-t2v", "1440x1440", "1440*1440"),
        ("wan2.5-t2v-preview", "832x480", "832*480"),
        ("wan2.5-t2v-preview", "624x624", "624*624"),
        ("wanx2.1-t2v-turbo", "720x1280", "720*1280"),
    ],
)
def test_the_legacy_text_to_video_models_get_the_documented_size(
    model: str, size: str, wire_size: str
) -> None:
    body = map_request(request_for(model, size=size))
    assert body["model"] == model
    assert body["parameters"] == {"size": wire_size, "duration": 5}


def test_a_declared_resolution_decides_the_tier_and_the_size_the_ratio() -> None:
    new = map_request(request_for("wan2.7-t2v", size="720x1280", resolution="1080p"))
    assert (new["parameters"]["resolution"], new["parameters"]["ratio"]) == ("1080P", "9:16")
    assert "resolution" not in new["input"]
    legacy = map_request(request_for("wan2.6-t2v", size="1280x720", resolution="1080p"))
    assert legacy["parameters"] == {"size": "1920*1080", "duration": 5}


@pytest.mark.parametrize(
    ("model", "fields", "says"),
    [
        ("wan2.7-t2v", {"size": "1600x500"}, "aspect ratio"),
        ("wan2.7-t2v", {"size": "320x180"}, "resolution tier"),
        ("wan2.7-t2v", {"size": "832x480"}, "480P is not a resolution wan2.7-t2v offers"),
        ("wan2.7-t2v", {"resolution": "480p"}, "480P"),
        ("wan2.7-t2v", {"seconds": "16"}, "16 seconds"),
        ("wan2.7-t2v", {"seconds": "1"}, "1 seconds"),
        ("wan2.6-i2v", {"seconds": "20"}, "20 seconds"),
        ("wan2.5-t2v-preview", {"seconds": "8"}, "8 seconds"),
        ("wan2.5-t2v-preview", {"size": "640x480"}, "no 4:3 size at 480P"),
        ("wanx2.1-t2v-plus", {"size": "1920x1080"}, "1080P"),
    ],
)
def test_what_wan_cannot_be_asked_is_refused_before_anything_is_sent(
    model: str, fields: dict[str, str], says: str
) -> None:
    error = rejected(request_for(model, **fields))
    assert (error.kind, error.code) == (FailureKind.REJECTED, "unsupported_by_upstream")
    assert says in error.message


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_a_legacy_image_request_sends_the_image_as_a_data_url_with_a_resolution(
    image_format: str, content_type: str
) -> None:
    image = tiny_image(image_format)
    body = map_request(request_for("wan2.6-i2v", image=image, size="720x1280", seconds="10"))
    encoded = base64.b64encode(image).decode()
    assert body == {
        "model": "wan2.6-i2v",
        "input": {
            "prompt": "a red fox running through snow",
            "img_url": f"data:{content_type};base64,{encoded}",
        },
        "parameters": {"resolution": "720P", "duration": 10},
    }


def test_a_new_protocol_image_request_sends_the_image_as_the_first_frame_media() -> None:
    image = tiny_image("PNG")
    body = map_request(request_for("wan2.7-i2v", image=image, size="1920x1080"))
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    assert body["input"]["media"] == [{"type": "first_frame", "url": url}]
    assert body["parameters"] == {"resolution": "1080P", "duration": 5}  # no ratio: the image's


@pytest.mark.parametrize(
    ("model", "with_image", "sent"),
    [
        ("wan2.6-t2v", True, "wan2.6-i2v"),
        ("wan2.6-i2v", False, "wan2.6-t2v"),
        ("wan2.6-i2v-us", False, "wan2.6-t2v-us"),
        ("wan2.7-t2v", True, "wan2.7-i2v"),
        ("wan2.5-i2v-preview", True, "wan2.5-i2v-preview"),
        ("wan3.0-video", True, "wan3.0-video"),
    ],
)
def test_a_wan_pair_sends_each_request_to_the_half_that_takes_its_input(
    model: str, with_image: bool, sent: str
) -> None:
    image = tiny_image("PNG") if with_image else None
    body = map_request(request_for(model, image=image))
    assert body["model"] == sent
    assert ("img_url" in body["input"] or "media" in body["input"]) is with_image


def test_declared_parameters_go_where_wan_documents_them_typed() -> None:
    body = map_request(
        request_for(
            "wan2.6-t2v",
            negative_prompt="blurry, low quality",
            seed=7,
            prompt_extend=False,
            watermark=True,
            audio=False,
            shot_type="multi",
            cfg_scale="0.5",
        )
    )
    assert body["input"] == {
        "prompt": "a red fox running through snow",
        "negative_prompt": "blurry, low quality",
    }
    assert body["parameters"] == {
        "size": "1280*720",
        "duration": 5,
        "seed": 7,
        "prompt_extend": False,
        "watermark": True,
        "audio": False,
        "shot_type": "multi",
        "cfg_scale": 0.5,  # not one Wan documents: its own name, in `parameters`
    }
    assert map_request(request_for(generate_audio=True))["parameters"]["audio"] is True


# -- submit -------------------------------------------------------------------------------------


async def test_submit_posts_json_with_the_bearer_key_and_the_async_header(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    task_id = await adapter.submit(
        request_for("wan2.7-t2v", prompt="一只红狐狸", size="720x1280", seed=42), KEY
    )

    assert task_id in fake.tasks
    [sent] = fake.submits()
    assert sent.key == KEY
    assert sent.headers["x-dashscope-async"] == "enable"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "wan2.7-t2v",
        "input": {"prompt": "一只红狐狸"},
        "parameters": {"resolution": "720P", "ratio": "9:16", "duration": 5, "seed": 42},
    }


async def test_an_image_request_reaches_the_wire_as_a_data_url(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    image = tiny_image("JPEG")
    await adapter.submit(request_for("wan2.6-i2v", image=image), KEY)
    [sent] = fake.submits()
    assert sent.body is not None
    assert sent.body["input"]["img_url"] == (
        "data:image/jpeg;base64," + base64.b64encode(image).decode()
    )


async def test_a_base_url_ending_in_api_v1_means_the_same_upstream(fake: FakeDashScope) -> None:
    upstream = DashScopeUpstream("fake", fake.url + "/api/v1/")
    try:
        assert await upstream.submit(request_for(), KEY) in fake.tasks
    finally:
        await upstream.close()


async def test_a_request_wan_cannot_take_is_refused_without_a_request(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(size="1600x500"), KEY)
    assert raised.value.code == "unsupported_by_upstream"
    assert fake.requests == []


@pytest.mark.parametrize(("retry_after", "expected"), [(None, None), ("7", 7.0)])
async def test_a_throttled_submit_is_rate_limited(
    adapter: DashScopeUpstream,
    fake: FakeDashScope,
    retry_after: str | None,
    expected: float | None,
) -> None:
    fake.submit_429s = 1
    fake.retry_after = retry_after
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.RATE_LIMITED,
        "upstream_rate_limited",
    )
    assert raised.value.retry_after_s == expected
    assert await adapter.submit(request_for(), KEY) in fake.tasks  # the next one goes through


async def test_a_refused_key_is_an_auth_failure_that_names_no_key(
    adapter: DashScopeUpstream,
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), "sk-ds-not-a-known-key-9999")
    assert (raised.value.kind, raised.value.code) == (FailureKind.AUTH, "upstream_auth")
    assert "sk-ds-not-a-known-key-9999" not in raised.value.message


async def test_an_exhausted_balance_benches_the_key_with_its_own_code(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    fake.arrearage = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.AUTH,
        "upstream_balance_exhausted",
    )
    assert "good standing" in raised.value.message


async def test_a_moderation_refusal_is_rejected_with_a_message_free_of_host_id_and_key(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    fake.moderate_submits = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    error = raised.value
    assert (error.kind, error.code) == (FailureKind.REJECTED, "moderation_blocked")
    assert not error.retryable
    assert "inappropriate content" in error.message
    assert_clean(error.message, fake, "http")


async def test_a_bad_parameter_is_rejected(adapter: DashScopeUpstream, fake: FakeDashScope) -> None:
    fake.invalid_parameter = "The parameter seed is out of range."
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (FailureKind.REJECTED, "invalid_parameter")
    assert raised.value.message == "The parameter seed is out of range."


@pytest.mark.parametrize("fault", ["500", "outage"])
async def test_a_server_error_is_unavailable(
    adapter: DashScopeUpstream, fake: FakeDashScope, fault: str
) -> None:
    if fault == "500":
        fake.submit_500s = 1
    else:
        fake.outage = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert raised.value.retryable


@pytest.mark.parametrize("body", ['{"output": {"task_status": "PENDING"}}', "<html>ok</html>"])
async def test_a_submit_answer_without_a_task_id_is_unavailable(
    adapter: DashScopeUpstream, fake: FakeDashScope, body: str
) -> None:
    fake.submit_raw_body = body
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.UNAVAILABLE,
        "upstream_bad_response",
    )


async def test_a_submit_that_hangs_times_out_as_unavailable() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out talking to dashscope-intl.aliyuncs.com")

    upstream = DashScopeUpstream(
        "slow", "https://dashscope-intl.aliyuncs.com", transport=httpx.MockTransport(hang)
    )
    with pytest.raises(UpstreamError) as raised:
        await upstream.submit(request_for(), KEY)
    await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "aliyuncs" not in raised.value.message and "timed out" in raised.value.message


async def test_a_submit_to_a_port_nobody_listens_on_is_unavailable_without_naming_it() -> None:
    port = free_port()
    upstream = DashScopeUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "127.0.0.1" not in raised.value.message and str(port) not in raised.value.message


async def test_a_wrong_base_path_is_unavailable_not_a_refusal(fake: FakeDashScope) -> None:
    upstream = DashScopeUpstream("misconfigured", fake.url + "/wrong-prefix")
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert_clean(raised.value.message, fake, "wrong-prefix")


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, {"code": "Throttling.AllocationQuota", "message": "Quota"}, "rate_limited", None),
        (429, {"code": "Throttling", "message": "Slow down"}, "rate_limited", None),
        (403, {"code": "AccessDenied.Unpurchased", "message": "No"}, "auth", "upstream_auth"),
        (400, {"code": "Arrearage", "message": "Pay"}, "auth", "upstream_balance_exhausted"),
        (400, {"code": "DataInspectionFailed", "message": "x"}, "rejected", "moderation_blocked"),
        (400, {"code": "IPInfringementSuspect", "message": "x"}, "rejected", "moderation_blocked"),
        (400, {"code": "InvalidParameter", "message": "x"}, "rejected", "invalid_parameter"),
        (
            400,
            {"code": "InvalidParameter", "message": "Model not exist."},
            "unavailable",
            "upstream_model_not_found",
        ),
        (500, {"code": "InternalError.Timeout", "message": "x"}, "unavailable", None),
        (400, {"code": "SomethingNew", "message": "x"}, "rejected", "upstream_rejected"),
        (502, {"message": "Bad gateway"}, "unavailable", "upstream_unavailable"),
        (200, {"code": "InvalidParameter", "message": "told in a 200"}, "rejected", None),
    ],
)
async def test_the_body_code_decides_what_an_error_means(
    status: int, body: dict[str, str], kind: str, code: str | None
) -> None:
    upstream = answering(status, {**body, "request_id": "7c3b8f5e-2d1a-4e6b-9c0d-1a2b3c4d5e6f"})
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind == FailureKind(kind)
    if code is not None:
        assert raised.value.code == code
    assert "7c3b8f5e" not in raised.value.message


# -- poll ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("PENDING", UpstreamState.RUNNING),
        ("RUNNING", UpstreamState.RUNNING),
        ("running", UpstreamState.RUNNING),
        ("SUCCEEDED", UpstreamState.COMPLETED),
        ("Succeeded", UpstreamState.COMPLETED),
        ("FAILED", UpstreamState.FAILED),
        ("CANCELED", UpstreamState.FAILED),
        ("cancelled", UpstreamState.FAILED),
        (WEIRD_STATUS, UpstreamState.RUNNING),
        ("", UpstreamState.RUNNING),
        (None, UpstreamState.RUNNING),
        (3, UpstreamState.RUNNING),
    ],
)
def test_status_words_map_to_states_and_unknown_ones_count_as_running(
    word: object, state: UpstreamState
) -> None:
    assert state_for_status(word) is state


@pytest.mark.parametrize(
    ("elapsed_share", "expected"),
    [
        (0.05, UpstreamStatus(UpstreamState.RUNNING, 5)),
        (0.5, UpstreamStatus(UpstreamState.RUNNING, 50)),
        (1.5, UpstreamStatus(UpstreamState.COMPLETED, 100)),
    ],
)
async def test_each_status_word_of_a_task_gives_its_state_and_progress(
    adapter: DashScopeUpstream, fake: FakeDashScope, elapsed_share: float, expected: UpstreamStatus
) -> None:
    fake.job_duration_s = 100.0
    task_id = await adapter.submit(request_for(), KEY)
    fake.tasks[task_id].created_at = time.time() - 100.0 * elapsed_share

    assert await adapter.poll(task_id, KEY) == expected
    [lookup] = fake.requests_to(f"/api/v1/tasks/{task_id}")
    assert lookup.key == KEY


async def test_a_task_is_followed_from_pending_to_succeeded(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    fake.job_duration_s = 0.4
    fake.weird_status_s = 0.1  # a word DashScope does not document, first
    task_id = await adapter.submit(request_for(), KEY)
    seen: list[UpstreamStatus] = []
    deadline = time.monotonic() + 3
    while not seen or seen[-1].state is UpstreamState.RUNNING:
        assert time.monotonic() < deadline, seen
        seen.append(await adapter.poll(task_id, KEY))
        await asyncio.sleep(0.03)
    assert seen[0] == UpstreamStatus(UpstreamState.RUNNING, None)
    assert seen[-1] == UpstreamStatus(UpstreamState.COMPLETED, 100)
    progress = [status.progress for status in seen if status.progress is not None]
    assert progress == sorted(progress) and 50 in progress


@pytest.mark.parametrize(
    ("failure", "code", "message"),
    [
        (DEFAULT_FAILURE, "generation_failed", DEFAULT_FAILURE["message"]),
        (
            {"code": "DataInspectionFailed", "message": "Output data may contain inappropriate"},
            "moderation_blocked",
            "Output data may contain inappropriate",
        ),
        ({}, "generation_failed", "The upstream failed to generate the video."),
    ],
)
async def test_a_failed_task_carries_its_reason(
    adapter: DashScopeUpstream,
    fake: FakeDashScope,
    failure: dict[str, str],
    code: str,
    message: str,
) -> None:
    fake.fail_tasks = True
    fake.failure = failure
    task_id = await adapter.submit(request_for(), KEY)
    assert await adapter.poll(task_id, KEY) == UpstreamStatus(
        UpstreamState.FAILED, error_code=code, error_message=message
    )


async def test_a_canceled_task_fails(adapter: DashScopeUpstream, fake: FakeDashScope) -> None:
    fake.cancel_tasks = True
    status = await adapter.poll(await adapter.submit(request_for(), KEY), KEY)
    assert (status.state, status.error_message) == (
        UpstreamState.FAILED,
        "The upstream canceled the task.",
    )


async def test_a_failure_message_is_cleaned_of_the_host_the_task_id_and_the_key(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    fake.fail_tasks = True
    task_id = await adapter.submit(request_for(), KEY)
    fake.failure = {
        "code": "InternalError.Algo",
        "message": f"Task {task_id} on 127.0.0.1:{fake.port} (key {KEY}) ran out of GPU; "
        "request 3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b.",
    }
    status = await adapter.poll(task_id, KEY)
    assert status.error_message is not None and "ran out of GPU" in status.error_message
    assert_clean(status.error_message, fake, task_id, "3f2a1b4c")


async def test_an_unknown_task_is_lost_once_past_the_first_moments(
    adapter: DashScopeUpstream, fake: FakeDashScope, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.forget_tasks = 1
    task_id = await adapter.submit(request_for(), KEY)
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.RUNNING  # not visible yet
    monkeypatch.setattr(dashscope.adapter, "UNKNOWN_GRACE_S", 0.0)
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(task_id, KEY)


async def test_a_task_this_process_never_submitted_and_upstream_does_not_know_is_lost(
    adapter: DashScopeUpstream,
) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll("0b9e1f7a-3c2d-4e5f-8a6b-7c8d9e0f1a2b", KEY)


async def test_a_task_lookup_answered_404_is_lost() -> None:
    upstream = answering(404, {"message": "not found"})
    with pytest.raises(UpstreamJobLost):
        await upstream.poll("0b9e1f7a-3c2d-4e5f-8a6b-7c8d9e0f1a2b", KEY)
    await upstream.close()


@pytest.mark.parametrize(
    ("fault", "kind", "retry_after"),
    [("429", FailureKind.RATE_LIMITED, 4.0), ("500", FailureKind.UNAVAILABLE, None)],
)
async def test_a_failed_lookup_says_what_to_do(
    adapter: DashScopeUpstream,
    fake: FakeDashScope,
    fault: str,
    kind: FailureKind,
    retry_after: float | None,
) -> None:
    fake.job_duration_s = 60.0
    task_id = await adapter.submit(request_for(), KEY)
    fake.retry_after = "4"
    if fault == "429":
        fake.poll_429s = 1
    else:
        fake.poll_500s = 1
    with pytest.raises(UpstreamError) as raised:
        await adapter.poll(task_id, KEY)
    assert (raised.value.kind, raised.value.retry_after_s) == (kind, retry_after)
    assert (await adapter.poll(task_id, KEY)).state is UpstreamState.RUNNING


# -- content ------------------------------------------------------------------------------------


async def test_the_video_is_streamed_from_the_cdn_which_never_sees_the_key(
    adapter: DashScopeUpstream, fake: FakeDashScope, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter, fake)
    destination = tmp_path / "not" / "yet" / "video.mp4"

    assert await adapter.fetch_content(task_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert list(destination.parent.iterdir()) == [destination]
    [cdn] = fake.requests_to(f"/cdn/{task_id}.mp4")
    assert cdn.port == fake.cdn_port
    assert "authorization" not in cdn.headers
    assert fake.requests_to(f"/api/v1/tasks/{task_id}") == []  # the polled URL was enough


async def test_previews_are_not_offered(
    adapter: DashScopeUpstream, fake: FakeDashScope, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter, fake)
    assert not await adapter.fetch_content(task_id, "thumbnail", tmp_path / "t.webp", KEY)
    assert not await adapter.fetch_content(task_id, "spritesheet", tmp_path / "s.jpg", KEY)
    assert fake.requests == [] and list(tmp_path.iterdir()) == []


async def test_a_video_404_once_is_content_unavailable_then_arrives(
    adapter: DashScopeUpstream, fake: FakeDashScope, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter, fake)
    fake.content_404s = 2  # the known URL, then the fresh one
    destination = tmp_path / "video.mp4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(task_id, "video", destination, KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert_clean(raised.value.message, fake, task_id)
    assert not destination.exists()

    assert await adapter.fetch_content(task_id, "video", destination, KEY)
    assert destination.read_bytes() == tiny_mp4()


async def test_an_expired_video_url_is_replaced_by_a_fresh_look_at_the_task(
    adapter: DashScopeUpstream, fake: FakeDashScope, tmp_path: Path
) -> None:
    fake.url_lifetime_s = 0.2
    task_id = await finished_task(adapter, fake)
    await asyncio.sleep(0.3)
    fake.url_lifetime_s = 86400.0

    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    expired, fresh = fake.requests_to(f"/cdn/{task_id}.mp4")
    assert expired.query["Expires"] != fresh.query["Expires"]
    assert len(fake.requests_to(f"/api/v1/tasks/{task_id}")) == 1


async def test_a_restarted_adapter_looks_the_task_up_for_its_video_url(
    fake: FakeDashScope, adapter: DashScopeUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter, fake)
    restarted = DashScopeUpstream("fake-dashscope", fake.url)
    try:
        assert await restarted.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)
    finally:
        await restarted.close()
    assert len(fake.requests_to(f"/api/v1/tasks/{task_id}")) == 1
    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()


async def test_a_video_whose_task_expired_is_content_unavailable(
    fake: FakeDashScope, adapter: DashScopeUpstream, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter, fake)
    fake.tasks[task_id].forgotten = True
    restarted = DashScopeUpstream("fake-dashscope", fake.url)
    try:
        with pytest.raises(UpstreamError) as raised:
            await restarted.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)
    finally:
        await restarted.close()
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


async def test_a_cdn_that_answers_5xx_is_unavailable(tmp_path: Path) -> None:
    finished = {
        "output": {
            "task_id": "t-1",
            "task_status": "SUCCEEDED",
            "video_url": "https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/t-1.mp4",
        }
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "dashscope-intl.aliyuncs.com":
            return httpx.Response(200, json=finished)
        assert "authorization" not in request.headers
        return httpx.Response(503, text="Service Unavailable")

    upstream = DashScopeUpstream(
        "mocked", "https://dashscope-intl.aliyuncs.com", transport=httpx.MockTransport(handler)
    )
    await upstream.poll("t-1", KEY)
    with pytest.raises(UpstreamError) as raised:
        await upstream.fetch_content("t-1", "video", tmp_path / "video.mp4", KEY)
    await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "oss-cn-shanghai" not in raised.value.message


async def test_release_forgets_the_video_url(
    adapter: DashScopeUpstream, fake: FakeDashScope, tmp_path: Path
) -> None:
    task_id = await finished_task(adapter, fake)
    await adapter.release(task_id)
    assert await adapter.fetch_content(task_id, "video", tmp_path / "video.mp4", KEY)
    assert len(fake.requests_to(f"/api/v1/tasks/{task_id}")) == 1


# -- probe --------------------------------------------------------------------------------------


async def test_a_probe_looks_up_a_task_that_cannot_exist_and_bills_nothing(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    probe = await adapter.probe(KEY)
    assert probe.ok
    assert "looked up a task id that cannot exist" in probe.detail
    assert KEY not in probe.key_hint and probe.key_hint.startswith("sk-ds")
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("GET", f"/api/v1/tasks/{dashscope.adapter.PROBE_TASK_ID}")
    assert fake.tasks == {}


async def test_a_probe_reports_a_refused_key_and_an_exhausted_balance(
    adapter: DashScopeUpstream, fake: FakeDashScope
) -> None:
    refused = await adapter.probe("sk-ds-not-a-known-key-9999")
    assert not refused.ok and refused.detail.endswith("the key was refused (401)")
    fake.arrearage = True
    broke = await adapter.probe(KEY)
    assert not broke.ok and "balance is exhausted (400)" in broke.detail


async def test_a_probe_of_an_unreachable_upstream_raises_unavailable() -> None:
    port = free_port()
    upstream = DashScopeUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert str(port) not in raised.value.message


async def test_a_probe_answered_400_about_the_task_id_still_accepts_the_key() -> None:
    upstream = answering(400, {"code": "InvalidParameter", "message": "task_id is invalid"})
    probe = await upstream.probe(KEY)
    await upstream.close()
    assert probe.ok and "(400)" in probe.detail
