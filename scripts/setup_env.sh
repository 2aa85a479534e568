#!/usr/bin/env bash
# Sets up everything this project needs on a fresh Debian/Ubuntu machine (idempotent):
# Debian packages (flite, espeak-ng: the embedded corpus voices; sctk: NIST sclite; sox, libsndfile;
# chromium: renders the results report in a test; slurm-wlm + munge: tests/test_real_sisyphus_slurm.py),
# and a Python virtual environment in .venv with the CPU build of torch and the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(flite espeak-ng sctk sox libsndfile1 chromium gcc slurm-wlm munge)
# gcc: webrtcvad (resemblyzer) is an sdist; slurm-wlm, munge: the single-node SLURM cluster of the real-Sisyphus test
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch first and pinned: the local CPU build; an unpinned "torch" would pull GBs of CUDA wheels.
# (On a GPU machine, install the matching CUDA torch into .venv before running this script.)
quiet() { grep -v "^WARNING: Location" || true; }  # pip's notes about local mirror folders that do not exist
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0" 2>&1 | quiet
.venv/bin/pip install -q -e ".[test]" 2>&1 | quiet
.venv/bin/python -c "import librispeech_joint_training_given_alignments, returnn, tree, torch" 
