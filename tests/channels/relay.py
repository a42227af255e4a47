"""A running vidrelay (app + engine, in process) in front of fake upstreams, for channel tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import make_settings
from vidrelay.api.app import create_app
from vidrelay.api.context import AppContext
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.store import accounts
from vidrelay.store import channels as channel_store

FAST = {
    "poll_first_s": 0.1,
    "poll_growth": 0.0,
    "poll_steady_s": 0.2,
    "collect_retry_s": 0.05,
    "dispatch_retry_s": 0.1,
    "upstream_timeout_s": 2.0,
    "channel_refresh_s": 0.05,
    "channel_probe_s": 0.2,
}


def openai_channel(name: str, base_url: str, **overrides: Any) -> Channel:
    values: dict[str, Any] = {
        "name": name,
        "protocol": ChannelProtocol.OPENAI,
        "route_class": RouteClass.OFFICIAL,
        "models": ("sora-2",),
        "base_url": base_url,
        "keys": ("sk-up-a1",),
    }
    values.update(overrides)
    return Channel(**values).validate()


@dataclass
class Relay:
    app: FastAPI
    client: httpx.AsyncClient
    key: str
    tenant_id: str

    @property
    def context(self) -> AppContext:
        context: AppContext = self.app.state.context
        return context

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def declare(self, *channels: Channel) -> None:
        async with self.context.db.write() as conn:
            for channel in channels:
                await channel_store.save_channel(conn, channel)
        self.context.channels.invalidate()

    async def create(self, **fields: str) -> httpx.Response:
        data = {"prompt": "a lighthouse at dusk", "seconds": "4", **fields}
        return await self.client.post("/v1/videos", headers=self.auth, data=data)

    async def submit(self, **fields: str) -> str:
        response = await self.create(**fields)
        assert response.status_code == 200, response.text
        video_id: str = response.json()["id"]
        return video_id

    async def video(self, video_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/videos/{video_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def finished(self, video_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            body = await self.video(video_id)
            if body["status"] in ("completed", "failed"):
                return body
            assert time.monotonic() < deadline, f"{video_id} still {body['status']}"
            await asyncio.sleep(0.05)

    async def money(self) -> tuple[int, int]:
        """(balance, ledger sum) in micro-dollars."""
        async with self.context.db.read() as conn:
            found = await accounts.find_tenant(conn, "alice")
            assert found is not None
            return found.balance_micros, await accounts.ledger_sum(conn, found.id)


STARTING_BALANCE = usd_to_micros("50")


@asynccontextmanager
async def running_relay(
    data_dir: Path, database_url: str, **overrides: Any
) -> AsyncIterator[Relay]:
    settings = make_settings(data_dir, database_url, **{**FAST, **overrides})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        context: AppContext = app.state.context
        async with context.db.write() as conn:
            tenant = await accounts.ensure_tenant(conn, "alice")
            await accounts.top_up(conn, tenant.id, STARTING_BALANCE, "test")
            _key_id, key = await accounts.create_key(conn, tenant.id)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Relay(app, client, key, tenant.id)
