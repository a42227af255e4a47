"""The channels this process runs jobs on: their definitions, adapters, health and load.

Definitions come from the shared `ChannelDirectory` (the database); while the operator has
declared none, the built-in renderer is the one channel (`local`, serving everything). Each
channel gets one adapter, rebuilt when its definition changes, and two gates that bound how
many requests (submit, poll) and downloads this process has in flight to it at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, assert_never

import httpx

from vidrelay.domain.catalog import NormalisedRequest
from vidrelay.domain.channels import (
    Channel,
    ChannelProtocol,
    OperationSupport,
    embedded_local_channel,
    plan_route,
)
from vidrelay.domain.poll_schedule import LOCAL_SCHEDULE, PollSchedule
from vidrelay.engine.health import ChannelHealth
from vidrelay.render.pool import RenderPool
from vidrelay.settings import Settings
from vidrelay.store.breakers import BreakerStore
from vidrelay.store.channels import ChannelDirectory
from vidrelay.upstreams.ark import ArkUpstream
from vidrelay.upstreams.base import Upstream
from vidrelay.upstreams.dashscope import DashScopeUpstream
from vidrelay.upstreams.gemini import GeminiUpstream
from vidrelay.upstreams.kling import KlingUpstream
from vidrelay.upstreams.local import LocalUpstream
from vidrelay.upstreams.minimax import MiniMaxUpstream
from vidrelay.upstreams.openai import OpenAIUpstream
from vidrelay.upstreams.sora2api import Sora2ApiUpstream
from vidrelay.upstreams.vidu import ViduUpstream


def build_adapter(
    channel: Channel,
    settings: Settings,
    render_pool: Callable[[], RenderPool],
    transport: httpx.AsyncBaseTransport | None = None,
) -> Upstream:
    """The adapter of the channel's protocol (DESIGN.md §6). Exhaustive: a protocol without a
    branch fails the type check, never falls through to another adapter. `transport` replaces
    the network (tests)."""
    protocol = channel.protocol
    adapter_class: _HttpAdapterClass
    match protocol:
        case ChannelProtocol.SORA2API:
            return Sora2ApiUpstream(
                channel.name,
                channel.base_url,
                cost_per_second_micros=channel.cost_per_second_micros,
                connect_timeout_s=min(10.0, settings.upstream_timeout_s),
                answer_timeout_s=settings.upstream_timeout_s,
                outbound_allowlist=settings.outbound_allowlist_entries,
                transport=transport,
            )
        case ChannelProtocol.LOCAL:
            return LocalUpstream(
                render_pool(),
                settings.data_dir / "render-work" / channel.name,
                settings.render_font,
                cost_per_second_micros=channel.cost_per_second_micros,
                name=channel.name,
            )
        case ChannelProtocol.OPENAI:
            adapter_class = OpenAIUpstream
        case ChannelProtocol.ARK:
            adapter_class = ArkUpstream
        case ChannelProtocol.GEMINI:
            adapter_class = GeminiUpstream
        case ChannelProtocol.KLING:
            adapter_class = KlingUpstream
        case ChannelProtocol.MINIMAX:
            adapter_class = MiniMaxUpstream
        case ChannelProtocol.DASHSCOPE:
            adapter_class = DashScopeUpstream
        case ChannelProtocol.VIDU:
            adapter_class = ViduUpstream
        case _:
            assert_never(protocol)
    return adapter_class(
        channel.name,
        channel.base_url,
        cost_per_second_micros=channel.cost_per_second_micros,
        timeout_s=settings.upstream_timeout_s,
        max_connections=settings.channel_request_concurrency * 2,
        transport=transport,
    )


def operations_of(protocol: ChannelProtocol) -> OperationSupport:
    """What the protocol's adapter declares it can do beyond a create (see `Upstream`).
    Exhaustive like `build_adapter`."""
    match protocol:
        case ChannelProtocol.SORA2API:
            return Sora2ApiUpstream.operations
        case ChannelProtocol.LOCAL:
            return LocalUpstream.operations
        case ChannelProtocol.OPENAI:
            return OpenAIUpstream.operations
        case ChannelProtocol.ARK:
            return ArkUpstream.operations
        case ChannelProtocol.GEMINI:
            return GeminiUpstream.operations
        case ChannelProtocol.KLING:
            return KlingUpstream.operations
        case ChannelProtocol.MINIMAX:
            return MiniMaxUpstream.operations
        case ChannelProtocol.DASHSCOPE:
            return DashScopeUpstream.operations
        case ChannelProtocol.VIDU:
            return ViduUpstream.operations
        case _:
            assert_never(protocol)


class _HttpAdapterClass(Protocol):
    """How every adapter of a plain HTTP protocol is made (one pool per channel)."""

    def __call__(
        self,
        name: str,
        base_url: str,
        *,
        cost_per_second_micros: int,
        timeout_s: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Upstream: ...


@dataclass
class ChannelRuntime:
    """A channel as the engine runs it: its definition, adapter and limits."""

    definition: Channel
    adapter: Upstream
    requests: asyncio.Semaphore
    downloads: asyncio.Semaphore
    schedule: PollSchedule


class ChannelRegistry:
    def __init__(
        self,
        directory: ChannelDirectory,
        settings: Settings,
        breakers: BreakerStore,
        adapter_factory: Callable[[Channel], Upstream] | None = None,
    ) -> None:
        """`breakers`: where the breakers every process shares live. `adapter_factory`
        replaces `build_adapter` (tests drive the engine with doubles)."""
        self.directory = directory
        self._settings = settings
        self.health = ChannelHealth(
            breakers,
            failure_threshold=settings.circuit_failure_threshold,
            disable_after_trips=settings.channel_disable_after_trips,
            refresh_s=settings.channel_refresh_s,
        )
        self._runtimes: dict[str, ChannelRuntime] = {}
        self._retired: list[Upstream] = []
        self._pool: RenderPool | None = None
        self._rng = random.Random()
        self._adapter_factory = adapter_factory or (
            lambda channel: build_adapter(channel, settings, self._render_pool)
        )

    def _render_pool(self) -> RenderPool:
        if self._pool is None:
            self._pool = RenderPool(self._settings.render_workers)
        return self._pool

    async def channels(self) -> list[Channel]:
        """The channels in force: the declared ones, or the embedded local one."""
        declared = await self.directory.declared()
        if declared:
            return declared
        return [
            embedded_local_channel(
                self._settings.local_max_concurrency, self._settings.local_cost_per_second_micros
            )
        ]

    async def runtime(self, name: str) -> ChannelRuntime | None:
        for channel in await self.channels():
            if channel.name == name:
                return self._runtime_for(channel)
        return None

    def _runtime_for(self, channel: Channel) -> ChannelRuntime:
        current = self._runtimes.get(channel.name)
        if current is not None and current.definition == channel:
            return current
        if current is not None and _same_connection(current.definition, channel):
            current.definition = channel
            return current
        if current is not None:
            self._retired.append(current.adapter)  # jobs still polling keep their object
        adapter = self._adapter_factory(channel)
        runtime = ChannelRuntime(
            definition=channel,
            adapter=adapter,
            requests=asyncio.Semaphore(self._settings.channel_request_concurrency),
            downloads=asyncio.Semaphore(self._settings.channel_download_concurrency),
            schedule=LOCAL_SCHEDULE
            if channel.protocol is ChannelProtocol.LOCAL
            else self._settings.poll_schedule,
        )
        self._runtimes[channel.name] = runtime
        return runtime

    async def plan(
        self,
        request: NormalisedRequest,
        busy: Mapping[str, int],
        exclude: set[str] | frozenset[str] = frozenset(),
    ) -> list[Channel]:
        """The channels to try for `request` (its model, route and operation), in order."""
        channels = await self.channels()
        await self.health.refresh()
        unavailable = {channel.name for channel in channels if not self.health.usable(channel)}
        return plan_route(
            channels,
            request.model,
            request.route_class,
            busy=busy,
            unavailable=unavailable,
            exclude=exclude,
            rng=self._rng,
            request=request,
            support=operations_of,
        )

    async def close(self) -> None:
        for adapter in [runtime.adapter for runtime in self._runtimes.values()] + self._retired:
            await adapter.close()
        self._runtimes.clear()
        if self._pool is not None:
            await asyncio.to_thread(self._pool.shutdown)


def _same_connection(old: Channel, new: Channel) -> bool:
    """Edits that need no new adapter (routing knobs, keys, models, cost)."""
    return old.protocol is new.protocol and old.base_url == new.base_url
