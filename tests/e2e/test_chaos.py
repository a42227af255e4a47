"""Chaos: 300 jobs from 20 clients of 5 tenants on the scale-out shape (PostgreSQL, Redis, S3
when vidrelay has it, 2 API processes, 2 workers) in front of a faulty upstream, while a worker
is SIGKILLed three times and an API process once. Nothing is lost, charged twice or left
running, every video downloads whole from either API process, every terminal event reaches its
webhook, and `/metrics` agrees with the database (see tests/chaos_harness.py)."""

from __future__ import annotations

from pathlib import Path

from tests.chaos_harness import (
    ChaosPlan,
    ChaosRun,
    cluster_settings,
    fresh_database,
    fresh_seed,
    print_summary,
    redis_url_or_skip,
)


def test_no_job_or_cent_is_lost_when_workers_and_an_api_process_are_killed_mid_run(
    tmp_path: Path,
) -> None:
    redis_url = redis_url_or_skip()
    fresh_seed()
    with fresh_database() as database_url:
        run = ChaosRun(ChaosPlan(), tmp_path / "cluster", cluster_settings(database_url, redis_url))
        try:
            outcome = run.run()
        finally:
            stopped = run.cluster.stop()
    print_summary(outcome)
    assert outcome.problems() == []
    assert stopped.returncode == 0, stopped.stderr
    # the run went through what it claims to survive
    assert sorted(outcome.kills) == ["api-1", "worker-1", "worker-1", "worker-2"]
    assert len(outcome.accepted) > 100
    statuses = [job["status"] for job in outcome.jobs.values()]
    assert statuses.count("completed") > 50 and statuses.count("failed") > 0
    assert any(create.refused for create in outcome.creates)  # balances ran out
