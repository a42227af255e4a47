"""The chaos run of `tests/e2e/test_chaos.py` at benchmark size (2,000 jobs by default): the
scale-out shape of `scripts/cluster.sh` (PostgreSQL, Redis, moto's S3 server, 2 API processes,
2 workers) in front of a faulty fake upstream, workers and an API process SIGKILLed mid-run.
The run itself is `tests/chaos_harness.py`, shared with the test.

Prints: lost jobs, wrong cents, duplicate upstream submissions per job (from the fake's jobs:
two upstream jobs for one prompt are one duplicate) against those vidrelay counted as possible
orphans, the time from the first create until no job is queued or running, and the peak RSS of
every process incarnation; then every broken promise. Exits 0 when there is none.

Needs PostgreSQL and Redis (`source scripts/services.sh`: it exports their URLs), like the
test suite. Run from the repository root:

    python bench/chaos.py [--jobs 2000] [--clients 50] [--tenants 5] [--balance-usd 300]
                          [--worker-kills 3] [--api-kills 1] [--min-s 0.5] [--max-s 3]
                          [--fail-share 0.1] [--drain-timeout-s 600] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `tests` is a package there

from tests.chaos_harness import (
    ChaosPlan,
    ChaosRun,
    cluster_settings,
    fresh_database,
    fresh_seed,
    print_summary,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument(
        "--balance-usd", type=Decimal, default=Decimal(300), help="each tenant's top-up"
    )
    parser.add_argument("--worker-kills", type=int, default=3)
    parser.add_argument("--api-kills", type=int, default=1)
    parser.add_argument("--min-s", type=float, default=0.5, help="shortest upstream job")
    parser.add_argument("--max-s", type=float, default=3.0, help="longest upstream job")
    parser.add_argument("--fail-share", type=float, default=0.1)
    parser.add_argument("--drain-timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--keep", type=Path, help="run dir to keep (logs), instead of a temporary one"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    redis_url = os.environ.get("VIDRELAY_TEST_REDIS_URL")
    if not redis_url or not os.environ.get("VIDRELAY_TEST_POSTGRES_URL"):
        print("needs PostgreSQL and Redis: source scripts/services.sh first", file=sys.stderr)
        return 1
    plan = ChaosPlan(
        jobs=args.jobs,
        clients=args.clients,
        tenants=args.tenants,
        balance_usd=args.balance_usd,
        worker_kills=args.worker_kills,
        api_kills=args.api_kills,
        job_s=(args.min_s, args.max_s),
        fail_share=args.fail_share,
        drain_timeout_s=args.drain_timeout_s,
    )
    fresh_seed()
    with contextlib.ExitStack() as stack:
        run_dir = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database_url = stack.enter_context(fresh_database())
        run = ChaosRun(plan, run_dir / "cluster", cluster_settings(database_url, redis_url))
        try:
            outcome = run.run()
        finally:
            stopped = run.cluster.stop()
            if stopped.returncode != 0:
                print(f"cluster.sh stop: {stopped.stderr}", file=sys.stderr)
    print_summary(outcome)
    return 0 if not outcome.problems() and stopped.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
