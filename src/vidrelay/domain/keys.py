"""API keys: how they look and how they are stored (hashed, never in clear)."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(36)


def hash_api_key(key: str) -> str:
    """SHA-256 is enough here: keys are 288 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """What an operator may see of a key: its prefix and last four characters."""
    return f"{key[:6]}…{key[-4:]}"


def new_key_id() -> str:
    return "key_" + secrets.token_hex(12)


def new_tenant_id() -> str:
    return "ten_" + secrets.token_hex(12)
