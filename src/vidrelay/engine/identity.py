"""Who an engine process is, across restarts: the slot it holds on its data directory.

Leases name the process that holds a job. When a process dies its leases used to hold their
jobs (and their channels' concurrency slots) until they lapsed. An engine now takes the lowest
free slot of its data directory: an exclusive lock on `engine-slots/<n>.lock` that the operating
system releases when the process dies, however it dies. Holding slot n therefore proves that
whoever held it before is gone, so a starting engine takes back, at once, every lease whose owner
names its slot (a restart after a crash, a SIGKILL, an OOM kill). Several engines may share a
data directory (`serve` and `worker` on one host): each holds its own slot.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
from pathlib import Path
from typing import IO


class EngineSlot:
    def __init__(self, identity: str, handle: IO[str]) -> None:
        self.identity = identity
        """`host:data-dir-id:n`, the same for every process that holds this slot."""
        self._handle = handle
        self.worker_id = f"{identity}/{os.getpid()}-{secrets.token_hex(4)}"
        """This process's lease owner name; its prefix up to `/` is the slot's identity."""

    @property
    def lease_prefix(self) -> str:
        return self.identity + "/"

    @classmethod
    def acquire(cls, data_dir: Path) -> EngineSlot:
        """The lowest slot of `data_dir` no live process holds."""
        slots = data_dir / "engine-slots"
        slots.mkdir(parents=True, exist_ok=True)
        directory_id = _directory_id(slots)
        number = 0
        while True:
            handle = (slots / f"{number}.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                number += 1
                continue
            return cls(f"{socket.gethostname()[:40]}:{directory_id}:{number}", handle)

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _directory_id(slots: Path) -> str:
    """A random name the data directory keeps for life: two hosts that share a host name and
    a data directory path (containers often do) still never name the same slot."""
    path = slots / "directory-id"
    if not path.exists():
        draft = slots / f"directory-id.{os.getpid()}-{secrets.token_hex(4)}"
        draft.write_text(secrets.token_hex(6))
        try:
            os.link(draft, path)  # atomic: a concurrent starter never reads a half-written id
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
