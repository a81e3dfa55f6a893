#!/usr/bin/env bash
# Makes .venv-bench: railtracks plus the reference libraries benchmarks/floor.py
# compares against (Logfire, the OpenAI Agents SDK). They are never dependencies
# of railtracks; they live only in this benchmark environment.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
[ -x .venv-bench/bin/python ] || python3 -m uv venv -q .venv-bench
python3 -m uv pip install -q --python .venv-bench/bin/python -e . logfire openai-agents
echo "setup_reference: run .venv-bench/bin/python benchmarks/floor.py"
