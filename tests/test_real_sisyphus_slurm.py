"""The first jobs of the default graph through the real Sisyphus' SLURM engine on a single-node SLURM cluster.

The fixture starts munged, slurmctld and slurmd for this machine (``single_node_slurm.py``: Debian ``slurm-wlm`` +
``munge``, a generated ``slurm.conf``, everything under a temporary folder, stopped afterwards); if they do not come
up, the test fails with the daemons' log tails (it never skips). Two setup folders in the README's layout
(``recipe/<package>`` link, ``config/__init__.py`` with ``main()``) run ``data_prep.testing.tiny_first_jobs``: corpus
synthesis -> corpus, log-mel features, lexicon, phonemes, speaker labels -> a RETURNN x-vector training -> a RETURNN
forward. One with the embedded engine (``manager -r``), one with the real Sisyphus (``sis manager -r``, the settings
``slurm_settings.py``: every task through sbatch). Checked:

- both ran exactly the same job ids, and every task of the real run was submitted to SLURM (its submit log names
  the SLURM engine and a SLURM job id that slurmctld started, by its main or its backfill scheduler);
- the outputs are equal: corpus JSON (audio paths relative to the work folder), the synthesized audio samples,
  every dataset of every HDF (features, phonemes, speaker labels, x-vectors), the lexicon, the training's
  learning rates and scores and every tensor of the trained checkpoint. On the CPU with RETURNN's fixed
  ``random_seed`` the training is deterministic for a given thread count, so these are compared exactly (bit for
  bit). The thread count must match: the embedded engine gives a task as many threads as it has CPUs
  (``OMP_NUM_THREADS``), and ``slurm_settings.py`` does the same from ``SLURM_CPUS_PER_TASK`` (Sisyphus' default
  is 1 thread for every task, which changes the floating point sums of the 2-CPU training). A GPU run would not be
  bit-identical either; that is not tested here.

Time on a 2-core machine: about 1 min per engine plus a few seconds for the daemons (``--durations`` shows it).
"""
import ast
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import pytest
import soundfile
import torch

from librispeech_joint_training_given_alignments.jobs.learning_rates import read_learning_rates_file
from real_sisyphus_env import real_sisyphus_python
from single_node_slurm import SingleNodeSlurm, SlurmStartError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PACKAGE = "librispeech_joint_training_given_alignments"
CONFIG = f"""\
from recipe.{PACKAGE}.data_prep.testing import tiny_first_jobs


def main():
    tiny_first_jobs()
"""
OUTPUT = "output/tiny_first_jobs"


def make_setup(path: str, settings: str = None) -> str:
    """A setup folder as in the README: recipe/<package> -> this repository, config/__init__.py, work/."""
    os.makedirs(os.path.join(path, "recipe"))
    os.symlink(REPO, os.path.join(path, "recipe", PACKAGE))
    os.makedirs(os.path.join(path, "config"))
    with open(os.path.join(path, "config", "__init__.py"), "w") as f:
        f.write(CONFIG)
    os.makedirs(os.path.join(path, "work"))
    if settings:
        shutil.copy(settings, os.path.join(path, "settings.py"))
    return path


def _run(cmd, cwd, env, timeout):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return result.returncode, re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def finished_jobs(setup: str):
    """Job ids (paths under work/) with a ``finished`` marker; the links in a job's ``input/`` are not followed."""
    work = os.path.join(setup, "work")
    return sorted(os.path.relpath(folder, work) for folder, _, files in os.walk(work) if "finished" in files)


def _failed_logs(setup):
    tails = []
    for log in sorted(glob.glob(os.path.join(setup, "work", "**", "log.*"), recursive=True)):
        if not os.path.exists(os.path.join(os.path.dirname(log), "finished")):
            with open(log, errors="replace") as f:
                tails.append(f"--- {log}\n{f.read()[-2000:]}")
    return "\n".join(tails)


@pytest.fixture(scope="module")
def slurm_cluster():
    base = tempfile.mkdtemp(prefix="slurm-", dir="/tmp")  # short: munge's socket path must fit a unix socket name
    cluster = SingleNodeSlurm(base)
    try:
        cluster.start()
    except SlurmStartError as exc:
        pytest.fail(str(exc))
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    setup = make_setup(str(tmp_path_factory.mktemp("embedded")))
    rc, out = _run([sys.executable, "-m", f"{PACKAGE}.embedded_sisyphus", "manager", "-r"], setup, dict(os.environ), 900)
    assert rc == 0 and os.path.exists(os.path.join(setup, OUTPUT, "xvectors.hdf")), out[-3000:] + _failed_logs(setup)
    return setup


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    sis = os.path.join(os.path.dirname(real_sisyphus_python()), "sis")
    setup = make_setup(str(tmp_path_factory.mktemp("slurm")), os.path.join(HERE, "slurm_settings.py"))
    rc, out = _run([sis, "manager", "-r"], setup, slurm_cluster.env(), 900)
    # the real manager exits 0 even when a job failed: look for the last output
    if not os.path.exists(os.path.join(setup, OUTPUT, "xvectors.hdf")):
        pytest.fail(f"sis manager (exit {rc}) did not produce the outputs:\n{out[-4000:]}\n{_failed_logs(setup)}\n"
                    + slurm_cluster.log_tail("slurmctld") + slurm_cluster.log_tail("slurmd"))
    return setup


def test_same_jobs_all_through_sbatch(embedded_run, slurm_run, slurm_cluster):
    jobs = finished_jobs(slurm_run)
    assert jobs == finished_jobs(embedded_run)
    assert len(jobs) == 8 and sum("ReturnnTrainingJob" in j or "ReturnnForwardJob" in j for j in jobs) == 2
    with open(os.path.join(slurm_cluster.base_dir, "slurmctld.log")) as f:
        # the main scheduler logs "sched: Allocate JobId=N ...", the backfill scheduler "...: Started JobId=N in ..."
        allocated = set(re.findall(r"(?:Allocate|Started) JobId=(\d+)", f.read()))
    tasks = 0
    for job in jobs:
        for submit_log in glob.glob(os.path.join(slurm_run, "work", job, "submit_log.*")):
            with open(submit_log) as f:
                for line in f:  # one repr'd (task ids, rqmt + engine info) tuple per submission
                    _, info = ast.literal_eval(line)  # written by Sisyphus: repr() of plain literals
                    assert info["engine_name"] == "slurm", (submit_log, line)
                    assert {slurm_id for _, slurm_id in info["engine_info"]} <= allocated, (submit_log, line)
                    tasks += 1
    assert tasks >= len(jobs)


def _output(setup, name):
    return os.path.realpath(os.path.join(setup, OUTPUT, name))


def _hdf_contents(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        out["attrs"] = {k: str(v) for k, v in f.attrs.items()}
    return out


@pytest.mark.parametrize("name", ["log_mel.hdf", "phonemes.hdf", "speakers.hdf", "xvectors.hdf"])
def test_hdf_outputs_equal(embedded_run, slurm_run, name):
    embedded, real = _hdf_contents(_output(embedded_run, name)), _hdf_contents(_output(slurm_run, name))
    assert sorted(embedded) == sorted(real)
    for key in embedded:
        if isinstance(embedded[key], np.ndarray):
            np.testing.assert_array_equal(real[key], embedded[key], err_msg=f"{name}: {key}")
        else:
            assert real[key] == embedded[key], f"{name}: {key}"
    if name == "xvectors.hdf":  # a real forward: one 16-dim vector per utterance of the 20 training utterances
        assert embedded["inputs"].shape == (20, 16) and np.abs(embedded["inputs"]).sum() > 0


def _corpus(setup):
    with open(_output(setup, "corpus.json")) as f:
        corpus = json.load(f)
    work = os.path.join(os.path.realpath(setup), "work") + os.sep
    for entry in corpus["entries"]:
        assert entry["audio"].startswith(work), entry
        entry["audio"] = entry["audio"][len(work):]
    return corpus


def test_corpus_and_audio_equal(embedded_run, slurm_run):
    embedded, real = _corpus(embedded_run), _corpus(slurm_run)
    assert real == embedded and len(embedded["entries"]) == 20
    for entry in embedded["entries"]:
        a, rate_a = soundfile.read(os.path.join(embedded_run, "work", entry["audio"]), dtype="int16")
        b, rate_b = soundfile.read(os.path.join(slurm_run, "work", entry["audio"]), dtype="int16")
        assert rate_a == rate_b and len(a) == entry["num_samples"], entry["seq_tag"]
        np.testing.assert_array_equal(b, a, err_msg=entry["seq_tag"])


def test_lexicon_and_training_scores_equal(embedded_run, slurm_run):
    with open(_output(embedded_run, "lexicon.json")) as a, open(_output(slurm_run, "lexicon.json")) as b:
        assert b.read() == a.read()
    # the scores file also holds RETURNN's ':meta:' entries (wall-clock time, host): compare learning rates and scores
    embedded = read_learning_rates_file(_output(embedded_run, "xvector_training.learning_rates"))
    real = read_learning_rates_file(_output(slurm_run, "xvector_training.learning_rates"))
    assert real == embedded and sorted(embedded) == [1, 2]
    assert set(embedded[2].scores) == {"train_loss_ce", "train_loss_error"}


def test_trained_checkpoint_equal(embedded_run, slurm_run):
    embedded = torch.load(_output(embedded_run, "xvector_training.checkpoint.pt"), map_location="cpu")
    real = torch.load(_output(slurm_run, "xvector_training.checkpoint.pt"), map_location="cpu")
    assert (real["epoch"], real["step"]) == (embedded["epoch"], embedded["step"]) and embedded["epoch"] == 2
    assert sorted(real["model"]) == sorted(embedded["model"])
    for key, tensor in embedded["model"].items():
        assert torch.equal(real["model"][key], tensor), key
