#!/usr/bin/env bash
# Set up everything, then run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export RETURNN_CACHE_DIR="${RETURNN_CACHE_DIR:-$PWD/.cache/returnn}"
exec .venv/bin/python -m pytest -q tests "$@"
