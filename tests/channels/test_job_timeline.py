"""A job's timeline across channels: the failover and its reason, the channel and key hint it
was submitted with (never the key), its failure and the exact refund."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels.relay import STARTING_BALANCE, openai_channel, running_relay
from tests.conftest import ADMIN_TOKEN, admin
from tests.fakes.openai_upstream import FakeOpenAIUpstream

KEY_A, KEY_B = "sk-up-vendor-a-0123456789", "sk-up-vendor-b-9876543210"


@pytest.fixture
def vendor_a() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={KEY_A})
    with fake.serve():
        yield fake


@pytest.fixture
def vendor_b() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={KEY_B})
    with fake.serve():
        yield fake


async def test_a_failover_then_an_upstream_failure_shows_why_and_the_exact_refund(
    tmp_path: Path, database_url: str, vendor_a: FakeOpenAIUpstream, vendor_b: FakeOpenAIUpstream
) -> None:
    vendor_a.submit_500s = 1
    vendor_b.fail_jobs = True
    async with running_relay(tmp_path / "data", database_url, admin_token=ADMIN_TOKEN) as relay:
        await relay.declare(
            openai_channel("vendor-a", vendor_a.url, keys=(KEY_A,), priority=10),
            openai_channel("vendor-b", vendor_b.url, keys=(KEY_B,), priority=0),
        )
        video = await relay.finished(await relay.submit(seconds="8"))
        assert video["status"] == "failed"
        job = await admin(relay.client, "GET", f"/admin/jobs/{video['id']}")
        assert await relay.money() == (STARTING_BALANCE, STARTING_BALANCE)
    events = job["events"]
    kinds = [event["kind"] for event in events]
    assert kinds[:3] == ["accepted", "failover", "submitted"], kinds
    assert kinds[-2:] == ["failed", "refunded"], kinds
    assert set(kinds[3:-2]) <= {"upstream_status"}, kinds
    accepted, failover, submitted = (event["details"] for event in events[:3])
    assert accepted == {"price_usd": "0.80"}
    assert failover["from_channel"] == "vendor-a" and failover["to_channel"] == "vendor-b"
    assert failover["code"] and failover["message"]
    assert submitted == {"channel": "vendor-b", "key_hint": "sk-up…3210"}
    assert events[-2]["details"]["code"] == video["error"]["code"] == "moderation_blocked"
    assert events[-1]["details"] == {"amount_usd": "0.80"}
    assert job["price_usd"] == "0.800000" and job["channel"] == "vendor-b"
    text = json.dumps(job)
    for secret in (KEY_A, KEY_B, "127.0.0.1", f":{vendor_a.port}"):
        assert secret not in text, secret
