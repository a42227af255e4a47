"""The ASGI application: wiring only. Start-up applies migrations and starts the job runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from vidrelay.api.admin import router as admin_router
from vidrelay.api.admin_channels import router as admin_channels_router
from vidrelay.api.body_limit import BodyLimitMiddleware
from vidrelay.api.context import AppContext
from vidrelay.api.errors import install_error_handlers
from vidrelay.api.rate_limits import RequestRateLimiter
from vidrelay.api.status_cache import StatusCache
from vidrelay.api.usage import router as usage_router
from vidrelay.api.videos import router as videos_router
from vidrelay.api.webhooks import router as webhooks_router
from vidrelay.config_file import apply_config, load_config
from vidrelay.domain.catalog import DEFAULT_CATALOG
from vidrelay.domain.signed_urls import UrlSigner
from vidrelay.engine.channels import ChannelRegistry
from vidrelay.engine.runner import JobRunner
from vidrelay.engine.webhook_sender import WebhookSender
from vidrelay.logging_setup import configure_logging
from vidrelay.media.storage import LocalMediaStore
from vidrelay.settings import Settings, load_settings
from vidrelay.store.channels import ChannelDirectory
from vidrelay.store.database import Database
from vidrelay.store.tables import instance_secrets


def create_app(settings: Settings | None = None, *, run_engine: bool = True) -> FastAPI:
    settings = settings or load_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        await db.upgrade()
        if settings.config is not None:
            await apply_config(db, load_config(settings.config))
        async with db.read() as conn:
            secret = await conn.scalar(
                select(instance_secrets.c.value).where(instance_secrets.c.name == "url_signing")
            )
        media = LocalMediaStore(settings.media_dir)
        runner: JobRunner | None = None
        webhook_sender: WebhookSender | None = None
        signer = UrlSigner(str(secret))
        directory = ChannelDirectory(db, settings.channel_refresh_s)
        channels: ChannelRegistry | None = None
        if run_engine and settings.engine:
            channels = ChannelRegistry(directory, settings)
            runner = JobRunner(db, media, channels, settings)
            runner.start()
            webhook_sender = WebhookSender(db, settings, signer)
            webhook_sender.start()
        app.state.context = AppContext(
            settings=settings,
            db=db,
            media=media,
            catalog=DEFAULT_CATALOG,
            signer=signer,
            runner=runner,
            status_cache=StatusCache(settings.status_cache_s),
            rate_limiter=RequestRateLimiter(settings.redis_url),
            webhook_sender=webhook_sender,
            channels=directory,
            registry=channels,
        )
        try:
            yield
        finally:
            if runner:
                await runner.stop()
            if webhook_sender:
                await webhook_sender.stop()
            if channels:
                await channels.close()
            await db.dispose()

    app = FastAPI(
        title="vidrelay",
        summary="The OpenAI Videos API in front of many video-generation upstreams.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(videos_router)
    app.include_router(usage_router)
    app.include_router(admin_router)
    app.include_router(admin_channels_router)
    app.include_router(webhooks_router)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        context: AppContext = app.state.context
        async with context.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok"})

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
