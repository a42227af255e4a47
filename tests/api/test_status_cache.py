"""The status cache costs bounded memory whatever clients send: it is keyed on checked values
only (a bad `status_style` or `Host` is a 400 on every route that reads it), held under a byte
bound, and emptied of expired entries whether they are read or not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import KeyMaker, make_settings, tenant_balance_usd, wait_for_status
from vidrelay.api.context import AppContext
from vidrelay.api.public_root import is_valid_host_header
from vidrelay.api.status_cache import StatusCache, entry_size
from vidrelay.settings import Settings

CACHE_BYTES = 8192
SDK = {"X-Stainless-Lang": "python"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", database_url, status_cache_s=600, status_cache_max_bytes=CACHE_BYTES
    )


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


async def completed_video(client: httpx.AsyncClient, key: str) -> str:
    response = await client.post(
        "/v1/videos", data={"prompt": "a paper boat"}, files={"_": (None, "")}, headers=auth(key)
    )
    assert response.status_code == 200, response.text
    video_id: str = response.json()["id"]
    assert (await wait_for_status(client, video_id, key))["status"] == "completed"
    return video_id


def cache_of(app: FastAPI) -> StatusCache:
    context: AppContext = app.state.context
    return context.status_cache


async def test_many_distinct_hosts_and_styles_cannot_grow_the_cache_past_its_byte_bound(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key()
    video_id = await completed_video(client, key)
    cache = cache_of(app)
    styles: list[dict[str, str]] = [{}, {"status_style": "openai"}, {"status_style": "relay"}]
    for i in range(300):
        host = f"{'h' * 60}{i}.example:{8000 + i}"
        response = await client.get(
            f"/v1/videos/{video_id}", params=styles[i % 3], headers=auth(key, Host=host)
        )
        assert response.status_code == 200, response.text
        assert response.json()["video_url"].startswith(f"http://{host}/v1/videos/")
        assert 0 < cache.bytes_held <= CACHE_BYTES
    assert 1 < len(cache) < 300
    # what is cached is served: the same request again is answered from memory, unchanged
    again = await client.get(f"/v1/videos/{video_id}", headers=auth(key, Host=host))
    assert again.json()["video_url"].startswith(f"http://{host}/")


BAD_HOSTS = [
    "h" * 1_000_000,
    "x" * 300 + ".example",
    "evil.example/path",
    "evil.example@other",
    "two words",
    "example.com:99999",
    "example.com:",
    "[zz::1]:8000",
    "-leading-hyphen.example",
]


async def test_a_host_header_that_is_not_host_and_port_is_a_400_and_caches_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key()
    video_id = await completed_video(client, key)
    cached = len(cache_of(app))  # the last poll of `completed_video`
    for host in BAD_HOSTS:
        for path in (f"/v1/videos/{video_id}", "/v1/videos"):
            response = await client.get(path, headers=auth(key, Host=host))
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert (error["param"], error["code"]) == ("Host", "invalid_host")
        create = await client.post(
            "/v1/videos",
            data={"prompt": "boat"},
            files={"_": (None, "")},
            headers=auth(key, Host=host),
        )
        assert create.status_code == 400 and create.json()["error"]["param"] == "Host"
    assert len(cache_of(app)) == cached
    assert await tenant_balance_usd(app, "alice") == (49_600_000, 49_600_000)  # the first video


async def test_an_unknown_status_style_is_a_400_listing_the_allowed_values_on_every_route(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key()
    video_id = await completed_video(client, key)
    # cached once with a valid style, so the refusal cannot depend on a cache miss
    assert (await client.get(f"/v1/videos/{video_id}", headers=auth(key))).status_code == 200
    bad = {"status_style": "x" * 10_000}
    responses = [
        await client.get(f"/v1/videos/{video_id}", params=bad, headers=auth(key)),
        await client.get(f"/v1/videos/{video_id}", params=bad, headers=auth(key, **SDK)),
        await client.get("/v1/videos", params=bad, headers=auth(key)),
        await client.post(
            "/v1/videos",
            params=bad,
            data={"prompt": "boat"},
            files={"_": (None, "")},
            headers=auth(key),
        ),
    ]
    for response in responses:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "status_style"
        assert "relay, openai" in error["message"]
        assert len(error["message"]) < 200
    assert len(cache_of(app)) == 1
    assert await tenant_balance_usd(app, "alice") == (49_600_000, 49_600_000)  # the first video


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_expired_entries_are_gone_without_being_read() -> None:
    clock = FakeClock()
    cache = StatusCache(ttl_s=1.0, max_bytes=1 << 20, clock=clock)
    for i in range(100):
        cache.put(("k", f"video_{i}", "", "http://a/"), b"x" * 1000)
    assert len(cache) == 100
    clock.now += 0.5
    fresh = ("k", "video_fresh", "", "http://a/")
    cache.put(fresh, b"{}")
    assert len(cache) == 101
    clock.now += 0.6  # the first hundred are past their time, never read since
    assert cache.get(fresh) == b"{}"
    assert len(cache) == 1
    assert cache.bytes_held == entry_size(fresh, b"{}")
    clock.now += 1.0
    cache.put(("k", "video_other", "", "http://a/"), b"{}")
    assert len(cache) == 1 and cache.get(fresh) is None


def test_the_byte_bound_holds_for_any_mix_of_sizes_and_forgetting_releases_bytes() -> None:
    cache = StatusCache(ttl_s=60.0, max_bytes=10_000)
    for i in range(500):
        cache.put(("k" * (i % 50), f"video_{i % 70}", "openai", "http://a/"), b"x" * (i * 7 % 3000))
        assert cache.bytes_held <= 10_000
        assert cache.bytes_held == sum(entry_size(k, v[1]) for k, v in cache._entries.items())
    cache.put(("k", "video_huge", "", "http://a/"), b"x" * 20_000)  # larger than the bound
    assert cache.get(("k", "video_huge", "", "http://a/")) is None
    for i in range(70):
        cache.forget_video(f"video_{i}")
    assert len(cache) == 0 and cache.bytes_held == 0


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("api.example.com", True),
        ("api.example.com.", True),
        ("my_service:8000", True),
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("[2001:db8::1]", True),
        ("", False),
        (":8000", False),
        ("example.com:0", False),
        ("exa mple.com", False),
        ("example.com\r\nX: y", False),
        ("ex\u00e4mple.com", False),
        ("[::1", False),
        ("a." * 130 + "com", False),
    ],
)
def test_host_header_syntax(host: str, valid: bool) -> None:
    assert is_valid_host_header(host) is valid
