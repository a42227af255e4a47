"""SQLAlchemy Core tables. Money is integer micro-dollars; times are unix seconds."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("balance_micros", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("group_name", String(80), nullable=False, default="default"),
    Column("rpm", Integer, nullable=True),
    Column("max_in_flight", Integer, nullable=True),
    Column("webhook_secret", String(80), nullable=True),
)

tenant_groups = Table(
    "tenant_groups",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("multiplier_ppm", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(40), nullable=False),
    Column("status_style", String(20), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("rpm", Integer, nullable=True),
    Column("max_in_flight", Integer, nullable=True),
    Column("spend_limit_micros", BigInteger, nullable=True),
    Column("spent_micros", BigInteger, nullable=False, default=0),
    Column("name", String(200), nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("models", Text, nullable=True),  # a JSON list of model names; NULL: every model
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # top_up | charge | refund | adjustment
    Column("amount_micros", BigInteger, nullable=False),  # signed: charges are negative
    Column("job_id", String(60), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(120), nullable=True),  # who: cli, admin, system, a key id
    Index("ix_ledger_tenant", "tenant_id", "id"),
    # The database itself refuses a second charge or refund for one job.
    Index("ux_ledger_job_kind", "job_id", "kind", unique=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(60), primary_key=True),
    Column("created_ts", Float, nullable=False),  # precise creation time: the list's order
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("model", String(80), nullable=False),
    Column("route_class", String(20), nullable=False),
    Column("seconds", String(8), nullable=False),
    Column("size", String(20), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("character_url", Text, nullable=True),
    Column("character_timestamps", String(40), nullable=True),
    Column("callback_url", Text, nullable=True),
    Column("has_reference", Integer, nullable=False, default=0),
    Column("price_micros", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("progress", Integer, nullable=False, default=0),
    Column("error_code", String(80), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("deleted_at", BigInteger, nullable=True),
    Column("channel", String(80), nullable=True),
    Column("upstream_job_id", String(200), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(120), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("remixed_from_video_id", String(60), nullable=True),
    Column("cost_micros", BigInteger, nullable=True),  # what the upstream charged us
    Column("media_purged_at", BigInteger, nullable=True),  # set when expired media was deleted
    Column("upstream_key_ref", String(16), nullable=True),  # which key of the pool submitted it
    Column("submitted_at", BigInteger, nullable=True),  # first submission upstream: the deadline
    Column("not_before", Float, nullable=True),  # a queued job waits until then (backoff)
    Column("finished_ts", Float, nullable=True),  # precise end time, for completion-lag figures
    Column("params", Text, nullable=True),  # JSON object: the declared parameters, typed
    Column("operation", String(20), nullable=True),  # None = create
    # the submission a worker is about to make (written before it submits; cleared once the
    # upstream's id is recorded): what a retried run looks up after a crash in between
    Column("intent_channel", String(80), nullable=True),
    Column("intent_key_ref", String(16), nullable=True),
    Column("intent_token", String(64), nullable=True),
    Column("orphaned_submissions", Integer, nullable=False, default=0, server_default="0"),
    # a remix, extension or edit: its source (a video of the tenant's, and the channel, upstream
    # id and key that made it; or an uploaded MP4 kept with the job's media) and its length
    Column("source_video_id", String(60), nullable=True),
    Column("source_seconds", Integer, nullable=True),
    Column("source_prompt", Text, nullable=True),
    Column("source_channel", String(80), nullable=True),
    Column("source_upstream_job_id", String(200), nullable=True),
    Column("source_key_ref", String(16), nullable=True),
    Column("character_ids", Text, nullable=True),  # JSON list of `char_…` a create names
    Index("ix_jobs_tenant_created", "tenant_id", "created_ts", "id"),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_key_status", "key_id", "status"),
    Index("ix_jobs_tenant_status", "tenant_id", "status"),
    # the operator's list (`GET /admin/jobs`): newest first, alone or under one filter
    Index("ix_jobs_created", "created_ts", "id"),
    Index("ix_jobs_model_created", "model", "created_ts", "id"),
    Index("ix_jobs_channel_created", "channel", "created_ts", "id"),
    Index("ix_jobs_status_created", "status", "created_ts", "id"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the timeline's order
    Column("job_id", String(60), nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("details", Text, nullable=False),  # a small JSON object
    Index("ix_job_events_job", "job_id", "id"),
)

characters = Table(
    "characters",
    metadata,
    Column("id", String(60), primary_key=True),  # char_…
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("seconds", Float, nullable=False),  # the clip's length (its file is in media storage)
    Column("price_micros", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_characters_tenant", "tenant_id"),
)

price_rules = Table(
    "price_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(80), nullable=False),
    Column("route_class", String(20), nullable=False),  # "" = any
    Column("size_class", String(20), nullable=False),  # "" = any
    Column("per_second_micros", BigInteger, nullable=True),
    Column("per_request_micros", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Column("conditions", Text, nullable=False, default=""),  # JSON object; "" = none
    UniqueConstraint("model", "route_class", "size_class", "conditions", name="uq_price_rule"),
)

catalog_models = Table(
    "catalog_models",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("definition", Text, nullable=False),  # the canonical declaration, JSON
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("job_id", String(60), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

instance_secrets = Table(
    "instance_secrets",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("value", String(200), nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", String(200), nullable=False),  # comma-separated
    Column("created_at", BigInteger, nullable=False),
    Index("ix_webhook_endpoints_tenant", "tenant_id"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), primary_key=True),  # the stable `webhook-id`
    Column("tenant_id", String(40), nullable=False),
    Column("type", String(40), nullable=False),
    Column("job_id", String(60), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("payload", Text, nullable=True),  # frozen at the first attempt
    Index("ix_webhook_events_job", "job_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", String(40), nullable=False),
    Column("tenant_id", String(40), nullable=False),
    Column("endpoint_id", String(40), nullable=True),  # None: the job's own callback_url
    Column("url", Text, nullable=False),
    Column("status", String(20), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_event", "event_id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), nullable=False),
    Column("attempted_at", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_delivery", "delivery_id"),
)

channels = Table(
    "channels",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("protocol", String(20), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("keys", Text, nullable=False),  # JSON list: the upstream needs them in clear
    Column("route_class", String(20), nullable=True),
    Column("models", Text, nullable=False),  # JSON list
    Column("model_map", Text, nullable=False),  # JSON object
    Column("priority", Integer, nullable=False),
    Column("weight", Integer, nullable=False),
    Column("max_concurrency", Integer, nullable=False),
    Column("enabled", Integer, nullable=False),
    Column("cost_per_second_micros", BigInteger, nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("disabled_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

breakers = Table(
    "breakers",
    metadata,
    Column("channel", String(80), primary_key=True),  # no foreign key: `local` has no row
    Column("key_ref", String(40), primary_key=True),  # "" for the channel's own breaker
    Column("consecutive_failures", Integer, nullable=False),
    Column("trips_in_a_row", Integer, nullable=False),
    Column("open_until", Float, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # newest first: by id
    Column("created_at", BigInteger, nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", Text, nullable=False),  # JSON object, never a secret
    Column("actor_kind", String(20), nullable=False),
    Column("actor_address", String(100), nullable=True),
    Column("actor_tenant_id", String(40), nullable=True),
    Index("ix_audit_log_action", "action", "id"),
    Index("ix_audit_log_target", "target", "id"),
)
