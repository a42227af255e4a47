"""How a use case tells this process's engine about its change at once.

Every process finds a change through the database (channels and breakers on their refresh,
jobs and deliveries on their next poll); a process that runs an engine is also told right away,
through these callbacks, so that the operator's click takes effect on it without waiting. The
entrypoints pass them along and never touch the engine themselves. The CLI has none to tell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Wakeups:
    channels: Callable[[], None] = _nothing
    """A channel was declared, changed, switched or deleted, or its breakers were reset."""
    models: Callable[[], None] = _nothing
    """The catalog changed."""
    jobs: Callable[[], None] = _nothing
    """A job was accepted."""
    deliveries: Callable[[], None] = _nothing
    """A webhook delivery is due."""


NOBODY = Wakeups()
