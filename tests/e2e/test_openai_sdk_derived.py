"""The official `openai` Python SDK, unmodified, remixing, extending and editing videos and
making characters on a real `vidrelay serve` (the local renderer)."""

from __future__ import annotations

import io

import av
import openai

from tests.e2e.server import ServerProcess
from tests.fakes.media import tiny_mp4


def _mp4_seconds(client: openai.OpenAI, video_id: str) -> float:
    with av.open(io.BytesIO(client.videos.download_content(video_id).read())) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


def test_the_official_sdk_remixes_extends_edits_and_makes_characters(
    server: ServerProcess,
) -> None:
    key = server.create_key("sdk-derived", "20")
    client = openai.OpenAI(api_key=key, base_url=f"{server.base_url}/v1", max_retries=0)
    source = client.videos.create_and_poll(prompt="a paper boat", seconds="4", size="1280x720")
    assert source.status == "completed", source

    remix = client.videos.poll(client.videos.remix(source.id, prompt="a paper plane").id)
    assert remix.status == "completed" and remix.remixed_from_video_id == source.id
    assert (remix.seconds, remix.size, remix.model) == ("4", "1280x720", "sora-2")

    # The SDK refuses a dict for `video` here: a source by id goes as extra_body (`video[id]`).
    by_id = {"video": openai.omit, "extra_body": {"video": {"id": source.id}}}
    extended = client.videos.extend(prompt="the boat sails on", seconds="4", **by_id)
    assert extended.seconds == "8"
    extended = client.videos.poll(extended.id)
    assert extended.status == "completed" and extended.seconds == "8"
    assert abs(_mp4_seconds(client, extended.id) - 8.0) < 0.01  # 4 s of source + 4 new

    edited = client.videos.edit(prompt="at night", **by_id)
    assert client.videos.poll(edited.id).status == "completed"
    uploaded = client.videos.edit(prompt="at dawn", video=("clip.mp4", tiny_mp4(), "video/mp4"))
    assert client.videos.poll(uploaded.id).status == "completed"

    character = client.videos.create_character(
        name="Mira", video=("mira.mp4", tiny_mp4(), "video/mp4")
    )
    assert character.id and character.id.startswith("char_") and character.name == "Mira"
    fetched = client.videos.get_character(character.id)
    assert (fetched.id, fetched.name) == (character.id, "Mira")
    starring = client.videos.create_and_poll(
        prompt="Mira waves", seconds="4", extra_body={"characters": [{"id": character.id}]}
    )
    assert starring.status == "completed", starring
    with_key = client.videos.list(limit=10)
    operations = {video.id: getattr(video, "operation", None) for video in with_key.data}
    assert operations[remix.id] == "remix" and operations[extended.id] == "extension"
