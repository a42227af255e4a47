"""The one typed settings object: every knob is a `VIDRELAY_*` environment variable."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from vidrelay.domain.poll_schedule import PollSchedule
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.media.location import MediaLocation, S3Media, parse_media_url

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A duration that must pass: 0 would spin a loop or expire everything at once."""
SecondsOrZero = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
_DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_SECRET_SETTINGS = {"database_url", "redis_url", "admin_token", "api_key", "metrics_token"}
"""Settings whose value an error message must not repeat."""


class InvalidSettings(ValueError):
    """A setting, or the config file one names, is wrong: one line for the operator, who
    sees it instead of a traceback (`vidrelay.cli.main`)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDRELAY_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("./vidrelay-data"))
    database_url: str | None = None
    public_url: str | None = None
    """Absolute root used in `video_url` links; the request's own base URL when unset."""
    base_url: str = "http://localhost:8000"
    """Where `vidrelay generate` finds the server."""
    api_key: str | None = None
    """The key `vidrelay generate` sends."""

    config: Path | None = None
    """The operator's `vidrelay.toml` (channels, prices and groups), applied at start."""
    redis_url: str | None = None
    """Shared storage for rate limits and circuit breakers across processes (e.g.
    `redis://127.0.0.1:6379/0`); the breakers live in the database when unset."""
    admin_token: str | None = None
    """Bearer token for `/admin/*`; the admin API is off while unset."""
    metrics_token: str | None = None
    """Bearer token `/metrics` asks for; open to anyone who can reach it while unset."""
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Where `vidrelay worker` serves `/metrics` (API processes serve it on their own port)."""
    metrics_host: str = "127.0.0.1"
    """The interface `vidrelay worker` serves `/metrics` on (`0.0.0.0`: every one)."""
    billing: bool = True
    """Charge for jobs. Off only for measuring what billing costs (bench/accept.py)."""
    engine: bool = True
    """Run the job runner in this process (off for an API-only replica or a benchmark)."""
    render_workers: Count = Field(default_factory=lambda: max(1, min(2, os.cpu_count() or 1)))
    render_font: str | None = None
    """A font file for prompt text in the local renderer; by default a system CJK font is
    used when the prompt needs one (e.g. fonts-noto-cjk or fonts-wqy-zenhei)."""
    local_cost_per_second_usd: str = "0"
    """What a second of locally rendered video costs the operator (for revenue and margin)."""
    local_max_concurrency: Count = 4
    """Jobs the embedded built-in renderer runs at once; the rest wait in the queue."""
    engine_tick_s: Seconds = 0.25
    """How often the runner looks for queued jobs and expired leases."""
    lease_s: Seconds = 30.0
    """A running job's lease; a job whose lease lapses (its worker died) is taken over."""
    max_attempts: Count = 3
    """Runs of a job before a crash-looping job is failed and refunded."""
    media_ttl_s: Count = 24 * 3600
    """How long a completed video stays downloadable (`expires_at`)."""
    media_url: str | None = None
    """Where media lives: `file:///PATH` or `s3://BUCKET/PREFIX`; the data dir's `media/`
    when unset."""
    media_redirect: bool = False
    """Answer content requests with a redirect to a short-lived presigned URL (S3 only)
    instead of streaming the bytes through this process."""
    s3_endpoint_url: str | None = None
    """An S3-compatible server (MinIO, R2, moto); AWS itself when unset."""
    aws_access_key_id: str | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: str | None = Field(
        default=None, validation_alias="AWS_SECRET_ACCESS_KEY"
    )
    aws_region: str | None = Field(default=None, validation_alias="AWS_REGION")
    poll_after_ms: Annotated[int, Field(ge=0)] = 1000
    """The `openai-poll-after-ms` hint sent with an unfinished job."""
    webhook_retry_base_s: Seconds = 30.0
    """First retry delay of a failed webhook delivery; it doubles with each attempt."""
    webhook_timeout_s: Seconds = 10.0
    """Time a receiver has to answer one delivery."""
    webhook_tick_s: Seconds = 0.5
    """How often the sender looks for due deliveries."""
    outbound_allowlist: str = ""
    """Hosts or CIDRs that user-given URLs may reach although private (comma-separated)."""
    log_format: Literal["text", "json"] = "text"
    """Log lines as key=value (`text`) or one JSON object each (`json`), uvicorn's included."""
    access_log: bool = True
    """One structured line per HTTP request (method, route, status, duration, request id)."""
    console_session_s: Count = 8 * 3600
    """How long a sign-in to the web console (`/console`, `/portal`) lasts."""
    console_sign_in_per_minute: Count = 10
    """Sign-in attempts one client address may make per minute on each web app."""
    status_cache_s: SecondsOrZero = 1.0
    """How long a finished video's status body may be served from memory (0 disables)."""
    status_cache_max_bytes: Count = 32 * 1024 * 1024
    """Memory the status cache may hold, bodies and keys together; the oldest entries go first."""
    max_body_bytes: Count = 28 * 1024 * 1024
    """Request bodies above this are refused with 413 (a 20 MB image as base64 JSON fits)."""
    max_header_bytes: Count = 64 * 1024
    """A request whose header block is larger (request line and fields) is answered 431."""
    max_headers: Count = 100
    """A request with more header fields is answered 431."""
    header_timeout_s: Seconds = 10.0
    """A connection whose request headers are not all in this long after it opened is closed."""
    body_stall_timeout_s: Seconds = 10.0
    """A request body from which no byte arrives for this long is cut (408, connection closed)."""
    max_reference_pixels: Count = 40_000_000
    """Reference images with more pixels (width x height, read from the header) are a 400."""

    queue_wait_s: Seconds = 600.0
    """How long a job waits for a channel (all full or tripped) before it fails, refunded."""
    job_deadline_s: Seconds = 2 * 3600.0
    """How long an upstream may take with a job, from its submission, before it fails."""
    poll_first_s: Seconds = 2.0
    """The first poll of an upstream job comes this long after its submission."""
    poll_growth: SecondsOrZero = 0.5
    """Later polls wait this fraction of the job's age (at least `poll_first_s`)..."""
    poll_steady_s: Seconds = 10.0
    """...and at most this long: the steady poll interval of an old job."""
    max_poll_errors: Count = 20
    """Failed polls in a row (5xx, timeouts; a 429 never counts) before a job fails."""
    upstream_timeout_s: Seconds = 60.0
    """Time an upstream has to answer one request (a download may take longer per byte)."""
    channel_request_concurrency: Count = 16
    """Requests (submit, poll) this process has in flight to one channel at once."""
    channel_download_concurrency: Count = 4
    """Video downloads this process runs from one channel at once."""
    circuit_failure_threshold: Count = 5
    """Failures in a row (connect error, timeout, 5xx) that open a channel's circuit."""
    channel_disable_after_trips: Count = 3
    """Circuit trips in a row after which a channel is switched off until a probe passes."""
    channel_probe_s: Seconds = 30.0
    """How often a switched-off channel is probed (reachability and keys, nothing billed)."""
    channel_refresh_s: SecondsOrZero = 2.0
    """How soon a channel, or a breaker, changed elsewhere (CLI, another process) is seen."""
    dispatch_retry_s: Seconds = 5.0
    """After every channel failed a submit, the job waits this long (doubling) to try again."""
    collect_attempts: Count = 5
    """Tries to download a finished video before the job fails as content unavailable."""
    collect_retry_s: Seconds = 2.0
    """The first wait between download tries; it doubles."""

    @field_validator("database_url")
    @classmethod
    def _async_database_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            driver = make_url(url).drivername
        except ArgumentError:
            driver = None
        if driver not in _DATABASE_DRIVERS:
            raise ValueError(
                "write postgresql+asyncpg://USER:PASSWORD@HOST/DATABASE or sqlite+aiosqlite:///PATH"
            )
        return url

    @field_validator("media_url")
    @classmethod
    def _media_url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_media_url(url)
        return url

    @field_validator("media_redirect")
    @classmethod
    def _redirect_needs_s3(cls, redirect: bool, info: ValidationInfo) -> bool:
        if "media_url" not in info.data:
            return redirect  # the URL itself is wrong: that error says it
        url = info.data["media_url"]
        if redirect and not (url and isinstance(parse_media_url(url), S3Media)):
            raise ValueError("redirects need media on S3: set VIDRELAY_MEDIA_URL=s3://BUCKET/…")
        return redirect

    @field_validator("public_url", "base_url", "s3_endpoint_url")
    @classmethod
    def _http_root(cls, url: str | None) -> str | None:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    "an absolute http:// or https:// URL, e.g. https://videos.example.com"
                )
        return url

    @field_validator("local_cost_per_second_usd")
    @classmethod
    def _usd_amount(cls, amount: str) -> str:
        try:
            valid = usd_to_micros(amount) >= 0
        except (ArithmeticError, ValueError):
            valid = False
        if not valid:
            raise ValueError("an amount in USD of at least 0, e.g. 0.05")
        return amount

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vidrelay.db').resolve()}"

    @property
    def outbound_allowlist_entries(self) -> list[str]:
        return [entry.strip() for entry in self.outbound_allowlist.split(",") if entry.strip()]

    @property
    def local_cost_per_second_micros(self) -> int:
        return usd_to_micros(self.local_cost_per_second_usd)

    @property
    def poll_schedule(self) -> PollSchedule:
        return PollSchedule(self.poll_first_s, self.poll_growth, self.poll_steady_s)

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def media_location(self) -> MediaLocation | None:
        """Parsed `media_url`; None for the default, `media_dir`."""
        return parse_media_url(self.media_url) if self.media_url else None


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (`overrides` win, e.g. `--data-dir`); a bad value is
    a `InvalidSettings` naming each variable and what it takes, in one line."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise InvalidSettings("; ".join(_problem(detail) for detail in error.errors())) from None


def _problem(detail: Any) -> str:
    field = str(detail["loc"][0]) if detail["loc"] else ""
    message = str(detail["msg"]).removeprefix("Value error, ")
    if field not in _SECRET_SETTINGS and isinstance(detail.get("input"), str):
        message += f" (got {detail['input']!r})"
    return f"VIDRELAY_{field.upper()}: {message}"
