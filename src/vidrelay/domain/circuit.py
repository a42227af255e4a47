"""A circuit breaker: stop sending work to a channel (or key) that keeps failing.

Closed while calls succeed; after `failure_threshold` failures in a row it opens for a cooldown
that doubles with each trip in a row (up to `max_cooldown_s`). When the cooldown ends the next
call goes through (half-open): a success closes it, a failure opens it again, for longer.
"""

from __future__ import annotations

from dataclasses import dataclass


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
