"""A sora2api over real HTTP, speaking its wire protocol, with faults to order.

What it mirrors (TheSmallHanCat/sora2api): `src/api/routes.py` (auth by `HTTPBearer`, the last
message's `text` / `image_url` / `video_url` items, "Invalid model" answered as HTTP 500, an
exception in the stream sent as `data: {"error": {...}}` then `data: [DONE]`) and
`src/services/generation_handler.py` (MODEL_CONFIG, `_format_stream_chunk`, the progress lines,
the final "```html\\n<video src='URL' controls></video>\\n```" content, the "❌ 生成失败: reason"
answer for a refused draft, the character-only flow answering "角色创建成功…角色名@username").
The `avatar-create` model of newer releases, which refuse a video on a video model, is switched
on with `avatar_create_model=True`.

Run it with `ThreadedServer(fake.app)`; set `fake.faults` per test (`reset()` restores them)
and read what it received from `fake.requests`, `fake.generations` and `fake.character_videos`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.media import tiny_mp4

# The rows of sora2api's MODEL_CONFIG (generation_handler.py): name -> orientation, n_frames,
# Sora's model and size. The image and prompt-enhance rows are listed so `/v1/models` looks real.
VIDEO_MODEL_CONFIG: dict[str, dict[str, Any]] = {
    "sora2-landscape-10s": {"orientation": "landscape", "n_frames": 300},
    "sora2-portrait-10s": {"orientation": "portrait", "n_frames": 300},
    "sora2-landscape-15s": {"orientation": "landscape", "n_frames": 450},
    "sora2-portrait-15s": {"orientation": "portrait", "n_frames": 450},
    "sora2-landscape-25s": {"orientation": "landscape", "n_frames": 750, "model": "sy_8"},
    "sora2-portrait-25s": {"orientation": "portrait", "n_frames": 750, "model": "sy_8"},
    "sora2pro-landscape-10s": {"orientation": "landscape", "n_frames": 300, "model": "sy_ore"},
    "sora2pro-portrait-10s": {"orientation": "portrait", "n_frames": 300, "model": "sy_ore"},
    "sora2pro-landscape-15s": {"orientation": "landscape", "n_frames": 450, "model": "sy_ore"},
    "sora2pro-portrait-15s": {"orientation": "portrait", "n_frames": 450, "model": "sy_ore"},
    "sora2pro-landscape-25s": {"orientation": "landscape", "n_frames": 750, "model": "sy_ore"},
    "sora2pro-portrait-25s": {"orientation": "portrait", "n_frames": 750, "model": "sy_ore"},
    "sora2pro-hd-landscape-10s": {"orientation": "landscape", "n_frames": 300, "size": "large"},
    "sora2pro-hd-portrait-10s": {"orientation": "portrait", "n_frames": 300, "size": "large"},
    "sora2pro-hd-landscape-15s": {"orientation": "landscape", "n_frames": 450, "size": "large"},
    "sora2pro-hd-portrait-15s": {"orientation": "portrait", "n_frames": 450, "size": "large"},
}
OTHER_MODELS: dict[str, str] = {
    "gpt-image": "image",
    "gpt-image-landscape": "image",
    "gpt-image-portrait": "image",
    "prompt-enhance-short-10s": "prompt_enhance",
}
AVATAR_CREATE_MODEL = "avatar-create"
DEFAULT_KEY = "han1234"
CHARACTER_VIDEO_PATH = "/samples/character.mp4"
# "Character created, its name @" (with a full-width comma), before the username.
CHARACTER_CREATED = "角色创建成功\uff0c角色名@"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The parsed JSON body, or None."""
    key: str | None
    """The bearer token sent, or None."""

    def content_items(self) -> list[dict[str, Any]]:
        content = self.body["messages"][-1]["content"]
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    def item(self, kind: str) -> dict[str, Any] | None:
        return next((item for item in self.content_items() if item.get("type") == kind), None)

    @property
    def prompt(self) -> str:
        text = self.item("text")
        return "" if text is None else str(text.get("text", ""))


@dataclass(frozen=True)
class Generation:
    """A video the fake "made": the model and the full prompt Sora would have received."""

    model: str
    prompt: str
    had_image: bool
    video_name: str


@dataclass
class Faults:
    submit_status: int | None = None
    """Answer POST /v1/chat/completions with this status (e.g. 500, 429) and an error body."""
    retry_after: str | None = None
    """The `Retry-After` header sent with `submit_status`."""
    submit_error_message: str = "the upstream had an internal error"
    hang_before_headers_s: float = 0.0
    """Say nothing for this long (or until the client goes away) before answering."""
    chunk_delay_s: float = 0.0
    """Pause before each progress chunk (a slow stream)."""
    progress_steps: tuple[int, ...] = (0, 35, 70)
    reset_after_chunks: int | None = None
    """Drop the connection after sending this many SSE events (no terminating chunk)."""
    error_at_start: str | None = None
    """An error object as the very first event (e.g. "No available tokens ...")."""
    error_message: str | None = None
    """An error object after the progress chunks (e.g. a content-policy exception)."""
    violation_reason: str | None = None
    """A refused draft: the final content is "❌ 生成失败: {reason}"."""
    end_without_url: bool = False
    """Send `data: [DONE]` where the video should be."""
    eof_without_done: bool = False
    """Just end the body where the video should be: no content, no [DONE]."""
    video_missing_times: int = 0
    """The video file answers 404 this many times before it is served."""
    video_break_after_bytes: int | None = None
    """Drop the video download's connection after this many bytes."""
    video_url_style: str = "absolute"
    """"absolute" (cache_base_url), "relative" (/tmp/...) or "unspecified" (0.0.0.0 host)."""
    video_base_url: str | None = None
    """Put videos on another host (a CDN) instead of this one."""
    serve_any_video: bool = False
    """Serve the sample MP4 for every /tmp/ name (when this fake plays the CDN)."""
    character_failure: str | None = None
    """Character creation fails with "角色创建失败: {this}"."""
    character_username: str = "meowliusma68123"


class FakeSora2Api:
    """The fake upstream; `faults` holds the fault modes, `reset()` clears them and the records."""

    def __init__(self, api_key: str = DEFAULT_KEY, *, avatar_create_model: bool = False) -> None:
        self.api_key = api_key
        self.avatar_create_model = avatar_create_model
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.generations: list[Generation] = []
        self.character_videos: list[bytes] = []
        self.streams_closed_early = 0
        self._videos: set[str] = set()
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/tmp/{name}", self._video_file, methods=["GET"]),
                Route(CHARACTER_VIDEO_PATH, self._character_sample, methods=["GET"]),
            ]
        )

    def reset(self, *, avatar_create_model: bool = False) -> None:
        with self._lock:
            self.faults = Faults()
            self.avatar_create_model = avatar_create_model
            self.requests.clear()
            self.generations.clear()
            self.character_videos.clear()
            self.streams_closed_early = 0

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def model_ids(self) -> list[str]:
        ids = [*VIDEO_MODEL_CONFIG, *OTHER_MODELS]
        return [*ids, AVATAR_CREATE_MODEL] if self.avatar_create_model else ids

    # --- routes -------------------------------------------------------------------------------

    async def _chat_completions(self, request: Request) -> Response:
        body = await self._record(request)
        refusal = self._auth_refusal(request)
        if refusal is not None:
            return refusal
        deadline = time.monotonic() + self.faults.hang_before_headers_s
        while time.monotonic() < deadline and not await request.is_disconnected():
            await asyncio.sleep(0.02)
        if self.faults.submit_status is not None:
            headers = {"retry-after": self.faults.retry_after} if self.faults.retry_after else {}
            return JSONResponse(
                _error_object(self.faults.submit_error_message),
                status_code=self.faults.submit_status,
                headers=headers,
            )
        model = str(body.get("model", ""))
        if model not in self.model_ids():  # routes.py: HTTPException(400) caught -> 500
            return JSONResponse(_error_object(f"400: Invalid model: {model}"), status_code=500)
        prompt, image, video = _parse_content(body["messages"][-1]["content"])
        if not body.get("stream"):
            return JSONResponse(_availability_answer())
        if model == AVATAR_CREATE_MODEL:
            events = self._character_only(video) if video else self._error_stream("需要视频")
        elif video and self.avatar_create_model:
            events = self._error_stream("视频输入请改用 avatar-create 模型")
        elif video and not prompt:
            events = self._character_only(video)
        else:
            events = self._generation(request, model, prompt, image is not None)
        return StreamingResponse(
            self._guarded(events),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        refusal = self._auth_refusal(request)
        if refusal is not None:
            return refusal
        data = [
            {"id": name, "object": "model", "owned_by": "sora2api", "description": "Video"}
            for name in self.model_ids()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _video_file(self, request: Request) -> Response:
        await self._record(request)
        name = request.path_params["name"]
        with self._lock:
            if self.faults.video_missing_times > 0:
                self.faults.video_missing_times -= 1
                return Response("Not Found", status_code=404)
            known = name in self._videos or self.faults.serve_any_video
        if not known:
            return Response("Not Found", status_code=404)
        cut = self.faults.video_break_after_bytes
        if cut is not None:
            return StreamingResponse(_broken_body(tiny_mp4()[:cut]), media_type="video/mp4")
        return Response(tiny_mp4(), media_type="video/mp4")

    async def _character_sample(self, request: Request) -> Response:
        await self._record(request)
        return Response(tiny_mp4(), media_type="video/mp4")

    # --- streams ------------------------------------------------------------------------------

    async def _guarded(self, events: AsyncIterator[str]) -> AsyncIterator[str]:
        """Counts streams the client closed early; drops the connection on order."""
        sent = 0
        finished = False
        try:
            async for event in events:
                limit = self.faults.reset_after_chunks
                if limit is not None and sent >= limit:
                    raise ConnectionResetError("fake sora2api: connection reset on order")
                yield event
                sent += 1
            finished = True
        finally:
            if not finished:
                with self._lock:
                    self.streams_closed_early += 1

    async def _generation(
        self, request: Request, model: str, prompt: str, had_image: bool
    ) -> AsyncIterator[str]:
        faults = self.faults
        if faults.error_at_start is not None:
            async for event in self._error_stream(faults.error_at_start):
                yield event
            return
        first = True
        if had_image:
            yield _chunk(reasoning="**Image Upload Begins**\n\nUploading image...\n", first=True)
            first = False
        yield _chunk(
            reasoning="**Generation Process Begins**\n\nInitializing generation request...\n",
            first=first,
        )
        for percent in faults.progress_steps:
            await asyncio.sleep(faults.chunk_delay_s)
            yield _chunk(reasoning=f"**Video Generation Progress**: {percent}% (running)\n")
        await asyncio.sleep(faults.chunk_delay_s)
        if faults.error_message is not None:
            async for event in self._error_stream(faults.error_message):
                yield event
            return
        if faults.violation_reason is not None:
            reason = faults.violation_reason
            yield _chunk(reasoning=f"**Content Policy Violation**\n\n{reason}\n")
            yield _chunk(content=f"❌ 生成失败: {reason}", finish_reason="STOP")
            yield "data: [DONE]\n\n"
            return
        if faults.end_without_url:
            yield "data: [DONE]\n\n"
            return
        if faults.eof_without_done:
            return
        name = f"{secrets.token_hex(16)}.mp4"
        with self._lock:
            self._videos.add(name)
            self.generations.append(Generation(model, prompt, had_image, name))
        yield _chunk(reasoning="**Video Generation Completed**\n\nCaching the video file...\n")
        url = self._video_url(request, name)
        yield _chunk(
            content=f"```html\n<video src='{url}' controls></video>\n```", finish_reason="STOP"
        )
        yield "data: [DONE]\n\n"

    async def _character_only(self, video: str) -> AsyncIterator[str]:
        yield _chunk(
            reasoning="**Character Creation Begins**\n\nInitializing character creation...\n",
            first=True,
        )
        with self._lock:
            self.character_videos.append(_decode_video(video))
        yield _chunk(reasoning="Uploading video file...\n")
        yield _chunk(reasoning="Processing video to extract character...\n")
        if self.faults.character_failure is not None:
            async for event in self._error_stream(f"角色创建失败: {self.faults.character_failure}"):
                yield event
            return
        username = self.faults.character_username
        yield _chunk(reasoning=f"✨ 角色已识别: Meow (@{username})\n")
        for step in ("Downloading character avatar", "Uploading character avatar"):
            yield _chunk(reasoning=f"{step}...\n")
        yield _chunk(reasoning="Finalizing character creation...\n")
        yield _chunk(reasoning="Setting character as public...\n")
        yield _chunk(content=f"{CHARACTER_CREATED}{username}", finish_reason="STOP")
        yield "data: [DONE]\n\n"

    async def _error_stream(self, message: str) -> AsyncIterator[str]:
        """routes.py's `except Exception` inside `generate()`."""
        yield f"data: {json.dumps(_error_object(message))}\n\n"
        yield "data: [DONE]\n\n"

    def _video_url(self, request: Request, name: str) -> str:
        style = self.faults.video_url_style
        if self.faults.video_base_url is not None:
            return f"{self.faults.video_base_url.rstrip('/')}/tmp/{name}"
        if style == "relative":
            return f"/tmp/{name}"
        if style == "unspecified":
            return f"http://0.0.0.0:{request.url.port}/tmp/{name}"
        return f"{str(request.base_url).rstrip('/')}/tmp/{name}"

    # --- helpers ------------------------------------------------------------------------------

    async def _record(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        authorization = request.headers.get("authorization", "")
        key = authorization[7:] if authorization.lower().startswith("bearer ") else None
        with self._lock:
            self.requests.append(
                RecordedRequest(request.method, request.url.path, dict(request.headers), body, key)
            )
        return body if isinstance(body, dict) else {}

    def _auth_refusal(self, request: Request) -> Response | None:
        """FastAPI's HTTPBearer, then sora2api's `verify_api_key_header`."""
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer "):
            return JSONResponse({"detail": "Not authenticated"}, status_code=403)
        if authorization[7:] != self.api_key:
            return JSONResponse({"detail": "Invalid API key"}, status_code=401)
        return None


def _parse_content(content: Any) -> tuple[str, str | None, str | None]:
    """routes.py: the prompt, the image (base64) and the video (base64 or URL) of a message."""
    if isinstance(content, str):
        return content, None, None
    prompt, image, video = "", None, None
    for item in content:
        if item.get("type") == "text":
            prompt = item.get("text", "")
        elif item.get("type") == "image_url":
            url = item.get("image_url", {}).get("url", "")
            if url.startswith("data:image"):
                image = url.split("base64,", 1)[1] if "base64," in url else url
        elif item.get("type") == "video_url":
            url = item.get("video_url", {}).get("url", "")
            if url.startswith(("data:video", "data:application")):
                video = url.split("base64,", 1)[1] if "base64," in url else url
            else:
                video = url
    return prompt, image, video


async def _broken_body(head: bytes) -> AsyncIterator[bytes]:
    yield head
    raise ConnectionResetError("fake sora2api: download cut on order")


def _decode_video(video: str) -> bytes:
    if video.startswith("http"):
        return video.encode()
    return base64.b64decode(video.split(",", 1)[1] if "," in video else video)


def _chunk(
    *,
    content: str | None = None,
    reasoning: str | None = None,
    finish_reason: str | None = None,
    first: bool = False,
) -> str:
    """generation_handler.py's `_format_stream_chunk`."""
    delta: dict[str, Any] = {"role": "assistant"} if first else {}
    delta.update(content=content, reasoning_content=reasoning, tool_calls=None)
    usage: dict[str, int] = {"prompt_tokens": 0}
    if finish_reason:
        usage.update(completion_tokens=1, total_tokens=1)
    chunk = {
        "id": f"chatcmpl-{int(time.time() * 1000)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "sora",
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "finish_reason": finish_reason,
                "native_finish_reason": finish_reason,
            }
        ],
        "usage": usage,
    }
    return f"data: {json.dumps(chunk)}\n\n"


def _error_object(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


def _availability_answer() -> dict[str, Any]:
    message = (
        "All tokens available for video generation. "
        "Please enable streaming to use the generation feature."
    )
    return {
        "id": f"chatcmpl-{time.time()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "sora",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": message},
                "finish_reason": "stop",
            }
        ],
    }


__all__ = [
    "AVATAR_CREATE_MODEL",
    "CHARACTER_VIDEO_PATH",
    "DEFAULT_KEY",
    "VIDEO_MODEL_CONFIG",
    "FakeSora2Api",
    "Faults",
    "Generation",
    "RecordedRequest",
    "tiny_mp4",
]
