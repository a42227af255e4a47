"""Channels: an operator's upstreams as data, and which of them may run a request.

A channel is configuration (DESIGN.md §6): a protocol, a base URL, a pool of keys, the route class
it serves, the models it serves (with an optional mapping to the upstream's own names), a
priority tier, a weight inside its tier and a concurrency limit. Routing (`plan_route`) is a pure
function of the channels and what the engine knows of their load and health.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from vidrelay.domain.catalog import (
    DEFAULT_CATALOG,
    ModelSpec,
    NormalisedRequest,
    Operation,
    Route,
    RouteClass,
)
from vidrelay.domain.errors import InvalidRequest

EMBEDDED_CHANNEL = "local"


class ChannelProtocol(StrEnum):
    OPENAI = "openai"
    SORA2API = "sora2api"
    LOCAL = "local"
    ARK = "ark"
    DASHSCOPE = "dashscope"
    GEMINI = "gemini"
    KLING = "kling"
    MINIMAX = "minimax"
    VIDU = "vidu"


@dataclass(frozen=True)
class OperationSupport:
    """What a protocol's adapter can do beyond a plain create (each adapter declares it).

    `by_upstream_id`: operations on a video the upstream made and still holds, asked by its own
    id, so only on the channel and with the key that made it. `from_file`: operations whose
    source the adapter sends (or renders from) as the stored MP4, on any channel of the
    protocol; `Operation.CHARACTER` there means a create may name characters.
    """

    by_upstream_id: frozenset[Operation] = frozenset()
    from_file: frozenset[Operation] = frozenset()


CREATE_ONLY = OperationSupport()
SupportOf = Callable[["ChannelProtocol"], OperationSupport]


class ChannelError(ValueError):
    """A channel definition that cannot work, with a message naming the field."""


@dataclass(frozen=True)
class Channel:
    name: str
    protocol: ChannelProtocol
    route_class: RouteClass | None
    """None serves both route classes (only the embedded local channel)."""
    models: tuple[str, ...]
    """Empty serves every model of the catalog."""
    base_url: str = ""
    keys: tuple[str, ...] = ()
    model_map: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    max_concurrency: int = 50
    enabled: bool = True
    cost_per_second_micros: int = 0
    disabled_reason: str | None = None
    """Set when vidrelay switched the channel off after repeated failures (a probe clears it)."""

    @property
    def auto_disabled(self) -> bool:
        return self.disabled_reason is not None

    def serves(self, model: str, route_class: RouteClass) -> bool:
        """Whether the operator means this channel to run the request (health aside)."""
        if not self.enabled:
            return False
        if self.route_class is not None and self.route_class is not route_class:
            return False
        return not self.models or model in self.models

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)

    def validate(self, catalog_models: Collection[str] | None = DEFAULT_CATALOG.models) -> Channel:
        """The channel, if it can work: every field sane, every model one of the catalog's
        (None: the models are checked later, against the catalog they are saved with)."""
        if (
            not self.name
            or len(self.name) > 80
            or not self.name.replace("-", "").replace("_", "").replace(".", "").isalnum()
        ):
            raise ChannelError("name: letters, digits, '-', '_' and '.' only, at most 80")
        if self.protocol is not ChannelProtocol.LOCAL:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ChannelError(f"base_url: an http(s) URL is needed for {self.protocol}")
            if not self.keys:
                raise ChannelError("keys: at least one key is needed")
            if not self.models:
                raise ChannelError("models: list the models this channel serves")
            if self.route_class is None:
                raise ChannelError("route_class: official or reverse")
        unknown_models = [model for model in self.models if model not in (catalog_models or ())]
        if catalog_models is not None and unknown_models:
            raise ChannelError(
                f"models: unknown {unknown_models}; the catalog has: {', '.join(catalog_models)}"
            )
        if self.weight < 1:
            raise ChannelError("weight: at least 1")
        if self.max_concurrency < 1:
            raise ChannelError("max_concurrency: at least 1")
        unknown = set(self.model_map) - set(self.models) if self.models else set()
        if unknown:
            raise ChannelError(f"model_map: {sorted(unknown)} not among models")
        return self


def embedded_local_channel(max_concurrency: int, cost_per_second_micros: int) -> Channel:
    """The built-in renderer, serving everything while the operator declared no channel."""
    return Channel(
        name=EMBEDDED_CHANNEL,
        protocol=ChannelProtocol.LOCAL,
        route_class=None,
        models=(),
        max_concurrency=max_concurrency,
        cost_per_second_micros=cost_per_second_micros,
    )


def serving_channels(
    channels: Iterable[Channel], model: str, route_class: RouteClass
) -> list[Channel]:
    return [channel for channel in channels if channel.serves(model, route_class)]


def served_routes(declared: Sequence[Channel], model: ModelSpec) -> list[Route]:
    """The model's routes that a request can be accepted on now: every one while no channel
    is declared (the embedded local channel serves everything), else those an enabled channel
    serves (full, tripped or auto-disabled ones count: a job waits for them)."""
    if not declared:
        return list(model.routes)
    return [
        route for route in model.routes if serving_channels(declared, model.name, route.route_class)
    ]


def require_served(declared: Sequence[Channel], model: str, route_class: RouteClass) -> None:
    """Refuse at accept (nothing charged) a request that no declared channel serves.

    No declared channel at all means the embedded local channel, which serves everything.
    Channels that are full, tripped or auto-disabled still count: the job waits for them.
    """
    if not declared or serving_channels(declared, model, route_class):
        return
    served = sorted(
        {
            f"{model_name} ({channel.route_class or 'any'} route)"
            for channel in declared
            if channel.enabled
            for model_name in channel.models or ("every model",)
        }
    )
    raise InvalidRequest(
        f"No channel of this gateway serves {model} on the {route_class} route. "
        f"Served: {', '.join(served) or 'nothing (every channel is disabled)'}.",
        param="model",
        code="model_not_served",
    )


def holds_source(channel: Channel, request: NormalisedRequest, support: SupportOf) -> bool:
    """Whether `channel` made the request's source video and can work on it by its upstream id
    (the request then goes there, with the key that made it, and nowhere else)."""
    source = request.source
    return (
        source is not None
        and source.channel == channel.name
        and source.upstream_job_id is not None
        and request.operation in support(channel.protocol).by_upstream_id
    )


def can_run(channel: Channel, request: NormalisedRequest, support: SupportOf) -> bool:
    """Whether the channel's protocol can do what the request asks beyond a plain create."""
    if request.operation is Operation.CREATE:
        return (
            not request.character_ids or Operation.CHARACTER in support(channel.protocol).from_file
        )
    return holds_source(channel, request, support) or (
        request.operation in support(channel.protocol).from_file
    )


def channels_for(
    channels: Iterable[Channel], request: NormalisedRequest, support: SupportOf
) -> list[Channel]:
    """The channels meant to run the request: those serving its model and route that can do
    its operation; only the source's own channel when that one still holds the source."""
    able = [
        channel
        for channel in serving_channels(channels, request.model, request.route_class)
        if can_run(channel, request, support)
    ]
    holding = [channel for channel in able if holds_source(channel, request, support)]
    return holding or able


def require_operation(
    declared: Sequence[Channel], request: NormalisedRequest, support: SupportOf
) -> None:
    """Refuse at accept (nothing charged) what no enabled channel can do: an operation, or
    naming characters, on a protocol without it. No declared channel means the local one."""
    if request.operation is Operation.CREATE and not request.character_ids:
        return
    channels = declared or [embedded_local_channel(1, 0)]
    if channels_for(channels, request, support):
        return
    what, param = (
        ("naming characters", "characters")
        if request.operation is Operation.CREATE
        else (f"the {request.operation} operation", "video")
    )
    raise InvalidRequest(
        f"No enabled channel of this gateway serving {request.model} can do {what}: "
        "their protocols lack it.",
        param=param,
        code="unsupported_operation",
    )


def plan_route(
    channels: Sequence[Channel],
    model: str,
    route_class: RouteClass,
    *,
    busy: Mapping[str, int],
    unavailable: Iterable[str] = (),
    exclude: Iterable[str] = (),
    rng: random.Random | None = None,
    request: NormalisedRequest | None = None,
    support: SupportOf | None = None,
) -> list[Channel]:
    """The channels to try for a request, in order.

    Higher priority tiers first; inside a tier a weighted random order (Efraimidis-Spirakis), so
    load spreads by weight and a failover goes to another channel of the same tier first.
    Channels at their concurrency limit (`busy`), with an open circuit or auto-disabled
    (`unavailable`), or already tried (`exclude`) are left out. With `request` and `support`,
    only the channels that can do its operation (see `channels_for`).
    """
    rng = rng or random.Random()
    skipped = set(unavailable) | set(exclude)
    meant = (
        channels_for(channels, request, support)
        if request is not None and support is not None
        else serving_channels(channels, model, route_class)
    )
    candidates = [
        channel
        for channel in meant
        if channel.name not in skipped
        and not channel.auto_disabled
        and busy.get(channel.name, 0) < channel.max_concurrency
    ]
    return sorted(
        candidates,
        key=lambda channel: (-channel.priority, -(rng.random() ** (1.0 / channel.weight))),
    )
