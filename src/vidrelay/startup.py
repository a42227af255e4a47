"""The block of log lines a process prints as it starts: what it runs on and what it will do,
so an operator sees at a glance the database, the channels, whether the local renderer and the
admin API are on (and why), and what the config file just changed."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import structlog

from vidrelay.channel_admin import channel_state
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.engine.background import Instance
from vidrelay.store.database import database_label

log = structlog.get_logger("vidrelay.startup")


def vidrelay_version() -> str:
    try:
        return version("vidrelay")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


async def log_startup(instance: Instance, *, role: str, runs_engine: bool) -> None:
    settings = instance.settings
    channels = await instance.channels.declared()
    log.info(
        "vidrelay_starting",
        role=role,
        version=vidrelay_version(),
        database=database_label(settings.resolved_database_url),
        media=instance.media.describe(),
        channels=len(channels),
        local_renderer=local_renderer_state(channels, runs_engine),
        admin_api="on" if settings.admin_token else "off (VIDRELAY_ADMIN_TOKEN is unset)",
        public_url=instance.public_root or "unknown (set VIDRELAY_PUBLIC_URL)",
        config=str(settings.config) if settings.config else "none (VIDRELAY_CONFIG is unset)",
        config_changes=len(instance.config_changes),
    )
    for channel in channels:
        log.info(
            "channel",
            name=channel.name,
            protocol=channel.protocol.value,
            state=channel_state(channel),
            reason=channel.disabled_reason,
            models=", ".join(channel.models) or "every model",
        )
    for change in instance.config_changes:
        log.info("config_applied", change=change)


def local_renderer_state(channels: list[Channel], runs_engine: bool) -> str:
    if not runs_engine:
        return "off in this process (VIDRELAY_ENGINE=false: a vidrelay worker runs the jobs)"
    if not channels:
        return "on (no channel is declared: it serves every model)"
    local = [c.name for c in channels if c.protocol is ChannelProtocol.LOCAL and c.enabled]
    if local:
        return f"on (channel {', '.join(local)})"
    return "off (channels are declared and none of them is local)"
