"""Benchmark the local renderer: wall time, multiple of real time and peak memory per size.

Usage: python bench/render.py [--seconds 8]

Each size renders in a fresh child process pinned to one core, so the figures are per size and
per core: peak RSS is that child's high-water mark (`ru_maxrss`, which includes the interpreter
and imported libraries), and "x real time" is seconds of video per wall-clock second. CPU time is
shown next to wall time because other processes sharing the core inflate wall time, not CPU time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [(1280, 720), (1792, 1024)]
GOAL_SIZE = (1280, 720)
GOAL_MULTIPLE = 2.0
PROMPT = "A red fox running through a snowy birch forest at dawn, cinematic lighting"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="clip length (default 8)")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)  # WIDTH HEIGHT
    arguments = parser.parse_args()
    if arguments.child:
        width, height = arguments.child
        print(json.dumps(measure_one(width, height, arguments.seconds)))
        return
    rows = [run_child(width, height, arguments.seconds) for width, height in SIZES]
    print_table(rows, arguments.seconds)


def run_child(width: int, height: int, seconds: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--seconds", str(seconds)]
    command += ["--child", str(width), str(height)]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def measure_one(width: int, height: int, seconds: int) -> dict[str, float]:
    """Render one clip in this (fresh) process, pinned to one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if importlib.util.find_spec("vidrelay") is None:  # running from a checkout, not installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from vidrelay.render.renderer import render_video
    from vidrelay.render.spec import RenderSpec

    spec = RenderSpec(prompt=PROMPT, width=width, height=height, seconds=seconds)
    baseline_mib = _current_rss_mib()
    with tempfile.TemporaryDirectory() as out_dir:
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        outputs = render_video(spec, Path(out_dir))
        wall = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        video_bytes = outputs.video.stat().st_size
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "width": width,
        "height": height,
        "seconds": seconds,
        "wall": wall,
        "cpu": cpu,
        "peak_mib": peak_kib / 1024,
        "baseline_mib": baseline_mib,
        "video_kib": video_bytes / 1024,
    }


def _current_rss_mib() -> float:
    """Resident memory now (after imports, before rendering); 0 where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), "")
    return int(line.split()[1]) / 1024 if line else 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def print_table(rows: list[dict[str, float]], seconds: int) -> None:
    print(f"Local renderer, {seconds} s clips, one core per render (fresh process per size)")
    header = f"{'size':>10} {'wall s':>8} {'x real time':>12} {'cpu s':>7} {'x per cpu s':>12}"
    print(header + f" {'peak RSS MiB':>13} {'(imports)':>10} {'mp4 KiB':>8}")
    for row in rows:
        size = f"{int(row['width'])}x{int(row['height'])}"
        print(
            f"{size:>10} {row['wall']:>8.2f} {row['seconds'] / row['wall']:>11.2f}x"
            f" {row['cpu']:>7.2f} {row['seconds'] / row['cpu']:>11.2f}x"
            f" {row['peak_mib']:>13.0f} {row['baseline_mib']:>10.0f} {row['video_kib']:>8.0f}"
        )
    goal = next(r for r in rows if (r["width"], r["height"]) == GOAL_SIZE)
    multiple = goal["seconds"] / goal["wall"]
    verdict = "met" if multiple >= GOAL_MULTIPLE else "NOT met"
    print(
        f"Goal: >= {GOAL_MULTIPLE:g}x real time at {GOAL_SIZE[0]}x{GOAL_SIZE[1]} on one core"
        f" -> {verdict} ({multiple:.2f}x wall, {goal['seconds'] / goal['cpu']:.2f}x per CPU second)"
    )


if __name__ == "__main__":
    main()
