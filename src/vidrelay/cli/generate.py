"""`vidrelay generate`: create a video on a running server, follow it, save it.

A video is paid for when it is accepted, so nothing after that may lose it for the user: the id
is printed first; a server that restarts (or a network that drops) while the job runs is waited
for with backoff; Ctrl-C leaves the job running and says how to collect it
(`--resume ID`), which follows an existing job instead of creating one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from vidrelay.cli.common import cli_settings, err

_FIRST_RETRY_S = 0.5
_MAX_RETRY_S = 10.0
_UNREACHABLE_FOR_S = 600.0
"""How long a server may stay unreachable (a restart, an upgrade) before generate gives up."""
_TRANSIENT = {502, 503, 504}
T = TypeVar("T")


class _Transient(Exception):
    """The server answered that it is briefly unable to (a proxy in front of a restart)."""


class _GaveUp(Exception):
    """The server stayed unreachable: the job goes on there; the user can resume later."""


def generate(
    prompt: Annotated[
        str | None, typer.Argument(help="What the video shows (not with --resume).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="The model; the server's default if omitted.")
    ] = None,
    seconds: Annotated[
        str | None, typer.Option(help="Length; the model's default if omitted.")
    ] = None,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "720x1280",
    input_reference: Annotated[
        Path | None, typer.Option(help="A JPEG, PNG or WebP image to start from.", exists=True)
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Where to save the MP4.")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Follow and save a video created earlier (its id) instead of creating one."
        ),
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="Overrides VIDRELAY_API_KEY.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Overrides VIDRELAY_BASE_URL.")] = None,
) -> None:
    """Create a video on a running server, follow its progress, and download it."""
    settings = cli_settings()
    key = api_key or settings.api_key
    if not key:
        err.print(
            "[red]error:[/red] set VIDRELAY_API_KEY (or --api-key) "
            "to a key from `vidrelay keys create`"
        )
        raise typer.Exit(2)
    if (prompt is None) == (resume is None):
        err.print("[red]error:[/red] give a PROMPT to create a video, or --resume ID, not both")
        raise typer.Exit(2)
    root = (base_url or settings.base_url).rstrip("/")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=root, headers=headers, timeout=60) as client:
        if resume is None:
            assert prompt is not None
            video = _create(client, root, prompt, model, seconds, size, input_reference)
            err.print(f"{video['id']} accepted; it is charged and runs on the server")
        else:
            video = {"id": resume, "status": "queued"}
        target = output or Path(f"{video['id']}.mp4")
        try:
            if resume is not None:
                video = _checked(_request(client, "GET", f"/v1/videos/{resume}", root))
            video = _follow(client, video, root)
            if video["status"] != "completed":
                failure = video.get("error") or {}
                err.print(f"[red]failed:[/red] {failure.get('message', 'the video failed')}")
                raise typer.Exit(1)
            _download(client, video["id"], target, root)
        except (KeyboardInterrupt, _GaveUp) as stop:
            if isinstance(stop, _GaveUp):
                err.print(f"[red]error:[/red] {stop}")
            err.print(
                f"{video['id']} goes on on the server and stays charged; fetch it later with:\n"
                f"  vidrelay generate --resume {video['id']} -o {target}"
            )
            raise typer.Exit(130 if isinstance(stop, KeyboardInterrupt) else 1) from None
    typer.echo(f"{video['id']} saved to {target}")


def _create(
    client: httpx.Client,
    root: str,
    prompt: str,
    model: str | None,
    seconds: str | None,
    size: str,
    input_reference: Path | None,
) -> dict[str, Any]:
    """One attempt only: a create that may have reached the server is never sent twice."""
    fields = {"prompt": prompt, "size": size, "model": model, "seconds": seconds}
    data = {name: value for name, value in fields.items() if value is not None}
    files: dict[str, Any] | None = None
    if input_reference is not None:
        files = {"input_reference": (input_reference.name, input_reference.read_bytes())}
    try:
        return _checked(client.post("/v1/videos", data=data, files=files))
    except httpx.HTTPError as error:
        err.print(f"[red]error:[/red] cannot reach {root}: {error}")
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        err.print(
            "interrupted before the server answered: the video may have been created (and "
            "charged) all the same; `GET /v1/videos` with this key lists it"
        )
        raise typer.Exit(130) from None


def _request(client: httpx.Client, method: str, path: str, root: str) -> httpx.Response:
    """A read, retried with backoff while the server is unreachable or restarting."""

    def attempt() -> httpx.Response:
        response = client.request(method, path)
        _raise_if_transient(response)
        return response

    return _retried(attempt, root)


def _retried(attempt: Callable[[], T], root: str) -> T:
    delay = _FIRST_RETRY_S
    deadline = time.monotonic() + _UNREACHABLE_FOR_S
    while True:
        try:
            return attempt()
        except httpx.TransportError as error:
            problem = f"cannot reach {root} ({type(error).__name__})"
        except _Transient as transient:
            problem = str(transient)
        if time.monotonic() + delay > deadline:
            raise _GaveUp(f"{problem} for {_UNREACHABLE_FOR_S:g} s")
        err.print(f"{problem}; trying again in {delay:g} s")
        time.sleep(delay)
        delay = min(delay * 2, _MAX_RETRY_S)


def _raise_if_transient(response: httpx.Response) -> None:
    if response.status_code in _TRANSIENT:
        raise _Transient(f"the server answered {response.status_code}")


def _follow(client: httpx.Client, video: dict[str, Any], root: str) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        task = progress.add_task(f"{video['id'][:18]}… {video['status']}", total=100)
        while video["status"] not in ("completed", "failed"):
            progress.update(task, completed=video.get("progress", 0), description=video["status"])
            response = _request(client, "GET", f"/v1/videos/{video['id']}", root)
            video = _checked(response)
            delay_ms = int(response.headers.get("openai-poll-after-ms", "1000"))
            if video["status"] not in ("completed", "failed"):
                time.sleep(delay_ms / 1000)
        progress.update(task, completed=video.get("progress", 100), description=video["status"])
    return video


def _download(client: httpx.Client, video_id: str, target: Path, root: str) -> None:
    """Streamed to a temporary file renamed at the end: an interrupted download leaves no
    truncated MP4 under the user's name; a dropped connection starts it again."""
    partial = target.with_name(f".{target.name}.partial")

    def attempt() -> None:
        with client.stream("GET", f"/v1/videos/{video_id}/content") as response:
            _raise_if_transient(response)
            if response.status_code != 200:
                response.read()
                _checked(response)
            with partial.open("wb") as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
        partial.replace(target)

    try:
        _retried(attempt, root)
    finally:
        partial.unlink(missing_ok=True)


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        err.print(f"[red]error {response.status_code}:[/red] {message}")
        raise typer.Exit(1)
    body: dict[str, Any] = response.json()
    return body
