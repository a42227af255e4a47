"""The background half of vidrelay, and what it shares with the API: one place that opens an
instance (data dir, migrations, the operator's config file, the URL-signing secret) and one that
runs the engine (channels, job runner, webhook sender).

`vidrelay serve` runs both in one process; `vidrelay worker` runs the engine alone, so an
operator can keep the API's event loop free for requests (`VIDRELAY_ENGINE=false` on the API
replicas) when thousands of jobs are in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from vidrelay.config_file import ConfigError, apply_config, load_config
from vidrelay.domain.signed_urls import UrlSigner
from vidrelay.engine.channels import ChannelRegistry
from vidrelay.engine.identity import EngineSlot
from vidrelay.engine.runner import JobRunner
from vidrelay.engine.webhook_sender import WebhookSender
from vidrelay.media.storage import LocalMediaStore
from vidrelay.settings import Settings
from vidrelay.store.channels import ChannelDirectory, UnknownProtocol, list_channels
from vidrelay.store.database import Database
from vidrelay.store.models import ModelDirectory
from vidrelay.store.tables import instance_secrets


@dataclass
class Instance:
    settings: Settings
    db: Database
    media: LocalMediaStore
    signer: UrlSigner
    channels: ChannelDirectory
    models: ModelDirectory


async def open_instance(settings: Settings) -> Instance:
    """Migrate the database, apply `vidrelay.toml`, and load what every process shares."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    await db.upgrade()
    if settings.config is not None:
        await apply_config(db, load_config(settings.config))
    async with db.read() as conn:
        try:
            await list_channels(conn)  # every stored channel must have an adapter
        except UnknownProtocol as error:
            raise ConfigError(str(error)) from error
        secret = await conn.scalar(
            select(instance_secrets.c.value).where(instance_secrets.c.name == "url_signing")
        )
    return Instance(
        settings=settings,
        db=db,
        media=LocalMediaStore(settings.media_dir),
        signer=UrlSigner(str(secret)),
        channels=ChannelDirectory(db, settings.channel_refresh_s),
        models=ModelDirectory(db, settings.channel_refresh_s),
    )


class Engine:
    """Channels, the job runner and the webhook sender, started and stopped together."""

    def __init__(self, instance: Instance) -> None:
        settings = instance.settings
        self.slot = EngineSlot.acquire(settings.data_dir)
        self.registry = ChannelRegistry(instance.channels, settings)
        self.webhook_sender = WebhookSender(instance.db, settings, instance.signer)
        self.runner = JobRunner(
            instance.db,
            instance.media,
            self.registry,
            settings,
            on_finished=self.webhook_sender.wake,
            slot=self.slot,
        )

    def start(self) -> None:
        self.runner.start()
        self.webhook_sender.start()

    async def stop(self) -> None:
        await self.runner.stop()
        await self.webhook_sender.stop()
        await self.registry.close()
        self.slot.release()
