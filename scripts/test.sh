#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the project and its test tools, starts
# PostgreSQL and Redis, runs pytest (API tests on SQLite and on PostgreSQL, end-to-end tests
# against a real `vidrelay serve`), in VIDRELAY_TEST_WORKERS processes (4 by default: most
# tests wait on real HTTP, not on the CPU). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[dev]"
if command -v npm >/dev/null && [ ! -d tests/node/node_modules ]; then
    npm ci --prefix tests/node --no-audit --no-fund  # the official Node SDK (.ci/run does it too)
fi
python3 -m pytest -p no:cacheprovider -n "${VIDRELAY_TEST_WORKERS:-4}" "$@"
