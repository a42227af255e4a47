"""Per-key and per-tenant caps an operator may set. None means no limit (the default)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LIMIT = 1_000_000
"""The largest rpm or max_in_flight an operator may set."""


@dataclass(frozen=True)
class Limits:
    rpm: int | None = None
    """Create requests per minute."""
    max_in_flight: int | None = None
    """Jobs queued or in progress at once."""
