"""Shared fixtures: an isolated experiment directory for the embedded Sisyphus engine."""
import os
import sys

import pytest

REFERENCE_MODULES = os.path.join(os.path.dirname(__file__), "reference_modules")
sys.path.insert(0, REFERENCE_MODULES)


@pytest.fixture
def sis_setup(tmp_path, monkeypatch):
    """A fresh experiment dir as cwd and gs.BASE_DIR, an empty graph, and workers that find test jobs."""
    from librispeech_joint_training_given_alignments.embedded_sisyphus import gs, reset_graph

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gs, "BASE_DIR", str(tmp_path))
    monkeypatch.setattr(gs, "WAIT_PERIOD_BETWEEN_CHECKS", 0.1)
    monkeypatch.setenv("PYTHONPATH", REFERENCE_MODULES + os.pathsep + os.environ.get("PYTHONPATH", ""))
    reset_graph()
    yield tmp_path
    reset_graph()
