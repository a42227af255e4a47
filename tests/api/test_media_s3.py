"""Media on moto's real S3 server: a video created, completed and served from the bucket (bytes,
Range, ETag), the redirect to a presigned URL, expiry and delete removing the objects, and an
API process and a worker on different disks sharing reference images and videos through it.
The content rules themselves (ranges, 304) are checked on both stores."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import update

from tests.api.test_videos import auth, create
from tests.conftest import KeyMaker, make_settings, wait_for_status
from tests.fakes.media import tiny_mp4
from tests.fakes.s3 import S3Server, moto_s3
from vidrelay.api.app import create_app
from vidrelay.api.content import requested_range
from vidrelay.domain.errors import RangeNotSatisfiable
from vidrelay.engine.background import Engine, open_instance
from vidrelay.settings import Settings
from vidrelay.store.tables import jobs

VARIANT_KEYS = ["media/{id}/spritesheet.jpg", "media/{id}/thumbnail.webp", "media/{id}/video.mp4"]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


@pytest.fixture(params=["local", "s3"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str, s3: S3Server, bucket: str
) -> Settings:
    on_s3 = s3.settings(bucket) if request.param == "s3" else {}
    return make_settings(tmp_path / "data", database_url, **on_s3)


@pytest.fixture
def s3_settings(tmp_path: Path, database_url: str, s3: S3Server, bucket: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, **s3.settings(bucket))


async def completed_video(client: httpx.AsyncClient, key: str, **fields: str) -> dict[str, Any]:
    video = await create(client, key, **fields)
    done = await wait_for_status(client, video["id"], key)
    assert done["status"] == "completed", done
    return done


async def test_content_keeps_range_etag_and_not_modified_on_either_store(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker, s3: S3Server, bucket: str
) -> None:
    key = await make_key()
    done = await completed_video(client, key)
    path = f"/v1/videos/{done['id']}/content"
    full = await client.get(path, headers=auth(key))
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    body, size, etag = full.content, len(full.content), full.headers["etag"]
    assert int(full.headers["content-length"]) == size > 1000
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-disposition"] == f'inline; filename="{done["id"]}.mp4"'
    if app.state.context.settings.media_url:  # on S3: the bytes are the bucket's
        assert s3.keys(bucket) == sorted(k.format(id=done["id"]) for k in VARIANT_KEYS)
        assert s3.read(bucket, f"media/{done['id']}/video.mp4") == body
        assert not (app.state.context.settings.media_dir / done["id"]).exists()

    for asked, status, expected, content_range in (
        ("bytes=0-99", 206, body[:100], f"bytes 0-99/{size}"),
        ("bytes=100-", 206, body[100:], f"bytes 100-{size - 1}/{size}"),
        ("bytes=-10", 206, body[-10:], f"bytes {size - 10}-{size - 1}/{size}"),
        (f"bytes=10-{size + 50}", 206, body[10:], f"bytes 10-{size - 1}/{size}"),
        ("bytes=0-9,20-29", 200, body, None),  # several ranges: the whole
        ("bytes=nonsense", 200, body, None),
    ):
        ranged = await client.get(path, headers={**auth(key), "Range": asked})
        assert ranged.status_code == status, asked
        assert ranged.content == expected, asked
        assert ranged.headers.get("content-range") == content_range, asked
    for past_the_end in (f"bytes={size}-", "bytes=-0"):
        refused = await client.get(path, headers={**auth(key), "Range": past_the_end})
        assert refused.status_code == 416, past_the_end
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.json()["error"]["code"] == "range_not_satisfiable"
        assert refused.json()["error"]["param"] == "Range"

    unchanged = await client.get(path, headers={**auth(key), "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    listed = await client.get(path, headers={**auth(key), "If-None-Match": f'"other", {etag}'})
    assert listed.status_code == 304
    changed = await client.get(path, headers={**auth(key), "If-None-Match": '"other"'})
    assert changed.status_code == 200 and changed.content == body
    stale_range = await client.get(
        path, headers={**auth(key), "Range": "bytes=0-9", "If-Range": '"other"'}
    )
    assert stale_range.status_code == 200 and stale_range.content == body
    fresh_range = await client.get(
        path, headers={**auth(key), "Range": "bytes=0-9", "If-Range": etag}
    )
    assert fresh_range.status_code == 206 and fresh_range.content == body[:10]

    thumbnail = await client.get(path, params={"variant": "thumbnail"}, headers=auth(key))
    assert thumbnail.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumbnail.content)).format == "WEBP"
    link = urlsplit(done["video_url"])
    keyless = await client.get(f"{link.path}?{link.query}")
    assert keyless.status_code == 200 and keyless.content == body


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=2-4", 10, (2, 5)),
        ("bytes= 2-4", 10, None),
        ("items=2-4", 10, None),
        ("bytes=4-2", 10, None),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=9-", 10, (9, 10)),
        ("bytes=-", 10, None),
    ],
)
def test_a_single_range_is_read_and_anything_else_means_the_whole(
    header: str | None, size: int, expected: tuple[int, int] | None
) -> None:
    assert requested_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=-1", 0)])
def test_a_range_past_the_end_is_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        requested_range(header, size)


@pytest_asyncio.fixture
async def redirecting_client(s3_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(s3_settings.model_copy(update={"media_redirect": True}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = application  # type: ignore[attr-defined]
            yield http


async def test_redirect_mode_answers_a_presigned_url_that_serves_the_object(
    redirecting_client: httpx.AsyncClient, s3: S3Server, bucket: str
) -> None:
    application: FastAPI = redirecting_client.app  # type: ignore[attr-defined]
    key = await _key(application)
    done = await completed_video(redirecting_client, key)
    stored = s3.read(bucket, f"media/{done['id']}/video.mp4")
    answer = await redirecting_client.get(f"/v1/videos/{done['id']}/content", headers=auth(key))
    assert answer.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(f"{s3.endpoint}/{bucket}/media/{done['id']}/video.mp4?")
    assert "X-Amz-Expires=300" in location
    link = urlsplit(done["video_url"])
    signed = await redirecting_client.get(f"{link.path}?{link.query}")  # video_url: no key
    assert signed.status_code == 307
    with httpx.Client(follow_redirects=True) as outside:  # a client reaching the bucket
        for url in (location, signed.headers["location"]):
            whole = outside.get(url)
            assert whole.status_code == 200 and whole.content == stored
            assert whole.headers["content-type"] == "video/mp4"
        ranged = outside.get(location, headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and ranged.content == stored[:100]
        unchanged = outside.get(location, headers={"If-None-Match": whole.headers["etag"]})
        assert unchanged.status_code == 304
    await s3_delete_all(s3, bucket)
    gone = await redirecting_client.get(f"/v1/videos/{done['id']}/content", headers=auth(key))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "video_expired"


async def s3_delete_all(s3: S3Server, bucket: str) -> None:
    for key in s3.keys(bucket):
        s3.client().delete_object(Bucket=bucket, Key=key)


async def _key(application: FastAPI) -> str:
    from vidrelay.store import accounts

    async with application.state.context.db.write() as conn:
        tenant = await accounts.ensure_tenant(conn, "alice")
        await accounts.top_up(conn, tenant.id, 50_000_000, "test")
        _key_id, key = await accounts.create_key(conn, tenant.id)
    return key


async def test_expiry_and_delete_remove_the_objects_from_the_bucket(
    s3_settings: Settings, s3: S3Server, bucket: str
) -> None:
    application = create_app(s3_settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            key = await _key(application)
            expiring = await completed_video(client, key)
            deleted = await completed_video(client, key)
            assert len(s3.keys(bucket)) == 6
            context = application.state.context
            async with context.db.write() as conn:
                await conn.execute(
                    update(jobs).where(jobs.c.id == expiring["id"]).values(expires_at=1)
                )
            assert await context.runner.purge_expired_media(2.0) == 1
            assert s3.keys(bucket, f"media/{expiring['id']}/") == []
            assert len(s3.keys(bucket)) == 3
            content = await client.get(f"/v1/videos/{expiring['id']}/content", headers=auth(key))
            assert content.status_code == 404
            assert content.json()["error"]["code"] == "video_expired"
            gone = await client.delete(f"/v1/videos/{deleted['id']}", headers=auth(key))
            assert gone.status_code == 200
            assert s3.keys(bucket) == []


@asynccontextmanager
async def api_and_worker_on_other_disks(
    tmp_path: Path, database_url: str, s3: S3Server, bucket: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An API process (no engine) and a worker, each with its own data directory as on two
    hosts, sharing the database and the bucket: a client of the API and a key."""
    shared = s3.settings(bucket)
    api_settings = make_settings(tmp_path / "api", database_url, engine=False, **shared)
    worker_settings = make_settings(tmp_path / "worker", database_url, **shared)
    application = create_app(api_settings)
    async with application.router.lifespan_context(application):
        worker = Engine(await open_instance(worker_settings, serves_http=False))
        worker.start()
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield client, await _key(application)
        finally:
            await worker.stop()


async def test_an_api_process_and_a_worker_on_other_disks_share_media_through_the_bucket(
    tmp_path: Path, database_url: str, s3: S3Server, bucket: str
) -> None:
    """The API saves the reference image, the worker (its own data directory, as on another
    host) renders from it and uploads the video, the API serves it."""
    async with api_and_worker_on_other_disks(tmp_path, database_url, s3, bucket) as (
        client,
        key,
    ):
        image = io.BytesIO()
        Image.new("RGB", (300, 500), (255, 0, 0)).save(image, format="JPEG")
        response = await client.post(
            "/v1/videos",
            data={"prompt": "a red room", "size": "1280x720"},
            files={"input_reference": ("red.jpg", image.getvalue(), "image/jpeg")},
            headers=auth(key),
        )
        assert response.status_code == 200, response.text
        video_id = response.json()["id"]
        assert s3.keys(bucket, f"media/{video_id}/") == [f"media/{video_id}/reference.bin"]
        assert (await wait_for_status(client, video_id, key))["status"] == "completed"
        content = await client.get(f"/v1/videos/{video_id}/content", headers=auth(key))
    assert content.status_code == 200
    assert content.content == s3.read(bucket, f"media/{video_id}/video.mp4")
    assert not any((tmp_path / "api").rglob("*.mp4"))  # the API never had it on disk
    assert not any((tmp_path / "worker").rglob("*.mp4"))  # scratch is cleaned up
    with av.open(io.BytesIO(content.content)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    red, green, blue = first[..., 0].mean(), first[..., 1].mean(), first[..., 2].mean()
    assert red > 150 and red > green + 60 and red > blue + 60


async def test_derived_videos_on_another_disk_read_their_sources_and_clips_from_the_bucket(
    tmp_path: Path, database_url: str, s3: S3Server, bucket: str
) -> None:
    """An extension of a stored video, an edit of an uploaded MP4 and a create naming a
    character: the API stores the upload and the clip in the bucket, the worker (its own data
    directory) copies them into its scratch to render, then cleans up."""
    async with api_and_worker_on_other_disks(tmp_path, database_url, s3, bucket) as (
        client,
        key,
    ):
        source = await completed_video(client, key, seconds="4")
        extended = await client.post(
            "/v1/videos/extensions",
            headers=auth(key),
            json={"prompt": "it goes on", "seconds": "4", "video": {"id": source["id"]}},
        )
        assert extended.status_code == 200, extended.text
        edited = await client.post(
            "/v1/videos/edits",
            headers=auth(key),
            data={"prompt": "make it night"},
            files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
        )
        assert edited.status_code == 200, edited.text
        assert s3.keys(bucket, f"media/{edited.json()['id']}/source.mp4")
        character = await client.post(
            "/v1/videos/characters",
            headers=auth(key),
            data={"name": "Mira"},
            files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
        )
        assert character.status_code == 200, character.text
        character_id = character.json()["id"]
        assert s3.keys(bucket, f"media/characters/{character_id}.mp4")
        named = await client.post(
            "/v1/videos",
            headers=auth(key),
            json={"prompt": "Mira waves", "characters": [{"id": character_id}]},
        )
        assert named.status_code == 200, named.text
        for video in (extended.json(), edited.json(), named.json()):
            done = await wait_for_status(client, video["id"], key)
            assert done["status"] == "completed", done
        extended_mp4 = s3.read(bucket, f"media/{extended.json()['id']}/video.mp4")
    with av.open(io.BytesIO(extended_mp4)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        assert float(stream.duration * stream.time_base) == pytest.approx(8.0)
    assert not any((tmp_path / "api").rglob("*.mp4"))  # the API kept nothing on its disk
    assert not any((tmp_path / "worker").rglob("*.mp4"))  # the worker's copies went with it
