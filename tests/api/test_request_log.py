"""Every request's lines carry its id, echoed to the client; the access line is one structured
line per request with no credential in it, and can be switched off (issue 14, part 4)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI

from tests.conftest import KeyMaker, make_settings
from vidrelay.api.context import AppContext
from vidrelay.settings import Settings

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, engine=False, log_format="json")


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The lines written so far, each of which must be a JSON object."""
    lines = capsys.readouterr().err.splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "request"]


async def test_a_sent_request_id_is_echoed_and_on_the_access_line(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = await client.get("/healthz", headers={"X-Request-Id": "client-chose-this.1"})
    assert response.headers["x-request-id"] == "client-chose-this.1"
    [line] = access_lines(logged(capsys))
    assert line["request_id"] == "client-chose-this.1"
    assert line["method"] == "GET" and line["route"] == "/healthz" and line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["level"] == "info"


@pytest.mark.parametrize(
    "sent",
    [None, "", "has space", "x" * 129, "tab\there", "caf\u00e9"],
    ids=["absent", "empty", "space", "too-long", "control", "non-ascii"],
)
async def test_a_missing_or_unusable_request_id_is_generated(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str], sent: str | None
) -> None:
    capsys.readouterr()
    headers = {} if sent is None else {"X-Request-Id": sent.encode()}
    response = await client.get("/v1/models", headers=headers)
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)
    [line] = access_lines(logged(capsys))
    assert line["request_id"] == request_id and line["status"] == 401


async def test_every_line_a_request_writes_carries_its_id(
    app: FastAPI, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    @app.get("/test-only/logs")
    async def logs_a_line() -> dict[str, str]:
        structlog.get_logger("test").warning("handler_line", detail="inside the request")
        return {}

    capsys.readouterr()
    response = await client.get("/test-only/logs", headers={"X-Request-Id": "abc"})
    assert response.status_code == 200
    lines = logged(capsys)
    assert [line["event"] for line in lines] == ["handler_line", "request"]
    assert all(line["request_id"] == "abc" for line in lines)
    structlog.get_logger("test").warning("after_the_request")  # in the task that sent it
    [after] = logged(capsys)
    assert "request_id" not in after  # the id ends with its request


async def test_the_access_line_shows_no_signature_and_no_key(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyMaker,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = await make_key()
    context: AppContext = app.state.context
    expires = int(time.time()) + 600
    signature = context.signer.signature("video_123", "video", expires)
    capsys.readouterr()
    signed = await client.get(
        f"/v1/videos/video_123/content?expires={expires}&signature={signature}&key={key}",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert signed.status_code == 404
    text = capsys.readouterr().err
    assert signature not in text and key not in text and "expires=" not in text
    [line] = access_lines([json.loads(line) for line in text.splitlines()])
    assert line["route"] == "/v1/videos/{video_id}/content" and line["status"] == 404


async def test_an_unrouted_path_is_logged_without_its_query(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    await client.get("/nowhere/at/all?token=tok-secret-value")
    [line] = access_lines(logged(capsys))
    assert line["route"] == "/nowhere/at/all" and line["status"] == 404
    assert "tok-secret-value" not in json.dumps(line)


async def test_the_access_log_can_be_switched_off(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from vidrelay.api.app import create_app

    quiet = create_app(
        make_settings(
            tmp_path / "quiet", database_url, engine=False, log_format="json", access_log=False
        )
    )
    async with quiet.router.lifespan_context(quiet):
        transport = httpx.ASGITransport(app=quiet)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            capsys.readouterr()
            response = await http.get("/healthz")
            assert response.status_code == 200 and response.headers["x-request-id"]
            assert access_lines(logged(capsys)) == []


def test_the_log_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vidrelay.settings import InvalidSettings, load_settings

    assert (load_settings().log_format, load_settings().access_log) == ("text", True)
    monkeypatch.setenv("VIDRELAY_LOG_FORMAT", "json")
    monkeypatch.setenv("VIDRELAY_ACCESS_LOG", "false")
    assert (load_settings().log_format, load_settings().access_log) == ("json", False)
    monkeypatch.setenv("VIDRELAY_LOG_FORMAT", "xml")
    with pytest.raises(InvalidSettings, match="VIDRELAY_LOG_FORMAT"):
        load_settings()
