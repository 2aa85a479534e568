"""The recipes under the real Sisyphus (vendored upstream tarball, installed into a cached separate environment).

Both engines build the default and the full-size graph; every job id, alias and output and every registered target
must be equal, for the plain and the ``recipe.``-prefixed import. The environment is created once (about a minute,
pip needs PyPI for Sisyphus' dependencies) under ``.cache/`` and reused; each graph build is a few seconds.
"""
import json
import os
import subprocess
import sys

import pytest

from real_sisyphus_env import real_sisyphus_python

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "librispeech_joint_training_given_alignments"
GRAPH_DUMP = os.path.join(HERE, "graph_dump.py")


@pytest.fixture(scope="module")
def real_python():
    return real_sisyphus_python()


def _dump(python, graph, cwd, *extra):
    result = subprocess.run([python, GRAPH_DUMP, graph, "-", *extra], cwd=cwd, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("graph", ["default", "full"])
def test_both_engines_build_identical_graphs(real_python, tmp_path, graph):
    embedded = _dump(sys.executable, graph, tmp_path)
    real = _dump(real_python, graph, tmp_path)
    assert (embedded["engine"], real["engine"]) == ("embedded", "real")
    assert len(real["jobs"]) > (1000 if graph == "full" else 100)
    assert sorted(real["jobs"]) == sorted(embedded["jobs"])
    assert real["jobs"] == embedded["jobs"]  # aliases and outputs of every job
    assert real["targets"] == embedded["targets"]


def test_recipe_prefixed_import_under_the_real_sisyphus(real_python, tmp_path):
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / PACKAGE).symlink_to(os.path.dirname(HERE))
    plain = _dump(real_python, "default", tmp_path)
    prefixed = _dump(real_python, "default", tmp_path, "--recipe-prefix")
    assert prefixed["engine"] == "real" and prefixed["jobs"] == plain["jobs"]
