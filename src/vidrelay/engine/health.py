"""Channel and key health as this process sees it: circuit breakers, and when to give up.

A channel's breaker counts transport failures (connect errors, timeouts, 5xx); a key's breaker
counts refusals (401/403, a long cooldown) and rate limits (429, for `Retry-After`). A channel
whose breaker trips `disable_after_trips` times in a row, or whose every key is refused, is
switched off with a reason an operator can read; a probe turns it back on (engine/runner.py).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from vidrelay.domain.channels import Channel
from vidrelay.domain.circuit import CircuitBreaker
from vidrelay.upstreams.base import FailureKind, ProbeResult, Upstream, UpstreamError

_KEY_REFUSED_COOLDOWN_S = 600.0
_RATE_LIMIT_COOLDOWN_S = 10.0


def key_ref(key: str) -> str:
    """What the jobs table remembers of the key that submitted a job: never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Verdict:
    """What one failure means for the channel: a reason to switch it off, or nothing."""

    disable_reason: str | None = None


class ChannelHealth:
    def __init__(
        self,
        failure_threshold: int = 5,
        base_cooldown_s: float = 5.0,
        disable_after_trips: int = 3,
    ) -> None:
        self._failure_threshold = failure_threshold
        self._base_cooldown_s = base_cooldown_s
        self._disable_after_trips = disable_after_trips
        self._channels: dict[str, CircuitBreaker] = {}
        self._keys: dict[tuple[str, str], CircuitBreaker] = {}
        self._next_key: dict[str, int] = {}

    def _channel_breaker(self, name: str) -> CircuitBreaker:
        if name not in self._channels:
            self._channels[name] = CircuitBreaker(self._failure_threshold, self._base_cooldown_s)
        return self._channels[name]

    def _key_breaker(self, channel: str, key: str) -> CircuitBreaker:
        ref = (channel, key_ref(key))
        if ref not in self._keys:
            self._keys[ref] = CircuitBreaker(1, _RATE_LIMIT_COOLDOWN_S)
        return self._keys[ref]

    def channel_open(self, name: str, now: float | None = None) -> bool:
        breaker = self._channels.get(name)
        return breaker is not None and not breaker.allows(now or time.time())

    def pick_key(self, channel: Channel, now: float | None = None) -> str | None:
        """Round-robin over the pool's keys whose breaker is closed; None when none is."""
        now = now or time.time()
        keys = channel.keys or ("",)
        start = self._next_key.get(channel.name, 0)
        for offset in range(len(keys)):
            index = (start + offset) % len(keys)
            key = keys[index]
            if self._key_breaker(channel.name, key).allows(now):
                self._next_key[channel.name] = index + 1
                return key
        return None

    def usable(self, channel: Channel, now: float | None = None) -> bool:
        now = now or time.time()
        if self.channel_open(channel.name, now):
            return False
        keys = channel.keys or ("",)
        return any(self._key_breaker(channel.name, key).allows(now) for key in keys)

    def record_success(self, channel: str, key: str) -> None:
        self._channel_breaker(channel).record_success()
        self._key_breaker(channel, key).record_success()

    def record_failure(self, channel: Channel, key: str, error: UpstreamError) -> Verdict:
        now = time.time()
        if error.kind is FailureKind.AUTH:
            self._key_breaker(channel.name, key).trip(now, _KEY_REFUSED_COOLDOWN_S, error.message)
            if not any(
                self._key_breaker(channel.name, other).allows(now) for other in channel.keys
            ):
                return Verdict(f"every key of the pool was refused: {error.message}")
        elif error.kind is FailureKind.RATE_LIMITED:
            cooldown = (
                error.retry_after_s if error.retry_after_s is not None else _RATE_LIMIT_COOLDOWN_S
            )
            self._key_breaker(channel.name, key).trip(now, cooldown, error.message)
        elif error.kind is FailureKind.UNAVAILABLE:
            breaker = self._channel_breaker(channel.name)
            if breaker.record_failure(now, error.message) and (
                breaker.trips_in_a_row >= self._disable_after_trips
            ):
                return Verdict(f"{breaker.consecutive_failures} failures in a row: {error.message}")
        elif error.kind is FailureKind.REJECTED:
            self.record_success(channel.name, key)  # it answered: the channel is alive
        return Verdict()

    def reset(self, channel: str) -> None:
        """A probe succeeded: forget the channel's and its keys' failures."""
        self._channels.pop(channel, None)
        for ref in [ref for ref in self._keys if ref[0] == channel]:
            del self._keys[ref]

    def describe(self, channel: Channel) -> dict[str, object]:
        """For the admin API: what this process's breakers say of a channel."""
        now = time.time()
        breaker = self._channels.get(channel.name)
        keys_open = sum(
            1 for key in channel.keys if not self._key_breaker(channel.name, key).allows(now)
        )
        return {
            "circuit": "open" if breaker and not breaker.allows(now) else "closed",
            "consecutive_failures": breaker.consecutive_failures if breaker else 0,
            "last_error": breaker.last_error if breaker else None,
            "keys_cooling_down": keys_open,
        }


async def probe_channel(adapter: Upstream, channel: Channel) -> ProbeResult:
    """Reachability and auth of every key of the pool; nothing billable is submitted."""
    probes = []
    for key in channel.keys or ("",):
        try:
            probes.append(await adapter.probe(key))
        except UpstreamError as error:
            return ProbeResult(reachable=False, detail=error.message, keys=probes)
    return ProbeResult(reachable=True, detail="reachable", keys=probes)
