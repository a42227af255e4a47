"""Schemathesis on the official description (`shared/openai-videos-openapi.json`) of the remix,
extension, edit and character operations, against a real `vidrelay serve`: whatever it sends,
no answer is a 5xx. Where the official file is not on the machine (it is OpenAI's, never copied
into the repository), vidrelay's own description of the same operations is fuzzed instead."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case

from tests.e2e.server import ServerProcess

CONTRACT_ENV = "VIDRELAY_TEST_OPENAI_CONTRACT"
"""Where the official description is (it is OpenAI's file: never copied into the repository);
by default `shared/` beside the checkout or beside its parent (a worktree)."""
_REPOSITORY = Path(__file__).parents[2]
OPERATIONS = [
    ("/videos/{video_id}/remix", "POST"),
    ("/videos/extensions", "POST"),
    ("/videos/edits", "POST"),
    ("/videos/characters", "POST"),
    ("/videos/characters/{character_id}", "GET"),
]


def _contract() -> Path | None:
    candidates = [
        Path(os.environ.get(CONTRACT_ENV, "")),
        *(root / "shared" / "openai-videos-openapi.json" for root in _REPOSITORY.parents[:2]),
    ]
    return next((path for path in candidates if path.is_file()), None)


def test_no_generated_request_to_the_derived_operations_gets_a_5xx(server: ServerProcess) -> None:
    key = server.create_key("fuzz", "5")
    contract = _contract()
    if contract is not None:
        schema = schemathesis.openapi.from_dict(json.loads(contract.read_text()))
        base_url, prefix = f"{server.base_url}/v1", ""
    else:
        own = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(own)
        base_url, prefix = server.base_url, "/v1"
    seen: list[int] = []
    for path, method in OPERATIONS:
        operation = schema[prefix + path][method]

        @settings(
            max_examples=40,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def no_server_error(case: Case) -> None:
            response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {key}"})
            seen.append(response.status_code)
            assert response.status_code < 500, (case.path, case.body, response.text[:500])

        no_server_error()
    assert seen and all(status < 500 for status in seen)
