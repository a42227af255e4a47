"""The README's Python snippet runs as written against a real server (only its address is
changed to the test server's), after the shell steps it refers to."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.server import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_snippet_runs_as_written(server: ServerProcess, tmp_path: Path) -> None:
    text = README.read_text()
    run_it = text.split("## Run it", 1)[1].split("\n## ", 1)[0]
    [snippet] = re.findall(r"```python\n(.*?)```", run_it, re.S)
    assert "http://localhost:8000/v1" in snippet
    key = server.create_key("alice", "50")
    result = subprocess.run(
        [sys.executable, "-c", snippet.replace("http://localhost:8000", server.base_url)],
        env={**server.env, "KEY": key},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.mp4").read_bytes()[4:8] == b"ftyp"
