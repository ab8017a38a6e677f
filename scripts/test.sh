#!/usr/bin/env bash
# Runs the checks once, failing fast (ruff, the package's doctests, mypy on recouvrement/ as configured
# in pyproject.toml), then the whole test suite twice: on SQLite files, then on a real PostgreSQL
# server that the test setup starts in a temporary folder (tests/conftest.py). Uses the virtual
# environment made by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || { echo "lancez d'abord : bash scripts/setup.sh" >&2; exit 2; }
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
"$python" -m ruff check recouvrement tests tools benchmarks
echo "== doctests"
"$python" -m pytest -q -p no:cacheprovider --doctest-modules recouvrement
echo "== mypy"
"$python" -m mypy
echo "== tests on SQLite"
"$python" -m pytest -q -p no:cacheprovider "$@"
echo "== tests on PostgreSQL"
RECOUVREMENT_TEST_DB=postgresql "$python" -m pytest -q -p no:cacheprovider "$@"
