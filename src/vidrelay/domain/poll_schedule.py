"""When to ask an upstream about a job next: often while it is young, rarely once it is old.

Video jobs take from seconds to many minutes. Polling at a fixed fast rate wastes upstream
requests (and quota) on long jobs; a fixed slow rate makes short jobs finish late. The delay
grows with the job's age up to `steady_s`, so a job's completion is seen at most one steady
interval late while the requests per job stay few. An upstream's own hint (`Retry-After`,
`openai-poll-after-ms`) is a floor: vidrelay never polls sooner than asked.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAX_HINT_S = 300.0


@dataclass(frozen=True)
class PollSchedule:
    first_s: float = 2.0
    growth: float = 0.5
    """The delay is this fraction of the job's age, between `first_s` and `steady_s`."""
    steady_s: float = 10.0
    max_backoff_s: float = 60.0

    def delay(self, age_s: float, hint_s: float | None = None) -> float:
        delay = min(self.steady_s, max(self.first_s, age_s * self.growth))
        if hint_s is not None and hint_s > 0:
            delay = max(delay, min(hint_s, _MAX_HINT_S))
        return delay

    def backoff(self, errors_in_a_row: int, hint_s: float | None = None) -> float:
        """After a failed poll (an upstream 5xx, 429 or timeout): back off, doubling."""
        delay: float = min(self.max_backoff_s, self.first_s * 2.0 ** min(errors_in_a_row, 10))
        if hint_s is not None and hint_s > 0:
            delay = max(delay, min(hint_s, _MAX_HINT_S))
        return delay


LOCAL_SCHEDULE = PollSchedule(first_s=0.25, growth=0.0, steady_s=0.5, max_backoff_s=5.0)
"""The built-in renderer runs in-process: asking costs nothing, so ask often."""
