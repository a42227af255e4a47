"""The `gemini` adapter against a fake Gemini API over real HTTP (and `httpx.MockTransport`
where one answer is all a test needs).

What reaches the wire (paths, the key header, the JSON body), how each operation reads, which
failure kind each error body becomes, how the video is collected, what the probe does, and that
no message carries the channel's host, the key or the operation's name.
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
import pytest
import pytest_asyncio

from tests.e2e.server import free_port
from tests.fakes.gemini_upstream import (
    DEFAULT_FILTER_REASON,
    VEO_MODELS,
    WEIRD_DONE,
    FakeGeminiUpstream,
    tiny_image,
    tiny_mp4,
)
from vidrelay.domain.catalog import (
    Catalog,
    NormalisedRequest,
    Operation,
    RouteClass,
    SourceVideo,
    normalise_request,
)
from vidrelay.domain.declarations import parse_model
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.gemini import GeminiUpstream, map_request, read_operation

KEY = "AIzaSy-test-key-0001-abcdefgh"
OTHER_KEY = "AIzaSy-test-key-0002-ijklmnop"
MODEL = "veo-3.1-generate-preview"
VEO_TEST = parse_model(
    {
        "name": "veo-test",
        "sizes": [
            "1280x720", "720x1280", "1920x1080", "1080x1920", "3840x2160", "2160x3840",
            "1792x1024", "1024x1024", "960x540",
        ],
        "routes": [{"route_class": "official", "seconds": ["8", "4", "5", "6", "7", "10"]}],
        "capabilities": ["input_reference", "audio"],
        "params": [
            {"name": "negative_prompt", "type": "string"},
            {"name": "seed", "type": "int"},
            {"name": "generate_audio", "type": "bool"},
            {"name": "person_generation", "type": "enum", "values": ["allow_all", "dont_allow"]},
            {"name": "compression_quality", "type": "enum", "values": ["optimized"]},
            {"name": "motion_strength", "type": "number"},
            {"name": "resolution", "type": "enum", "values": ["720p", "4k"]},
        ],
    }
)  # fmt: skip
CATALOG = Catalog([VEO_TEST])


@pytest.fixture(scope="module")
def served() -> Iterator[FakeGeminiUpstream]:
    fake = FakeGeminiUpstream(keys={KEY, OTHER_KEY})
    with fake.serve():
        yield fake


@pytest.fixture
def fake(served: FakeGeminiUpstream) -> FakeGeminiUpstream:
    served.reset()
    return served


@pytest_asyncio.fixture
async def adapter(fake: FakeGeminiUpstream) -> AsyncIterator[GeminiUpstream]:
    upstream = GeminiUpstream("fake-gemini", fake.url, timeout_s=2.0)
    yield upstream
    await upstream.close()


def request_for(
    prompt: str = "a red fox running through snow",
    *,
    upstream_model: str = MODEL,
    reference_image: bytes | None = None,
    size: str = "1280x720",
    seconds: str = "8",
    params: dict[str, object] | None = None,
) -> UpstreamRequest:
    normalised = normalise_request(
        CATALOG,
        prompt=prompt,
        model="veo-test",
        size=size,
        seconds=seconds,
        params=params,
        has_reference=reference_image is not None,
    )
    return UpstreamRequest("video_public_1", normalised, reference_image, upstream_model)


async def poll_until_settled(
    adapter: GeminiUpstream, name: str, timeout_s: float = 3.0
) -> list[UpstreamStatus]:
    """Every status seen, up to and including the first that is not running."""
    seen: list[UpstreamStatus] = []
    deadline = time.monotonic() + timeout_s
    while True:
        status = await adapter.poll(name, KEY)
        seen.append(status)
        if status.state is not UpstreamState.RUNNING:
            return seen
        assert time.monotonic() < deadline, f"still running: {seen[-1]}"
        await asyncio.sleep(0.05)


async def finished_job(adapter: GeminiUpstream) -> str:
    name = await adapter.submit(request_for(), KEY)
    assert (await poll_until_settled(adapter, name))[-1].state is UpstreamState.COMPLETED
    return name


def assert_clean(message: str, fake: FakeGeminiUpstream | None, *secrets: str) -> None:
    ports = (str(fake.port), str(fake.cdn_port)) if fake is not None else ()
    for secret in ("127.0.0.1", *ports, KEY, OTHER_KEY, "operations/", *secrets):
        assert secret not in message, (secret, message)


def mock_upstream(handler: Callable[[httpx.Request], httpx.Response]) -> GeminiUpstream:
    return GeminiUpstream(
        "mocked", "https://gemini.example", transport=httpx.MockTransport(handler)
    )


def google_error(
    status: int, word: str, message: str, *details: dict[str, Any], **headers: str
) -> httpx.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": word}
    if details:
        error["details"] = list(details)
    return httpx.Response(status, json={"error": error}, headers=headers)


# -- the submit body --------------------------------------------------------------------------


async def test_submit_posts_the_documented_body_to_the_model_with_the_key_in_a_header(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    name = await adapter.submit(request_for("一只红狐狸", seconds="6"), KEY)

    assert name in fake.operations and name.startswith(f"models/{MODEL}/operations/")
    [sent] = fake.submits()
    assert sent.path == f"/v1beta/models/{MODEL}:predictLongRunning"
    assert sent.headers["content-type"] == "application/json"
    assert sent.key == KEY and sent.query == {} and "authorization" not in sent.headers
    assert sent.json == {
        "instances": [{"prompt": "一只红狐狸"}],
        "parameters": {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 6},
    }


@pytest.mark.parametrize(
    ("size", "ratio", "resolution"),
    [
        ("1280x720", "16:9", "720p"),
        ("720x1280", "9:16", "720p"),
        ("1920x1080", "16:9", "1080p"),
        ("1080x1920", "9:16", "1080p"),
        ("3840x2160", "16:9", "4k"),
        ("2160x3840", "9:16", "4k"),
    ],
)
def test_a_size_is_an_aspect_ratio_and_a_resolution(size: str, ratio: str, resolution: str) -> None:
    parameters = map_request(request_for(size=size))["parameters"]
    assert (parameters["aspectRatio"], parameters["resolution"]) == (ratio, resolution)
    assert parameters["durationSeconds"] == 8


@pytest.mark.parametrize(
    ("model", "size", "seconds", "refusal"),
    [
        (MODEL, "1792x1024", "8", "Veo makes 16:9 or 9:16"),
        (MODEL, "1024x1024", "8", "Veo makes 16:9 or 9:16"),
        (MODEL, "960x540", "8", "Veo makes 16:9 or 9:16"),
        (MODEL, "1280x720", "5", "4, 6, 8 seconds only"),
        (MODEL, "1280x720", "10", "4, 6, 8 seconds only"),
        (MODEL, "1920x1080", "4", "1080p video at 8 seconds only"),
        (MODEL, "3840x2160", "6", "4k video at 8 seconds only"),
        ("veo-3.1-lite-generate-preview", "3840x2160", "8", "does not make 4k"),
        ("veo-3.0-generate-001", "1080x1920", "8", "1080p video in 16:9 only"),
        ("veo-2.0-generate-001", "1920x1080", "8", "does not make 1080p"),
        ("veo-2.0-generate-001", "1280x720", "4", "5, 6, 8 seconds only"),
    ],
)
def test_what_a_model_cannot_make_is_refused_before_it_is_sent(
    model: str, size: str, seconds: str, refusal: str
) -> None:
    with pytest.raises(UpstreamError) as raised:
        map_request(request_for(upstream_model=model, size=size, seconds=seconds))
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.REJECTED,
        "unsupported_by_upstream",
    )
    assert refusal in raised.value.message
    assert "veo-test" in raised.value.message  # the client's name for it
    assert model not in raised.value.message  # not the upstream's


@pytest.mark.parametrize(
    ("model", "size", "seconds"),
    [
        (MODEL, "1280x720", "4"),
        (MODEL, "720x1280", "6"),
        (MODEL, "2160x3840", "8"),
        ("veo-3.1-fast-generate-preview", "3840x2160", "8"),
        ("veo-3.1-lite-generate-preview", "1080x1920", "8"),
        ("veo-3.0-fast-generate-001", "1920x1080", "8"),
        ("veo-2.0-generate-001", "720x1280", "5"),
        ("veo-9-next-preview", "1920x1080", "5"),  # unknown: the provider judges
    ],
)
def test_what_a_model_can_make_is_mapped(model: str, size: str, seconds: str) -> None:
    parameters = map_request(request_for(upstream_model=model, size=size, seconds=seconds))[
        "parameters"
    ]
    assert parameters["durationSeconds"] == int(seconds)


def test_veo_2_which_has_no_resolution_parameter_is_sent_none() -> None:
    parameters = map_request(request_for(upstream_model="veo-2.0-generate-001", seconds="6"))[
        "parameters"
    ]
    assert parameters == {"aspectRatio": "16:9", "durationSeconds": 6}


@pytest.mark.parametrize(
    ("image_format", "mime_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
async def test_the_reference_image_is_the_instance_image_as_base64_with_its_type(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, image_format: str, mime_type: str
) -> None:
    image = tiny_image(image_format)
    await adapter.submit(request_for(reference_image=image), KEY)

    [sent] = fake.submits()
    assert sent.json["instances"][0]["image"] == {
        "bytesBase64Encoded": base64.b64encode(image).decode("ascii"),
        "mimeType": mime_type,
    }


async def test_declared_parameters_go_into_parameters_under_their_gemini_names(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    params = {
        "negative_prompt": "rain, text",
        "seed": "42",
        "generate_audio": "false",
        "person_generation": "dont_allow",
        "compression_quality": "optimized",
        "motion_strength": "0.5",  # a field no table names: camelCase, under parameters
    }
    await adapter.submit(request_for(params=params), KEY)

    [sent] = fake.submits()
    assert sent.json["parameters"] == {
        "negativePrompt": "rain, text",
        "seed": 42,
        "generateAudio": False,
        "personGeneration": "dont_allow",
        "compressionQuality": "optimized",
        "motionStrength": 0.5,
        "aspectRatio": "16:9",
        "resolution": "720p",
        "durationSeconds": 8,
    }
    assert set(sent.json["instances"][0]) == {"prompt"}


def test_size_and_seconds_win_over_a_declared_parameter_of_the_same_name() -> None:
    body = map_request(request_for(size="1280x720", params={"resolution": "4k"}))
    assert body["parameters"]["resolution"] == "720p"


async def test_the_mapped_model_names_the_path_and_a_base_url_with_v1beta_is_the_same(
    fake: FakeGeminiUpstream,
) -> None:
    upstream = GeminiUpstream("fake-gemini", fake.url + "/v1beta/")
    try:
        name = await upstream.submit(
            request_for(upstream_model="veo-3.1-lite-generate-preview"), KEY
        )
    finally:
        await upstream.close()
    assert name.startswith("models/veo-3.1-lite-generate-preview/operations/")
    [sent] = fake.submits()
    assert sent.path == "/v1beta/models/veo-3.1-lite-generate-preview:predictLongRunning"


# -- submit errors ----------------------------------------------------------------------------


async def test_a_refused_key_is_auth_although_google_answers_it_400(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), "AIzaSy-not-a-known-key-9999")
    assert (raised.value.kind, raised.value.code) == (FailureKind.AUTH, "invalid_api_key")
    assert "API key not valid" in raised.value.message
    assert_clean(raised.value.message, fake, "AIzaSy-not-a-known-key-9999")


async def test_no_key_at_all_is_permission_denied_auth(adapter: GeminiUpstream) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), "")
    assert (raised.value.kind, raised.value.code) == (FailureKind.AUTH, "permission_denied")


async def test_a_quota_429_is_rate_limited_with_the_retry_info_delay(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.submit_429s = 1
    fake.retry_delay = "7s"
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    error = raised.value
    assert (error.kind, error.code, error.retry_after_s) == (
        FailureKind.RATE_LIMITED,
        "rate_limit_exceeded",
        7.0,
    )
    assert "exceeded your current quota" in error.message
    assert_clean(error.message, fake, "https://")
    assert await adapter.submit(request_for(), KEY) in fake.operations


async def test_depleted_prepaid_credits_are_auth_with_the_balance_code(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.balance_exhausted = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    error = raised.value
    assert (error.kind, error.code) == (FailureKind.AUTH, "upstream_balance_exhausted")
    assert error.retry_after_s is None
    assert "prepayment credits are depleted" in error.message
    assert_clean(error.message, fake, "ai.studio")


async def test_a_moderation_refusal_is_rejected_with_a_message_free_of_host_name_and_key(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.moderate_submits = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    error = raised.value
    assert (error.kind, error.code) == (FailureKind.REJECTED, "moderation_blocked")
    assert not error.retryable
    assert "violate the usage guidelines" in error.message
    assert_clean(error.message, fake, "http", MODEL + "/")


async def test_a_submit_answered_500_is_unavailable_and_the_next_goes_through(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.submit_500s = 1
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (FailureKind.UNAVAILABLE, "internal")
    assert await adapter.submit(request_for(), KEY) in fake.operations


async def test_an_outage_is_unavailable(adapter: GeminiUpstream, fake: FakeGeminiUpstream) -> None:
    fake.outage = True
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (FailureKind.UNAVAILABLE, "unavailable")


async def test_a_model_the_channel_does_not_have_is_unavailable_not_refused(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(upstream_model="veo-9-next-preview"), KEY)
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert_clean(raised.value.message, fake)


async def test_a_submit_that_hangs_times_out_as_unavailable(fake: FakeGeminiUpstream) -> None:
    fake.submit_hang_s = 5.0
    upstream = GeminiUpstream("fake-gemini", fake.url, timeout_s=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert time.monotonic() - started < 2
    assert raised.value.kind is FailureKind.UNAVAILABLE and "timed out" in raised.value.message


async def test_a_submit_to_a_port_nobody_listens_on_is_unavailable_without_naming_it() -> None:
    port = free_port()
    upstream = GeminiUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert "127.0.0.1" not in raised.value.message and str(port) not in raised.value.message


@pytest.mark.parametrize(
    "body", ['{"done": false}', '{"name": "../../etc/passwd"}', "<html>ok</html>"]
)
async def test_a_submit_answer_without_an_operation_name_is_unavailable(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, body: str
) -> None:
    fake.submit_raw_body = body
    with pytest.raises(UpstreamError) as raised:
        await adapter.submit(request_for(), KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.UNAVAILABLE,
        "upstream_bad_response",
    )


@pytest.mark.parametrize(
    ("answer", "kind", "code", "retry_after_s"),
    [
        (
            google_error(400, "FAILED_PRECONDITION", "Please enable billing on your project."),
            FailureKind.AUTH,
            "failed_precondition",
            None,
        ),
        (
            google_error(401, "UNAUTHENTICATED", "No credential."),
            FailureKind.AUTH,
            "unauthenticated",
            None,
        ),
        (
            google_error(403, "PERMISSION_DENIED", "The caller does not have permission."),
            FailureKind.AUTH,
            "permission_denied",
            None,
        ),
        (
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded.",
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"},
            ),
            FailureKind.RATE_LIMITED,
            "rate_limit_exceeded",
            1.5,
        ),
        (
            google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", **{"retry-after": "9"}),
            FailureKind.RATE_LIMITED,
            "rate_limit_exceeded",
            9.0,
        ),
        (
            google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
            FailureKind.REJECTED,
            "invalid_argument",
            None,
        ),
        (
            google_error(400, "INVALID_ARGUMENT", "The prompt was blocked by our safety filters."),
            FailureKind.REJECTED,
            "moderation_blocked",
            None,
        ),
        (
            google_error(500, "INTERNAL", "Internal error."),
            FailureKind.UNAVAILABLE,
            "internal",
            None,
        ),
        (
            google_error(504, "DEADLINE_EXCEEDED", "Deadline exceeded."),
            FailureKind.UNAVAILABLE,
            "deadline_exceeded",
            None,
        ),
        (
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            FailureKind.UNAVAILABLE,
            "upstream_unavailable",
            None,
        ),
    ],
)
async def test_each_error_body_maps_to_its_failure_kind(
    answer: httpx.Response, kind: FailureKind, code: str, retry_after_s: float | None
) -> None:
    upstream = mock_upstream(lambda request: answer)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.submit(request_for(), KEY)
    finally:
        await upstream.close()
    assert (raised.value.kind, raised.value.code, raised.value.retry_after_s) == (
        kind,
        code,
        retry_after_s,
    )
    assert "gemini.example" not in raised.value.message


# -- the operation --------------------------------------------------------------------------

SAMPLE = {"generatedSamples": [{"video": {"uri": "https://api.example/v1beta/files/a:download"}}]}


@pytest.mark.parametrize(
    ("body", "state", "progress", "code"),
    [
        ({"name": "n"}, UpstreamState.RUNNING, 50, None),
        ({"name": "n", "done": False}, UpstreamState.RUNNING, 50, None),
        ({"name": "n", "done": "false"}, UpstreamState.RUNNING, 50, None),
        ({"name": "n", "done": WEIRD_DONE}, UpstreamState.RUNNING, 50, None),
        ({"name": "n", "done": None}, UpstreamState.RUNNING, 50, None),
        ({"name": "n", "metadata": {"progressPercent": 37}}, UpstreamState.RUNNING, 37, None),
        ({"name": "n", "metadata": {"progressPercent": "x"}}, UpstreamState.RUNNING, 50, None),
        (
            {"name": "n", "done": True, "response": {"generateVideoResponse": SAMPLE}},
            UpstreamState.COMPLETED,
            100,
            None,
        ),
        (
            {"name": "n", "done": "TRUE", "response": {"generateVideoResponse": SAMPLE}},
            UpstreamState.COMPLETED,
            100,
            None,
        ),
        (
            {
                "done": True,
                "response": {
                    "generateVideoResponse": {
                        "generatedVideos": [{"video": {"uri": "https://x/v1beta/files/b"}}]
                    }
                },
            },
            UpstreamState.COMPLETED,
            100,
            None,
        ),
        (
            {"done": True, "error": {"code": 13, "message": "Internal failure."}},
            UpstreamState.FAILED,
            100,
            "internal",
        ),
        (
            {"done": True, "error": {"code": 3, "message": "Prompt blocked by safety filters."}},
            UpstreamState.FAILED,
            100,
            "moderation_blocked",
        ),
        (
            {"error": {"code": 8, "status": "RESOURCE_EXHAUSTED", "message": "No capacity."}},
            UpstreamState.FAILED,
            100,
            "resource_exhausted",
        ),
        (
            {
                "done": True,
                "response": {
                    "generateVideoResponse": {
                        "raiMediaFilteredCount": 1,
                        "raiMediaFilteredReasons": ["Celebrity likeness."],
                    }
                },
            },
            UpstreamState.FAILED,
            100,
            "moderation_blocked",
        ),
        (
            {"done": True, "response": {"generateVideoResponse": {"raiMediaFilteredCount": 2}}},
            UpstreamState.FAILED,
            100,
            "moderation_blocked",
        ),
        ({"done": True, "response": {}}, UpstreamState.FAILED, 100, "generation_failed"),
        ({"done": True}, UpstreamState.FAILED, 100, "generation_failed"),
    ],
)
def test_each_operation_shape_reads_as_a_state(
    body: dict[str, Any], state: UpstreamState, progress: int, code: str | None
) -> None:
    operation = read_operation(body)
    assert (operation.state, operation.progress, operation.error_code) == (state, progress, code)
    assert (operation.video_uri is not None) == (state is UpstreamState.COMPLETED)


async def test_a_job_is_followed_from_running_to_completed(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.job_duration_s = 0.3
    name = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, name)

    assert seen[0] == UpstreamStatus(UpstreamState.RUNNING, 50)
    # the video's URI as the operation gave it: what an extension of it names
    uri = f"{fake.url}/v1beta/files/{fake.operations[name].id}-0:download?alt=media"
    assert seen[-1] == UpstreamStatus(UpstreamState.COMPLETED, 100, video_ref=uri)
    polls = fake.requests_to(f"/v1beta/{name}", "GET")
    assert len(polls) == len(seen) and {poll.key for poll in polls} == {KEY}


async def test_an_unknown_done_word_counts_as_running_until_the_operation_is_done(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.weird_status_s = 0.3
    fake.job_duration_s = 0.3
    name = await adapter.submit(request_for(), KEY)

    seen = await poll_until_settled(adapter, name)

    assert seen[0].state is UpstreamState.RUNNING
    assert seen[-1].state is UpstreamState.COMPLETED


async def test_a_job_that_fails_upstream_carries_its_status_and_a_cleaned_message(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.fail_jobs = True
    name = await adapter.submit(request_for(), KEY)
    fake.failure_error = {
        "code": 13,
        "message": f"Operation {name} on 127.0.0.1:{fake.port} (key {KEY}) ran out of GPU.",
    }

    status = await adapter.poll(name, KEY)

    assert (status.state, status.error_code) == (UpstreamState.FAILED, "internal")
    assert status.error_message is not None and "ran out of GPU" in status.error_message
    assert_clean(status.error_message, fake, name.rsplit("/", 1)[1])


async def test_a_video_the_safety_filters_dropped_fails_as_moderation_with_the_reason(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.filter_jobs = True
    name = await adapter.submit(request_for(), KEY)

    status = await adapter.poll(name, KEY)

    assert (status.state, status.error_code, status.error_message) == (
        UpstreamState.FAILED,
        "moderation_blocked",
        DEFAULT_FILTER_REASON,
    )


async def test_a_rate_limited_poll_says_when_to_come_back(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.job_duration_s = 60.0
    name = await adapter.submit(request_for(), KEY)
    fake.poll_429s = 1
    fake.retry_delay = "4s"

    with pytest.raises(UpstreamError) as raised:
        await adapter.poll(name, KEY)

    assert (raised.value.kind, raised.value.retry_after_s) == (FailureKind.RATE_LIMITED, 4.0)
    assert (await adapter.poll(name, KEY)).state is UpstreamState.RUNNING


@pytest.mark.parametrize(
    "name", [f"models/{MODEL}/operations/forgotten0001", "../files/x", "a b", ""]
)
async def test_an_operation_the_service_does_not_know_is_lost(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, name: str
) -> None:
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(name, KEY)
    assert all(".." not in sent.path for sent in fake.requests)


async def test_a_job_the_service_forgot_is_lost(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    name = await adapter.submit(request_for(), KEY)
    fake.lost_polls = 1
    with pytest.raises(UpstreamJobLost):
        await adapter.poll(name, KEY)
    assert (await adapter.poll(name, KEY)).state is UpstreamState.COMPLETED


# -- content --------------------------------------------------------------------------------


async def test_the_video_is_fetched_with_the_key_and_storage_never_sees_it(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    destination = tmp_path / "not" / "yet" / "video.mp4"

    assert await adapter.fetch_content(name, "video", destination, KEY)

    assert destination.read_bytes() == tiny_mp4()
    assert list(destination.parent.iterdir()) == [destination]  # no temporary file left
    operation_id = name.rsplit("/", 1)[1]
    [download] = fake.requests_to(f"/v1beta/files/{operation_id}-0:download")
    assert (download.key, download.query, download.port) == (KEY, {"alt": "media"}, fake.port)
    [stored] = fake.requests_to(f"/cdn/{operation_id}-0.mp4")
    assert stored.port == fake.cdn_port
    assert stored.key is None and "x-goog-api-key" not in stored.headers
    assert all("key" not in sent.query for sent in fake.requests)


async def test_the_key_follows_a_redirect_on_the_api_origin_and_nowhere_else(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith(":download"):
            return httpx.Response(302, headers={"location": "/v1beta/files/f:moved"})
        if request.url.path.endswith(":moved"):
            return httpx.Response(302, headers={"location": "https://storage.example/f.mp4"})
        if request.url.host == "storage.example":
            return httpx.Response(200, content=tiny_mp4())
        relative = {"generatedSamples": [{"video": {"uri": "files/f:download?alt=media"}}]}
        return httpx.Response(
            200, json={"done": True, "response": {"generateVideoResponse": relative}}
        )

    upstream = mock_upstream(answer)
    try:
        assert await upstream.fetch_content(
            f"models/{MODEL}/operations/op1", "video", tmp_path / "v.mp4", KEY
        )
    finally:
        await upstream.close()
    assert [str(request.url) for request in seen] == [
        f"https://gemini.example/v1beta/models/{MODEL}/operations/op1",
        "https://gemini.example/v1beta/files/f:download?alt=media",
        "https://gemini.example/v1beta/files/f:moved",
        "https://storage.example/f.mp4",
    ]
    assert [request.headers.get("x-goog-api-key") for request in seen] == [KEY, KEY, KEY, None]
    assert (tmp_path / "v.mp4").read_bytes() == tiny_mp4()


async def test_content_that_is_404_once_arrives_on_the_next_try(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    fake.content_404s = 1
    destination = tmp_path / "video.mp4"

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(name, "video", destination, KEY)
    assert (raised.value.kind, raised.value.code) == (
        FailureKind.CONTENT_UNAVAILABLE,
        "content_unavailable",
    )
    assert_clean(raised.value.message, fake, name.rsplit("/", 1)[1])
    assert len(fake.requests_to(f"/v1beta/{name}")) == 2  # the poll, then one fresh look
    assert await adapter.fetch_content(name, "video", destination, KEY)
    assert destination.read_bytes() == tiny_mp4()


async def test_an_expired_link_is_replaced_by_a_fresh_one_from_the_operation(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    fake.stale_links = 1
    name = await finished_job(adapter)

    assert await adapter.fetch_content(name, "video", tmp_path / "video.mp4", KEY)

    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()
    downloads = [sent.path for sent in fake.requests if sent.path.endswith(":download")]
    assert len(downloads) == 2 and downloads[0] != downloads[1]
    assert len(fake.requests_to(f"/v1beta/{name}")) == 2


async def test_a_restarted_adapter_looks_the_operation_up_once(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    restarted = GeminiUpstream("fake-gemini", fake.url)  # remembers no link
    fake.requests.clear()
    try:
        assert await restarted.fetch_content(name, "video", tmp_path / "video.mp4", KEY)
    finally:
        await restarted.close()
    assert len(fake.requests_to(f"/v1beta/{name}")) == 1
    assert (tmp_path / "video.mp4").read_bytes() == tiny_mp4()


async def test_release_forgets_the_link(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    await adapter.release(name)
    fake.requests.clear()

    assert await adapter.fetch_content(name, "video", tmp_path / "video.mp4", KEY)

    assert len(fake.requests_to(f"/v1beta/{name}")) == 1


async def test_content_that_stays_404_is_content_unavailable_and_leaves_no_file(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    fake.content_404s = 100

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(name, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []
    assert_clean(raised.value.message, fake, name.rsplit("/", 1)[1], "files/")


async def test_a_job_not_done_yet_has_no_video(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    fake.job_duration_s = 60.0
    name = await adapter.submit(request_for(), KEY)
    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(name, "video", tmp_path / "video.mp4", KEY)
    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE


async def test_a_page_served_as_the_video_is_refused_and_not_kept(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    fake.content_is_html_page = True

    with pytest.raises(UpstreamError) as raised:
        await adapter.fetch_content(name, "video", tmp_path / "video.mp4", KEY)

    assert raised.value.kind is FailureKind.CONTENT_UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


async def test_a_download_with_a_refused_key_is_auth_not_missing_content(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    fake.keys = {OTHER_KEY}
    try:
        with pytest.raises(UpstreamError) as raised:
            await adapter.fetch_content(name, "video", tmp_path / "video.mp4", KEY)
    finally:
        fake.keys = {KEY, OTHER_KEY}
    assert (raised.value.kind, raised.value.code) == (FailureKind.AUTH, "invalid_api_key")


async def test_gemini_offers_no_previews_and_is_not_asked_for_them(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream, tmp_path: Path
) -> None:
    name = await finished_job(adapter)
    fake.requests.clear()
    assert not await adapter.fetch_content(name, "thumbnail", tmp_path / "t.webp", KEY)
    assert not await adapter.fetch_content(name, "spritesheet", tmp_path / "s.jpg", KEY)
    assert fake.requests == [] and list(tmp_path.iterdir()) == []


# -- probe ----------------------------------------------------------------------------------


async def test_a_probe_lists_one_model_and_shows_only_the_key_hint(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    probe = await adapter.probe(KEY)
    assert probe.ok
    assert KEY not in probe.key_hint and probe.key_hint.startswith("AIzaS")
    assert "GET /v1beta/models?pageSize=1" in probe.detail
    [sent] = fake.requests
    assert (sent.path, sent.query, sent.key) == ("/v1beta/models", {"pageSize": "1"}, KEY)
    assert fake.operations == {}  # nothing billable


async def test_a_probe_reports_a_refused_key(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    probe = await adapter.probe("AIzaSy-not-a-known-key-9999")
    assert not probe.ok
    assert probe.detail.startswith("the key was refused (400 invalid_api_key)")
    assert_clean(probe.detail, fake, "AIzaSy-not-a-known-key-9999")


async def test_a_probe_of_a_service_in_an_outage_is_not_ok(
    adapter: GeminiUpstream, fake: FakeGeminiUpstream
) -> None:
    fake.outage = True
    probe = await adapter.probe(KEY)
    assert not probe.ok and "unavailable" in probe.detail.lower()


async def test_a_probe_of_an_unreachable_upstream_raises_unavailable() -> None:
    port = free_port()
    upstream = GeminiUpstream("gone", f"http://127.0.0.1:{port}", timeout_s=1.0)
    try:
        with pytest.raises(UpstreamError) as raised:
            await upstream.probe(KEY)
    finally:
        await upstream.close()
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert str(port) not in raised.value.message


def test_the_fake_lists_the_models_the_shipped_catalog_maps_to() -> None:
    from vidrelay.shipped_models import shipped_models

    mapped = {entry.upstream_model for entry in shipped_models() if entry.protocol == "gemini"}
    assert mapped and mapped <= set(VEO_MODELS)
    assert json.dumps(sorted(mapped))  # plain strings


def extension_of(video_ref: str | None, size: str = "1280x720") -> UpstreamRequest:
    normalised = NormalisedRequest(
        model="veo-3.1-fast",
        route_class=RouteClass.OFFICIAL,
        seconds="7",
        size=size,
        prompt="and then it rains",
        params={"negative_prompt": "fog"},
        operation=Operation.EXTENSION,
        source=SourceVideo(seconds=8, video_id="video_1", upstream_video_ref=video_ref),
    )
    return UpstreamRequest("video_public_2", normalised, None, MODEL)


def test_an_extension_names_the_video_uri_at_720p_and_refuses_what_veo_cannot_extend() -> None:
    assert map_request(extension_of("https://g/v1beta/files/f:download?alt=media")) == {
        "instances": [
            {
                "prompt": "and then it rains",
                "video": {"uri": "https://g/v1beta/files/f:download?alt=media"},
            }
        ],
        "parameters": {"negativePrompt": "fog", "resolution": "720p"},
    }
    for refused in (extension_of(None), extension_of("files/f", size="1920x1080")):
        with pytest.raises(UpstreamError) as caught:
            map_request(refused)
        assert caught.value.kind is FailureKind.REJECTED
