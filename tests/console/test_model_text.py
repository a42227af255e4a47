"""The models page's TOML text: what it shows of a model reads back as that same model."""

from __future__ import annotations

import tomllib

from vidrelay.console.models import toml_text
from vidrelay.domain.declarations import model_declaration, parse_model
from vidrelay.shipped_models import shipped_models


def test_every_shipped_model_survives_its_toml_text_unchanged() -> None:
    entries = shipped_models()
    assert any(entry.model.params for entry in entries)  # parameters with values and bounds
    for entry in entries:
        text = toml_text(model_declaration(entry.model))
        assert parse_model(tomllib.loads(text)) == entry.model, text


def test_a_description_with_quotes_and_lines_is_written_as_one_toml_string() -> None:
    declaration = {"name": "m", "description": 'say "hi"\nthen\\leave ✓', "flags": [True, 2]}
    assert tomllib.loads(toml_text(declaration)) == declaration
