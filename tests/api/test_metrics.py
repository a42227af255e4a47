"""`/metrics` speaks the Prometheus text format, counts what the database says happened (a job
completed on one channel, one failed on another, the ledger, the channels), keeps its labels
bounded whatever ids clients send, and asks for `VIDRELAY_METRICS_TOKEN` when it is set."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import func, select

from tests.channels.relay import openai_channel, running_relay
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.store.tables import jobs, ledger_entries

TOKEN = "metrics-secret"


def samples(text: str) -> Iterator[Sample]:
    for family in text_string_to_metric_families(text):
        yield from family.samples


def value(text: str, name: str, **labels: str) -> float:
    found = [s.value for s in samples(text) if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, found)
    return found[0]


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_metrics_count_a_completed_and_a_failed_job_as_the_database_does(
    tmp_path: Path, database_url: str
) -> None:
    renderer = Channel(
        name="render",
        protocol=ChannelProtocol.LOCAL,
        route_class=RouteClass.OFFICIAL,
        models=("sora-2",),
    ).validate()
    dead = openai_channel("dead", "http://127.0.0.1:1", route_class=RouteClass.REVERSE)
    async with running_relay(tmp_path / "data", database_url, max_attempts=1) as relay:
        await relay.declare(renderer, dead)
        completed = await relay.submit(seconds="4")  # official: the renderer
        failed = await relay.submit(seconds="10")  # reverse: nobody listens there
        assert (await relay.finished(completed))["status"] == "completed"
        assert (await relay.finished(failed))["status"] == "failed"
        text = await scrape(relay.client)
        async with relay.context.db.read() as conn:
            finished = (
                await conn.execute(
                    select(jobs.c.model, jobs.c.channel, jobs.c.status, func.count()).group_by(
                        jobs.c.model, jobs.c.channel, jobs.c.status
                    )
                )
            ).all()
            ledger = dict(
                (
                    await conn.execute(
                        select(
                            ledger_entries.c.kind, func.sum(ledger_entries.c.amount_micros)
                        ).group_by(ledger_entries.c.kind)
                    )
                ).all()
            )
    assert sorted(finished) == [
        ("sora-2", "dead", "failed", 1),
        ("sora-2", "render", "completed", 1),
    ]
    for model, channel, status, count in finished:
        assert (
            value(
                text, "vidrelay_jobs_finished_total", model=model, channel=channel, outcome=status
            )
            == count
        )
    assert value(text, "vidrelay_jobs_accepted_total", model="sora-2") == 2
    assert value(text, "vidrelay_job_duration_seconds_count", model="sora-2", channel="render") == 1
    assert (
        value(
            text,
            "vidrelay_upstream_requests_total",
            channel="dead",
            operation="submit",
            outcome="unavailable",
        )
        == 1
    )
    assert (
        value(
            text,
            "vidrelay_upstream_requests_total",
            channel="render",
            operation="submit",
            outcome="ok",
        )
        == 1
    )
    assert set(ledger) == {"top_up", "charge", "refund"}
    for kind, micros in ledger.items():
        assert value(text, "vidrelay_ledger_usd_total", kind=kind) == int(micros) / 1_000_000
    assert value(text, "vidrelay_channel_up", channel="render") == 1
    assert value(text, "vidrelay_orphaned_submissions") == 0
    assert value(text, "vidrelay_queue_depth") == 0
    assert (
        value(text, "vidrelay_http_requests_total", route="/v1/videos", method="POST", status="200")
        == 2
    )


async def test_a_hundred_polled_video_ids_are_one_series_of_their_route(
    tmp_path: Path, database_url: str
) -> None:
    async with running_relay(tmp_path / "data", database_url) as relay:
        for _ in range(100):
            response = await relay.client.get(
                f"/v1/videos/video_{secrets.token_hex(24)}", headers=relay.auth
            )
            assert response.status_code == 404
        await relay.client.get(f"/no/such/{secrets.token_hex(8)}")
        text = await scrape(relay.client)
    counted = sorted(
        (s.labels["route"], s.labels["method"], s.labels["status"])
        for s in samples(text)
        if s.name == "vidrelay_http_requests_total"
    )
    assert counted == [("/v1/videos/{video_id}", "GET", "404"), ("unmatched", "GET", "404")]
    assert (
        value(
            text,
            "vidrelay_http_requests_total",
            route="/v1/videos/{video_id}",
            method="GET",
            status="404",
        )
        == 100
    )
    assert (
        value(text, "vidrelay_http_request_duration_seconds_count", route="/v1/videos/{video_id}")
        == 100
    )


async def test_metrics_ask_for_the_token_when_one_is_set(tmp_path: Path, database_url: str) -> None:
    async with running_relay(tmp_path / "data", database_url, metrics_token=TOKEN) as relay:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = await relay.client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "invalid_metrics_token"
            assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
            assert TOKEN not in refused.text
        text = await scrape(relay.client, Authorization=f"Bearer {TOKEN}")
    assert "vidrelay_jobs_accepted_total" in text or "vidrelay_http_requests" in text
