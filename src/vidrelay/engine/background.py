"""The background half of vidrelay, and what it shares with the API: one place that opens an
instance (data dir, migrations, the operator's config file, the URL-signing secret) and one that
runs the engine (channels, job runner, webhook sender).

`vidrelay serve` runs both in one process; `vidrelay worker` runs the engine alone, so an
operator can keep the API's event loop free for requests (`VIDRELAY_ENGINE=false` on the API
replicas) when thousands of jobs are in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from vidrelay.config_file import ConfigError, apply_config, load_config
from vidrelay.domain.signed_urls import UrlSigner
from vidrelay.engine.channels import ChannelRegistry
from vidrelay.engine.identity import EngineSlot
from vidrelay.engine.runner import JobRunner
from vidrelay.engine.webhook_sender import WebhookSender
from vidrelay.media.location import LocalMedia
from vidrelay.media.s3 import S3MediaStore
from vidrelay.media.storage import LocalMediaStore, MediaStore
from vidrelay.metrics import ProcessMetrics
from vidrelay.settings import Settings
from vidrelay.store import instance as instance_store
from vidrelay.store.breakers import BreakerStore, open_breaker_store
from vidrelay.store.channels import ChannelDirectory, UnknownProtocol, list_channels
from vidrelay.store.database import Database
from vidrelay.store.models import ModelDirectory

log = structlog.get_logger(__name__)
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


@dataclass
class Instance:
    settings: Settings
    db: Database
    media: MediaStore
    signer: UrlSigner
    channels: ChannelDirectory
    models: ModelDirectory
    breakers: BreakerStore
    """The circuit breakers every process shares (database, or Redis when configured)."""
    public_root: str | None = None
    """Where links in webhooks point: `VIDRELAY_PUBLIC_URL`, else the address this process
    serves; None when it cannot know (see `Engine`)."""
    serves_http: bool = True
    config_changes: list[str] = field(default_factory=list)
    """What applying `vidrelay.toml` at this start changed, a line each."""

    async def close(self) -> None:
        await self.breakers.close()
        await self.db.dispose()


def served_root(host: str, port: int) -> str | None:
    """The root URL of `vidrelay serve --host HOST --port PORT`; None on a wildcard address,
    where the process cannot know which of the machine's names its clients use."""
    if host in _WILDCARDS:
        return None
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def open_instance(
    settings: Settings, *, serves_http: bool = True, served_url: str | None = None
) -> Instance:
    """Migrate the database, apply `vidrelay.toml`, and load what every process shares.

    An API process (`serves_http`) records the address it serves (`served_url`, None when
    unknown) for the engine-only workers, which send webhooks but serve nothing.
    """
    config = (
        load_config(settings.config) if settings.config is not None else None
    )  # creates nothing
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    await db.upgrade()
    config_changes = [] if config is None else await apply_config(db, config)
    if serves_http:
        async with db.write() as conn:
            await instance_store.record_served_url(conn, served_url)
    async with db.read() as conn:
        try:
            await list_channels(conn)  # every stored channel must have an adapter
        except UnknownProtocol as error:
            raise ConfigError(str(error)) from error
        secret = await instance_store.url_signing_secret(conn)
        recorded = None if serves_http else await instance_store.served_url(conn)
    public_root = settings.public_url or (served_url if serves_http else recorded)
    if public_root is None:
        log.warning(
            "public_url_unknown",
            detail="VIDRELAY_PUBLIC_URL is unset and this process cannot know the address "
            "clients reach the API at (it listens on every interface, or serves no HTTP): "
            "webhook payloads carry no video_url until it is set",
        )
    return Instance(
        settings=settings,
        db=db,
        media=open_media_store(settings),
        signer=UrlSigner(secret),
        channels=ChannelDirectory(db, settings.channel_refresh_s),
        models=ModelDirectory(db, settings.channel_refresh_s),
        breakers=open_breaker_store(settings, db),
        public_root=public_root,
        serves_http=serves_http,
        config_changes=config_changes,
    )


def open_media_store(settings: Settings) -> MediaStore:
    """The store `VIDRELAY_MEDIA_URL` names (checked by the settings); the data directory's
    `media/` when unset."""
    location = settings.media_location
    if location is None:
        return LocalMediaStore(settings.media_dir)
    if isinstance(location, LocalMedia):
        return LocalMediaStore(location.root)
    return S3MediaStore(location, settings)


class Engine:
    """Channels, the job runner and the webhook sender, started and stopped together."""

    def __init__(self, instance: Instance, metrics: ProcessMetrics | None = None) -> None:
        """`metrics`: the process's registry, which gains the engine's families."""
        settings = instance.settings
        engine_metrics = (metrics or ProcessMetrics()).running_engine()
        self.slot = EngineSlot.acquire(settings.data_dir)
        self.registry = ChannelRegistry(instance.channels, settings, instance.breakers)
        self.webhook_sender = WebhookSender(
            instance.db,
            settings,
            instance.signer,
            instance.public_root,
            follow_recorded_url=not instance.serves_http and not settings.public_url,
            metrics=engine_metrics,
        )
        self.runner = JobRunner(
            instance.db,
            instance.media,
            self.registry,
            settings,
            on_finished=self.webhook_sender.wake,
            slot=self.slot,
            metrics=engine_metrics,
        )

    def start(self) -> None:
        self.runner.start()
        self.webhook_sender.start()

    async def stop(self) -> None:
        await self.runner.stop()
        await self.webhook_sender.stop()
        await self.registry.close()
        self.slot.release()
