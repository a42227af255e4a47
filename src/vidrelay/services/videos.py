"""Accepting a video: a create, or a remix, extension or edit of a video (DESIGN.md §4).

The API (`/v1/videos…`) and the console's playground both call these, so a job is accepted by
the same checks wherever it is ordered: every refusal (a model the key may not use or no
channel serves, another tenant's source or character, a bad reference image or upload) comes
before the charge; the charge and the insert are one transaction (`store.jobs.accept_job`).
Media a job needs is stored under its id first, and dropped if the accept fails or replays an
earlier one. The entrypoint parses the request and limits its rate; it does nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidrelay.domain.catalog import (
    NormalisedRequest,
    Operation,
    SourceVideo,
    derive_request,
    normalise_request,
)
from vidrelay.domain.channels import require_operation, require_served
from vidrelay.domain.errors import Conflict, InvalidRequest, NotFound
from vidrelay.domain.fingerprint import request_fingerprint
from vidrelay.domain.jobs import JobRecord, JobStatus, new_video_id
from vidrelay.domain.keys import check_model_allowed
from vidrelay.domain.pricing import quote
from vidrelay.engine.channels import operations_of
from vidrelay.media.reference_images import ReferenceImageChecker
from vidrelay.media.source_videos import probe_mp4
from vidrelay.media.storage import MediaStore
from vidrelay.outbound import check_url_at_create
from vidrelay.services.wakeups import NOBODY, Wakeups
from vidrelay.settings import Settings
from vidrelay.store import jobs as job_store
from vidrelay.store.accounts import Principal
from vidrelay.store.channels import ChannelDirectory
from vidrelay.store.characters import owned_characters
from vidrelay.store.database import Database
from vidrelay.store.jobs import Accepted
from vidrelay.store.models import ModelDirectory
from vidrelay.store.prices import price_rules_for


@dataclass(frozen=True)
class VideoDesk:
    """What accepting a video needs of the process that takes the order."""

    db: Database
    media: MediaStore
    models: ModelDirectory
    channels: ChannelDirectory
    reference_images: ReferenceImageChecker
    settings: Settings
    wakeups: Wakeups = NOBODY


@dataclass(frozen=True)
class VideoOrder:
    """A create as its caller sent it, before any check."""

    fields: Mapping[str, object]
    """`prompt`, `model`, `seconds`, `size`, `character_url`, `character_timestamps`,
    `callback_url`, each as sent (absent: not sent)."""
    params: Mapping[str, object] = field(default_factory=dict)
    """Every other field, as sent: the catalog types or refuses each."""
    character_ids: Sequence[str] = ()
    reference_image: bytes | None = None
    reference_url: str | None = None
    reference_file_id: str | None = None
    """Refused: vidrelay stores no files."""
    idempotency_key: str | None = None


@dataclass(frozen=True)
class DerivedOrder:
    """A remix, extension or edit as its caller sent it."""

    operation: Operation
    fields: Mapping[str, object]
    """`prompt`, `seconds`, `model` (of an upload), `callback_url`, each as sent."""
    source_id: str | None = None
    source_param: str = "video"
    """The field that named the source, for the errors about it."""
    source_upload: bytes | None = None
    idempotency_key: str | None = None


async def _checked_order(
    desk: VideoDesk, principal: Principal, order: VideoOrder
) -> NormalisedRequest:
    """The order against the catalog, the key's models and a channel serving its route."""
    fields = order.fields
    normalised = normalise_request(
        await desk.models.catalog(),
        prompt=fields.get("prompt"),
        model=fields.get("model"),
        seconds=fields.get("seconds"),
        size=fields.get("size"),
        character_url=fields.get("character_url"),
        character_timestamps=fields.get("character_timestamps"),
        params=order.params,
        has_reference=bool(
            order.reference_image is not None or order.reference_url or order.reference_file_id
        ),
        character_ids=order.character_ids,
    )
    check_model_allowed(principal.key_models, normalised.model)
    require_served(await desk.channels.declared(), normalised.model, normalised.route_class)
    return normalised


async def price_video(
    desk: VideoDesk, principal: Principal, order: VideoOrder
) -> tuple[NormalisedRequest, int]:
    """The checks `accept_video` makes before it stores or charges anything, and what it would
    charge now (0 with billing off), accepting nothing: the playground's "Price"."""
    normalised = await _checked_order(desk, principal, order)
    if not desk.settings.billing:
        return normalised, 0
    async with desk.db.read() as conn:
        rules = await price_rules_for(conn, normalised.model)
    return normalised, quote(rules, normalised, principal.multiplier_ppm)


async def accept_video(desk: VideoDesk, principal: Principal, order: VideoOrder) -> Accepted:
    """Check, charge and queue a new video."""
    fields = order.fields
    normalised = await _checked_order(desk, principal, order)
    allowlist = desk.settings.outbound_allowlist_entries
    callback_url = _callback_url(fields)
    for param, url in (("callback_url", callback_url), ("character_url", normalised.character_url)):
        if url is not None:
            check_url_at_create(url, param=param, allowlist=allowlist)
    if order.reference_file_id:
        raise InvalidRequest(
            "input_reference[file_id] is not supported here; upload the image as "
            "input_reference or pass input_reference[image_url].",
            param="input_reference",
        )
    reference: bytes | None = None
    frame = (normalised.width, normalised.height)
    if order.reference_image is not None:
        reference = await desk.reference_images.fitted(
            order.reference_image, "input_reference", frame
        )
    elif order.reference_url:
        reference = await desk.reference_images.fitted_from_url(
            order.reference_url, "input_reference", frame, allowlist
        )
    job_id = new_video_id()
    if reference is not None:
        await desk.media.save_reference(job_id, reference)
    try:
        await _require_characters(desk, principal, normalised)
    except BaseException:
        await desk.media.delete_job_media(job_id)
        raise
    new_job = _new_job(
        desk,
        principal,
        job_id,
        normalised,
        callback_url,
        order.idempotency_key,
        has_reference=reference is not None,
        request_hash=request_fingerprint(normalised, callback_url, reference),
    )
    return await _accept(desk, new_job)


async def derive_video(desk: VideoDesk, principal: Principal, order: DerivedOrder) -> Accepted:
    """Check, charge and queue a remix, extension or edit."""
    normalised = await _derived_request(desk, principal, order)
    check_model_allowed(principal.key_models, normalised.model)
    declared = await desk.channels.declared()
    require_served(declared, normalised.model, normalised.route_class)
    require_operation(declared, normalised, operations_of)
    callback_url = _callback_url(order.fields)
    if callback_url is not None:
        check_url_at_create(
            callback_url, param="callback_url", allowlist=desk.settings.outbound_allowlist_entries
        )
    job_id = new_video_id()
    if order.source_upload is not None:
        await desk.media.save_source_video(job_id, order.source_upload)
    new_job = _new_job(
        desk,
        principal,
        job_id,
        normalised,
        callback_url,
        order.idempotency_key,
        has_reference=False,
        request_hash=request_fingerprint(normalised, callback_url, None, order.source_upload),
    )
    return await _accept(desk, new_job)


def _callback_url(fields: Mapping[str, object]) -> str | None:
    raw = fields.get("callback_url")
    return str(raw) if raw else None


def _new_job(
    desk: VideoDesk,
    principal: Principal,
    job_id: str,
    normalised: NormalisedRequest,
    callback_url: str | None,
    idempotency_key: str | None,
    *,
    has_reference: bool,
    request_hash: str,
) -> job_store.NewJob:
    return job_store.NewJob(
        id=job_id,
        tenant_id=principal.tenant_id,
        key_id=principal.key_id,
        request=normalised,
        callback_url=callback_url,
        has_reference=has_reference,
        multiplier_ppm=principal.multiplier_ppm,
        key_limits=principal.key_limits,
        tenant_limits=principal.tenant_limits,
        key_has_spend_limit=principal.key_has_spend_limit,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        charge=desk.settings.billing,
    )


async def _accept(desk: VideoDesk, new_job: job_store.NewJob) -> Accepted:
    """Charge and insert the job (its media already stored under its id, and dropped if the
    accept fails or replays an earlier one)."""
    try:
        accepted = await job_store.accept_job(desk.db, new_job)
    except BaseException:
        await desk.media.delete_job_media(new_job.id)
        raise
    if accepted.replayed:
        await desk.media.delete_job_media(new_job.id)
    else:
        desk.wakeups.jobs()
    return accepted


async def _require_characters(
    desk: VideoDesk, principal: Principal, normalised: NormalisedRequest
) -> None:
    """The characters a create names must be the caller's own (404 otherwise) and some enabled
    channel must be able to draw them in (400)."""
    if not normalised.character_ids:
        return
    async with desk.db.read() as conn:
        found = await owned_characters(conn, normalised.character_ids, principal.tenant_id)
    for character_id in normalised.character_ids:
        if character_id not in found:
            raise NotFound(f"No character found with id {character_id!r}.", param="characters")
    require_operation(await desk.channels.declared(), normalised, operations_of)


async def _derived_request(
    desk: VideoDesk, principal: Principal, order: DerivedOrder
) -> NormalisedRequest:
    catalog = await desk.models.catalog()
    fields = order.fields
    common: dict[str, Any] = {
        "operation": order.operation,
        "prompt": fields.get("prompt"),
        "seconds": fields.get("seconds"),
    }
    if order.source_upload is not None:
        info = probe_mp4(order.source_upload, "video")
        source = SourceVideo(seconds=info.whole_seconds)
        return derive_request(catalog, source=source, model=fields.get("model"), **common)
    if not order.source_id:
        raise InvalidRequest(
            'video is required: {"id": "video_…"} of a completed video of yours, or an MP4 file.',
            param="video",
            code="missing_required_parameter",
        )
    job = await _source_job(desk, order.source_id, principal, order.source_param)
    source = SourceVideo(
        seconds=int(job.request.result_seconds),
        video_id=job.id,
        prompt=job.prompt,
        channel=job.channel,
        upstream_job_id=job.upstream_job_id,
        key_ref=job.upstream_key_ref,
        upstream_video_ref=job.upstream_video_ref,
    )
    return derive_request(catalog, source=source, base=job.request, **common)


async def _source_job(
    desk: VideoDesk, video_id: str, principal: Principal, param: str
) -> JobRecord:
    """The caller's own video, completed and not expired: 404 for anyone else's (or none),
    409 for one still running, failed or past its expiry."""
    async with desk.db.read() as conn:
        job = await job_store.get_job(conn, video_id, principal.tenant_id)
    if job is None:
        raise NotFound(f"No video found with id {video_id[:80]!r}.", param=param)
    if job.status is not JobStatus.COMPLETED:
        raise Conflict(
            f"Video {video_id} is {job.status.value}; only a completed video can be used.",
            param=param,
            code="video_not_ready",
        )
    expired = job.expires_at is not None and job.expires_at < time.time()
    if expired or await desk.media.asset_info(job.id, "video") is None:
        raise Conflict(
            f"The content of video {video_id} has expired; it can no longer be used.",
            param=param,
            code="video_expired",
        )
    return job
