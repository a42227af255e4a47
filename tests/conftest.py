"""Shared fixtures: an app on SQLite and on PostgreSQL, keys, and a real `vidrelay serve`."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from vidrelay.api.app import create_app
from vidrelay.api.context import AppContext
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.settings import Settings
from vidrelay.store import accounts

POSTGRES_URL_ENV = "VIDRELAY_TEST_POSTGRES_URL"
REDIS_URL_ENV = "VIDRELAY_TEST_REDIS_URL"
ADMIN_TOKEN = "adm-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BACKENDS = ["sqlite", "postgresql"]


def postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} must be set on CI: PostgreSQL tests never skip there")
        pytest.skip(f"{POSTGRES_URL_ENV} is not set (run the tests with scripts/test.sh)")
    return url


def redis_url() -> str:
    """The test Redis; skips (fails on CI) when there is none."""
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{REDIS_URL_ENV} must be set on CI: Redis tests never skip there")
        pytest.skip(f"{REDIS_URL_ENV} is not set (run the tests with scripts/test.sh)")
    return url


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_postgres_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    """A fresh, empty database for one test; returns its URL and a function that drops it."""
    admin_url = postgres_admin_url()
    assert admin_url is not None
    name = "vr_test_" + secrets.token_hex(6)
    admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    async def drop() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


@pytest_asyncio.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'vidrelay.db'}"
        return
    url, drop = await create_postgres_database()
    try:
        yield url
    finally:
        await drop()


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "engine_tick_s": 0.05,
        "render_workers": 2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest_asyncio.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def admin(
    client: httpx.AsyncClient, method: str, path: str, expect: int = 200, **kwargs: Any
) -> Any:
    """A call to the admin API with the tests' admin token; its JSON answer."""
    response = await client.request(method, path, headers=ADMIN, **kwargs)
    assert response.status_code == expect, response.text
    return response.json()


KeyMaker = Callable[..., Awaitable[str]]


@pytest.fixture
def make_key(app: FastAPI) -> KeyMaker:
    async def make(tenant: str = "alice", balance_usd: str = "50") -> str:
        context: AppContext = app.state.context
        async with context.db.write() as conn:
            found = await accounts.ensure_tenant(conn, tenant)
            micros = usd_to_micros(balance_usd)
            if micros:
                await accounts.top_up(conn, found.id, micros, "test")
            _key_id, key = await accounts.create_key(conn, found.id)
        return key

    return make


async def tenant_balance_usd(app: FastAPI, tenant: str) -> tuple[int, int]:
    """(cached balance, ledger sum) in micro-dollars for a tenant."""
    context: AppContext = app.state.context
    async with context.db.read() as conn:
        found = await accounts.find_tenant(conn, tenant)
        assert found is not None
        return found.balance_micros, await accounts.ledger_sum(conn, found.id)


async def wait_for_status(
    client: httpx.AsyncClient,
    video_id: str,
    key: str,
    statuses: tuple[str, ...] = ("completed", "failed"),
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get(
            f"/v1/videos/{video_id}", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in statuses:
            return body
        assert asyncio.get_running_loop().time() < deadline, f"still {body['status']}"
        await asyncio.sleep(0.1)
