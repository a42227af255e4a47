"""The `[[channels]]` of `vidrelay.toml`: the documented format loads; mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidrelay.config_file import ConfigError, load_config
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import ChannelProtocol

DOCUMENTED = """
[[channels]]
name = "vendor-a"
protocol = "openai"            # openai | sora2api | local
base_url = "http://127.0.0.1:9100"
keys = ["sk-up-1", "sk-up-2"]
route_class = "official"       # official | reverse
models = ["sora-2"]
model_map = { "sora-2" = "sora-2-2025-12-08" }   # optional
priority = 10                  # higher tiers first
weight = 1
max_concurrency = 50

[[channels]]
name = "renderer"
protocol = "local"
route_class = "reverse"
"""


def test_the_documented_channel_format_loads(tmp_path: Path) -> None:
    path = tmp_path / "vidrelay.toml"
    path.write_text(DOCUMENTED)
    first, local = load_config(path).channels
    channel = first.channel
    assert channel.protocol is ChannelProtocol.OPENAI
    assert channel.keys == ("sk-up-1", "sk-up-2")
    assert channel.route_class is RouteClass.OFFICIAL
    assert channel.upstream_model("sora-2") == "sora-2-2025-12-08"
    assert (channel.priority, channel.weight, channel.max_concurrency) == (10, 1, 50)
    assert not first.enabled_given
    assert local.channel.protocol is ChannelProtocol.LOCAL and local.channel.models == ()


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('name = "a"\nprotocol = "grpc"', "grpc"),
        ('name = "a"\nprotocol = "openai"\nmodels = ["sora-2"]', "base_url"),
        ('name = "a"\nprotocol = "local"\nweight = 0', "weight"),
        ('name = "a"\nprotocol = "local"\nkey = "typo"', "unknown fields"),
        ('name = "a"\nprotocol = "local"\ncost_per_second_usd = 0.1', "strings"),
    ],
)
def test_a_bad_channel_entry_is_refused_with_its_place_and_reason(
    tmp_path: Path, entry: str, complaint: str
) -> None:
    path = tmp_path / "vidrelay.toml"
    path.write_text(f"[[channels]]\n{entry}\n")
    with pytest.raises(ConfigError, match=complaint):
        load_config(path)


def test_a_channel_declared_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vidrelay.toml"
    path.write_text('[[channels]]\nname = "a"\nprotocol = "local"\n' * 2)
    with pytest.raises(ConfigError, match="declared twice"):
        load_config(path)
