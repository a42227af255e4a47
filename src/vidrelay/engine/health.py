"""Channel and key health as every process sees it: circuit breakers, and when to give up.

A channel's breaker counts transport failures (connect errors, timeouts, 5xx); a key's breaker
counts refusals (401/403, a long cooldown) and rate limits (429, for `Retry-After`). A channel
whose breaker trips `disable_after_trips` times in a row, or whose every key is refused, is
switched off with a reason an operator can read; a probe turns it back on (engine/runner.py).

The breakers live in the shared `BreakerStore` (store/breakers.py): a failure, or a success
that closes a breaker, is written there at once; the questions asked on every dispatch (is the
channel open, which key next) read a snapshot at most `refresh_s` old, so a breaker another
worker trips, or an operator's reset, is seen here within that time.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from vidrelay.domain.channels import Channel
from vidrelay.domain.circuit import BreakerRef, BreakerState, CircuitBreaker
from vidrelay.store.breakers import BreakerStore
from vidrelay.upstreams.base import FailureKind, ProbeResult, Upstream, UpstreamError

_KEY_REFUSED_COOLDOWN_S = 600.0
_RATE_LIMIT_COOLDOWN_S = 10.0
_CLEAR = BreakerState()
T = TypeVar("T")


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
        store: BreakerStore,
        failure_threshold: int = 5,
        base_cooldown_s: float = 5.0,
        disable_after_trips: int = 3,
        refresh_s: float = 2.0,
    ) -> None:
        self._store = store
        self._failure_threshold = failure_threshold
        self._base_cooldown_s = base_cooldown_s
        self._disable_after_trips = disable_after_trips
        self._refresh_s = refresh_s
        self._states: dict[BreakerRef, BreakerState] = {}
        self._loaded_at = -math.inf
        self._generation = 0
        self._next_key: dict[str, int] = {}

    async def refresh(self) -> None:
        """Read the shared breakers again when the snapshot is older than `refresh_s`."""
        if time.monotonic() - self._loaded_at < self._refresh_s:
            return
        generation = self._generation
        states = await self._store.load()
        if generation == self._generation:  # else a change landed meanwhile: read again
            self._states, self._loaded_at = states, time.monotonic()

    def invalidate(self) -> None:
        """The shared breakers changed elsewhere in this process (an admin reset)."""
        self._generation += 1
        self._loaded_at = -math.inf

    def _breaker(self, ref: BreakerRef, state: BreakerState | None = None) -> CircuitBreaker:
        state = state if state is not None else self._states.get(ref, _CLEAR)
        if ref.key:
            return CircuitBreaker(1, _RATE_LIMIT_COOLDOWN_S).restore(state)
        return CircuitBreaker(self._failure_threshold, self._base_cooldown_s).restore(state)

    def _allows(self, ref: BreakerRef, now: float) -> bool:
        return now >= self._states.get(ref, _CLEAR).open_until

    async def _change(self, ref: BreakerRef, change: Callable[[CircuitBreaker], T]) -> T:
        """Apply `change` to the shared breaker atomically; keep what was stored."""
        outcome: list[T] = []

        def apply(state: BreakerState) -> BreakerState:
            breaker = self._breaker(ref, state)
            outcome[:] = [change(breaker)]
            return breaker.state

        stored = await self._store.change(ref, apply)
        self._generation += 1  # a snapshot being read now may predate this change
        if stored.is_clear:
            self._states.pop(ref, None)
        else:
            self._states[ref] = stored
        return outcome[0]

    def channel_open(self, name: str, now: float | None = None) -> bool:
        return not self._allows(BreakerRef(name), now or time.time())

    def pick_key(self, channel: Channel, now: float | None = None) -> str | None:
        """Round-robin over the pool's keys whose breaker is closed; None when none is."""
        now = now or time.time()
        keys = channel.keys or ("",)
        start = self._next_key.get(channel.name, 0)
        for offset in range(len(keys)):
            index = (start + offset) % len(keys)
            key = keys[index]
            if self._allows(BreakerRef(channel.name, key_ref(key)), now):
                self._next_key[channel.name] = index + 1
                return key
        return None

    def usable(self, channel: Channel, now: float | None = None) -> bool:
        now = now or time.time()
        if self.channel_open(channel.name, now):
            return False
        keys = channel.keys or ("",)
        return any(self._allows(BreakerRef(channel.name, key_ref(key)), now) for key in keys)

    async def record_success(self, channel: str, key: str) -> None:
        """Close the channel's and the key's breakers; writes only when one of them had
        something to remember (as far as this process knows), never on every success."""
        for ref in (BreakerRef(channel), BreakerRef(channel, key_ref(key))):
            if ref in self._states:
                await self._change(ref, CircuitBreaker.record_success)

    async def record_failure(self, channel: Channel, key: str, error: UpstreamError) -> Verdict:
        now = time.time()
        key_breaker = BreakerRef(channel.name, key_ref(key))
        if error.kind is FailureKind.AUTH:
            await self._change(
                key_breaker, lambda b: b.trip(now, _KEY_REFUSED_COOLDOWN_S, error.message)
            )
            if not any(
                self._allows(BreakerRef(channel.name, key_ref(other)), now)
                for other in channel.keys
            ):
                return Verdict(f"every key of the pool was refused: {error.message}")
        elif error.kind is FailureKind.RATE_LIMITED:
            cooldown = (
                error.retry_after_s if error.retry_after_s is not None else _RATE_LIMIT_COOLDOWN_S
            )
            await self._change(key_breaker, lambda b: b.trip(now, cooldown, error.message))
        elif error.kind is FailureKind.UNAVAILABLE:
            opened, breaker = await self._change(
                BreakerRef(channel.name),
                lambda b: (b.record_failure(now, error.message), b.state),
            )
            if opened and breaker.trips_in_a_row >= self._disable_after_trips:
                return Verdict(f"{breaker.consecutive_failures} failures in a row: {error.message}")
        elif error.kind is FailureKind.REJECTED:
            await self.record_success(channel.name, key)  # it answered: the channel is alive
        return Verdict()

    async def reset(self, channel: str) -> None:
        """A probe succeeded: forget the channel's and its keys' failures, in every process."""
        await self._store.clear(channel)
        self.invalidate()
        for ref in [ref for ref in self._states if ref.channel == channel]:
            del self._states[ref]


async def probe_channel(adapter: Upstream, channel: Channel) -> ProbeResult:
    """Reachability and auth of every key of the pool; nothing billable is submitted."""
    probes = []
    for key in channel.keys or ("",):
        try:
            probes.append(await adapter.probe(key))
        except UpstreamError as error:
            return ProbeResult(reachable=False, detail=error.message, keys=probes)
    return ProbeResult(reachable=True, detail="reachable", keys=probes)
