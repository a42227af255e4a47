"""The official `openai` Python SDK, unmodified, against a real `vidrelay serve`."""

from __future__ import annotations

import io

import openai
import pytest
from PIL import Image

from tests.e2e.server import ServerProcess


def test_the_official_sdk_creates_polls_lists_downloads_and_deletes(server: ServerProcess) -> None:
    key = server.create_key("sdk-user", "20")
    client = openai.OpenAI(api_key=key, base_url=f"{server.base_url}/v1", max_retries=0)

    video = client.videos.create_and_poll(
        prompt="a paper boat on a rainy street", model="sora-2", seconds="4", size="1280x720"
    )
    assert video.status == "completed", video
    assert video.id.startswith("video_") and video.seconds == "4" and video.size == "1280x720"
    assert video.progress == 100 and video.error is None

    retrieved = client.videos.retrieve(video.id)
    assert retrieved.id == video.id and retrieved.status == "completed"

    content = client.videos.download_content(video.id)
    mp4 = content.read()
    assert mp4[4:8] == b"ftyp"
    thumbnail = client.videos.download_content(video.id, variant="thumbnail").read()
    assert Image.open(io.BytesIO(thumbnail)).format == "WEBP"
    spritesheet = client.videos.download_content(video.id, variant="spritesheet").read()
    assert Image.open(io.BytesIO(spritesheet)).format == "JPEG"

    second = client.videos.create(prompt="a kite over a beach", seconds="4")
    assert second.status in ("queued", "in_progress")
    third = client.videos.create(prompt="a red fox in snow", seconds="4")
    listed = [item.id for item in client.videos.list(limit=1)]  # auto-paginates one at a time
    assert listed == [third.id, second.id, video.id]
    first_page = client.videos.list(limit=2, order="asc")
    assert [item.id for item in first_page.data] == [video.id, second.id]
    assert first_page.has_more

    for pending in (second, third):
        finished = client.videos.poll(pending.id)
        assert finished.status == "completed"
    deleted = client.videos.delete(video.id)
    assert deleted.deleted and deleted.id == video.id and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_sdk_errors_arrive_as_typed_exceptions(server: ServerProcess) -> None:
    key = server.create_key("sdk-errors", "0.5")
    client = openai.OpenAI(api_key=key, base_url=f"{server.base_url}/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="boat", seconds="5")  # type: ignore[arg-type]
    assert bad.value.body["param"] == "seconds"  # type: ignore[index]
    with pytest.raises(openai.RateLimitError) as quota:
        client.videos.create(prompt="boat", seconds="8")
    assert quota.value.code == "insufficient_quota"
    stranger = openai.OpenAI(api_key="sk-unknown", base_url=f"{server.base_url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.videos.list()
