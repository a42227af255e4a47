"""Remixes, extensions, edits and characters on SQLite and PostgreSQL, on the local renderer:
what each makes, what it costs, and every refusal a 4xx that charges nothing."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.api.test_money import new_key
from tests.conftest import (
    ADMIN_TOKEN,
    KeyMaker,
    admin,
    make_settings,
    tenant_balance_usd,
    wait_for_status,
)
from tests.fakes.media import tiny_mp4
from vidrelay.api.context import AppContext
from vidrelay.settings import Settings
from vidrelay.store.tables import jobs

TINY: dict[str, Any] = {
    "owned_by": "acme",
    "sizes": ["320x240"],
    "capabilities": ["remix", "extension", "edit", "character"],
    "routes": [{"route_class": "official", "seconds_range": [1, 4]}],
}
PLAIN: dict[str, Any] = {**TINY, "capabilities": []}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, channel_refresh_s=0.05
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def declare(
    client: httpx.AsyncClient, name: str = "tiny", spec: dict[str, Any] = TINY
) -> None:
    await admin(client, "PUT", f"/admin/models/{name}", 201, json=spec)
    await admin(client, "PUT", "/admin/prices", json={"model": name, "per_second_usd": "0.10"})


async def completed(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    body = {"prompt": "a red kite", "model": "tiny", "seconds": "2", **fields}
    created = await client.post("/v1/videos", headers=auth(key), json=body)
    assert created.status_code == 200, created.text
    done = await wait_for_status(client, created.json()["id"], key)
    assert done["status"] == "completed", done
    return done


async def mp4_seconds(client: httpx.AsyncClient, video_id: str, key: str) -> float:
    content = await client.get(f"/v1/videos/{video_id}/content", headers=auth(key))
    assert content.status_code == 200
    with av.open(io.BytesIO(content.content)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


async def test_a_remix_is_a_new_job_of_its_source_with_remixed_from_video_id_set(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await declare(client)
    await admin(
        client,
        "PUT",
        "/admin/prices",
        json={"model": "tiny", "per_request_usd": "0.05", "when": {"operation": "remix"}},
    )
    key = await make_key("alice", "5")
    source = await completed(client, key)
    before = await tenant_balance_usd(app, "alice")
    remix = await client.post(
        f"/v1/videos/{source['id']}/remix", headers=auth(key), json={"prompt": "a blue kite"}
    )
    assert remix.status_code == 200, remix.text
    body = remix.json()
    assert body["remixed_from_video_id"] == source["id"] and body["operation"] == "remix"
    assert (body["model"], body["seconds"], body["size"]) == ("tiny", "2", "320x240")
    assert (await tenant_balance_usd(app, "alice"))[0] == before[0] - 50_000  # the remix rule
    done = await wait_for_status(client, body["id"], key)
    assert done["status"] == "completed" and done["remixed_from_video_id"] == source["id"]
    assert await mp4_seconds(client, body["id"], key) == pytest.approx(2.0)
    window = {"group_by": "operation", "end_time": int(time.time()) + 60}  # this second too
    usage = await client.get("/v1/usage/videos", params=window, headers=auth(key))
    by_operation = {row["operation"]: row for row in usage.json()["data"]}
    assert set(by_operation) == {"create", "remix"}
    assert by_operation["remix"]["jobs"] == 1 and by_operation["remix"]["amount_usd"] == "0.050000"


async def test_an_extension_is_the_whole_stitched_length_and_priced_by_its_new_seconds(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await declare(client)
    key = await make_key("alice", "5")
    source = await completed(client, key, seconds="2")
    before = (await tenant_balance_usd(app, "alice"))[0]
    extended = await client.post(
        "/v1/videos/extensions",
        headers=auth(key),
        files={
            "prompt": (None, "the kite lands"),
            "seconds": (None, "3"),
            "video[id]": (None, source["id"]),
        },
    )
    assert extended.status_code == 200, extended.text
    body = extended.json()
    assert body["seconds"] == "5" and body["operation"] == "extension"
    assert body["remixed_from_video_id"] is None
    assert (await tenant_balance_usd(app, "alice"))[0] == before - 300_000  # 3 new s x $0.10
    done = await wait_for_status(client, body["id"], key)
    assert done["status"] == "completed" and done["seconds"] == "5"
    assert await mp4_seconds(client, body["id"], key) == pytest.approx(5.0)


async def test_an_edit_takes_its_source_as_an_id_in_json_or_as_an_uploaded_mp4(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await declare(client)
    key = await make_key("alice", "5")
    source = await completed(client, key, seconds="3")
    by_id = await client.post(
        "/v1/videos/edits",
        headers=auth(key),
        json={"prompt": "make it night", "video": {"id": source["id"]}},
    )
    assert by_id.status_code == 200, by_id.text
    assert (by_id.json()["seconds"], by_id.json()["operation"]) == ("3", "edit")
    upload = await client.post(
        "/v1/videos/edits",
        headers=auth(key),
        data={"prompt": "make it night", "model": "tiny"},
        files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
    )
    assert upload.status_code == 200, upload.text
    for body in (by_id.json(), upload.json()):
        done = await wait_for_status(client, body["id"], key)
        assert done["status"] == "completed", done
    assert await mp4_seconds(client, by_id.json()["id"], key) == pytest.approx(3.0)


async def test_a_character_is_the_tenants_own_and_a_create_may_name_it(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await declare(client)
    key, other = await make_key("alice", "5"), await make_key("bob", "5")
    made = await client.post(
        "/v1/videos/characters",
        headers=auth(key),
        data={"name": "Mira"},
        files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
    )
    assert made.status_code == 200, made.text
    character = made.json()
    assert character["id"].startswith("char_") and character["name"] == "Mira"
    assert set(character) == {"id", "name", "created_at"}
    assert await tenant_balance_usd(app, "alice") == (5_000_000, 5_000_000)  # free: no rule
    fetched = await client.get(f"/v1/videos/characters/{character['id']}", headers=auth(key))
    assert fetched.json() == character
    assert (
        await client.get(f"/v1/videos/characters/{character['id']}", headers=auth(other))
    ).status_code == 404
    body = {"prompt": "Mira flies a kite", "model": "tiny", "seconds": "1"}
    named = await client.post(
        "/v1/videos", headers=auth(key), json={**body, "characters": [{"id": character["id"]}]}
    )
    assert named.status_code == 200, named.text
    assert (await wait_for_status(client, named.json()["id"], key))["status"] == "completed"
    strangers = await client.post(
        "/v1/videos", headers=auth(other), json={**body, "characters": [{"id": character["id"]}]}
    )
    assert strangers.status_code == 404 and strangers.json()["error"]["param"] == "characters"


async def test_a_character_rule_prices_its_creation(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await admin(
        client,
        "PUT",
        "/admin/prices",
        json={"model": "sora-2", "per_request_usd": "0.02", "when": {"operation": "character"}},
    )
    key = await make_key("alice", "5")
    made = await client.post(
        "/v1/videos/characters",
        headers={**auth(key), "Idempotency-Key": "char-1"},
        data={"name": "Mira"},
        files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
    )
    again = await client.post(
        "/v1/videos/characters",
        headers={**auth(key), "Idempotency-Key": "char-1"},
        data={"name": "Mira"},
        files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
    )
    assert made.status_code == again.status_code == 200
    assert again.json() == made.json() and again.headers["idempotent-replayed"] == "true"
    assert await tenant_balance_usd(app, "alice") == (4_980_000, 4_980_000)


async def test_idempotency_key_replays_a_remix_charged_once(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await declare(client)
    key = await make_key("alice", "5")
    source = await completed(client, key)
    headers = {**auth(key), "Idempotency-Key": "remix-1"}
    path = f"/v1/videos/{source['id']}/remix"
    first = await client.post(path, headers=headers, json={"prompt": "a blue kite"})
    second = await client.post(path, headers=headers, json={"prompt": "a blue kite"})
    assert first.json()["id"] == second.json()["id"]
    assert (await tenant_balance_usd(app, "alice"))[0] == 5_000_000 - 2 * 200_000
    other = await client.post(path, headers=headers, json={"prompt": "a green kite"})
    assert other.status_code == 409


async def _refusal(
    client: httpx.AsyncClient, key: str, method: str, path: str, **kwargs: Any
) -> dict[str, Any]:
    response = await client.request(method, path, headers=auth(key), **kwargs)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return {"status": response.status_code, **error}


async def test_every_refusal_is_a_4xx_that_charges_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await declare(client)
    await declare(client, "plain", PLAIN)
    key, other = await make_key("alice", "5"), await make_key("bob", "5")
    source = await completed(client, key)
    plain = await completed(client, key, model="plain")
    running = await client.post(
        "/v1/videos", headers=auth(key), json={"prompt": "slow", "model": "tiny", "seconds": "4"}
    )
    balances = (await tenant_balance_usd(app, "alice"), await tenant_balance_usd(app, "bob"))
    remix = {"json": {"prompt": "again"}}
    refusals = [
        (other, "POST", f"/v1/videos/{source['id']}/remix", remix, 404, "video_id"),
        (key, "POST", f"/v1/videos/{running.json()['id']}/remix", remix, 409, "video_id"),
        (key, "POST", f"/v1/videos/{plain['id']}/remix", remix, 400, "video_id"),
        (
            key,
            "POST",
            "/v1/videos/edits",
            {"json": {"prompt": "x", "video": {"id": plain["id"]}}},
            400,
            "video",
        ),
        (
            key,
            "POST",
            "/v1/videos/extensions",
            {"json": {"prompt": "x", "seconds": "9", "video": {"id": source["id"]}}},
            400,
            "seconds",
        ),
        (
            key,
            "POST",
            "/v1/videos/edits",
            {
                "data": {"prompt": "x", "model": "tiny"},
                "files": {"video": ("a.mp4", b"GIF89a not a video", "video/mp4")},
            },
            400,
            "video",
        ),
        (key, "POST", "/v1/videos/edits", {"json": {"prompt": "x"}}, 400, "video"),
        (
            key,
            "POST",
            "/v1/videos/characters",
            {"data": {"name": ""}, "files": {"video": ("a.mp4", tiny_mp4(), "video/mp4")}},
            400,
            "name",
        ),
        (
            key,
            "POST",
            "/v1/videos/characters",
            {"data": {"name": "x" * 81}, "files": {"video": ("a.mp4", tiny_mp4(), "video/mp4")}},
            400,
            "name",
        ),
        (
            key,
            "POST",
            "/v1/videos/characters",
            {
                "data": {"name": "Mira"},
                "files": {"video": ("a.png", b"\x89PNG\r\n\x1a\n....", "image/png")},
            },
            400,
            "video",
        ),
    ]
    for caller, method, path, kwargs, status, param in refusals:
        refused = await _refusal(client, caller, method, path, **kwargs)
        assert (refused["status"], refused["param"]) == (status, param), (path, refused)
    context: AppContext = app.state.context
    async with context.db.write() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == source["id"]).values(expires_at=1))
    expired = await _refusal(client, key, "POST", f"/v1/videos/{source['id']}/remix", **remix)
    assert (expired["status"], expired["code"]) == (409, "video_expired")
    assert (
        await tenant_balance_usd(app, "alice"),
        await tenant_balance_usd(app, "bob"),
    ) == balances


async def test_an_operation_no_enabled_channel_can_do_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await declare(client)
    key = await make_key("alice", "5")
    source = await completed(client, key)
    channel = {
        "name": "seedance",
        "protocol": "ark",
        "base_url": "http://127.0.0.1:9",
        "keys": ["ark-key"],
        "route_class": "official",
        "models": ["tiny"],
    }
    await admin(client, "POST", "/admin/channels", json=channel)
    before = await tenant_balance_usd(app, "alice")
    refused = await _refusal(
        client, key, "POST", f"/v1/videos/{source['id']}/remix", json={"prompt": "x"}
    )
    assert (refused["status"], refused["code"]) == (400, "unsupported_operation")
    assert "remix" in refused["message"]
    assert await tenant_balance_usd(app, "alice") == before


async def test_a_priced_character_counts_toward_the_keys_spending_limit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await admin(
        client,
        "PUT",
        "/admin/prices",
        json={"model": "sora-2", "per_request_usd": "0.02", "when": {"operation": "character"}},
    )
    key = await new_key(app, "alice", "5", spend_limit_usd="0.03")

    async def create(name: str) -> httpx.Response:
        return await client.post(
            "/v1/videos/characters",
            headers=auth(key),
            data={"name": name},
            files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
        )

    assert (await create("Mira")).status_code == 200  # $0.02 of $0.03
    refused = await create("Noor")  # $0.04 in all
    assert refused.status_code == 429, refused.text
    assert "spending limit" in refused.json()["error"]["message"]
    assert await tenant_balance_usd(app, "alice") == (4_980_000, 4_980_000)  # charged once
