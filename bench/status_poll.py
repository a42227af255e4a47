"""Benchmark `GET /v1/videos/{id}` on a completed job against a bare Starlette endpoint, with
vidrelay's access log on and off (issue 14's two ratios).

Every server runs with the same uvicorn settings as `vidrelay serve` (`run_server`: one process,
default loop/http, uvicorn's own access line off), logging to a file. Two vidrelay servers share
one data directory: one with the default access log, one with `VIDRELAY_ACCESS_LOG=false`. Two
bare endpoints return the same JSON body with `JSONResponse` and check nothing: one writes an
equivalent access line through vidrelay's logging (same fields, a generated request id), one
writes nothing. Each pair runs bare, ours, bare, so drift shows. The load generator is `wrk`
(Debian's package; `apt-get install wrk`) when it is on PATH, else a cheap asyncio keep-alive
client in a separate process. It is a benchmark: it exits 0 whatever the
ratio is (non-zero only when it cannot run).

    python bench/status_poll.py [--seconds N] [--concurrency C] [--client {auto,wrk,python}]
                                [--declared-models N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    HOST,
    Processes,
    add_declared_models_option,
    create_key,
    declared_catalog,
    free_port,
    interrupt_on_sigterm,
    percentile,
    run_python_loadgen,
    vidrelay_command,
    wait_until_up,
)

GOAL = 0.5
WARMUP_S = 2.0
# Both servers run through `run_server`, as `vidrelay serve` does (src/vidrelay/api/http_server.py).
UVICORN_LOG_LEVEL = "info"
RENDER_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------- bare server mode


def serve_bare(port: int, body_file: Path, logs: bool) -> None:
    """The reference: one route, returns the stored body with JSONResponse, checks nothing;
    with `logs`, writes the access line vidrelay writes, through the same logging."""
    import structlog
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    body = json.loads(body_file.read_text())

    from vidrelay.api.http_server import run_server
    from vidrelay.logging_setup import configure_logging
    from vidrelay.settings import load_settings

    configure_logging()
    access_log = structlog.get_logger("bare.access")

    async def retrieve(request: Request) -> JSONResponse:
        started = time.perf_counter()
        response = JSONResponse(body)
        if logs:
            access_log.info(
                "request",
                method=request.method,
                route="/v1/videos/{video_id}",
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=os.urandom(16).hex(),
            )
        return response

    app = Starlette(routes=[Route("/v1/videos/{video_id}", retrieve)])

    run_server(app, load_settings(), HOST, port)


# --------------------------------------------------------------------------- python load generator


def loadgen(url_path: str, port: int, auth: str, concurrency: int, seconds: float) -> None:
    """The python client process: poll until the deadline, print what it saw as JSON."""
    request = (
        f"GET {url_path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: {auth}\r\n\r\n"
    ).encode()
    tally = run_python_loadgen(request, port, concurrency, seconds, WARMUP_S)
    measured = tally.measured()
    latencies = sorted(answer.latency for answer in measured)
    result = {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "non_2xx": sum(1 for answer in measured if answer.status != 200),
        # Like wrk's socket errors: connections that failed and requests that timed out.
        "errors": len(tally.errors) + tally.timeouts,
    }
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- orchestration


@dataclass
class Result:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


def completed_video(base: str, key: str) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        created = client.post(
            "/v1/videos",
            data={"prompt": "a paper boat on a rainy street", "seconds": "4", "size": "720x1280"},
            files={"_": (None, "")},
        )
        if created.status_code != 200:
            raise RuntimeError(f"create failed: {created.status_code} {created.text}")
        video: dict[str, Any] = created.json()
        deadline = time.monotonic() + RENDER_TIMEOUT_S
        while video["status"] not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"video still {video['status']} after {RENDER_TIMEOUT_S:.0f} s")
            time.sleep(0.25)
            response = client.get(f"/v1/videos/{video['id']}")
            if response.status_code != 200:
                raise RuntimeError(f"poll failed: {response.status_code} {response.text}")
            video = response.json()
        if video["status"] != "completed":
            raise RuntimeError(f"the video failed: {video.get('error')}")
        return video


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str, target: str) -> Result:
    rps = re.search(r"Requests/sec:\s*([\d.]+)", output)
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE)
    if not (rps and p50 and p99):
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Result(
        target=target,
        rps=float(rps.group(1)),
        p50_ms=_wrk_ms(p50.group(1)),
        p99_ms=_wrk_ms(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


def measure(
    processes: Processes,
    client: str,
    target: str,
    port: int,
    url_path: str,
    auth: str,
    concurrency: int,
    seconds: int,
) -> Result:
    timeout_s = WARMUP_S + seconds + 30
    if client == "wrk":
        base = ["wrk", "-t1", f"-c{concurrency}", "-H", f"Authorization: {auth}"]
        url = f"http://{HOST}:{port}{url_path}"
        warmup = processes.start([*base, f"-d{WARMUP_S:.0f}s", url], stdout=subprocess.DEVNULL)
        warmup.wait(timeout_s)
        processes.stop(warmup)
        argv = [*base, f"-d{seconds}s", "--latency", url]
    else:
        argv = [
            sys.executable,
            __file__,
            "--loadgen-path",
            url_path,
            "--loadgen-port",
            str(port),
            "--loadgen-auth",
            auth,
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
        ]
    process = processes.start(argv, stdout=subprocess.PIPE, text=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    finally:
        processes.stop(process)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}):\n{output}")
    if client == "wrk":
        return parse_wrk(output, target)
    values = json.loads(output.strip().splitlines()[-1])
    return Result(
        target=target,
        rps=values["rps"],
        p50_ms=values["p50_ms"],
        p99_ms=values["p99_ms"],
        non_2xx=values["non_2xx"],
        errors=values["errors"],
    )


def bench(args: argparse.Namespace, processes: Processes) -> None:
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("--client wrk: wrk is not on PATH")
    with tempfile.TemporaryDirectory(prefix="vidrelay-bench-", ignore_cleanup_errors=True) as tmp:
        try:
            results = run_all(args, processes, client, Path(tmp))
        finally:
            processes.stop_all()  # before their data dir and logs are removed
    report(results)


def run_all(
    args: argparse.Namespace, processes: Processes, client: str, work: Path
) -> list[Result]:
    import httpx

    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "VIDRELAY_DATABASE_URL"}  # SQLite
    env["VIDRELAY_DATA_DIR"] = str(work / "data")
    if args.declared_models:
        env["VIDRELAY_CONFIG"] = str(declared_catalog(work / "vidrelay.toml", args.declared_models))
    key = create_key(env, "bench", "10")
    auth = f"Bearer {key}"

    ours_port = free_port()
    ours_log = work / "ours.log"
    ours = processes.start_logged(
        [*vidrelay_command(), "serve", "--host", HOST, "--port", str(ours_port)], env, ours_log
    )
    ours_base = f"http://{HOST}:{ours_port}"
    wait_until_up(f"{ours_base}/healthz", ours, ours_log)
    video = completed_video(ours_base, key)
    url_path = f"/v1/videos/{video['id']}"
    reference = httpx.get(f"{ours_base}{url_path}", headers={"Authorization": auth})
    if reference.status_code != 200 or reference.json()["status"] != "completed":
        raise RuntimeError(f"unexpected status body: {reference.text}")
    body_file = work / "body.json"
    body_file.write_bytes(reference.content)

    quiet_port = free_port()
    quiet_log = work / "ours-quiet.log"
    quiet = processes.start_logged(
        [*vidrelay_command(), "serve", "--host", HOST, "--port", str(quiet_port)],
        {**env, "VIDRELAY_ACCESS_LOG": "false"},
        quiet_log,
    )
    wait_until_up(f"http://{HOST}:{quiet_port}/healthz", quiet, quiet_log)

    def start_bare(name: str, *flags: str) -> int:
        port = free_port()
        log_path = work / f"{name}.log"
        argv = [sys.executable, __file__, "--serve-bare-port", str(port), *flags]
        bare = processes.start_logged([*argv, "--body-file", str(body_file)], env, log_path)
        wait_until_up(f"http://{HOST}:{port}{url_path}", bare, log_path)
        if httpx.get(f"http://{HOST}:{port}{url_path}").content != reference.content:
            raise RuntimeError("the bare endpoint does not return the same body")
        return port

    bare_logging_port = start_bare("bare-logging", "--bare-logs")
    bare_silent_port = start_bare("bare-silent")
    quiet_answer = httpx.get(
        f"http://{HOST}:{quiet_port}{url_path}", headers={"Authorization": auth}
    )
    if quiet_answer.status_code != 200 or quiet_answer.json()["status"] != "completed":
        raise RuntimeError(f"unexpected status body from the second server: {quiet_answer.text}")

    load = (
        f"wrk -t1 -c{args.concurrency} --latency"
        if client == "wrk"
        else f"python asyncio keep-alive client, {args.concurrency} connections"
    )
    print(
        f"vidrelay status poll benchmark: GET /v1/videos/{{id}} on a completed job "
        f"({len(reference.content)} B JSON body)\n"
        f"  python {platform.python_version()}, {os.cpu_count()} CPUs shared by the servers and "
        f"the client; SQLite in a temp dir; setup took {time.monotonic() - started:.1f} s\n"
        f"  every server: run_server (uvicorn, header limits, log_level={UVICORN_LOG_LEVEL!r}, "
        "uvicorn's access line off) in one process, as `vidrelay serve` does, logging to a "
        "file;\n"
        "  bare = Starlette route returning JSONResponse(same body), one writing vidrelay's "
        "access line through vidrelay's logging, one writing nothing\n"
        f"  load: {load}; {WARMUP_S:.0f} s warm-up + {args.seconds} s measured per run; "
        "order bare+log, ours (access log on), bare+log, bare, ours (off), bare\n",
        flush=True,
    )

    def run(target: str, port: int) -> Result:
        result = measure(
            processes, client, target, port, url_path, auth, args.concurrency, args.seconds
        )
        print(f"  measured {target}: {result.rps:,.0f} req/s", flush=True)
        return result

    return [
        run("bare+log (1st)", bare_logging_port),
        run("vidrelay, log on", ours_port),
        run("bare+log (2nd)", bare_logging_port),
        run("bare (1st)", bare_silent_port),
        run("vidrelay, log off", quiet_port),
        run("bare (2nd)", bare_silent_port),
    ]


def report(results: list[Result]) -> None:
    print(f"\n{'target':<20} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for r in results:
        print(f"{r.target:<20} {r.rps:>11,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non_2xx:>8}")
    print()
    report_ratio("access log on vs bare+log", *results[:3])
    report_ratio("access log off vs bare", *results[3:])
    if any(r.non_2xx or r.errors for r in results):
        print("warning: non-2xx answers or socket errors during a run; the numbers are suspect")


def report_ratio(name: str, first: Result, ours: Result, second: Result) -> None:
    """One ratio: ours against the mean of the bare runs before and after it."""
    bare_mean = Result(
        target="bare (mean of 2)",
        rps=(first.rps + second.rps) / 2,
        p50_ms=(first.p50_ms + second.p50_ms) / 2,
        p99_ms=(first.p99_ms + second.p99_ms) / 2,
        non_2xx=first.non_2xx + second.non_2xx,
        errors=first.errors + second.errors,
    )
    drift = abs(first.rps - second.rps) / bare_mean.rps if bare_mean.rps else float("nan")
    ratio = ours.rps / bare_mean.rps if bare_mean.rps else float("nan")
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(
        f"{name}: ratio {ratio:.2f} (goal >= {GOAL:.2f}): {verdict}; "
        f"bare drift between its two runs {drift:.1%} (the ratio uses their mean)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/status_poll.py",
        description=(
            "Requests/s and p50/p99 latency of GET /v1/videos/{id} on a completed job, with the "
            "access log on and off, against a bare Starlette endpoint returning the same JSON "
            "with the same uvicorn settings (logging an equivalent line, and logging nothing)."
        ),
    )
    parser.add_argument(
        "--seconds", type=int, default=10, metavar="N", help="measured seconds per run (default 10)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        metavar="C",
        help="concurrent connections (default 16)",
    )
    parser.add_argument(
        "--client",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk if on PATH, else a python asyncio client (default auto)",
    )
    add_declared_models_option(parser)
    # Internal modes: the script re-runs itself as the bare server and as the python client.
    parser.add_argument("--serve-bare-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--body-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bare-logs", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-path", help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-auth", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.concurrency < 1:
        parser.error("--seconds and --concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare_port is not None:
        serve_bare(args.serve_bare_port, args.body_file, args.bare_logs)
        return 0
    if args.loadgen_path is not None:
        loadgen(
            args.loadgen_path, args.loadgen_port, args.loadgen_auth, args.concurrency, args.seconds
        )
        return 0

    interrupt_on_sigterm()
    processes = Processes()
    try:
        bench(args, processes)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"benchmark could not run: {error}", file=sys.stderr)
        return 1
    finally:
        processes.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
