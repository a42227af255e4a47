"""The ASGI application: wiring only. Start-up applies migrations and starts the job runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from vidrelay.api.admin import router as admin_router
from vidrelay.api.admin_audit import router as admin_audit_router
from vidrelay.api.admin_channels import router as admin_channels_router
from vidrelay.api.admin_jobs import router as admin_jobs_router
from vidrelay.api.admin_keys import router as admin_keys_router
from vidrelay.api.admin_models import router as admin_models_router
from vidrelay.api.billing import router as billing_router
from vidrelay.api.body_limit import BodyLimitMiddleware
from vidrelay.api.body_stall import BodyStallMiddleware
from vidrelay.api.context import AppContext
from vidrelay.api.derived_videos import router as derived_videos_router
from vidrelay.api.docs import install_docs
from vidrelay.api.errors import install_error_handlers
from vidrelay.api.input_guard import InputGuardMiddleware
from vidrelay.api.metrics import (
    METRICS_OPERATION,
    METRICS_PATH,
    HttpMetricsMiddleware,
    metrics_route,
)
from vidrelay.api.models import router as models_router
from vidrelay.api.rate_limits import RequestRateLimiter
from vidrelay.api.request_log import RequestLogMiddleware
from vidrelay.api.status_cache import StatusCache
from vidrelay.api.usage import router as usage_router
from vidrelay.api.videos import RETRIEVE_OPERATION, RETRIEVE_PATH, retrieve_video
from vidrelay.api.videos import router as videos_router
from vidrelay.api.webhooks import router as webhooks_router
from vidrelay.console.audit import router as console_audit_router
from vidrelay.console.channels import router as console_channels_router
from vidrelay.console.fallback import router as web_fallback_router
from vidrelay.console.jobs import router as console_jobs_router
from vidrelay.console.models import router as console_models_router
from vidrelay.console.operator import router as console_router
from vidrelay.console.overview import router as console_overview_router
from vidrelay.console.portal_routes import router as portal_router
from vidrelay.console.tenants import router as console_tenants_router
from vidrelay.console.webhooks import router as console_webhooks_router
from vidrelay.engine.background import Engine, Instance, open_instance
from vidrelay.logging_setup import configure_logging
from vidrelay.media.reference_images import ReferenceImageChecker
from vidrelay.metrics import ProcessMetrics
from vidrelay.services.wakeups import Wakeups
from vidrelay.settings import Settings, load_settings
from vidrelay.startup import log_startup


def create_app(
    settings: Settings | None = None,
    *,
    run_engine: bool = True,
    served_url: str | None = None,
    instance: Instance | None = None,
) -> FastAPI:
    """`served_url` is where this server can be reached (see `served_root`), for links made
    outside a request (webhooks) when `VIDRELAY_PUBLIC_URL` is unset. An `instance` already
    opened (by `vidrelay serve`, on the loop that serves) is used instead of opening one at
    start-up; the app disposes of it at shutdown either way."""
    settings = settings or load_settings()
    configure_logging(settings.log_format)
    opened = instance
    metrics = ProcessMetrics()
    http_metrics = metrics.serving_http()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        instance = opened or await open_instance(settings, served_url=served_url)
        metrics.watch_database(instance.db)
        engine = Engine(instance, metrics) if run_engine and settings.engine else None
        await log_startup(instance, role="serve", runs_engine=engine is not None)
        if engine is not None:
            engine.start()
        app.state.context = AppContext(
            settings=settings,
            db=instance.db,
            media=instance.media,
            models=instance.models,
            signer=instance.signer,
            runner=engine.runner if engine else None,
            wakeups=_wakeups(instance, engine),
            status_cache=StatusCache(settings.status_cache_s, settings.status_cache_max_bytes),
            rate_limiter=RequestRateLimiter(settings.redis_url),
            channels=instance.channels,
            reference_images=ReferenceImageChecker(settings.max_reference_pixels),
            breakers=instance.breakers,
            metrics=http_metrics,
        )
        try:
            yield
        finally:
            if engine is not None:
                await engine.stop()
            await instance.close()

    app = FastAPI(
        title="vidrelay",
        summary="The OpenAI Videos API in front of many video-generation upstreams.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, without a CDN
        redoc_url=None,
        # vidrelay exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks would
        # cost every request a provider check for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    install_docs(
        app, {RETRIEVE_PATH: {"get": RETRIEVE_OPERATION}, METRICS_PATH: {"get": METRICS_OPERATION}}
    )
    # The poll hot path first, as a plain Starlette route: the router tries routes in order,
    # and FastAPI's own matching of included routers costs as much as the endpoint itself.
    # (It takes one path segment, so `/videos/characters/{id}` never reaches it.)
    app.router.add_route(RETRIEVE_PATH, retrieve_video, methods=["GET"], include_in_schema=False)
    app.include_router(derived_videos_router)
    app.include_router(videos_router)
    app.include_router(models_router)
    app.include_router(usage_router)
    app.include_router(billing_router)
    app.include_router(admin_router)
    app.include_router(admin_channels_router)
    app.include_router(admin_models_router)
    app.include_router(admin_jobs_router)
    app.include_router(admin_keys_router)
    app.include_router(admin_audit_router)
    app.include_router(webhooks_router)
    app.include_router(console_router)
    for page_router in (
        console_overview_router,
        console_channels_router,
        console_models_router,
        console_jobs_router,
        console_tenants_router,
        console_webhooks_router,
        console_audit_router,
    ):
        app.include_router(page_router)
    app.include_router(portal_router)
    app.mount(
        "/console/static",
        StaticFiles(packages=[("vidrelay.console", "static")]),
        name="console-static",
    )
    app.include_router(web_fallback_router)  # after every page and the static files
    app.router.routes.append(metrics_route(metrics, settings.metrics_token))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        context: AppContext = app.state.context
        async with context.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok"})

    app.add_middleware(InputGuardMiddleware)  # inside the body limit: it reads what passed
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyStallMiddleware, timeout_s=settings.body_stall_timeout_s)
    app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics)  # sees every answer
    # outermost: the request id is bound before anything logs, the access line times it all
    app.add_middleware(RequestLogMiddleware, access_log_enabled=settings.access_log)
    return app


def _wakeups(instance: Instance, engine: Engine | None) -> Wakeups:
    """What the use cases tell this process at once (services/wakeups.py)."""

    def channels_changed() -> None:
        instance.channels.invalidate()
        if engine is not None:
            engine.registry.health.invalidate()  # the others on their refresh

    if engine is None:
        return Wakeups(channels=channels_changed, models=instance.models.invalidate)
    return Wakeups(
        channels=channels_changed,
        models=instance.models.invalidate,
        jobs=engine.runner.wake,
        deliveries=engine.webhook_sender.wake,
    )
