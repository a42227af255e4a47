"""A real `vidrelay serve` in a subprocess, for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, database_url: str | None = None, **settings: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "VIDRELAY_DATA_DIR": str(data_dir)}
        if database_url:
            self.env["VIDRELAY_DATABASE_URL"] = database_url
        self.env.update({f"VIDRELAY_{name.upper()}": value for name, value in settings.items()})
        self.sqlite_url = f"sqlite+aiosqlite:///{data_dir / 'vidrelay.db'}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.database_ready = False

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`vidrelay ARGS…` on this server's data; the first call creates the database (`db
        upgrade`) as an operator would before a command when no server has run yet."""
        if not self.database_ready:
            self.database_ready = True
            self.cli("db", "upgrade")
        return subprocess.run(
            [sys.executable, "-m", "vidrelay.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    def create_key(self, tenant: str, balance: str) -> str:
        return self.cli(
            "keys", "create", "--tenant", tenant, "--balance", balance
        ).stdout.splitlines()[-1]

    def wait_finished(self, video_id: str, key: str, timeout_s: float = 60) -> dict[str, Any]:
        """Poll the video until it is completed or failed; its last body."""
        deadline = time.monotonic() + timeout_s
        while True:
            video: dict[str, Any] = httpx.get(
                f"{self.base_url}/v1/videos/{video_id}",
                headers={"Authorization": f"Bearer {key}"},
            ).json()
            if video["status"] in ("completed", "failed"):
                return video
            assert time.monotonic() < deadline, video
            time.sleep(0.1)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vidrelay.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        """SIGKILL the server and its render workers: nothing gets to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
