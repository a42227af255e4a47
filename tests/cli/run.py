"""`python -m vidrelay.cli …` as an operator runs it: a real process, in a directory of the
test's choosing, with no `VIDRELAY_*` setting but those the test gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def vidrelay(
    cwd: Path, *args: str, timeout_s: float = 120, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("VIDRELAY_")}
    env.update({f"VIDRELAY_{name.upper()}": value for name, value in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "vidrelay.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a run refused with status 2 (no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
