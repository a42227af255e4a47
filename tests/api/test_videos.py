"""The life of a video through the API, on SQLite and PostgreSQL: accept and charge, run on the
local renderer, serve status, content and signed links, list, delete; keys and tenants."""

from __future__ import annotations

import io
import re
import time
from urllib.parse import urlsplit

import av
import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.conftest import KeyMaker, tenant_balance_usd, wait_for_status

DOCUMENT_FIELDS = {
    "id",
    "object",
    "model",
    "status",
    "progress",
    "created_at",
    "seconds",
    "size",
    "completed_at",
    "error",
    "expires_at",
    "remixed_from_video_id",
    "prompt",
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create(client: httpx.AsyncClient, key: str, **fields: str) -> dict:  # type: ignore[type-arg]
    fields.setdefault("prompt", "a paper boat on a rainy street")
    response = await client.post(
        "/v1/videos", data=fields, files={"_": (None, "")}, headers=auth(key)
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_video_is_accepted_charged_rendered_and_served(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "50")
    video = await create(client, key, model="sora-2", seconds="8", size="1280x720")
    assert set(video) >= DOCUMENT_FIELDS
    assert re.fullmatch(r"video_[0-9a-f]{48}", video["id"])
    assert video["object"] == "video"
    assert video["status"] == "pending"
    assert (video["seconds"], video["size"], video["model"]) == ("8", "1280x720", "sora-2")
    assert video["progress"] == 0 and video["error"] is None and video["completed_at"] is None
    assert await tenant_balance_usd(app, "alice") == (49_200_000, 49_200_000)

    done = await wait_for_status(client, video["id"], key)
    assert done["status"] == "completed", done
    assert done["progress"] == 100
    assert done["completed_at"] >= done["created_at"]
    assert done["expires_at"] > done["completed_at"]
    assert done["video_url"].startswith("http://testserver/v1/videos/")

    content = await client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert content.status_code == 200
    assert content.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(content.content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert stream.codec_context.name == "h264"
        assert abs(float(container.duration / av.time_base) - 8) < 0.1

    for variant, fmt in (("thumbnail", "WEBP"), ("spritesheet", "JPEG")):
        asset = await client.get(
            f"/v1/videos/{video['id']}/content", params={"variant": variant}, headers=auth(key)
        )
        assert asset.status_code == 200
        assert Image.open(io.BytesIO(asset.content)).format == fmt

    # the signed link needs no key; a tampered one is refused
    url = urlsplit(done["video_url"])
    keyless = await client.get(f"{url.path}?{url.query}")
    assert keyless.status_code == 200 and keyless.content == content.content
    tampered = await client.get(
        f"{url.path}?{url.query.replace('variant=video', 'variant=thumbnail')}"
    )
    assert tampered.status_code == 404
    ranged = await client.get(
        f"/v1/videos/{video['id']}/content", headers={**auth(key), "Range": "bytes=0-99"}
    )
    assert ranged.status_code == 206 and len(ranged.content) == 100
    assert await tenant_balance_usd(app, "alice") == (49_200_000, 49_200_000)


async def test_status_vocabulary_is_negotiated(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key()
    video = await create(client, key)
    relay = await client.get(f"/v1/videos/{video['id']}", headers=auth(key))
    assert relay.json()["status"] in ("pending", "processing", "completed")
    assert relay.headers.get("openai-poll-after-ms") or relay.json()["status"] == "completed"
    official = await client.get(
        f"/v1/videos/{video['id']}", headers={**auth(key), "X-Stainless-Lang": "python"}
    )
    assert official.json()["status"] in ("queued", "in_progress", "completed")
    asked = await client.get(
        f"/v1/videos/{video['id']}", params={"status_style": "openai"}, headers=auth(key)
    )
    assert asked.json()["status"] in ("queued", "in_progress", "completed")
    seen = set()
    while True:
        body = (await client.get(f"/v1/videos/{video['id']}", headers=auth(key))).json()
        seen.add(body["status"])
        if body["status"] in ("completed", "failed"):
            break
    assert seen <= {"pending", "processing", "completed"}
    assert "completed" in seen


async def test_content_before_completion_is_a_409_naming_the_status(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key()
    video = await create(client, key, seconds="12", size="1792x1024")
    response = await client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "video_not_ready"
    assert re.search(r"status is (queued|in_progress)", error["message"])
    bad_variant = await client.get(
        f"/v1/videos/{video['id']}/content", params={"variant": "gif"}, headers=auth(key)
    )
    assert bad_variant.status_code == 400
    assert bad_variant.json()["error"]["param"] == "variant"
    delete = await client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    assert delete.status_code in (409, 200)
    await wait_for_status(client, video["id"], key)


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer sk-not-a-real-key", "Basic dXNlcjpwYXNz", "sk-without-scheme"],
)
async def test_missing_or_unknown_keys_get_an_openai_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in (("POST", "/v1/videos"), ("GET", "/v1/videos"), ("GET", "/v1/videos/x")):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] in ("invalid_api_key", "missing_api_key")


async def test_a_revoked_key_is_refused(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    from vidrelay.store.accounts import revoke_key

    key = await make_key()
    assert (await client.get("/v1/videos", headers=auth(key))).status_code == 200
    async with app.state.context.db.write() as conn:
        await revoke_key(conn, key)
    response = await client.get("/v1/videos", headers=auth(key))
    assert response.status_code == 401


async def test_a_tenant_never_sees_another_tenants_video(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    alice = await make_key("alice")
    mallory = await make_key("mallory")
    video = await create(client, alice)
    for method, path in (
        ("GET", f"/v1/videos/{video['id']}"),
        ("GET", f"/v1/videos/{video['id']}/content"),
        ("DELETE", f"/v1/videos/{video['id']}"),
    ):
        response = await client.request(method, path, headers=auth(mallory))
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["type"] == "invalid_request_error"
    listing = (await client.get("/v1/videos", headers=auth(mallory))).json()
    assert listing["data"] == []
    await wait_for_status(client, video["id"], alice)
    same_key_other_tenant = await client.get(f"/v1/videos/{video['id']}", headers=auth(mallory))
    assert same_key_other_tenant.status_code == 404


async def test_insufficient_balance_is_a_429_and_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("bob", "0.5")
    response = await client.post(
        "/v1/videos",
        data={"prompt": "boat", "seconds": "8"},
        files={"_": (None, "")},
        headers=auth(key),
    )
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "insufficient_quota" and error["code"] == "insufficient_quota"
    assert (await client.get("/v1/videos", headers=auth(key))).json()["data"] == []
    assert await tenant_balance_usd(app, "bob") == (500_000, 500_000)
    accepted = await create(client, key, seconds="4")  # $0.40 fits
    assert await tenant_balance_usd(app, "bob") == (100_000, 100_000)
    await wait_for_status(client, accepted["id"], key)


async def test_list_paginates_in_both_orders_and_delete_removes_video_and_media(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("carol", "50")
    ids = [(await create(client, key, prompt=f"boat {n}"))["id"] for n in range(5)]
    pages: list[str] = []
    after = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if after:
            params["after"] = after
        page = (await client.get("/v1/videos", params=params, headers=auth(key))).json()
        assert page["object"] == "list"
        pages.extend(item["id"] for item in page["data"])
        assert page["first_id"] == page["data"][0]["id"]
        assert page["last_id"] == page["data"][-1]["id"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert pages == list(reversed(ids))
    ascending = (
        await client.get("/v1/videos", params={"order": "asc", "limit": 100}, headers=auth(key))
    ).json()
    assert [item["id"] for item in ascending["data"]] == ids
    for bad in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}, {"after": "video_nope"}):
        response = await client.get("/v1/videos", params=bad, headers=auth(key))
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == next(iter(bad))

    for video_id in ids:
        await wait_for_status(client, video_id, key)
    media_dir = app.state.context.media.job_dir(ids[0])
    assert (media_dir / "video.mp4").exists()
    deleted = await client.delete(f"/v1/videos/{ids[0]}", headers=auth(key))
    assert deleted.json() == {"id": ids[0], "object": "video.deleted", "deleted": True}
    assert not media_dir.exists()
    assert (await client.get(f"/v1/videos/{ids[0]}", headers=auth(key))).status_code == 404
    assert (await client.delete(f"/v1/videos/{ids[0]}", headers=auth(key))).status_code == 404
    remaining = (await client.get("/v1/videos", params={"limit": 100}, headers=auth(key))).json()
    assert ids[0] not in [item["id"] for item in remaining["data"]]
    assert len(remaining["data"]) == 4


async def test_a_reference_image_is_where_the_video_starts(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key()
    buffer = io.BytesIO()
    Image.new("RGB", (300, 500), (255, 0, 0)).save(buffer, format="JPEG")
    response = await client.post(
        "/v1/videos",
        data={"prompt": "a red room", "size": "1280x720"},
        files={"input_reference": ("red.jpg", buffer.getvalue(), "image/jpeg")},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    video_id = response.json()["id"]
    assert (await wait_for_status(client, video_id, key))["status"] == "completed"
    content = await client.get(f"/v1/videos/{video_id}/content", headers=auth(key))
    with av.open(io.BytesIO(content.content)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    red, green, blue = first[..., 0].mean(), first[..., 1].mean(), first[..., 2].mean()
    assert red > 150 and red > green + 60 and red > blue + 60


async def test_a_reverse_request_with_a_character_is_accepted_and_rendered(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("dave", "50")
    video = await create(
        client,
        key,
        model="sora-2-pro",
        seconds="10",
        size="720x1280",
        character_url="https://cdn.example.com/cat.mp4",
        character_timestamps="1,3",
    )
    assert video["seconds"] == "10" and video["model"] == "sora-2-pro"
    assert (await wait_for_status(client, video["id"], key))["status"] == "completed"


async def test_healthz_and_unknown_paths(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    missing = await client.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_expired_media_is_deleted_and_its_content_answers_404(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    from sqlalchemy import update

    from vidrelay.store.tables import jobs

    key = await make_key()
    video = await create(client, key)
    done = await wait_for_status(client, video["id"], key)
    assert done["status"] == "completed"
    media_dir = app.state.context.media.job_dir(video["id"])
    assert media_dir.exists()
    async with app.state.context.db.write() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == video["id"]).values(expires_at=1))
    runner = app.state.context.runner
    assert await runner.purge_expired_media(time.time()) == 1
    assert not media_dir.exists()
    assert await runner.purge_expired_media(time.time()) == 0  # once
    content = await client.get(f"/v1/videos/{video['id']}/content", headers=auth(key))
    assert content.status_code == 404
    assert content.json()["error"]["code"] == "video_expired"
    body = (
        await client.get(
            f"/v1/videos/{video['id']}", params={"status_style": "openai"}, headers=auth(key)
        )
    ).json()
    assert body["status"] == "completed" and "video_url" not in body
