"""The status mapper: what one sora2api SSE stream has said so far (progress, the video's
URL, a refusal, the character it created), read from its `data:` payloads."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

_CONTENT_MAX_CHARS = 64 * 1024
_PROGRESS = re.compile(r"(\d{1,3})(?:\.\d+)?\s*%")
_VIDEO_URL_PATTERNS = (
    re.compile(r"<video\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE),
    re.compile(r"\]\(([^)\s]+)\)"),
    re.compile(r"(https?://[^\s\"'<>)\]]+)"),
    re.compile(r"(?<![\w/])(/tmp/[^\s\"'<>)\]]+)"),
)
_CHARACTER_IN_CONTENT = re.compile(r"@([A-Za-z0-9_][A-Za-z0-9_.]*)")
_CHARACTER_IN_REASONING = re.compile(r"\(@([A-Za-z0-9_][A-Za-z0-9_.]*)\)")
_FAILURE_MARK = "❌"


@dataclass
class StreamJob:
    """What one sora2api stream has said so far. Owned by one task; read by `poll`."""

    key: str
    progress: int | None = None
    content: str = ""
    video_url: str | None = None
    error: str | None = None
    error_was_first_event: bool = False
    character_name: str | None = None
    events: int = 0
    done: bool = False
    broken: str | None = None
    finished: bool = False
    first_event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def feed(self, payload: str) -> None:
        """Take one SSE `data:` payload."""
        self.events += 1
        self.first_event.set()
        if payload.startswith("[DONE]"):  # also `[DONE]\n\n` with literal backslashes (CF path)
            self.done = True
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            return  # not ours to judge: keep-alives, comments
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            self._take_error(chunk["error"])
            return
        delta = _first_delta(chunk)
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str):
            self._take_reasoning(reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.content = (self.content + content)[-_CONTENT_MAX_CHARS:]
            if self.video_url is None:
                self.video_url = _video_url_in(self.content)

    def _take_error(self, error: object) -> None:
        if self.error is not None:
            return
        message = error.get("message") if isinstance(error, dict) else error
        self.error = str(message or "the upstream reported an error without a message")
        self.error_was_first_event = self.events == 1

    def _take_reasoning(self, text: str) -> None:
        found = _PROGRESS.findall(text)
        if found:
            percent = min(int(found[-1]), 100)
            self.progress = max(self.progress or 0, percent)
        named = _CHARACTER_IN_REASONING.search(text)
        if named:
            self.character_name = named.group(1).rstrip(".")

    def failure(self) -> str | None:
        """The upstream's own reason for giving up, from an error object or a ❌ answer."""
        if self.error is not None:
            return self.error
        text = self.content.strip()
        if text.startswith(_FAILURE_MARK):
            reason = re.split(r"[:\uff1a]", text, maxsplit=1)[-1].strip()
            return reason if reason not in ("", "None") else "the content was refused"
        return None

    def character_in_answer(self) -> str | None:
        named = _CHARACTER_IN_CONTENT.search(self.content)
        if named:
            return named.group(1).rstrip(".")
        return self.character_name if self.done else None


def _first_delta(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or choices[0].get("message")
        if isinstance(delta, dict):
            return delta
    return {}


def _video_url_in(content: str) -> str | None:
    for pattern in _VIDEO_URL_PATTERNS:
        found = pattern.search(content)
        if found and not found.group(1).startswith("data:"):
            return found.group(1)
    return None


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of an SSE body, one per event (multi-line data joined)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            lines.append(value.removeprefix(" "))
    if lines:
        yield "\n".join(lines)
