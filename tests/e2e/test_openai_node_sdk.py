"""The official `openai` Node SDK (pinned in tests/node/package-lock.json, installed with
`npm ci --prefix tests/node`), unmodified, on a real `vidrelay serve` (the local renderer): one
Node script does everything (tests/node/sdk_end_to_end.mjs), so the suite pays for one server.
Skipped where Node.js is not installed; on CI (`CI` set) that is a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import av
import pytest

from tests.e2e.server import ServerProcess
from tests.fakes.media import tiny_mp4

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "sdk_end_to_end.mjs"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("Node.js must be installed on CI: the official Node SDK test needs it")
        pytest.skip("Node.js is not installed: the official Node SDK test needs node 20 or later")
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.fail("the Node SDK is not installed: run `npm ci --prefix tests/node`")
    return node


def _mp4_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


def test_the_official_node_sdk_creates_remixes_extends_edits_and_makes_characters(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    node = _node()
    server: ServerProcess = request.getfixturevalue("server")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(tiny_mp4())
    env = {
        **os.environ,
        "VIDRELAY_BASE_URL": server.base_url,
        "VIDRELAY_KEY": server.create_key("node-sdk", "20"),
        "VIDRELAY_CLIP": str(clip),
        "VIDRELAY_OUT": str(tmp_path),
    }
    run = subprocess.run(
        [node, str(SCRIPT)], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-4000:]
    made = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(made) == {"source", "remix", "extended", "edited", "uploaded", "character"}
    assert abs(_mp4_seconds(tmp_path / "extended.mp4") - 8.0) < 0.01  # 4 s of source + 4 new
