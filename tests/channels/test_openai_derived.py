"""Remixes, extensions, edits and characters on `openai`-protocol channels: passed through to
the official endpoints of fake upstreams that, like OpenAI, know a video only on the account
(key) that made it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.channels.relay import Relay, openai_channel, running_relay
from tests.fakes.openai_upstream import FakeOpenAIUpstream, tiny_mp4

A_KEYS = ("sk-up-a1", "sk-up-a2", "sk-up-a3")


@pytest.fixture
def vendor_a() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys=set(A_KEYS))
    with fake.serve():
        yield fake


@pytest.fixture
def vendor_b() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={"sk-up-b1"})
    with fake.serve():
        yield fake


@pytest_asyncio.fixture
async def relay(
    tmp_path: Path, database_url: str, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> AsyncIterator[Relay]:
    """vendor-a, with three keys taken in turn, makes the sources."""
    async with running_relay(tmp_path / "data", database_url) as relay:
        await relay.declare(openai_channel("vendor-a", vendor_a.url, keys=A_KEYS))
        yield relay


async def prefer_vendor_b(relay: Relay, vendor_b: FakeOpenAIUpstream) -> None:
    """From now on vendor-b, a tier above, takes every job that may go anywhere."""
    await relay.declare(openai_channel("vendor-b", vendor_b.url, keys=("sk-up-b1",), priority=10))


def _maker(vendors: list[FakeOpenAIUpstream]) -> tuple[FakeOpenAIUpstream, str, str]:
    """The fake, key and upstream id of the one create submitted so far."""
    for fake in vendors:
        for submitted in fake.requests_to("/v1/videos", "POST"):
            assert submitted.key is not None
            return fake, submitted.key, next(iter(fake.jobs))
    raise AssertionError("no create was submitted")


async def test_a_remix_goes_to_the_channel_and_key_that_made_its_source(
    relay: Relay, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    source = await relay.finished(await relay.submit())
    assert source["status"] == "completed", source
    maker, key, upstream_id = _maker([vendor_a, vendor_b])
    await prefer_vendor_b(relay, vendor_b)  # and the pool's next key is another one
    remixes = []
    for n in range(4):
        response = await relay.client.post(
            f"/v1/videos/{source['id']}/remix", headers=relay.auth, json={"prompt": f"take {n}"}
        )
        assert response.status_code == 200, response.text
        remixes.append(await relay.finished(response.json()["id"]))
    assert all(r["status"] == "completed" for r in remixes), remixes
    assert all(r["remixed_from_video_id"] == source["id"] for r in remixes)
    asked = [*vendor_a.requests_to(f"/v1/videos/{upstream_id}/remix", "POST")]
    asked += vendor_b.requests_to(f"/v1/videos/{upstream_id}/remix", "POST")
    assert len(asked) == 4 and {(r.port, r.key) for r in asked} == {(maker.port, key)}
    assert [r.json["prompt"] for r in asked] == [f"take {n}" for n in range(4)]


async def test_an_extension_of_a_held_video_names_it_and_one_of_an_upload_sends_the_file(
    relay: Relay, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    source = await relay.finished(await relay.submit())
    maker, key, upstream_id = _maker([vendor_a, vendor_b])
    await prefer_vendor_b(relay, vendor_b)
    held = await relay.client.post(
        "/v1/videos/extensions",
        headers=relay.auth,
        json={"prompt": "and then", "seconds": "4", "video": {"id": source["id"]}},
    )
    assert held.status_code == 200 and held.json()["seconds"] == "8"
    assert (await relay.finished(held.json()["id"]))["status"] == "completed"
    assert not vendor_b.requests_to("/v1/videos/extensions")
    (extension,) = maker.requests_to("/v1/videos/extensions", "POST")
    assert extension.key == key and extension.form["video[id]"] == upstream_id
    assert extension.form["seconds"] == "4" and "video" not in extension.files
    uploaded = await relay.client.post(
        "/v1/videos/edits",
        headers=relay.auth,
        data={"prompt": "at night"},
        files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert (await relay.finished(uploaded.json()["id"]))["status"] == "completed"
    (edit,) = vendor_b.requests_to("/v1/videos/edits")  # any channel takes a file
    assert edit.files["video"].data == tiny_mp4() and "video[id]" not in edit.form


async def test_a_create_naming_a_character_uploads_its_clip_once_per_key_then_names_it(
    relay: Relay, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    made = await relay.client.post(
        "/v1/videos/characters",
        headers=relay.auth,
        data={"name": "Mira"},
        files={"video": ("clip.mp4", tiny_mp4(), "video/mp4")},
    )
    assert made.status_code == 200, made.text
    character = made.json()["id"]
    for _ in range(len(A_KEYS) + 1):  # the last one with a key that has uploaded it before
        video = await relay.submit(**{"characters[0][id]": character, "prompt": "Mira waves"})
        assert (await relay.finished(video))["status"] == "completed"
    creates = vendor_a.requests_to("/v1/videos", "POST") + vendor_b.requests_to(
        "/v1/videos", "POST"
    )
    uploads = vendor_a.requests_to("/v1/videos/characters", "POST")
    uploads += vendor_b.requests_to("/v1/videos/characters", "POST")
    assert sorted(r.key for r in uploads) == sorted(A_KEYS)  # once per key
    known = {**vendor_a.characters, **vendor_b.characters}
    for create in creates:
        upstream_character = create.form["characters[][id]"]
        assert known[upstream_character]["key"] == create.key
        assert known[upstream_character]["name"] == "Mira"
