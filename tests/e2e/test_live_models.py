"""Today's models sold end to end, as an operator and a developer would: `vidrelay models
import` of a shipped model per provider protocol, a `vidrelay.toml` with one channel per
protocol on that provider's fake (real HTTP, the provider's own wire protocol), a real
`vidrelay serve`, and the official `openai` SDK ordering, polling and downloading one video from
each; the balance ends at exactly the imported prices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.server import ServerProcess
from tests.fakes.ark_upstream import FakeArkUpstream
from tests.fakes.dashscope_upstream import FakeDashScope
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.kling_upstream import FakeKlingUpstream
from tests.fakes.media import tiny_mp4
from tests.fakes.minimax_upstream import FakeMiniMaxUpstream
from tests.fakes.vidu_upstream import FakeViduUpstream
from vidrelay.domain.catalog import Catalog, normalise_request
from vidrelay.domain.pricing import quote
from vidrelay.shipped_models import ShippedModel, shipped_models

KEYS = {
    "ark": "ark-key-0001",
    "dashscope": "sk-dashscope-0001",
    "gemini": "AIza-gemini-0001",
    "kling": "AK-kling-access-0001:SK-kling-secret-0001-abcdefghijklmnopq",
    "minimax": "minimax-key-0001",
    "vidu": "vidu-key-0001",
}
FAKES: dict[str, Any] = {
    "ark": FakeArkUpstream,
    "dashscope": FakeDashScope,
    "gemini": FakeGeminiUpstream,
    "kling": FakeKlingUpstream,
    "minimax": FakeMiniMaxUpstream,
    "vidu": FakeViduUpstream,
}
MARKUP = Decimal("1.5")


def first_shipped(protocol: str) -> ShippedModel:
    return next(entry for entry in shipped_models() if entry.protocol.value == protocol)


@pytest.fixture
def fakes() -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        running = {}
        for protocol, fake_class in FAKES.items():
            fake = fake_class(keys={KEYS[protocol]})
            stack.enter_context(fake.serve())
            running[protocol] = fake
        yield running


def test_a_shipped_model_of_every_provider_is_sold_through_the_official_sdk(
    tmp_path: Path, fakes: dict[str, Any]
) -> None:
    entries = {protocol: first_shipped(protocol) for protocol in FAKES}
    channels = "".join(
        f"""
[[channels]]
name = "{protocol}-channel"
protocol = "{protocol}"
base_url = "{fakes[protocol].url}"
keys = ["{KEYS[protocol]}"]
route_class = "official"
models = ["{entry.model.name}"]
model_map = {{ "{entry.model.name}" = "{entry.upstream_model}" }}
"""
        for protocol, entry in entries.items()
    )
    server = ServerProcess(
        tmp_path / "data", poll_first_s="0.2", poll_steady_s="0.3", collect_retry_s="0.1"
    )
    imported = server.cli("models", "import", *(e.model.name for e in entries.values()),
                          "--markup", str(MARKUP))  # fmt: skip
    assert "model_map" in imported.stderr
    config = tmp_path / "vidrelay.toml"
    config.write_text(channels)
    server.env["VIDRELAY_CONFIG"] = str(config)
    key = server.create_key("buyer", "100")
    server.start()
    try:
        client = openai.OpenAI(api_key=key, base_url=f"{server.base_url}/v1", max_retries=0)
        listed = {model.id for model in client.models.list()}
        assert {entry.model.name for entry in entries.values()} <= listed
        expected_micros = 0
        for protocol, entry in entries.items():
            video = client.videos.create(
                prompt=f"a paper boat, sold through {protocol}",
                model=entry.model.name,  # type: ignore[arg-type]
            )
            finished = client.videos.poll(video.id, poll_interval_ms=200)
            assert finished.status == "completed", (protocol, finished)
            assert client.videos.download_content(video.id).read() == tiny_mp4()
            request = normalise_request(Catalog([entry.model]), prompt="p", model=entry.model.name)
            expected_micros += quote(
                [price.rule(Catalog([entry.model])) for price in entry.prices(MARKUP)], request
            )
            assert fakes[protocol].requests, protocol  # the job really went there
        shown = json.loads(server.cli("tenants", "show", "buyer", "--json").stdout)
        spent = Decimal(100) - Decimal(shown["balance_usd"])
        assert spent * 1_000_000 == expected_micros
    finally:
        server.stop()
