"""Bad input on `POST /v1/videos` gets a clear OpenAI-style 4xx naming the parameter, never a
500, and charges nothing."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.conftest import KeyMaker, tenant_balance_usd


def png_bytes(size: tuple[int, int] = (64, 48), colour: str = "orange", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def assert_openai_error(response: httpx.Response, status: int, param: str | None) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param
    return error  # type: ignore[no-any-return]


@pytest.fixture
async def key(make_key: KeyMaker) -> str:
    return await make_key("alice", "50")


async def post_form(
    client: httpx.AsyncClient,
    key: str,
    data: dict[str, str],
    files: dict | None = None,  # type: ignore[type-arg]
) -> httpx.Response:
    files = files or {"_": (None, "")}  # force multipart, as the SDKs always send
    return await client.post(
        "/v1/videos", data=data, files=files, headers={"Authorization": f"Bearer {key}"}
    )


BAD_FORMS = [
    ({"prompt": ""}, "prompt"),
    ({"model": "sora-2"}, "prompt"),
    ({"prompt": "x" * 32001}, "prompt"),
    ({"prompt": "boat", "seconds": "5"}, "seconds"),
    ({"prompt": "boat", "seconds": "twelve"}, "seconds"),
    ({"prompt": "boat", "model": "sora-2-pro", "seconds": "8"}, "seconds"),
    ({"prompt": "boat", "size": "1920x1080"}, "size"),
    ({"prompt": "boat", "size": "720"}, "size"),
    ({"prompt": "boat", "seconds": "8", "character_url": "https://c.example/a.mp4"}, "seconds"),
    ({"prompt": "boat", "character_url": "javascript:alert(1)"}, "character_url"),
    ({"prompt": "boat", "character_url": "/relative.mp4"}, "character_url"),
    ({"prompt": "boat", "character_timestamps": "1,2"}, "character_timestamps"),
    (
        {
            "prompt": "boat",
            "character_url": "https://c.example/a.mp4",
            "character_timestamps": "0,4",
        },
        "character_timestamps",
    ),
    (
        {
            "prompt": "boat",
            "character_url": "https://c.example/a.mp4",
            "character_timestamps": "two,three",
        },
        "character_timestamps",
    ),
    ({"prompt": "boat", "callback_url": "not-a-url"}, "callback_url"),
    ({"prompt": "boat", "callback_url": "ftp://hooks.example/x"}, "callback_url"),
]


@pytest.mark.parametrize(("data", "param"), BAD_FORMS)
async def test_each_bad_parameter_is_a_400_naming_it_and_charges_nothing(
    app: FastAPI, client: httpx.AsyncClient, key: str, data: dict[str, str], param: str
) -> None:
    response = await post_form(client, key, data)
    error = assert_openai_error(response, 400, param)
    assert error["type"] == "invalid_request_error"
    balance, ledger = await tenant_balance_usd(app, "alice")
    assert balance == ledger == 50_000_000


@pytest.mark.parametrize("model", ["sora-3", "dall-e-3"])
async def test_unknown_model_is_model_not_found(
    client: httpx.AsyncClient, key: str, model: str
) -> None:
    response = await post_form(client, key, {"prompt": "boat", "model": model})
    error = assert_openai_error(response, 400, "model")
    assert error["code"] == "model_not_found"
    assert "sora-2" in error["message"]


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 100, "decoded"),
        (b"GIF89a" + b"\x00" * 100, "decoded"),
    ],
)
async def test_a_broken_reference_image_is_a_400(
    client: httpx.AsyncClient, key: str, payload: bytes, why: str
) -> None:
    response = await post_form(
        client, key, {"prompt": "boat"}, {"input_reference": ("ref.png", payload, "image/png")}
    )
    error = assert_openai_error(response, 400, "input_reference")
    assert why in error["message"]


async def test_a_gif_reference_is_refused_naming_the_allowed_formats(
    client: httpx.AsyncClient, key: str
) -> None:
    gif = png_bytes(fmt="GIF")
    response = await post_form(
        client, key, {"prompt": "boat"}, {"input_reference": ("ref.gif", gif, "image/gif")}
    )
    error = assert_openai_error(response, 400, "input_reference")
    assert "JPEG, PNG, WebP" in error["message"]


async def test_a_25_mb_upload_is_a_400_naming_the_limit(
    app: FastAPI, client: httpx.AsyncClient, key: str
) -> None:
    big = b"\xff\xd8\xff" + b"\x00" * (25 * 1024 * 1024)
    response = await post_form(
        client, key, {"prompt": "boat"}, {"input_reference": ("big.jpg", big, "image/jpeg")}
    )
    error = assert_openai_error(response, 400, "input_reference")
    assert "20 MB" in error["message"]
    assert (await tenant_balance_usd(app, "alice"))[0] == 50_000_000


async def test_a_body_over_the_server_limit_is_a_413(client: httpx.AsyncClient, key: str) -> None:
    huge = b"\x00" * (30 * 1024 * 1024)
    response = await post_form(
        client, key, {"prompt": "boat"}, {"input_reference": ("huge.jpg", huge, "image/jpeg")}
    )
    assert_openai_error(response, 413, None)


async def test_malformed_multipart_is_a_400(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        "/v1/videos",
        content=b'--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nboat',
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "multipart/form-data; boundary=xyz",
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_multipart_without_boundary_is_a_400(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        "/v1/videos",
        content=b"prompt=boat",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data"},
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
async def test_a_wrong_content_type_is_a_415(
    client: httpx.AsyncClient, key: str, content_type: str | None
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post("/v1/videos", content=b"prompt=boat", headers=headers)
    error = assert_openai_error(response, 415, None)
    assert "multipart/form-data" in error["message"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"prompt"', b'{"prompt": 42}', b'{"prompt": "x", "size": 720}'],
)
async def test_bad_json_bodies_are_400s(client: httpx.AsyncClient, key: str, body: bytes) -> None:
    response = await client.post(
        "/v1/videos",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_json_with_integer_seconds_and_a_data_url_reference_is_accepted(
    client: httpx.AsyncClient, key: str
) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    response = await client.post(
        "/v1/videos",
        json={"prompt": "boat", "seconds": 8, "input_reference": {"image_url": data_url}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["seconds"] == "8"


async def test_bracketed_multipart_image_url_is_accepted(
    client: httpx.AsyncClient, key: str
) -> None:
    data_url = "data:image/webp;base64," + base64.b64encode(png_bytes(fmt="WEBP")).decode()
    response = await post_form(
        client, key, {"prompt": "boat", "input_reference[image_url]": data_url}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "image_url",
    ["data:image/png;base64,!!!notbase64", "data:image/png,rawtext", "data:image/png;base64,"],
)
async def test_a_bad_data_url_is_a_400(client: httpx.AsyncClient, key: str, image_url: str) -> None:
    response = await post_form(
        client, key, {"prompt": "b", "input_reference[image_url]": image_url}
    )
    assert_openai_error(response, 400, "input_reference")


async def test_a_private_image_url_is_refused(client: httpx.AsyncClient, key: str) -> None:
    response = await post_form(
        client, key, {"prompt": "b", "input_reference[image_url]": "http://127.0.0.1:9/x.png"}
    )
    assert_openai_error(response, 400, "input_reference")


async def test_a_file_id_reference_is_a_clear_400(client: httpx.AsyncClient, key: str) -> None:
    response = await post_form(client, key, {"prompt": "b", "input_reference[file_id]": "file-1"})
    error = assert_openai_error(response, 400, "input_reference")
    assert "file_id" in error["message"]
