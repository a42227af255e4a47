"""The `[[models]]` and conditional `[[prices]]` of `vidrelay.toml`: the documented format
loads; mistakes are named by place, model and field, when read or, for what depends on the
catalog in the database, when applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_models import ACME_TOML, PRICES_TOML
from vidrelay.config_file import ConfigError, apply_config, load_config
from vidrelay.domain.catalog import Capability, RouteClass
from vidrelay.domain.params import ParamType
from vidrelay.store import models as model_store
from vidrelay.store import prices
from vidrelay.store.database import Database

PRICE_4K = (
    '[[prices]]\nmodel = "acme-video-1"\nwhen = { resolution = "4k" }\nper_second_usd = "1"\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vidrelay.toml"
    path.write_text(text)
    return path


def test_the_documented_model_format_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ACME_TOML + PRICES_TOML))
    (model,) = config.models
    assert (model.name, model.owned_by, model.default_size) == ("acme-video-1", "acme", "1280x720")
    assert model.capabilities == {Capability.INPUT_REFERENCE, Capability.AUDIO}
    (route,) = model.routes
    assert (route.route_class, route.seconds) == (RouteClass.OFFICIAL, ("5", "10"))
    resolution, seed = model.params
    assert (resolution.type, resolution.values, resolution.default) == (
        ParamType.ENUM,
        ("720p", "1080p"),
        "720p",
    )
    assert (seed.type, seed.minimum, seed.maximum, seed.default) == (
        ParamType.INT,
        0,
        4294967295,
        None,
    )
    assert [dict(rule.when) for rule in config.price_rules] == [{}, {"resolution": "1080p"}]


def test_a_model_declares_the_length_its_extension_adds_in_the_file(tmp_path: Path) -> None:
    extending = ACME_TOML.replace(
        'capabilities = ["input_reference", "audio"]',
        'capabilities = ["extension"]\nextension_seconds = 7',
    )
    (model,) = load_config(write(tmp_path, extending)).models
    assert model.extension_seconds == 7
    with pytest.raises(ConfigError, match="extension_seconds"):  # without the capability
        load_config(write(tmp_path, extending.replace('["extension"]', "[]")))


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (
            ACME_TOML + ACME_TOML.split("[[models.params]]")[0],
            "models declared twice: acme-video-1",
        ),
        (
            ACME_TOML.replace(
                'values = ["720p", "1080p"]', 'values = ["720p", "1080p"]\ncolour = 1'
            ),
            r"models\[0\] \(acme-video-1\): params\[0\].colour",
        ),
        (ACME_TOML.replace('"audio"]', '"smell"]'), r"capabilities\[1\]"),
        (
            ACME_TOML.replace('name = "seed"', 'name = "prompt"'),
            r"params\[1\].name: 'prompt' is a standard field",
        ),
        (
            '[[prices]]\nmodel = "sora-2"\nper_second_usd = "1"\nwen = {}\n',
            r"prices\[0\]: unknown fields \['wen'\]",
        ),
        (
            '[[prices]]\nmodel = "sora-2"\nper_second_usd = "1"\nwhen = "a=b"\n',
            r"prices\[0\]: when",
        ),
    ],
)
def test_a_bad_models_or_prices_entry_is_refused_with_its_place_and_reason(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_config(write(tmp_path, text))


async def apply_text(tmp_path: Path, text: str) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'vidrelay.db'}")
    await db.upgrade()
    await apply_config(db, load_config(write(tmp_path, text)))
    return db


async def test_applying_the_file_stores_its_models_and_conditional_prices(tmp_path: Path) -> None:
    db = await apply_text(tmp_path, ACME_TOML + PRICES_TOML)
    try:
        async with db.read() as conn:
            catalog = await model_store.load_catalog(conn)
            rules = await prices.price_rules_for(conn, "acme-video-1")
        assert catalog.models == ("acme-video-1", "sora-2", "sora-2-pro")
        assert [rule.conditions for rule in rules] == [(), (("resolution", "1080p"),)]
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (
            '[[channels]]\nname = "a"\nprotocol = "local"\nmodels = ["sora-9"]\n',
            r"channels\[0\] \(a\): models: unknown \['sora-9'\]",
        ),
        (
            PRICES_TOML,
            r"prices\[0\] \(acme-video-1\): The model 'acme-video-1' is not in the catalog",
        ),
        (
            ACME_TOML + PRICE_4K,
            r"prices\[0\] \(acme-video-1\): when.resolution: resolution '4k' is not supported",
        ),
        (
            ACME_TOML
            + '[[prices]]\nmodel = "acme-video-1"\nroute_class = "reverse"\nper_second_usd = "1"\n',
            "no reverse route",
        ),
    ],
)
async def test_what_depends_on_the_catalog_is_refused_when_applied_naming_its_place(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        await apply_text(tmp_path, text)


async def test_a_file_channel_may_serve_a_model_declared_elsewhere(tmp_path: Path) -> None:
    db = await apply_text(tmp_path, ACME_TOML)
    await db.dispose()
    (tmp_path / "vidrelay.toml").unlink()
    channel = '[[channels]]\nname = "acme"\nprotocol = "local"\nmodels = ["acme-video-1"]\n'
    db = await apply_text(tmp_path, channel)  # the model is in the database, not in the file
    await db.dispose()
