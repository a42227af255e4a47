"""Upstream error text made fit for a client: no upstream URL, host, job id or key in it."""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
_BEARER = re.compile(r"\b(?:sk|key|token)-[A-Za-z0-9_\-]{6,}", re.IGNORECASE)
_MAX_LENGTH = 500


def key_hint(key: str) -> str:
    """A key as operators may see it: its first 5 and last 4 characters. Of a key pair
    (`ACCESS_KEY:SECRET_KEY`, as Kling's) only the access key's ends show."""
    key = key.split(":", 1)[0]
    if len(key) <= 12:
        return "…" + key[-2:]
    return f"{key[:5]}…{key[-4:]}"


def key_pair(key: str) -> tuple[str, str] | None:
    """(access key, secret key) of a credential written `ACCESS_KEY:SECRET_KEY`; None for a
    plain key."""
    access, sep, secret = key.partition(":")
    return (access, secret) if sep and access and secret else None


def key_secrets(key: str) -> list[str]:
    """Every form of a credential that must never reach a client: itself, and each half of a
    key pair."""
    pair = key_pair(key)
    return [key, *pair] if pair else [key]


def clean_upstream_message(message: str, secrets: Iterable[str] = ()) -> str:
    """Strip URLs, key-like tokens and the given secrets (hosts, upstream ids, keys)."""
    text = _URL.sub("[url]", message)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    text = _BEARER.sub("[redacted]", text)
    text = " ".join(text.split())
    if len(text) > _MAX_LENGTH:
        text = text[: _MAX_LENGTH - 1] + "…"
    return text or "The upstream refused the request."
