from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess
from tests.fakes.openai_upstream import FakeOpenAIUpstream


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIUpstream]:
    """A fake OpenAI-protocol upstream accepting the key `sk-up-good-0001`."""
    fake = FakeOpenAIUpstream(keys={"sk-up-good-0001"})
    with fake.serve():
        yield fake
