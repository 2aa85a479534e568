"""Upstream Sisyphus' own unit tests (vendored tarball, files unmodified) against the embedded engine.

``tests/upstream_sisyphus_alias.py`` maps ``sisyphus.*`` onto the embedded engine and runs the files. In scope: what
recipes use (hashing, delayed operations on paths and variables, ``tk.mktemp``, paths and their pickling, the graph's
job listing and order, ``tools`` helpers incl. ``cache_result``). Out of scope, deliberately, with the upstream tests
that cover it (they need parts of Sisyphus this single-machine engine does not have):

- ``localengine_unittest``, ``settings_loader_unittest``: Sisyphus' engines (local/SLURM/SGE) and its settings
  loader; the embedded engine has its own local manager and settings (real Sisyphus runs the cluster:
  ``test_real_sisyphus_slurm.py``).
- ``job_unittest.JobTest.test_run``: creates a job directory relative to the cwd of the moment (it changes into
  ``tests/`` first and removes ``work`` there); the embedded engine places job directories under ``gs.BASE_DIR``,
  fixed when it starts, so that workers, which change into a job's folder, still resolve every path. Its other two
  tests run.
- The web/console UI (``http_server``, ``manager_ui``), ``aws_batch_engine``, LSF/SGE/SLURM engines: no tests.
"""
import os
import subprocess
import sys
import tarfile

import pytest

VENDOR = os.environ.get("SISYPHUS_VENDOR_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "vendor"))
TARBALL = os.path.join(VENDOR, "sisyphus-21ba684.tar.gz")
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "upstream_sisyphus_alias.py")
IN_SCOPE = {"hash_unittest": 8, "delayed_ops_unittest": 8, "toolkit_unittest": 2, "graph_unittest": 2,
            "job_path_unittest": 7, "tools_unittest": 4,
            "job_unittest.JobTest.test_connect_path job_unittest.JobTest.test_sis_hash": 2}


@pytest.fixture(scope="module")
def upstream_source(tmp_path_factory):
    if not os.path.isfile(TARBALL):
        pytest.fail(f"the vendored Sisyphus tarball is missing: {TARBALL} (set SISYPHUS_VENDOR_DIR)")
    target = tmp_path_factory.mktemp("sisyphus_upstream")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(target, members=[m for m in tar.getmembers() if m.name.startswith("sis/tests/")],
                       filter="data")
    return str(target / "sis")


@pytest.mark.parametrize("module", sorted(IN_SCOPE))
def test_upstream_unittest_passes_on_the_embedded_engine(upstream_source, module):
    result = subprocess.run([sys.executable, RUNNER, upstream_source, *(f"tests.{m}" for m in module.split())],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert f"Ran {IN_SCOPE[module]} tests" in result.stdout + result.stderr
