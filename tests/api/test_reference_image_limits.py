"""A reference image costs bounded memory and never stalls the server: its pixel count is read
from the header and refused above `VIDRELAY_MAX_REFERENCE_PIXELS` before any decode, and the
decode that remains runs in worker threads, two at a time, while the event loop serves."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.api.test_create_validation import assert_openai_error, png_bytes, post_form
from tests.conftest import KeyMaker, make_settings, tenant_balance_usd
from vidrelay.media import reference_images
from vidrelay.settings import Settings


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG whose frame header claims `width` x `height`: cheap to build and to send,
    ruinous to decode."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    position = 2  # after SOI: walk the segments to the baseline frame header (SOF0)
    while data[position + 1] != 0xC0:
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    data[position + 5 : position + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_the_crafted_jpeg_claims_its_size_without_being_decoded() -> None:
    with Image.open(io.BytesIO(jpeg_claiming(13000, 13000))) as image:
        assert image.size == (13000, 13000)


@pytest.fixture
async def key(make_key: KeyMaker) -> str:
    return await make_key("alice", "50")


async def test_a_13000_pixel_square_jpeg_is_a_400_stating_the_limit_and_charges_nothing(
    app: FastAPI, client: httpx.AsyncClient, key: str
) -> None:
    huge = jpeg_claiming(13000, 13000)
    upload = await post_form(
        client, key, {"prompt": "boat"}, {"input_reference": ("ref.jpg", huge, "image/jpeg")}
    )
    data_url = await post_form(
        client,
        key,
        {
            "prompt": "boat",
            "input_reference[image_url]": "data:image/jpeg;base64,"
            + base64.b64encode(huge).decode(),
        },
    )
    for response in (upload, data_url):
        error = assert_openai_error(response, 400, "input_reference")
        assert "13000x13000" in error["message"]
        assert "40,000,000" in error["message"]
    # past Pillow's own bomb limit the answer is the same, without the size Pillow will not give
    bomb = await post_form(
        client,
        key,
        {"prompt": "boat"},
        {"input_reference": ("ref.jpg", jpeg_claiming(65000, 65000), "image/jpeg")},
    )
    assert "40,000,000" in assert_openai_error(bomb, 400, "input_reference")["message"]
    assert await tenant_balance_usd(app, "alice") == (50_000_000, 50_000_000)


class TestTheLimitIsASetting:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str) -> Settings:
        return make_settings(tmp_path / "data", database_url, max_reference_pixels=2500)

    async def test_an_image_over_the_configured_pixel_count_is_refused_and_one_under_it_taken(
        self, client: httpx.AsyncClient, key: str
    ) -> None:
        over = await post_form(
            client,
            key,
            {"prompt": "boat"},
            {"input_reference": ("ref.png", png_bytes((51, 50)), "image/png")},
        )
        error = assert_openai_error(over, 400, "input_reference")
        assert "51x50" in error["message"] and "2,500" in error["message"]
        under = await post_form(
            client,
            key,
            {"prompt": "boat"},
            {"input_reference": ("ref.png", png_bytes((50, 50)), "image/png")},
        )
        assert under.status_code == 200, under.text


async def test_healthz_answers_while_images_are_decoded_two_at_a_time(
    client: httpx.AsyncClient, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each decode is held until `/healthz` has answered; decoding on the event loop would hold
    `/healthz` behind it instead (the held decodes give up after 5 s, so that fails, not hangs)."""
    release = threading.Event()
    lock = threading.Lock()
    running = 0
    most_running = 0
    finished = 0
    real_fit = reference_images._fit

    def held_fit(data: bytes, param: str, size: tuple[int, int]) -> bytes:
        nonlocal running, most_running, finished
        with lock:
            running += 1
            most_running = max(most_running, running)
        release.wait(timeout=5)
        fitted = real_fit(data, param, size)
        with lock:
            running -= 1
            finished += 1
        return fitted

    monkeypatch.setattr(reference_images, "_fit", held_fit)
    image = png_bytes((1024, 1024))
    creates = [
        asyncio.create_task(
            post_form(
                client,
                key,
                {"prompt": "boat"},
                {"input_reference": ("ref.png", image, "image/png")},
            )
        )
        for _ in range(5)
    ]
    while most_running < 2 and finished == 0:
        await asyncio.sleep(0.01)
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert finished == 0, "/healthz waited for the decodes"
    release.set()
    for response in await asyncio.gather(*creates):
        assert response.status_code == 200, response.text
    assert most_running == 2
