"""Routing: which channels may run a request, and in which order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import (
    Channel,
    ChannelError,
    ChannelProtocol,
    plan_route,
    require_served,
)
from vidrelay.domain.circuit import CircuitBreaker
from vidrelay.domain.errors import InvalidRequest
from vidrelay.domain.poll_schedule import PollSchedule


def channel(channel_name: str, **overrides: object) -> Channel:
    values: dict[str, object] = {
        "name": channel_name,
        "protocol": ChannelProtocol.OPENAI,
        "route_class": RouteClass.OFFICIAL,
        "models": ("sora-2",),
        "base_url": "http://127.0.0.1:9",
        "keys": ("sk-up-1",),
    }
    values.update(overrides)
    return Channel(**values)  # type: ignore[arg-type]


def names(plan: list[Channel]) -> list[str]:
    return [c.name for c in plan]


def test_only_channels_of_the_request_route_class_and_model_are_planned() -> None:
    channels = [
        channel("official"),
        channel("reverse", route_class=RouteClass.REVERSE),
        channel("pro-only", models=("sora-2-pro",)),
    ]
    assert names(plan_route(channels, "sora-2", RouteClass.OFFICIAL, busy={})) == ["official"]
    assert names(plan_route(channels, "sora-2", RouteClass.REVERSE, busy={})) == ["reverse"]


def test_higher_priority_tiers_come_first_whatever_the_weights() -> None:
    channels = [channel("low", priority=0, weight=1000), channel("high", priority=10)]
    for seed in range(20):
        plan = plan_route(channels, "sora-2", RouteClass.OFFICIAL, busy={}, rng=random.Random(seed))
        assert names(plan) == ["high", "low"]


def test_inside_a_tier_traffic_is_shared_by_weight() -> None:
    channels = [channel("a", weight=3), channel("b", weight=1)]
    rng = random.Random(7)
    firsts = Counter(
        plan_route(channels, "sora-2", RouteClass.OFFICIAL, busy={}, rng=rng)[0].name
        for _ in range(4000)
    )
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_full_tripped_disabled_and_tried_channels_are_skipped() -> None:
    channels = [
        channel("full", max_concurrency=2),
        channel("tripped"),
        channel("off", enabled=False),
        channel("auto-off", disabled_reason="5 failures in a row"),
        channel("tried"),
        channel("free"),
    ]
    plan = plan_route(
        channels,
        "sora-2",
        RouteClass.OFFICIAL,
        busy={"full": 2},
        unavailable={"tripped"},
        exclude={"tried"},
    )
    assert names(plan) == ["free"]


def test_a_request_no_declared_channel_serves_is_refused_naming_what_is_served() -> None:
    declared = [channel("official")]
    with pytest.raises(InvalidRequest) as refused:
        require_served(declared, "sora-2-pro", RouteClass.REVERSE)
    assert refused.value.code == "model_not_served"
    assert "sora-2-pro" in refused.value.message and "reverse" in refused.value.message
    assert "sora-2 (official route)" in refused.value.message
    require_served(declared, "sora-2", RouteClass.OFFICIAL)
    require_served([], "sora-2-pro", RouteClass.REVERSE)  # the embedded channel serves all


def test_a_channel_that_is_only_tripped_still_counts_as_serving_at_accept() -> None:
    require_served([channel("a", disabled_reason="down")], "sora-2", RouteClass.OFFICIAL)
    with pytest.raises(InvalidRequest):
        require_served([channel("a", enabled=False)], "sora-2", RouteClass.OFFICIAL)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"keys": ()}, "keys"),
        ({"models": ()}, "models"),
        ({"models": ("sora-9",)}, "models"),
        ({"weight": 0}, "weight"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"model_map": {"sora-2-pro": "x"}}, "model_map"),
        ({"name": "bad name"}, "name"),
    ],
)
def test_an_unworkable_channel_definition_names_the_field(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ChannelError, match=f"^{field}"):
        channel("c", **overrides).validate()


def test_model_map_gives_the_upstream_its_own_model_name() -> None:
    mapped = channel("c", model_map={"sora-2": "sora-2-2025-12-08"})
    assert mapped.upstream_model("sora-2") == "sora-2-2025-12-08"
    assert channel("c").upstream_model("sora-2") == "sora-2"


def test_a_breaker_opens_after_the_threshold_and_stays_open_longer_each_trip() -> None:
    breaker = CircuitBreaker(failure_threshold=3, base_cooldown_s=10)
    assert not breaker.record_failure(0, "502")
    assert not breaker.record_failure(0, "502")
    assert breaker.record_failure(0, "502")
    assert not breaker.allows(5) and breaker.allows(10)
    assert breaker.record_failure(10, "502")  # half-open trial failed: open again, longer
    assert not breaker.allows(29) and breaker.allows(30)
    breaker.record_success()
    assert breaker.allows(30) and breaker.consecutive_failures == 0


def test_polls_start_fast_slow_down_to_the_steady_interval_and_honour_hints() -> None:
    schedule = PollSchedule(first_s=2, growth=0.5, steady_s=10)
    assert schedule.delay(0) == 2
    assert schedule.delay(8) == 4
    assert schedule.delay(600) == 10
    assert schedule.delay(0, hint_s=7) == 7  # never sooner than the upstream asks
    assert schedule.delay(600, hint_s=1) == 10  # a short hint does not speed an old job up
    assert schedule.backoff(1) == 4 and schedule.backoff(20) == schedule.max_backoff_s


def test_a_sixty_second_job_costs_few_polls_and_is_seen_within_one_steady_interval() -> None:
    schedule = PollSchedule(first_s=2, growth=0.5, steady_s=10)
    elapsed, polls = 0.0, 0
    while elapsed < 60:
        elapsed += schedule.delay(elapsed)
        polls += 1
    assert polls <= 11
    assert elapsed - 60 <= schedule.steady_s
