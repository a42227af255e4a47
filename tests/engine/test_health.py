"""Channel and key health: which key the next call uses, and when a channel is given up on."""

from __future__ import annotations

from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.engine.health import ChannelHealth, key_ref
from vidrelay.upstreams.base import FailureKind, UpstreamError

CHANNEL = Channel(
    name="vendor",
    protocol=ChannelProtocol.OPENAI,
    route_class=RouteClass.OFFICIAL,
    models=("sora-2",),
    base_url="http://upstream.test",
    keys=("sk-up-1", "sk-up-2", "sk-up-3"),
)


def error(kind: FailureKind, retry_after_s: float | None = None) -> UpstreamError:
    return UpstreamError("boom", kind=kind, retry_after_s=retry_after_s)


def test_keys_take_turns() -> None:
    health = ChannelHealth()
    assert [health.pick_key(CHANNEL) for _ in range(4)] == [
        "sk-up-1",
        "sk-up-2",
        "sk-up-3",
        "sk-up-1",
    ]


def test_a_refused_key_is_benched_and_the_others_carry_on() -> None:
    health = ChannelHealth()
    verdict = health.record_failure(CHANNEL, "sk-up-2", error(FailureKind.AUTH))
    assert verdict.disable_reason is None
    picked = {health.pick_key(CHANNEL) for _ in range(6)}
    assert picked == {"sk-up-1", "sk-up-3"}


def test_a_channel_whose_every_key_is_refused_is_given_up_with_a_reason() -> None:
    health = ChannelHealth()
    for key in CHANNEL.keys[:-1]:
        assert health.record_failure(CHANNEL, key, error(FailureKind.AUTH)).disable_reason is None
    verdict = health.record_failure(CHANNEL, "sk-up-3", error(FailureKind.AUTH))
    assert verdict.disable_reason and "every key" in verdict.disable_reason
    assert health.pick_key(CHANNEL) is None and not health.usable(CHANNEL)


def test_a_rate_limited_key_rests_for_its_retry_after_only() -> None:
    health = ChannelHealth()
    health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.RATE_LIMITED, 1000))
    assert "sk-up-1" not in {health.pick_key(CHANNEL) for _ in range(6)}
    assert health.usable(CHANNEL)


def test_transport_failures_open_the_circuit_and_repeated_trips_give_the_channel_up() -> None:
    health = ChannelHealth(failure_threshold=2, base_cooldown_s=0.0, disable_after_trips=2)
    outage = error(FailureKind.UNAVAILABLE)
    assert health.record_failure(CHANNEL, "sk-up-1", outage).disable_reason is None
    assert health.record_failure(CHANNEL, "sk-up-1", outage).disable_reason is None  # trip 1
    verdict = health.record_failure(CHANNEL, "sk-up-1", outage)  # trip 2
    assert verdict.disable_reason and "failures in a row" in verdict.disable_reason


def test_a_rejection_proves_the_channel_alive() -> None:
    health = ChannelHealth(failure_threshold=2)
    health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.UNAVAILABLE))
    health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.REJECTED))
    health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.UNAVAILABLE))
    assert health.usable(CHANNEL)


def test_a_reset_forgets_every_failure_of_the_channel() -> None:
    health = ChannelHealth()
    for key in CHANNEL.keys:
        health.record_failure(CHANNEL, key, error(FailureKind.AUTH))
    health.reset("vendor")
    assert health.usable(CHANNEL)


def test_a_job_remembers_a_digest_of_its_key_never_the_key() -> None:
    assert key_ref("sk-up-1") != key_ref("sk-up-2")
    assert "sk-up" not in key_ref("sk-up-1") and len(key_ref("sk-up-1")) == 16
