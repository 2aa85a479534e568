#!/usr/bin/env bash
# Set up everything, then run the embedded default experiment end to end with the embedded engine.
# The experiment directory (work/, alias/, output/) is ./experiment unless EXPERIMENT_DIR is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
root=$PWD
dir="${EXPERIMENT_DIR:-$root/experiment}"
mkdir -p "$dir"
cp -n "$root/default_config.py" "$dir/config.py" 2>/dev/null || true
export RETURNN_CACHE_DIR="${RETURNN_CACHE_DIR:-$dir/.cache/returnn}"
cd "$dir"
exec "$root/.venv/bin/python" -m librispeech_joint_training_given_alignments.embedded_sisyphus manager -r config.py
