"""Real RETURNN (PyTorch backend) training and forward through the embedded engine."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import pytest

from librispeech_joint_training_given_alignments.jobs.returnn_config import ReturnnConfig
from librispeech_joint_training_given_alignments.jobs.returnn_forward import ReturnnForwardJob
from librispeech_joint_training_given_alignments.jobs.returnn_training import (
    GetBestPtCheckpointJob, PtCheckpoint, ReturnnTrainingJob, SelectBestTrainingJob, read_learning_rates)
from librispeech_joint_training_given_alignments.jobs.serialization import serialize_network
from librispeech_joint_training_given_alignments.sisyphus_api import tk

import tiny_network


def _dataset(data_dir, ordering="random"):
    return {
        "class": "MetaDataset",
        "datasets": {
            "feats": {"class": "HDFDataset", "files": [tk.Path(f"{data_dir}/feats.hdf")], "seq_ordering": ordering,
                      "use_cache_manager": False},
            "classes": {"class": "HDFDataset", "files": [tk.Path(f"{data_dir}/classes.hdf")],
                        "use_cache_manager": False},
        },
        "data_map": {"data": ("feats", "data"), "classes": ("classes", "data")},
        "seq_order_control_dataset": "feats",
    }


def _train_config(data_dir, hidden=8, slow_down=0.0, post_config=None):
    cfg = tiny_network.TinyConfig(hidden=hidden)
    return ReturnnConfig(
        config={
            "extern_data": {"data": {"dim": 4}, "classes": {"dim": 3, "sparse": True}},
            "train": _dataset(data_dir),
            "dev": _dataset(data_dir, "sorted"),
            "batch_size": 200,
            "max_seqs": 4,
            "optimizer": {"class": "adam", "epsilon": 1e-8},
            "learning_rate": 0.01,
            "torch_dataloader_opts": {"num_workers": 0},
        },
        post_config=post_config or {"rf_native_opt": False},
        python_epilog=serialize_network("tiny_network", cfg, train_step_kwargs={"slow_down": slow_down}),
    )


@pytest.fixture
def data_dir(sis_setup):
    path = sis_setup / "data"
    path.mkdir()
    tiny_network.write_tiny_data(str(path))
    return str(path)


def test_hash_covers_model_config_not_post_config(data_dir):
    base = ReturnnTrainingJob(_train_config(data_dir), num_epochs=2, device="cpu")
    assert ReturnnTrainingJob(_train_config(data_dir, hidden=9), num_epochs=2, device="cpu").job_id() != base.job_id()
    same = ReturnnTrainingJob(_train_config(data_dir, post_config={"rf_native_opt": False, "log_batch_size": True}),
                              num_epochs=7, device="gpu", mem_rqmt=30, cpu_rqmt=8)
    assert same.job_id() == base.job_id()
    assert base.job_id().startswith("librispeech_joint_training_given_alignments/jobs/returnn_training/ReturnnTrainingJob.")


def test_config_text_contains_explicit_model_config(data_dir):
    text = _train_config(data_dir, hidden=13).serialize()
    assert "model_config = TinyConfig(in_dim=4, hidden=13, num_classes=3)" in text
    assert "from tiny_network import TinyConfig" in text
    assert f"'{data_dir}/feats.hdf'" in text


def test_train_then_forward(data_dir):
    train = ReturnnTrainingJob(_train_config(data_dir), num_epochs=3, device="cpu", cpu_rqmt=1)
    best = GetBestPtCheckpointJob(train.out_model_dir, train.out_learning_rates, key="dev_loss_ce")
    forward_config = ReturnnConfig(
        config={
            "extern_data": {"data": {"dim": 4}, "classes": {"dim": 3, "sparse": True, "available_for_inference": False}},
            "model_outputs": {"posteriors": {"shape": (None, 3)}},
            "forward_data": _dataset(data_dir, "default"),
            "batch_size": 200,
            "torch_dataloader_opts": {"num_workers": 0},
        },
        python_epilog=serialize_network("tiny_network", tiny_network.TinyConfig(), train=False,
                                        forward_callback="PosteriorHDFCallback",
                                        forward_callback_kwargs={"filename": "posteriors.hdf"}),
    )
    forward = ReturnnForwardJob(best.out_checkpoint, forward_config, output_files=["posteriors.hdf"], device="cpu")
    state = tk.run([forward.out_files["posteriors.hdf"], train.out_checkpoints[3]])
    assert set(state.jobs.values()) == {"finished"}, state.jobs
    assert sorted(train.out_checkpoints) == [1, 2, 3]
    assert all(c.exists() for c in train.out_checkpoints.values())
    scores = read_learning_rates(train.out_learning_rates.get_path())
    assert scores[3]["dev_loss_ce"] < scores[1]["dev_loss_ce"]
    with h5py.File(forward.out_files["posteriors.hdf"].get_path()) as f:
        assert len(f["seqTags"]) == 12 and f["inputs"].shape[1] == 3


def test_killed_training_resumes_from_last_checkpoint(data_dir, sis_setup):
    (sis_setup / "config.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from librispeech_joint_training_given_alignments.sisyphus_api import tk
        from librispeech_joint_training_given_alignments.jobs.returnn_training import ReturnnTrainingJob
        from test_returnn_jobs import _train_config

        def py():
            job = ReturnnTrainingJob(_train_config({data_dir!r}, slow_down=0.4), num_epochs=4, device="cpu")
            tk.register_output("tiny/models", job.out_model_dir)
        """))
    cmd = [sys.executable, "-m", "librispeech_joint_training_given_alignments.embedded_sisyphus", "manager", "-r",
           "config.py"]
    manager = subprocess.Popen(cmd, cwd=sis_setup, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 240
    first = None
    while time.time() < deadline:
        found = list((sis_setup / "work").rglob("models/epoch.001.pt"))
        if found:
            first = found[0]
            break
        time.sleep(0.2)
    assert first is not None, "no checkpoint appeared"
    time.sleep(0.5)
    usage = next((sis_setup / "work").rglob("usage.run.1"))
    worker_pid = eval(usage.read_text())["pid"]
    os.killpg(manager.pid, signal.SIGKILL)
    os.killpg(worker_pid, signal.SIGKILL)  # the worker leads the session RETURNN runs in
    manager.wait()
    time.sleep(0.5)
    models = first.parent
    assert not (models / "epoch.004.pt").exists(), "training finished before it could be killed"
    kept = {p.name: p.stat().st_mtime for p in models.glob("epoch.*.pt") if ".opt." not in p.name}
    result = subprocess.run(cmd, cwd=sis_setup, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, mtime in kept.items():
        if (models / name.replace(".pt", ".opt.pt")).exists() or name != max(kept):
            assert (models / name).stat().st_mtime == mtime, f"{name} was trained again"
    assert (models / "epoch.004.pt").exists()
    log = (models.parent.parent / "log.run.1").read_text()
    assert log.count("==== ") >= 3  # started twice, finished once


def test_variables_in_model_config_become_dependencies(data_dir):
    import engine_jobs

    hidden = engine_jobs.WriteNumber(6)
    config = _train_config(data_dir)
    config.python_epilog = serialize_network("tiny_network", tiny_network.TinyConfig(hidden=hidden.out_number))
    train = ReturnnTrainingJob(config, num_epochs=1, device="cpu")
    assert hidden in train._sis_dependencies()
    assert train.job_id() != ReturnnTrainingJob(_train_config(data_dir, hidden=6), num_epochs=1, device="cpu").job_id()
    tk.run(train.out_returnn_config_file)
    text = open(train.out_returnn_config_file.get_path()).read()
    assert "model_config = TinyConfig(in_dim=4, hidden=6, num_classes=3)" in text


def test_unloadable_newest_checkpoint_is_set_aside_and_training_resumes(data_dir):
    import torch

    train = ReturnnTrainingJob(_train_config(data_dir), num_epochs=2, device="cpu", cpu_rqmt=1)
    assert tk.run(train.out_checkpoints[2]).jobs[train.job_id()] == "finished"
    newest = train.out_checkpoints[2].get_path()
    data = open(newest, "rb").read()
    open(newest, "wb").write(data[: len(data) // 3])  # truncated, as by a full disk
    job_dir = os.path.dirname(os.path.dirname(os.path.dirname(newest)))
    for marker in ("finished", "finished.run.1"):  # as if the training had been stopped while writing it
        os.remove(os.path.join(job_dir, marker))
    state = tk.run(train.out_checkpoints[2])
    assert state.jobs[train.job_id()] == "finished", open(os.path.join(job_dir, "log.run.1")).read()[-3000:]
    assert os.path.getsize(newest + ".unloadable") == len(data) // 3
    torch.load(newest, map_location="cpu", weights_only=False)  # epoch 2 trained again from epoch 1
    assert "checkpoint of epoch 2 cannot be loaded" in open(os.path.join(job_dir, "log.run.1")).read()


def _candidate(root, name, dev_dp_by_epoch):
    """A finished candidate training as SelectBestTrainingJob sees it: its learning-rates file (RETURNN's format)
    and a last checkpoint whose bytes name it."""
    os.makedirs(root / name)
    lines = ", ".join(f"{epoch}: EpochData(learningRate=0.001, error={{'dev_loss_dp': {score!r}, "
                      f"'dev_loss_mle': -{score!r}}})" for epoch, score in dev_dp_by_epoch.items())
    (root / name / "learning_rates").write_text("{" + lines + "}\n")
    (root / name / "epoch.pt").write_bytes(name.encode())
    return PtCheckpoint(tk.Path(str(root / name / "epoch.pt"))), tk.Path(str(root / name / "learning_rates"))


def test_select_best_training_takes_lowest_last_epoch_score(sis_setup):
    # seed_1 is best at epoch 1 but not at its last epoch; seed_42 and seed_9 tie at the last epoch (seed_42
    # wins: the first in sorted name order, whatever order the dict was built in)
    given = {"seed_9": {1: 0.9, 2: 0.5}, "seed_1": {1: 0.2, 2: 0.7}, "seed_42": {1: 0.8, 2: 0.5}}
    made = {name: _candidate(sis_setup, name, scores) for name, scores in given.items()}
    job = SelectBestTrainingJob({k: v[0] for k, v in made.items()}, {k: v[1] for k, v in made.items()},
                                key="dev_loss_dp")
    state = tk.run([job.out_checkpoint.path])
    assert set(state.jobs.values()) == {"finished"}, state.jobs
    assert open(job.out_checkpoint.get_path(), "rb").read() == b"seed_42"
    assert {k: v.get() for k, v in job.out_selected.items()} == {"seed_1": 0, "seed_42": 1, "seed_9": 0}
    assert {k: v.get() for k, v in job.out_scores.items()} == {"seed_1": 0.7, "seed_42": 0.5, "seed_9": 0.5}


def test_select_best_training_names_a_candidate_without_the_score(sis_setup):
    made = {"a": _candidate(sis_setup, "a", {1: 0.3}), "b": _candidate(sis_setup, "b", {1: 0.4})}
    (sis_setup / "b" / "learning_rates").write_text("{1: EpochData(learningRate=0.001, error={'dev_loss_mle': 1.0})}")
    job = SelectBestTrainingJob({k: v[0] for k, v in made.items()}, {k: v[1] for k, v in made.items()},
                                key="dev_loss_dp")
    with pytest.raises(KeyError, match=r"candidate 'b' has no score 'dev_loss_dp' at its last epoch 1"):
        job.run()
    with pytest.raises(ValueError, match="must name the same"):
        SelectBestTrainingJob({"a": made["a"][0]}, {"b": made["b"][1]}, key="dev_loss_dp")
