"""Models as data on SQLite and PostgreSQL: declared through `/admin/models`, listed by
`/v1/models` with their parameters and the caller's prices, validated and priced at create,
stored on the job as accepted, removed only when nothing depends on them, and seen by every
replica."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import (
    ADMIN_TOKEN,
    KeyMaker,
    admin,
    make_settings,
    tenant_balance_usd,
    wait_for_status,
)
from vidrelay.api.app import create_app
from vidrelay.api.context import AppContext
from vidrelay.api.model_views import model_object
from vidrelay.domain.catalog import DEFAULT_CATALOG
from vidrelay.settings import Settings
from vidrelay.shipped_models import shipped_models
from vidrelay.store import accounts

ACME: dict[str, Any] = {
    "owned_by": "acme",
    "sizes": ["640x360", "360x640", "1920x1080"],
    "capabilities": ["audio"],
    "routes": [{"route_class": "official", "seconds_range": [2, 6]}],
    "params": [
        {"name": "resolution", "type": "enum", "values": ["720p", "1080p"], "default": "720p"},
        {"name": "seed", "type": "int", "min": 0, "max": 4294967295},
        {"name": "generate_audio", "type": "bool", "default": False},
        {"name": "cfg_scale", "type": "number", "min": 0, "max": 1},
        {"name": "negative_prompt", "type": "string", "max_length": 50},
    ],
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, channel_refresh_s=0.05
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def declare_acme(client: httpx.AsyncClient) -> None:
    await admin(client, "PUT", "/admin/models/acme-video-1", 201, json=ACME)
    for rule in (
        {"model": "acme-video-1", "per_second_usd": "0.10"},
        {"model": "acme-video-1", "per_second_usd": "0.25", "when": {"resolution": "1080p"}},
        {
            "model": "acme-video-1",
            "per_second_usd": "0.40",
            "when": {"resolution": "1080p", "generate_audio": True},
        },
    ):
        await admin(client, "PUT", "/admin/prices", json=rule)


async def post_form(client: httpx.AsyncClient, key: str, data: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/videos", data=data, files={"_": (None, "")}, headers=auth(key))


# --- /v1/models ----------------------------------------------------------------------------


async def test_v1_models_lists_the_seed_catalog_with_routes_sizes_and_the_callers_prices(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "5")
    context: AppContext = app.state.context
    async with context.db.write() as conn:
        await accounts.set_group(conn, "vip", 800_000)
        tenant = await accounts.find_tenant(conn, "alice")
        assert tenant is not None
        await accounts.set_tenant_options(conn, tenant.id, group="vip")
    response = await client.get("/v1/models", headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    by_id = {model["id"]: model for model in body["data"]}
    assert set(by_id) == {"sora-2", "sora-2-pro"}
    sora = by_id["sora-2"]
    assert (sora["object"], sora["owned_by"]) == ("model", "openai")
    assert isinstance(sora["created"], int) and sora["created"] > 0
    video = sora["video"]
    assert [(r["route_class"], r["seconds"]) for r in video["routes"]] == [
        ("official", ["4", "8", "12"]),
        ("reverse", ["10", "15"]),
    ]
    assert video["sizes"] == ["720x1280", "1280x720", "1024x1792", "1792x1024"]
    assert video["defaults"] == {"size": "720x1280", "seconds": "4"}
    assert "input_reference" in video["capabilities"]
    # vip pays 0.8 of $0.10/s.
    assert [p["per_second_usd"] for p in video["prices"]] == ["0.080000"]
    pro_prices = {
        p["size_class"]: p["per_second_usd"] for p in by_id["sora-2-pro"]["video"]["prices"]
    }
    assert pro_prices == {"standard": "0.240000", "high": "0.400000"}

    one = await client.get("/v1/models/sora-2-pro", headers=auth(key))
    assert one.status_code == 200 and one.json() == by_id["sora-2-pro"]
    missing = await client.get("/v1/models/sora-9", headers=auth(key))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
    assert (await client.get("/v1/models")).status_code == 401


async def test_v1_models_shows_only_what_an_enabled_channel_serves(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "5")
    channel = {
        "name": "vendor-a",
        "protocol": "openai",
        "base_url": "http://127.0.0.1:9",
        "keys": ["sk-up-1"],
        "route_class": "official",
        "models": ["sora-2"],
    }
    await admin(client, "POST", "/admin/channels", json=channel)
    listed = (await client.get("/v1/models", headers=auth(key))).json()["data"]
    assert [model["id"] for model in listed] == ["sora-2"]
    assert [route["route_class"] for route in listed[0]["video"]["routes"]] == ["official"]
    await admin(client, "POST", "/admin/channels/vendor-a/disable")
    assert (await client.get("/v1/models", headers=auth(key))).json()["data"] == []
    assert (await client.get("/v1/models/sora-2", headers=auth(key))).status_code == 404


# --- declaring and creating ----------------------------------------------------------------


async def test_a_declared_model_is_listed_validated_priced_by_condition_and_stored_as_accepted(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "50")
    await declare_acme(client)
    listed = await client.get("/v1/models/acme-video-1", headers=auth(key))
    video = listed.json()["video"]
    assert video["routes"] == [
        {
            "route_class": "official",
            "seconds": ["2", "3", "4", "5", "6"],
            "default_seconds": "2",
            "seconds_range": [2, 6],
        }
    ]
    assert video["params"][0] == {
        "name": "resolution",
        "type": "enum",
        "values": ["720p", "1080p"],
        "default": "720p",
    }
    assert {tuple(sorted(p["when"].items())) for p in video["prices"]} == {
        (),
        (("resolution", "1080p"),),
        (("generate_audio", "true"), ("resolution", "1080p")),
    }

    # multipart (what the SDKs send): 1080p without audio: the one-condition rule, 4 s x $0.25
    made = await post_form(
        client,
        key,
        {
            "prompt": "a paper boat",
            "model": "acme-video-1",
            "seconds": "4",
            "resolution": "1080p",
            "seed": "42",
            "cfg_scale": "0.5",
        },
    )
    assert made.status_code == 200, made.text
    assert (await tenant_balance_usd(app, "alice"))[0] == 49_000_000
    # JSON: 1080p with audio on: the two-condition rule, 5 s x $0.40
    made_json = await client.post(
        "/v1/videos",
        json={
            "prompt": "a paper boat",
            "model": "acme-video-1",
            "seconds": 5,
            "size": "1920x1080",
            "resolution": "1080p",
            "generate_audio": True,
        },
        headers=auth(key),
    )
    assert made_json.status_code == 200, made_json.text
    assert (await tenant_balance_usd(app, "alice")) == (47_000_000, 47_000_000)

    job = await admin(client, "GET", f"/admin/jobs/{made.json()['id']}")
    assert job["request"]["params"] == {
        "resolution": "1080p",
        "seed": 42,
        "generate_audio": False,
        "cfg_scale": 0.5,
    }
    assert (job["request"]["size"], job["price_usd"]) == ("640x360", "1.000000")
    charges = (await admin(client, "GET", "/admin/ledger", params={"kind": "charge"}))["data"]
    notes = {entry["job_id"]: entry["note"] for entry in charges}
    assert notes[made_json.json()["id"]] == (
        "acme-video-1 5s 1920x1080 resolution=1080p generate_audio=true"
    )
    await wait_for_status(client, made.json()["id"], key)
    await wait_for_status(client, made_json.json()["id"], key)


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"resolution": "4k"}, "resolution", "invalid_value"),
        ({"resolution": "720P"}, "resolution", "invalid_value"),
        ({"seed": "-1"}, "seed", "invalid_value"),
        ({"seed": "twelve"}, "seed", "invalid_value"),
        ({"generate_audio": "maybe"}, "generate_audio", "invalid_value"),
        ({"generate_audio": "2"}, "generate_audio", "invalid_value"),
        ({"cfg_scale": "1.5"}, "cfg_scale", "invalid_value"),
        ({"cfg_scale": "inf"}, "cfg_scale", "invalid_value"),
        ({"negative_prompt": "x" * 51}, "negative_prompt", "invalid_value"),
        ({"motion": "0.5"}, "motion", "unknown_parameter"),
        ({"seconds": "7"}, "seconds", "invalid_value"),
        ({"size": "1280x720"}, "size", "invalid_value"),
        (
            {"input_reference[image_url]": "https://example.com/a.png"},
            "input_reference",
            "unsupported_capability",
        ),
        ({"character_url": "https://example.com/a.mp4"}, "character_url", "unsupported_capability"),
    ],
)
async def test_a_bad_declared_parameter_is_a_400_naming_it_and_charges_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_key: KeyMaker,
    fields: dict[str, str],
    param: str,
    code: str,
) -> None:
    key = await make_key("alice", "50")
    await declare_acme(client)
    response = await post_form(
        client, key, {"prompt": "a paper boat", "model": "acme-video-1", **fields}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert await tenant_balance_usd(app, "alice") == (50_000_000, 50_000_000)


async def test_the_same_parameters_in_either_encoding_replay_an_idempotent_request(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "50")
    await declare_acme(client)
    headers = {**auth(key), "Idempotency-Key": "order-1"}
    fields = {"prompt": "p", "model": "acme-video-1", "seed": "7", "generate_audio": "false"}
    first = await client.post("/v1/videos", data=fields, files={"_": (None, "")}, headers=headers)
    again = await client.post(
        "/v1/videos",
        json={"prompt": "p", "model": "acme-video-1", "seed": 7, "resolution": "720p"},
        headers=headers,
    )
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post(
        "/v1/videos", json={"prompt": "p", "model": "acme-video-1", "seed": 8}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"


async def test_the_local_renderer_renders_a_declared_size_and_length(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker, tmp_path: Path
) -> None:
    key = await make_key("alice", "50")
    await declare_acme(client)
    made = await post_form(
        client,
        key,
        {"prompt": "a lighthouse", "model": "acme-video-1", "size": "360x640", "seconds": "3"},
    )
    assert made.status_code == 200, made.text
    done = await wait_for_status(client, made.json()["id"], key)
    assert done["status"] == "completed", done
    content = await client.get(f"/v1/videos/{done['id']}/content", headers=auth(key))
    path = tmp_path / "out.mp4"
    path.write_bytes(content.content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (360, 640)
        assert stream.duration is not None and stream.time_base is not None
        assert float(stream.duration * stream.time_base) == pytest.approx(3.0, abs=0.1)


# --- the admin catalog ---------------------------------------------------------------------


async def test_admin_models_lists_the_catalog_and_refuses_a_bad_declaration_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    before = await admin(client, "GET", "/admin/models")
    assert [model["name"] for model in before["data"]] == ["sora-2", "sora-2-pro"]
    bad = {**ACME, "routes": [{"route_class": "official", "seconds": []}]}
    error = (await admin(client, "PUT", "/admin/models/acme-video-1", 400, json=bad))["error"]
    assert (error["param"], error["code"]) == ("routes[0].seconds", "invalid_declaration")
    bad_default = {**ACME, "params": [{"name": "fps", "type": "int", "max": 30, "default": 60}]}
    error = (await admin(client, "PUT", "/admin/models/acme-video-1", 400, json=bad_default))[
        "error"
    ]
    assert error["param"] == "params[0].default"
    clash = {**ACME, "name": "other"}
    await admin(client, "PUT", "/admin/models/acme-video-1", 400, json=clash)
    assert await admin(client, "GET", "/admin/models") == before
    await admin(client, "GET", "/admin/models/acme-video-1", 404)

    await admin(client, "PUT", "/admin/models/acme-video-1", 201, json=ACME)
    shown = await admin(client, "GET", "/admin/models/acme-video-1")
    assert shown["params"][1] == {"name": "seed", "type": "int", "min": 0, "max": 4294967295}
    assert shown["served_route_classes"] == ["official"]
    again = await admin(
        client, "PUT", "/admin/models/acme-video-1", json={**ACME, "owned_by": "acme2"}
    )
    assert again["owned_by"] == "acme2"


async def test_a_price_condition_must_name_a_declared_parameter_and_a_value_it_allows(
    client: httpx.AsyncClient,
) -> None:
    await declare_acme(client)
    for when, param in (({"fps": "24"}, "when.fps"), ({"resolution": "4k"}, "when.resolution")):
        rule = {"model": "acme-video-1", "per_second_usd": "1", "when": when}
        error = (await admin(client, "PUT", "/admin/prices", 400, json=rule))["error"]
        assert error["param"] == param
    # Dropping a parameter that a price rule compares is refused while the rule exists.
    no_resolution = {**ACME, "params": ACME["params"][1:]}
    conflict = await admin(client, "PUT", "/admin/models/acme-video-1", 409, json=no_resolution)
    assert conflict["error"]["code"] == "price_rule_conflict"
    for when in (["generate_audio=true", "resolution=1080p"], ["resolution=1080p"]):
        await admin(
            client, "DELETE", "/admin/prices", params={"model": "acme-video-1", "when": when}
        )
    await admin(client, "PUT", "/admin/models/acme-video-1", json=no_resolution)


async def test_a_model_is_removed_only_when_no_channel_lists_it_and_no_job_is_unfinished(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker, tmp_path: Path, database_url: str
) -> None:
    key = await make_key("alice", "50")
    await declare_acme(client)
    channel = {"name": "acme-local", "protocol": "local", "models": ["acme-video-1"]}
    await admin(client, "POST", "/admin/channels", json=channel)
    busy = await admin(client, "DELETE", "/admin/models/acme-video-1", 409)
    assert "acme-local" in busy["error"]["message"]
    unknown = {**channel, "name": "typo", "models": ["acme-video-2"]}
    error = (await admin(client, "POST", "/admin/channels", 400, json=unknown))["error"]
    assert "acme-video-2" in error["message"]
    await admin(client, "DELETE", "/admin/channels/acme-local")

    context: AppContext = app.state.context
    assert context.runner is not None
    await context.runner.stop()  # the job stays queued: unfinished
    made = await post_form(client, key, {"prompt": "p", "model": "acme-video-1"})
    assert made.status_code == 200, made.text
    unfinished = await admin(client, "DELETE", "/admin/models/acme-video-1", 409)
    assert unfinished["error"]["code"] == "model_in_use"
    from vidrelay.store import jobs as job_store

    async with context.db.write() as conn:
        await job_store.fail_and_refund(conn, made.json()["id"], "test", "stopped by the test")
    removed = await admin(client, "DELETE", "/admin/models/acme-video-1")
    assert removed == {
        "object": "model.deleted",
        "name": "acme-video-1",
        "deleted": True,
        "price_rules_deleted": 3,
    }
    gone = await post_form(client, key, {"prompt": "p", "model": "acme-video-1"})
    assert gone.json()["error"]["code"] == "model_not_found"
    assert (await admin(client, "GET", "/admin/prices"))["rules"][0]["model"] != "acme-video-1"
    await admin(client, "DELETE", "/admin/models/acme-video-1", 404)


@asynccontextmanager
async def replica(tmp_path: Path, database_url: str, name: str) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(
        make_settings(
            tmp_path / name,
            database_url,
            admin_token=ADMIN_TOKEN,
            channel_refresh_s=0.2,
            engine=False,
        )
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_a_model_changed_on_one_replica_is_seen_by_another(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        replica(tmp_path, database_url, "a") as first,
        replica(tmp_path, database_url, "b") as second,
    ):
        created = await admin(
            first, "POST", "/admin/tenants", json={"name": "alice", "balance_usd": "10"}
        )
        assert created["name"] == "alice"
        from vidrelay.store.database import Database

        db = Database(database_url)
        try:
            async with db.write() as conn:
                tenant = await accounts.find_tenant(conn, "alice")
                assert tenant is not None
                _key_id, key = await accounts.create_key(conn, tenant.id)
        finally:
            await db.dispose()
        # The second replica has the seed catalog cached.
        refused = await post_form(second, key, {"prompt": "p", "model": "acme-video-1"})
        assert refused.json()["error"]["code"] == "model_not_found"
        await declare_acme(first)
        accepted = await _eventually_accepted(
            second, key, {"prompt": "p", "model": "acme-video-1", "seed": "1"}
        )
        assert accepted["model"] == "acme-video-1"
        # A change of a parameter on the first is enforced by the second.
        narrower = {
            **ACME,
            "params": [
                *ACME["params"][:1],
                {"name": "seed", "type": "int", "max": 0},
                *ACME["params"][2:],
            ],
        }
        await admin(first, "PUT", "/admin/models/acme-video-1", json=narrower)
        for _ in range(50):
            response = await post_form(
                second, key, {"prompt": "p", "model": "acme-video-1", "seed": "1"}
            )
            if response.status_code == 400:
                break
            await asyncio.sleep(0.05)
        assert response.json()["error"]["param"] == "seed"


async def _eventually_accepted(
    client: httpx.AsyncClient, key: str, fields: dict[str, str]
) -> dict[str, Any]:
    for _ in range(50):
        response = await post_form(client, key, fields)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.json()["error"]["code"] == "model_not_found", response.text
        await asyncio.sleep(0.05)
    raise AssertionError("the other replica never saw the model")


async def test_an_urlencoded_create_carries_declared_parameters_too(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "50")
    await declare_acme(client)
    made = await client.post(
        "/v1/videos",
        data={"prompt": "p", "model": "acme-video-1", "resolution": "1080p", "seconds": "2"},
        headers=auth(key),
    )
    assert made.status_code == 200, made.text
    assert made.request.headers["content-type"] == "application/x-www-form-urlencoded"
    job = await admin(client, "GET", f"/admin/jobs/{made.json()['id']}")
    assert job["request"]["params"] == {"resolution": "1080p", "generate_audio": False}
    assert job["price_usd"] == "0.500000"  # 2 s x $0.25 (the 1080p rule)
    bad = await client.post(
        "/v1/videos",
        data={"prompt": "p", "model": "acme-video-1", "seed": "x"},
        headers=auth(key),
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "seed"
    await wait_for_status(client, made.json()["id"], key)


def test_a_model_shows_the_one_length_its_extension_takes() -> None:
    veo = next(entry.model for entry in shipped_models() if entry.model.name == "veo-3.1")
    assert model_object(veo, list(veo.routes), [])["video"]["extension_seconds"] == 7
    sora = DEFAULT_CATALOG.get("sora-2")
    assert sora is not None  # any of the route's lengths: none fixed
    assert model_object(sora, list(sora.routes), [])["video"]["extension_seconds"] is None
