"""What every adapter shares (`upstreams/http.py`), through `httpx.MockTransport`: credentials
reach the channel's own origin only, downloads are checked and atomic, error answers keep
their kind and `Retry-After`, key pairs show and leak nothing of their secret half; and the
protocol table leaves no protocol without its adapter."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from tests.fakes.media import tiny_mp4
from vidrelay.config_file import ConfigError
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.engine.background import open_instance
from vidrelay.engine.channels import build_adapter
from vidrelay.render.pool import RenderPool
from vidrelay.settings import Settings
from vidrelay.store.database import Database
from vidrelay.store.tables import channels
from vidrelay.upstreams.base import FailureKind, UpstreamError
from vidrelay.upstreams.http import UnexpectedContent, UpstreamHttp, looks_like_video
from vidrelay.upstreams.messages import key_hint, key_secrets

PAIR = "AKIDexample1234567890:SKsecret-0987654321-abcdef"


def http(handler: httpx.MockTransport) -> UpstreamHttp:
    return UpstreamHttp(
        "https://api.provider.example/v1", timeout=httpx.Timeout(5.0), transport=handler
    )


async def test_the_credential_goes_to_the_channels_origin_and_never_to_a_cdn(
    tmp_path: Path,
) -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("authorization")
        if request.url.host == "api.provider.example":
            return httpx.Response(302, headers={"location": "https://cdn.example.net/v.mp4"})
        return httpx.Response(200, content=tiny_mp4())

    plumbing = http(httpx.MockTransport(handler))
    saved = await plumbing.download(
        plumbing.url("/tasks/1/video"), tmp_path / "v.mp4", "sk-key-1", looks_like_video
    )
    assert saved is None and (tmp_path / "v.mp4").read_bytes() == tiny_mp4()
    assert seen == {"api.provider.example": "Bearer sk-key-1", "cdn.example.net": None}
    await plumbing.close()


async def test_a_providers_own_credential_header_does_not_follow_a_redirect_either(
    tmp_path: Path,
) -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("x-goog-api-key")
        if request.url.host == "api.provider.example":
            return httpx.Response(302, headers={"location": "https://storage.example.net/v"})
        return httpx.Response(200, content=tiny_mp4())

    plumbing = UpstreamHttp(
        "https://api.provider.example",
        timeout=httpx.Timeout(5.0),
        transport=httpx.MockTransport(handler),
        auth_headers=lambda key: {"x-goog-api-key": key},
    )
    await plumbing.download(
        plumbing.url("/files/1:download"), tmp_path / "v.mp4", "AIza-key", looks_like_video
    )
    assert seen == {"api.provider.example": "AIza-key", "storage.example.net": None}
    await plumbing.close()


async def test_a_download_that_is_not_a_video_or_ends_early_leaves_no_file(tmp_path: Path) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<!doctype html><p>signed URL expired</p>")

    with pytest.raises(UnexpectedContent):
        await http(httpx.MockTransport(html)).download(
            "https://api.provider.example/v.mp4", tmp_path / "v.mp4", "k", looks_like_video
        )

    def short(request: httpx.Request) -> httpx.Response:
        body = tiny_mp4()
        return httpx.Response(200, content=body[:100], headers={"content-length": str(len(body))})

    with pytest.raises(UpstreamError) as caught:
        await http(httpx.MockTransport(short)).download(
            "https://api.provider.example/v.mp4", tmp_path / "v.mp4", "k", looks_like_video
        )
    assert caught.value.kind is FailureKind.UNAVAILABLE
    assert list(tmp_path.iterdir()) == []


async def test_an_error_answer_keeps_its_kind_and_retry_after_and_loses_our_secrets() -> None:
    plumbing = http(httpx.MockTransport(lambda request: httpx.Response(500)))
    limited = httpx.Response(429, headers={"retry-after": "7"})
    error = plumbing.error(
        limited, message=f"slow down, {PAIR} at https://api.provider.example", key=PAIR
    )
    assert (error.kind, error.retry_after_s) == (FailureKind.RATE_LIMITED, 7.0)
    assert "api.provider.example" not in error.message and "SKsecret" not in error.message
    secret_half = plumbing.error(
        httpx.Response(401), message="bad signature for SKsecret-0987654321-abcdef", key=PAIR
    )
    assert secret_half.kind is FailureKind.AUTH
    assert "SKsecret" not in secret_half.message
    assert plumbing.error(httpx.Response(502)).message == "The upstream is unavailable (502)."


async def test_a_network_failure_is_unavailable_and_names_no_host() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to api.provider.example:443")

    with pytest.raises(UpstreamError) as caught:
        await http(httpx.MockTransport(refuse)).send(
            "GET", "https://api.provider.example/v1/tasks", "k"
        )
    assert caught.value.kind is FailureKind.UNAVAILABLE
    assert "provider" not in caught.value.message


def test_a_key_pair_shows_only_its_access_keys_ends() -> None:
    assert key_hint(PAIR) == "AKIDe…7890"
    assert key_hint("sk-up-good-0001") == "sk-up…0001"
    assert key_secrets(PAIR) == [PAIR, "AKIDexample1234567890", "SKsecret-0987654321-abcdef"]


@pytest.mark.parametrize("protocol", list(ChannelProtocol))
async def test_every_protocol_has_its_own_adapter(
    protocol: ChannelProtocol, tmp_path: Path
) -> None:
    channel = Channel(
        name=f"c-{protocol.value}",
        protocol=protocol,
        route_class=None,
        models=("sora-2",),
        base_url="https://api.provider.example",
        keys=("k",),
    )
    settings = Settings(data_dir=tmp_path)
    pools: list[RenderPool] = []

    def pool() -> RenderPool:
        pools.append(RenderPool(1))
        return pools[-1]

    adapter = build_adapter(
        channel, settings, pool, httpx.MockTransport(lambda r: httpx.Response(404))
    )
    try:
        assert type(adapter).__module__.startswith(f"vidrelay.upstreams.{protocol.value}")
        assert bool(pools) is (protocol is ChannelProtocol.LOCAL)
    finally:
        await adapter.close()
        for made in pools:
            made.shutdown()


async def test_a_stored_channel_of_an_unknown_protocol_stops_the_start_naming_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vidrelay.db'}"
    db = Database(url)
    await db.upgrade()
    async with db.write() as conn:
        await conn.execute(
            insert(channels).values(
                name="from-the-future", protocol="grpc", base_url="", keys="[]",
                route_class=None, models="[]", model_map="{}", priority=0, weight=1,
                max_concurrency=1, enabled=1, cost_per_second_micros=0, created_at=0,
                updated_at=0,
            )
        )  # fmt: skip
    await db.dispose()
    with pytest.raises(ConfigError, match=r"'from-the-future'.*'grpc'"):
        await open_instance(Settings(data_dir=tmp_path, database_url=url))
