"""The `kling` adapter against a fake Kling API over real HTTP (and `httpx.MockTransport` where
an answer the fake does not give is simpler to forge).

What reaches the wire (paths, signed token, body fields), every status word, every service
code's failure kind, content retrieval from an expiring CDN link, the probe, and that no
message carries the host, either half of the key pair or Kling's task id.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from tests.e2e.server import free_port
from tests.fakes.kling_upstream import DEFAULT_FAILURE, FakeKlingUpstream
from tests.fakes.media import tiny_image, tiny_mp4
from vidrelay.domain.catalog import (
    Catalog,
    NormalisedRequest,
    Operation,
    RouteClass,
    SourceVideo,
    normalise_request,
)
from vidrelay.domain.channels import ChannelProtocol
from vidrelay.domain.params import ParamValue
from vidrelay.shipped_models import shipped_models
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.kling import KlingUpstream, map_request, state_for_status
from vidrelay.upstreams.kling.auth import KlingTokens, sign_token
from vidrelay.upstreams.kling.errors import classify

ACCESS, SECRET = "AKtestaccess00001", "SKtestsecret-0001-abcdefghijklmnopqrstu"
KEY = f"{ACCESS}:{SECRET}"
OTHER_ACCESS, OTHER_SECRET = "AKtestaccess00002", "SKtestsecret-0002-ghijklmnopqrstuvwxyz"
OTHER_KEY = f"{OTHER_ACCESS}:{OTHER_SECRET}"
CATALOG = Catalog(
    entry.model for entry in shipped_models() if entry.protocol is ChannelProtocol.KLING
)
UPSTREAM_MODEL = {
    entry.model.name: entry.upstream_model
    for entry in shipped_models()
    if entry.protocol is ChannelProtocol.KLING
}


@pytest.fixture(scope="module")
def served() -> Iterator[FakeKlingUpstream]:
    fake = FakeKlingUpstream(keys={KEY, OTHER_KEY})
    with fake.serve():
        yield fake


@pytest.fixture
def fake(served: FakeKlingUpstream) -> FakeKlingUpstream:
    served.reset()
    return served


@pytest_asyncio.fixture
async def adapter(fake: FakeKlingUpstream) -> AsyncIterator[KlingUpstream]:
    upstream = KlingUpstream("fake-kling", fake.url + "/", timeout_s=2.0)
    yield upstream
    await upstream.close()


def request_for(
    prompt: str = "a red fox running through snow",
    *,
    model: str = "kling-v3",
    reference_image: bytes | None = None,
    **fields: Any,
) -> UpstreamRequest:
    normalised = normalise_request(
        CATALOG, prompt=prompt, model=model, has_reference=reference_image is not None, **fields
    )
    return UpstreamRequest("video_public_1", normalised, reference_image, UPSTREAM_MODEL[model])


def raw_request(
    model: str,
    *,
    size: str = "1280x720",
    seconds: str = "5",
    params: dict[str, ParamValue] | None = None,
    reference_image: bytes | None = None,
    upstream_model: str = "",
) -> UpstreamRequest:
    """A request as the mapper sees it, for models and values no shipped entry offers."""
    normalised = NormalisedRequest(
        model=model,
        route_class=RouteClass.OFFICIAL,
        seconds=seconds,
        size=size,
        prompt="a paper boat",
        params=params or {},
    )
    return UpstreamRequest("video_public_1", normalised, reference_image, upstream_model)


async def poll_until_settled(
    adapter: KlingUpstream, upstream_job_id: str, timeout_s: float = 3.0
) -> list[UpstreamStatus]:
    seen: list[UpstreamStatus] = []
    deadline = time.monotonic() + timeout_s
    while True:
        status = await adapter.poll(upstream_job_id, KEY)
        seen.append(status)
        if status.state is not UpstreamState.RUNNING:
            return seen
        assert time.monotonic() < deadline, f"still running: {seen[-1]}"
        await asyncio.sleep(0.03)


async def finished_job(adapter: KlingUpstream, **fields: Any) -> str:
    upstream_job_id = await adapter.submit(request_for(**fields), KEY)
    assert (await poll_until_settled(adapter, upstream_job_id))[-1].state is (
        UpstreamState.COMPLETED
    )
    return upstream_job_id


def task_id_of(upstream_job_id: str) -> str:
    return upstream_job_id.split(":", 1)[1]


def assert_clean(message: str, fake: FakeKlingUpstream, *secrets: str) -> None:
    for secret in ("127.0.0.1", str(fake.port), ACCESS, SECRET, OTHER_ACCESS, OTHER_SECRET):
        assert secret not in message, message
    for secret in secrets:
        assert secret not in message, message
    for task_id in fake.tasks:
        assert task_id not in message, message


def mock_adapter(handler: Callable[[httpx.Request], httpx.Response]) -> KlingUpstream:
    return KlingUpstream(
        "mock-kling", "https://api-singapore.klingai.com", transport=httpx.MockTransport(handler)
    )


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


# -- the wire: paths, signed token, body --------------------------------------------------


async def test_a_text_job_is_posted_as_json_with_a_token_signed_by_the_secret_key(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    before = int(time.time())
    upstream_job_id = await adapter.submit(request_for("一只红狐狸"), KEY)

    [sent] = fake.submits()
    assert sent.path == "/v1/videos/text2video"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model_name": "kling-v3",
        "prompt": "一只红狐狸",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": "5",
        "sound": "off",  # the declared default, filled in
    }
    scheme, _, token = sent.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["iss"] == ACCESS
    assert claims["exp"] - claims["nbf"] == 1805
    assert before + 1800 <= claims["exp"] <= int(time.time()) + 1800
    assert upstream_job_id == f"text2video:{next(iter(fake.tasks))}"


@pytest.mark.parametrize(
    ("model", "size", "mode", "ratio"),
    [
        ("kling-v3", "1280x720", "std", "16:9"),
        ("kling-v3", "720x1280", "std", "9:16"),
        ("kling-v3", "720x720", "std", "1:1"),
        ("kling-v3-pro", "1920x1080", "pro", "16:9"),
        ("kling-v3-pro", "1080x1920", "pro", "9:16"),
        ("kling-v3-pro", "1080x1080", "pro", "1:1"),
    ],
)
def test_a_size_is_an_aspect_ratio_and_a_mode_that_makes_its_resolution(
    model: str, size: str, mode: str, ratio: str
) -> None:
    body = map_request(request_for(model=model, size=size))
    assert (body["mode"], body["aspect_ratio"]) == (mode, ratio)


@pytest.mark.parametrize(("model", "seconds"), [("kling-v3", "3"), ("kling-v3", "15")])
def test_seconds_are_kling_duration_as_a_string(model: str, seconds: str) -> None:
    assert map_request(request_for(model=model, seconds=seconds))["duration"] == seconds


async def test_an_image_job_goes_to_image2video_as_raw_base64_and_is_queried_there(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    image = tiny_image("PNG")
    upstream_job_id = await adapter.submit(
        request_for(model="kling-v3-pro", reference_image=image, size="1080x1920"), KEY
    )

    [sent] = fake.submits()
    assert sent.path == "/v1/videos/image2video"
    assert sent.body["image"] == base64.b64encode(image).decode()  # no data: prefix
    assert "aspect_ratio" not in sent.body  # not a field of image to video: the image decides
    assert (sent.body["mode"], sent.body["model_name"]) == ("pro", "kling-v3")
    assert upstream_job_id.startswith("image2video:")
    restarted = KlingUpstream("fake-kling", fake.url)  # knows the endpoint from the id alone
    try:
        assert (await restarted.poll(upstream_job_id, KEY)).state is UpstreamState.COMPLETED
    finally:
        await restarted.close()
    assert fake.requests_to(f"/v1/videos/image2video/{task_id_of(upstream_job_id)}")


def test_a_jpeg_goes_as_it_is_and_a_webp_becomes_a_png_kling_can_read() -> None:
    jpeg = tiny_image("JPEG")
    body = map_request(request_for(reference_image=jpeg))
    assert base64.b64decode(body["image"]) == jpeg

    body = map_request(request_for(reference_image=tiny_image("WEBP")))
    assert base64.b64decode(body["image"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_declared_parameters_go_under_klings_names_and_others_under_their_own() -> None:
    body = map_request(
        raw_request(
            "kling-v3",
            params={"generate_audio": True, "negative_prompt": "blur", "external_task_id": "x1"},
        )
    )
    assert body["sound"] == "on"
    assert body["negative_prompt"] == "blur"
    assert body["external_task_id"] == "x1"  # a field vidrelay does not know, at the top
    assert "generate_audio" not in body

    assert map_request(raw_request("kling-v1-6", params={"cfg_scale": 0.3}))["cfg_scale"] == 0.3


async def test_declared_parameters_reach_kling(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    request = request_for(
        model="kling-v3-pro", params={"generate_audio": "true", "negative_prompt": "text"}
    )
    await adapter.submit(request, KEY)
    [sent] = fake.submits()
    assert (sent.body["sound"], sent.body["negative_prompt"]) == ("on", "text")


def test_a_parameter_that_names_a_field_the_size_decides_must_agree_with_it() -> None:
    assert map_request(raw_request("kling-v3", params={"mode": "std"}))["mode"] == "std"
    with pytest.raises(UpstreamError) as raised:
        map_request(raw_request("kling-v3", params={"mode": "pro"}))
    assert raised.value.code == "unsupported_by_upstream"


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (raw_request("kling-v3", size="1024x1792"), "aspect ratio"),
        (raw_request("kling-v3", size="1280x960"), "aspect ratio"),
        (raw_request("kling-v3", size="3840x2160"), "2160p"),
        (raw_request("kling-v2-1-master", size="1280x720"), "1080p"),
        (raw_request("kling-v2-6", seconds="7"), "allowed values: 5, 10"),
        (raw_request("kling-v3", seconds="20"), "allowed values: 3"),
        (raw_request("kling-v2-6", params={"generate_audio": True}), "pro mode"),
        (raw_request("kling-v2-5-turbo", params={"generate_audio": True}), "no sound"),
        (raw_request("kling-v2-1"), "from an image only"),
        (raw_request("kling-v3", params={"generate_audio": "loud"}), "on or off"),
        (raw_request("kling-v3", reference_image=b"\xff\xd8\xff" + bytes(11 << 20)), "10 MB"),
    ],
)
def test_what_kling_cannot_be_asked_is_refused_before_any_call(
    request_: UpstreamRequest, words: str
) -> None:
    with pytest.raises(UpstreamError) as raised:
        map_request(request_)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.REJECTED,
        "unsupported_by_upstream",
    )
    assert words in raised.value.message


def test_silent_models_get_no_sound_field_and_unknown_models_the_documented_ranges() -> None:
    assert "sound" not in map_request(
        raw_request("kling-v2-5-turbo", params={"generate_audio": False})
    )
    body = map_request(raw_request("kling-v4-preview", size="1080x1920", seconds="13"))
    assert (body["model_name"], body["mode"], body["duration"]) == ("kling-v4-preview", "pro", "13")
    body = map_request(raw_request("kling-v2-1-master", size="1920x1080"))
    assert "mode" not in body  # the master models take none


# -- the signed token -------------------------------------------------------------------------


def test_a_token_is_reused_until_shortly_before_it_expires() -> None:
    now = [1_000_000.0]
    tokens = KlingTokens(clock=lambda: now[0])
    first = tokens.token(KEY)
    now[0] += 1400
    assert tokens.token(KEY) == first
    now[0] += 200  # 200 s left: a fresh one
    fresh = tokens.token(KEY)
    assert fresh != first
    assert (
        jwt.decode(fresh, SECRET, algorithms=["HS256"], options={"verify_exp": False})["nbf"]
        == int(now[0]) - 5
    )
    assert tokens.token(OTHER_KEY) != fresh


async def test_a_plain_key_is_refused_as_auth_before_anything_is_sent(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), "sk-a-plain-key-without-secret")
    assert raised.value.kind is FailureKind.AUTH
    assert "ACCESS_KEY:SECRET_KEY" in raised.value.message
    assert "sk-a-plain" not in raised.value.message
    assert fake.requests == []


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda: None, 1001),
        (lambda: "not-a-jwt", 1002),
        (lambda: sign_token(ACCESS, "SK-the-wrong-secret-abcdefghijklmnop", time.time()), 1002),
        (lambda: sign_token("AK-nobody-knows", SECRET, time.time()), 1002),
        (lambda: sign_token(ACCESS, SECRET, time.time() + 600), 1003),
        (lambda: sign_token(ACCESS, SECRET, time.time() - 2000), 1004),
    ],
    ids=["none", "garbage", "wrong-secret", "unknown-access-key", "not-yet-valid", "expired"],
)
async def test_the_fake_checks_the_token_as_kling_does(
    fake: FakeKlingUpstream, make_token: Callable[[], str | None], code: int
) -> None:
    token = make_token()  # signed now, not when the tests were collected
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as client:
        response = await client.get(fake.url + "/v1/videos/text2video", headers=headers)
    assert (response.status_code, response.json()["code"]) == (401, code)


async def test_a_key_pair_with_the_wrong_secret_is_an_auth_failure_that_names_neither_half(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    wrong = f"{ACCESS}:SK-the-wrong-secret-999-abcdefghijklm"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), wrong)
    assert raised.value.kind is FailureKind.AUTH
    assert "SK-the-wrong-secret-999-abcdefghijklm" not in raised.value.message
    assert_clean(raised.value.message, fake)


# -- errors: the service code decides ---------------------------------------------------------


async def test_a_refused_credential_is_auth(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    fake.refuse_credentials = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (FailureKind.AUTH, "upstream_auth")


@pytest.mark.parametrize("limit", ["rate", "concurrency"])
async def test_a_rate_or_concurrency_limit_is_rate_limited_with_retry_after(
    adapter: KlingUpstream, fake: FakeKlingUpstream, limit: str
) -> None:
    if limit == "rate":
        fake.rate_limit_submits = 1
    else:
        fake.concurrency_limit_submits = 1
    fake.retry_after = "7"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.RATE_LIMITED
    assert raised.value.retry_after_s == 7.0
    assert await adapter.submit(request_for(), KEY)  # the next one goes through


async def test_an_exhausted_resource_pack_benches_the_key_and_is_no_rate_limit(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    fake.balance_exhausted = True
    fake.retry_after = "7"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.AUTH,
        "upstream_balance_exhausted",
    )
    assert raised.value.retry_after_s is None


async def test_a_content_security_refusal_is_rejected_with_a_clean_message(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    fake.moderate_submits = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    error = raised.value
    assert (error.kind, error.code) == (FailureKind.REJECTED, "moderation_blocked")
    assert not error.retryable
    assert "content security policy" in error.message
    assert_clean(error.message, fake, "http")


async def test_kling_refusing_a_field_is_rejected_as_an_invalid_parameter(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    request = raw_request("kling-v3", upstream_model="kling-v9-unknown")
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request, KEY)
    assert (raised.value.kind, raised.value.code) == (FailureKind.REJECTED, "invalid_parameter")
    assert "model_name" in raised.value.message


@pytest.mark.parametrize("fault", ["server_error", "outage"])
async def test_server_errors_and_maintenance_are_unavailable(
    adapter: KlingUpstream, fake: FakeKlingUpstream, fault: str
) -> None:
    if fault == "server_error":
        fake.server_error_submits = 1
    else:
        fake.outage = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert raised.value.retryable


@pytest.mark.parametrize(
    ("code", "status", "kind", "client_code"),
    [
        (1000, 401, FailureKind.AUTH, "upstream_auth"),
        (1004, 401, FailureKind.AUTH, "upstream_auth"),
        (1100, 429, FailureKind.AUTH, "upstream_account_error"),
        (1101, 429, FailureKind.AUTH, "upstream_balance_exhausted"),
        (1102, 429, FailureKind.AUTH, "upstream_balance_exhausted"),
        (1103, 403, FailureKind.AUTH, "upstream_access_denied"),
        (1200, 400, FailureKind.REJECTED, "invalid_parameter"),
        (1201, 400, FailureKind.REJECTED, "invalid_parameter"),
        (1202, 404, FailureKind.UNAVAILABLE, "upstream_not_found"),
        (1203, 404, FailureKind.UNAVAILABLE, "upstream_not_found"),
        (1300, 400, FailureKind.REJECTED, "moderation_blocked"),
        (1301, 400, FailureKind.REJECTED, "moderation_blocked"),
        (1302, 429, FailureKind.RATE_LIMITED, "rate_limit_exceeded"),
        (1303, 429, FailureKind.RATE_LIMITED, "rate_limit_exceeded"),
        (1304, 429, FailureKind.AUTH, "upstream_ip_not_allowed"),
        (5000, 500, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (5001, 503, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (5002, 504, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (1299, 400, FailureKind.REJECTED, "invalid_parameter"),
        (None, 502, FailureKind.UNAVAILABLE, "upstream_unavailable"),
        (None, 200, FailureKind.UNAVAILABLE, "upstream_bad_response"),
    ],
)
def test_each_service_code_has_its_failure_kind(
    code: int | None, status: int, kind: FailureKind, client_code: str
) -> None:
    assert classify(code, status) == (kind, client_code)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, {"code": 1303, "message": "parallel task over resource pack limit"}, "rate_limited"),
        (200, {"code": 1301, "message": "risk control"}, "rejected"),
        (200, b"<html>gateway</html>", "unavailable"),
        (200, {"code": 0, "message": "SUCCEED", "data": {}}, "unavailable"),
        (200, {"code": 0, "message": "SUCCEED"}, "unavailable"),
        (404, {"code": 1203, "message": "model not found"}, "unavailable"),
        (502, b"Bad Gateway", "unavailable"),
    ],
)
async def test_the_body_code_wins_over_the_http_status_and_odd_answers_are_unavailable(
    status: int, body: object, kind: str
) -> None:
    upstream = mock_adapter(lambda request: answer(status, body))
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind.value == kind


async def test_a_submit_that_hangs_times_out_as_unavailable() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out reading from api-singapore.klingai.com")

    upstream = KlingUpstream(
        "mock", "https://api-singapore.klingai.com", transport=httpx.MockTransport(hang)
    )
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "klingai.com" not in raised.value.message


async def test_an_upstream_nobody_listens_on_is_unavailable_without_naming_it() -> None:
    port = free_port()
    upstream = KlingUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "127.0.0.1" not in raised.value.message and str(port) not in raised.value.message


# -- poll -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("submitted", UpstreamState.RUNNING),
        ("processing", UpstreamState.RUNNING),
        ("PROCESSING", UpstreamState.RUNNING),
        ("succeed", UpstreamState.COMPLETED),
        (" Succeed ", UpstreamState.COMPLETED),
        ("failed", UpstreamState.FAILED),
        ("FAILED", UpstreamState.FAILED),
        ("queueing_for_gpu", UpstreamState.RUNNING),
        ("", UpstreamState.RUNNING),
        (None, UpstreamState.RUNNING),
        (3, UpstreamState.RUNNING),
    ],
)
def test_status_words_map_to_states_and_unknown_ones_count_as_running(
    word: object, state: UpstreamState
) -> None:
    assert state_for_status(word) is state


async def test_a_task_is_followed_from_submitted_through_processing_to_succeed(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    fake.job_duration_s = 100.0
    upstream_job_id = await adapter.submit(request_for(), KEY)
    task = fake.tasks[task_id_of(upstream_job_id)]

    assert await adapter.poll(upstream_job_id, KEY) == UpstreamStatus(UpstreamState.RUNNING, 5)
    task.created_at = time.time() - 50
    assert await adapter.poll(upstream_job_id, KEY) == UpstreamStatus(UpstreamState.RUNNING, 50)
    task.created_at = time.time() - 100
    completed = UpstreamStatus(UpstreamState.COMPLETED, 100, video_ref=task.video_id)
    assert await adapter.poll(upstream_job_id, KEY) == completed  # what an extension names
    polls = fake.requests_to(f"/v1/videos/text2video/{task.id}")
    assert len(polls) == 3 and {poll.access_key for poll in polls} == {ACCESS}


async def test_an_unknown_status_word_counts_as_running_until_a_known_one_arrives(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    fake.weird_status_s = 0.3
    upstream_job_id = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, upstream_job_id)

    assert seen[0] == UpstreamStatus(UpstreamState.RUNNING, None)
    assert seen[-1].state is UpstreamState.COMPLETED


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (DEFAULT_FAILURE, "moderation_blocked"),
        ("Image pixel is invalid", "generation_failed"),
        ("", "generation_failed"),
    ],
)
async def test_a_failed_task_carries_its_reason_and_code(
    adapter: KlingUpstream, fake: FakeKlingUpstream, reason: str, code: str
) -> None:
    fake.fail_jobs = True
    fake.failure_reason = reason
    upstream_job_id = await adapter.submit(request_for(), KEY)

    status = await adapter.poll(upstream_job_id, KEY)

    assert (status.state, status.error_code) == (UpstreamState.FAILED, code)
    assert status.error_message == (reason or "The upstream failed to generate the video.")


async def test_a_failure_reason_is_cleaned_of_host_key_and_task_id(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    fake.fail_jobs = True
    upstream_job_id = await adapter.submit(request_for(), KEY)
    task_id = task_id_of(upstream_job_id)
    fake.failure_reason = (
        f"task {task_id} (other task 831922345719271433) of {ACCESS} with {SECRET} on "
        f"127.0.0.1:{fake.port} ran out of GPU"
    )

    status = await adapter.poll(upstream_job_id, KEY)

    assert status.error_message is not None and "ran out of GPU" in status.error_message
    assert_clean(status.error_message, fake, "831922345719271433", upstream_job_id)


async def test_a_task_kling_does_not_know_is_lost(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll("text2video:999999999999999999", KEY)
    upstream_job_id = await adapter.submit(request_for(), KEY)
    fake.forget_tasks = True
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(upstream_job_id, KEY)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (400, {"code": 1201, "message": "task_id 123 does not exist"}, "lost"),
        (400, {"code": 1201, "message": "pageSize is too large"}, "rejected"),
        (429, {"code": 1302, "message": "too fast"}, "rate_limited"),
        (401, {"code": 1004, "message": "Authorization has expired"}, "auth"),
        (200, {"code": 0, "data": {"task_id": "1", "task_status": "succeed"}}, "completed"),
    ],
)
async def test_a_query_answer_is_read_from_its_service_code(
    status: int, body: object, outcome: str
) -> None:
    upstream = mock_adapter(lambda request: answer(status, body))
    try:
        try:
            result = (await upstream.poll("text2video:123", KEY)).state.value
        except UpstreamJobLost:
            result = "lost"
        except UpstreamError as error:
            result = error.kind.value
    finally:
        await upstream.close()
    assert result == outcome


# -- content ----------------------------------------------------------------------------------


async def test_the_video_comes_from_the_cdn_link_without_the_token(
    adapter: KlingUpstream, fake: FakeKlingUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    destination = tmp_path / "not" / "yet" / "video.mp4"

    assert await adapter.fetch_content(upstream_job_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert list(destination.parent.iterdir()) == [destination]
    [cdn] = fake.requests_to(f"/cdn/{task_id_of(upstream_job_id)}.mp4")
    assert cdn.port == fake.cdn_port
    assert "authorization" not in cdn.headers


async def test_a_link_that_is_404_then_200_serves_the_video_on_the_next_try(
    adapter: KlingUpstream, fake: FakeKlingUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    fake.content_404s = 2  # the remembered link, then the fresh one a query names
    destination = tmp_path / "video.mp4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(upstream_job_id, "video", destination, KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert not destination.exists()
    assert await adapter.fetch_content(upstream_job_id, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()


async def test_an_expired_link_is_replaced_by_a_fresh_one_from_the_task(
    adapter: KlingUpstream, fake: FakeKlingUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    task_id = task_id_of(upstream_job_id)
    fake.links_valid_from = time.time()  # every link issued so far has expired
    queries = len(fake.requests_to(f"/v1/videos/text2video/{task_id}"))

    assert await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    assert len(fake.requests_to(f"/v1/videos/text2video/{task_id}")) == queries + 1
    assert len(fake.requests_to(f"/cdn/{task_id}.mp4")) == 2  # 403, then the fresh link


async def test_a_restarted_adapter_asks_the_task_for_its_link(
    adapter: KlingUpstream, fake: FakeKlingUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    restarted = KlingUpstream("fake-kling", fake.url)
    try:
        assert await restarted.fetch_content(upstream_job_id, "video", tmp_path / "v.mp4", KEY)
    finally:
        await restarted.close()
    assert (tmp_path / "v.mp4").read_bytes() == tiny_mp4()


async def test_a_video_that_stays_gone_is_content_unavailable_with_a_clean_message(
    adapter: KlingUpstream, fake: FakeKlingUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    fake.content_404s = 100

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []
    assert_clean(raised.value.message, fake, upstream_job_id)


async def test_a_task_lost_while_collecting_is_content_unavailable(
    adapter: KlingUpstream, fake: FakeKlingUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    await adapter.release(upstream_job_id)  # forgets the link
    fake.forget_tasks = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(upstream_job_id, "video", tmp_path / "video.mp4", KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert fake.requests_to(f"/cdn/{task_id_of(upstream_job_id)}.mp4") == []


async def test_a_cdn_5xx_is_unavailable_and_a_page_instead_of_a_video_is_not_kept(
    tmp_path: Path,
) -> None:
    cdn_status = [502]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.example.net":
            if cdn_status[0] != 200:
                return httpx.Response(cdn_status[0], content=b"upstream error")
            return httpx.Response(200, content=b"<!doctype html><p>signed URL expired</p>")
        data = {
            "task_id": "1",
            "task_status": "succeed",
            "task_result": {"videos": [{"url": "https://cdn.example.net/v.mp4?sig=1"}]},
        }
        return answer(200, {"code": 0, "data": data})

    upstream = mock_adapter(handler)
    try:
        assert (await upstream.poll("text2video:1", KEY)).state is UpstreamState.COMPLETED
        with pytest.raises(UpstreamError) as raised:
            await upstream.fetch_content("text2video:1", "video", tmp_path / "v.mp4", KEY)
        assert raised.value.kind is FailureKind.UNAVAILABLE
        cdn_status[0] = 200
        with pytest.raises(UpstreamError) as raised:
            await upstream.fetch_content("text2video:1", "video", tmp_path / "v.mp4", KEY)
        assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    finally:
        await upstream.close()
    assert list(tmp_path.iterdir()) == []


async def test_kling_offers_no_previews_and_none_are_asked_for(
    adapter: KlingUpstream, fake: FakeKlingUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await finished_job(adapter)
    before = len(fake.requests)
    assert not await adapter.fetch_content(upstream_job_id, "thumbnail", tmp_path / "t.webp", KEY)
    assert not await adapter.fetch_content(upstream_job_id, "spritesheet", tmp_path / "s.jpg", KEY)
    assert len(fake.requests) == before
    assert list(tmp_path.iterdir()) == []


# -- probe ------------------------------------------------------------------------------------


async def test_a_probe_lists_one_task_and_shows_only_the_access_keys_ends(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    probe = await adapter.probe(KEY)
    assert probe.ok
    assert "GET /v1/videos/text2video?pageSize=1" in probe.detail
    assert SECRET not in probe.key_hint and ACCESS not in probe.key_hint
    assert probe.key_hint.startswith(ACCESS[:5]) and probe.key_hint.endswith(ACCESS[-4:])
    [listed] = fake.requests
    assert (listed.method, listed.path, listed.query) == (
        "GET",
        "/v1/videos/text2video",
        {"pageNum": "1", "pageSize": "1"},
    )
    assert fake.tasks == {}  # nothing made, nothing billed


async def test_a_probe_reports_a_refused_or_malformed_key_pair(
    adapter: KlingUpstream, fake: FakeKlingUpstream
) -> None:
    refused = await adapter.probe(f"{ACCESS}:SK-the-wrong-secret-999-abcdefghijklm")
    assert not refused.ok and refused.detail.endswith("the key pair was refused (1002)")
    plain = await adapter.probe("sk-plain-key-0001")
    assert not plain.ok and "ACCESS_KEY:SECRET_KEY" in plain.detail
    assert len(fake.requests) == 1  # the plain key was never sent


async def test_a_probe_names_an_exhausted_balance() -> None:
    upstream = mock_adapter(lambda request: answer(429, {"code": 1102, "message": "depleted"}))
    try:
        probe = await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert not probe.ok and "balance is exhausted (1102)" in probe.detail


async def test_a_probe_of_an_unreachable_upstream_raises_unavailable() -> None:
    port = free_port()
    upstream = KlingUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert str(port) not in raised.value.message


def extension_of(video_ref: str | None, params: dict[str, ParamValue]) -> UpstreamRequest:
    normalised = NormalisedRequest(
        model="kling-v1-6",
        route_class=RouteClass.OFFICIAL,
        seconds="5",
        size="1280x720",
        prompt="and then it rains",
        params=params,
        operation=Operation.EXTENSION,
        source=SourceVideo(seconds=5, video_id="video_1", upstream_video_ref=video_ref),
    )
    return UpstreamRequest("video_public_2", normalised, None, "kling-v1-6")


def test_an_extension_names_the_video_and_only_the_fields_an_extension_takes() -> None:
    body = map_request(extension_of("v-77", {"negative_prompt": "fog", "generate_audio": True}))
    assert body == {"video_id": "v-77", "prompt": "and then it rains", "negative_prompt": "fog"}
    with pytest.raises(UpstreamError) as refused:  # made before vidrelay kept Kling's id
        map_request(extension_of(None, {}))
    assert refused.value.kind is FailureKind.REJECTED
