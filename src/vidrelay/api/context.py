"""What the request handlers share: built once at start-up, reached through `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from vidrelay.api.rate_limits import RequestRateLimiter
from vidrelay.api.status_cache import StatusCache
from vidrelay.domain.signed_urls import UrlSigner
from vidrelay.engine.runner import JobRunner
from vidrelay.media.reference_images import ReferenceImageChecker
from vidrelay.media.storage import MediaStore
from vidrelay.metrics import HttpMetrics
from vidrelay.services.videos import VideoDesk
from vidrelay.services.wakeups import NOBODY, Wakeups
from vidrelay.settings import Settings
from vidrelay.store.breakers import BreakerStore
from vidrelay.store.channels import ChannelDirectory
from vidrelay.store.database import Database
from vidrelay.store.models import ModelDirectory


@dataclass
class AppContext:
    settings: Settings
    db: Database
    media: MediaStore
    models: ModelDirectory
    signer: UrlSigner
    runner: JobRunner | None
    """Started and stopped with the app; for tests to reach, never for a handler."""
    status_cache: StatusCache
    rate_limiter: RequestRateLimiter
    channels: ChannelDirectory
    reference_images: ReferenceImageChecker
    breakers: BreakerStore
    wakeups: Wakeups = NOBODY
    """This process's engine, told of a change at once (the handlers never touch it)."""
    metrics: HttpMetrics | None = None

    @property
    def video_desk(self) -> VideoDesk:
        return VideoDesk(
            db=self.db,
            media=self.media,
            models=self.models,
            channels=self.channels,
            reference_images=self.reference_images,
            settings=self.settings,
            wakeups=self.wakeups,
        )


async def get_context(request: Request) -> AppContext:
    """Async on purpose: FastAPI runs a sync dependency in a worker thread, per request."""
    context: AppContext = request.app.state.context
    return context
