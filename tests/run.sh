#!/usr/bin/env bash
# The README's test command. On a fresh machine it installs everything the
# tests need (the package, test tools, and the real backends: Phoenix,
# Prometheus, a Compose v2 binary, the Grafana dashboard schema), then runs
# ruff, mypy --strict, the import contracts (lint-imports, see pyproject.toml)
# and the whole pytest suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
[ -x .venv/bin/python ] || python3 -m uv venv -q .venv
python3 -m uv pip install -q --python .venv/bin/python -e '.[test]'
bash tests/backends/install.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest "$@"
