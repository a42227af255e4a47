"""What the admin API and the CLI both do with channels: show one, and test one.

A channel's keys are shown as hints only (`sk-up…ab12`): whoever reads the list can tell the
keys apart and check which one is configured, and cannot use them.
"""

from __future__ import annotations

import time
from typing import Any

from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.circuit import BreakerRef, BreakerState
from vidrelay.domain.pricing import usd_text
from vidrelay.engine.channels import build_adapter
from vidrelay.engine.health import key_ref, probe_channel
from vidrelay.render.pool import RenderPool
from vidrelay.settings import Settings
from vidrelay.upstreams.base import KeyProbe, ProbeResult
from vidrelay.upstreams.messages import key_hint

_CLOSED = BreakerState()


def channel_view(channel: Channel, running: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "object": "channel",
        "name": channel.name,
        "protocol": channel.protocol.value,
        "base_url": channel.base_url,
        "keys": [key_hint(key) for key in channel.keys],
        "route_class": channel.route_class.value if channel.route_class else None,
        "models": list(channel.models),
        "model_map": dict(channel.model_map),
        "priority": channel.priority,
        "weight": channel.weight,
        "max_concurrency": channel.max_concurrency,
        "enabled": channel.enabled,
        "cost_per_second_usd": usd_text(channel.cost_per_second_micros),
        "status": channel_state(channel),
        "disabled_reason": channel.disabled_reason,
    }
    if running is not None:
        view["running_jobs"] = running
    return view


def health_view(channel: Channel, states: dict[BreakerRef, BreakerState]) -> dict[str, object]:
    """What the breakers every process shares say of a channel."""
    now = time.time()
    breaker = states.get(BreakerRef(channel.name), _CLOSED)
    keys_open = sum(
        1
        for key in channel.keys
        if now < states.get(BreakerRef(channel.name, key_ref(key)), _CLOSED).open_until
    )
    return {
        "circuit": "open" if now < breaker.open_until else "closed",
        "consecutive_failures": breaker.consecutive_failures,
        "last_error": breaker.last_error,
        "keys_cooling_down": keys_open,
    }


def channel_state(channel: Channel) -> str:
    if not channel.enabled:
        return "disabled"
    return "auto_disabled" if channel.auto_disabled else "enabled"


async def test_channel(channel: Channel, settings: Settings) -> ProbeResult:
    """Reachability and every key's auth, with a throwaway adapter; nothing billable."""
    if channel.protocol is ChannelProtocol.LOCAL:
        probe = KeyProbe("(none)", True, "the built-in renderer runs in-process")
        return ProbeResult(True, "built in", [probe])

    def no_pool() -> RenderPool:
        raise AssertionError("only the local protocol renders")

    adapter = build_adapter(channel, settings, no_pool)
    try:
        return await probe_channel(adapter, channel)
    finally:
        await adapter.close()


def probe_view(result: ProbeResult) -> dict[str, Any]:
    return {
        "healthy": result.healthy,
        "reachable": result.reachable,
        "detail": result.detail,
        "keys": [{"key": key.key_hint, "ok": key.ok, "detail": key.detail} for key in result.keys],
    }
