"""Accepting a video without HTTP, as the console's playground does: `services/videos.py` takes
the order, applies the API's checks before any charge, and the job it queues shows in the
tenant's own listing like one made through `POST /v1/videos`."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import KeyMaker, tenant_balance_usd
from vidrelay.api.context import AppContext
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import Operation
from vidrelay.domain.errors import NotFound, PermissionDenied
from vidrelay.domain.keys import KeySpec
from vidrelay.services import videos as video_service
from vidrelay.services.keys import authenticate, create_key
from vidrelay.services.videos import DerivedOrder, VideoOrder


async def test_the_playground_accepts_a_video_through_the_service_the_api_uses(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    context: AppContext = app.state.context
    key = await make_key("alice", "10")
    principal = await authenticate(context.db, key)
    desk = context.video_desk

    order = VideoOrder(fields={"prompt": "a lighthouse at dusk", "seconds": "4"})
    accepted = await video_service.accept_video(desk, principal, order)
    assert not accepted.replayed and accepted.job.prompt == "a lighthouse at dusk"
    balance, ledger = await tenant_balance_usd(app, "alice")
    assert balance == ledger < 10_000_000  # charged, through the ledger
    listed = (await client.get("/v1/videos", headers={"Authorization": f"Bearer {key}"})).json()
    assert [video["id"] for video in listed["data"]] == [accepted.job.id]

    # the API's refusals, before any charge
    narrow = await create_key(context.db, "alice", KeySpec(models=("sora-2-pro",)), actor=CLI)
    with pytest.raises(PermissionDenied) as refused:
        await video_service.accept_video(desk, await authenticate(context.db, narrow.key), order)
    assert refused.value.code == "model_not_allowed"
    bob = await authenticate(context.db, await make_key("bob", "10"))
    remix = DerivedOrder(Operation.REMIX, {"prompt": "again"}, source_id=accepted.job.id)
    with pytest.raises(NotFound):
        await video_service.derive_video(desk, bob, remix)  # alice's video, not bob's
    assert await tenant_balance_usd(app, "alice") == (balance, ledger)
    assert await tenant_balance_usd(app, "bob") == (10_000_000, 10_000_000)
