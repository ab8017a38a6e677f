#!/usr/bin/env bash
# Runs the whole test suite twice: on SQLite files, then on a real PostgreSQL server that the test
# setup starts in a temporary folder (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== tests on SQLite"
python3 -m pytest -q "$@"
echo "== tests on PostgreSQL"
RECOUVREMENT_TEST_DB=postgresql python3 -m pytest -q "$@"
