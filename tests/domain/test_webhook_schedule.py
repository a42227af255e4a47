"""The retry schedule of webhook deliveries."""

from __future__ import annotations

import itertools

from vidrelay.domain.webhooks import MAX_ATTEMPTS, retry_delay_s


def test_at_least_eight_attempts_spread_over_about_a_day_doubling_from_the_base() -> None:
    delays = [retry_delay_s(attempt, 30) for attempt in range(1, MAX_ATTEMPTS)]
    assert MAX_ATTEMPTS >= 8
    assert delays[:4] == [30, 60, 120, 240]
    assert all(later == 2 * earlier for earlier, later in itertools.pairwise(delays))
    span_hours = sum(delays) / 3600
    assert 12 <= span_hours <= 36


def test_retry_after_is_honoured_but_capped_by_the_longest_scheduled_delay() -> None:
    assert retry_delay_s(1, 30, retry_after_s=90) == 90
    assert retry_delay_s(1, 30, retry_after_s=5) == 30  # never sooner than the schedule
    longest = retry_delay_s(MAX_ATTEMPTS - 1, 30)
    assert retry_delay_s(2, 30, retry_after_s=10**9) == longest
