"""A circuit breaker: stop sending work to a channel (or key) that keeps failing.

Closed while calls succeed; after `failure_threshold` failures in a row it opens for a cooldown
that doubles with each trip in a row (up to `max_cooldown_s`). When the cooldown ends the next
call goes through (half-open): a success closes it, a failure opens it again, for longer.

The thresholds are configuration; the rest (`BreakerState`) is what every process of an
instance shares (engine/breaker_store.py), so a breaker one worker trips holds in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class BreakerRef(NamedTuple):
    """Whose breaker: a channel's own (`key` empty) or one key of its pool (the key's
    reference, never the key)."""

    channel: str
    key: str = ""


@dataclass(frozen=True)
class BreakerState:
    """What a breaker remembers; the default is a closed breaker with nothing to remember."""

    consecutive_failures: int = 0
    trips_in_a_row: int = 0
    open_until: float = 0.0
    last_error: str | None = None

    @property
    def is_clear(self) -> bool:
        return self == _CLEAR


_CLEAR = BreakerState()


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    base_cooldown_s: float = 5.0
    max_cooldown_s: float = 300.0
    consecutive_failures: int = 0
    trips_in_a_row: int = 0
    open_until: float = 0.0
    last_error: str | None = None

    def allows(self, now: float) -> bool:
        return now >= self.open_until

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.trips_in_a_row = 0
        self.open_until = 0.0
        self.last_error = None

    def record_failure(self, now: float, error: str) -> bool:
        """Count a failure; True when it opened the circuit."""
        self.consecutive_failures += 1
        self.last_error = error
        if self.consecutive_failures < self.failure_threshold:
            return False
        cooldown = self.base_cooldown_s * 2**self.trips_in_a_row
        self.trip(now, min(cooldown, self.max_cooldown_s), error)
        return True

    def trip(self, now: float, cooldown_s: float, error: str) -> None:
        """Open at once (a refused key, a 429 with `Retry-After`)."""
        self.open_until = max(self.open_until, now + cooldown_s)
        self.trips_in_a_row += 1
        self.last_error = error

    @property
    def state(self) -> BreakerState:
        return BreakerState(
            self.consecutive_failures, self.trips_in_a_row, self.open_until, self.last_error
        )

    def restore(self, state: BreakerState) -> CircuitBreaker:
        """This breaker (its thresholds) in `state`."""
        self.consecutive_failures = state.consecutive_failures
        self.trips_in_a_row = state.trips_in_a_row
        self.open_until = state.open_until
        self.last_error = state.last_error
        return self
