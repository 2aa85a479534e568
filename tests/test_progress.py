"""Live progress: RETURNN's log lines parsed into epoch/step/losses, the manager's periodic status block, and a
manager run whose status shows a training's steps while it runs (not only when a job changes state)."""
import os
import re
import subprocess
import sys
import textwrap

from librispeech_joint_training_given_alignments.embedded_sisyphus.manager import GraphState
from librispeech_joint_training_given_alignments.embedded_sisyphus.progress import ProgressPrinter
from librispeech_joint_training_given_alignments.jobs.returnn_config import ReturnnConfig
from librispeech_joint_training_given_alignments.jobs.returnn_progress import parse_progress_line
from librispeech_joint_training_given_alignments.jobs.returnn_training import ReturnnTrainingJob

# lines as RETURNN's PyTorch engine prints them (log_verbosity 5 and 3)
STEP = ("ep 2 train, step {step}, mle {mle}, dp 0.412, num_seqs 8, max_size:time 310, max_size:data 41, "
        "0.152 sec/step, elapsed 0:00:03, exp. remaining 0:00:03, complete {complete}%")


def test_progress_lines_parse_to_epoch_step_and_losses():
    p = parse_progress_line(STEP.format(step=12, mle="1.234", complete="50.00"))
    assert (p.epoch, p.dataset, p.step, p.epoch_fraction) == (2, "train", 12, 0.5)
    assert p.losses == {"mle": 1.234, "dp": 0.412}  # batch sizes, timings are not losses
    assert p.describe(8) == "ep 2/8 train step 12 (50%) mle 1.234 dp 0.412"
    end = parse_progress_line("Epoch 2: Total train loss: mle 1.100 dp 3.000e-04")
    assert (end.epoch, end.step, end.losses) == (2, None, {"mle": 1.1, "dp": 3e-4})
    assert parse_progress_line("Epoch 3: Total train loss: 0.75").losses == {"loss": 0.75}
    assert parse_progress_line("ep 2 dev eval, step 1, mle 1.0") is None
    assert parse_progress_line("Starting training at epoch 1, global train step 0") is None


def _training_job():
    config = ReturnnConfig(config={"train": {"class": "HDFDataset", "files": []}, "batch_size": 10})
    return ReturnnTrainingJob(config, num_epochs=4, device="cpu")


def test_training_job_reports_progress_from_its_growing_log(sis_setup):
    job = _training_job()
    job_dir = os.path.dirname(os.path.dirname(job.out_learning_rates.get_path()))
    os.makedirs(os.path.join(job_dir, "output"))
    assert job.info() == "ep 0/4" and job.completed_fraction() == 0.0  # nothing printed yet
    log = os.path.join(job_dir, "log.run.1")
    with open(log, "w") as f:
        f.write("RETURNN starting up\n" + STEP.format(step=0, mle="2.000", complete="25.00") + "\n")
    assert job.info() == "ep 2/4 train step 0 (25%) mle 2 dp 0.412"
    with open(log, "a") as f:
        f.write("x" * 40000 + "\n")  # the tail read still finds the last line after a lot of other output
        f.write(STEP.format(step=3, mle="1.500", complete="75.00") + "\n")
    with open(job.out_learning_rates.get_path(), "w") as f:
        f.write("{1: EpochData(learningRate=0.001, error={'dev_loss_mle': 1.75, 'train_loss_mle': 2.5})}\n")
    assert job.info() == "ep 2/4 train step 3 (75%) mle 1.5 dp 0.412 | dev_loss_mle 1.75"
    assert job.completed_fraction() == (1 + 0.75) / 4


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_status_block_printed_when_changed_and_at_least_every_minute(sis_setup, capsys):
    job = _training_job()
    job_dir = os.path.dirname(os.path.dirname(job.out_learning_rates.get_path()))
    os.makedirs(job_dir)
    log = os.path.join(job_dir, "log.run.1")
    state = GraphState({"a": "finished", "b": "running", job._sis_id(): "running"}, [(job, "")])
    clock = _Clock()
    printer = ProgressPrinter(min_interval=10, max_interval=60, clock=clock)

    def step(n, seconds):
        with open(log, "a") as f:
            f.write(STEP.format(step=n, mle=f"{2 - n / 10:.3f}", complete=f"{10 * (n + 1):.2f}") + "\n")
        clock.now += seconds
        return printer(state)

    assert step(0, 0)
    out = capsys.readouterr().out
    assert "jobs: 3  finished: 1  running: 2" in out and "train step 0 (10%) mle 2" in out
    assert not step(1, 5)  # changed, but only 5 s later: not yet
    assert step(2, 5)  # 10 s: the newest state
    assert "step 2 (30%) mle 1.8" in capsys.readouterr().out
    clock.now += 30
    assert not printer(state)  # nothing new
    clock.now += 30
    assert printer(state)  # but at least once a minute
    assert "step 2 (30%)" in capsys.readouterr().out


def test_manager_shows_training_progress_while_it_runs(sis_setup):
    (sis_setup / "config.py").write_text(textwrap.dedent("""
        from librispeech_joint_training_given_alignments.sisyphus_api import tk
        import engine_jobs

        def py():
            job = engine_jobs.FakeTraining(steps=12, step_seconds=0.5)
            job.add_alias("demo/training")
            tk.register_output("demo/done", job.out_done)
        """))
    result = subprocess.run(
        [sys.executable, "-m", "librispeech_joint_training_given_alignments.embedded_sisyphus", "manager", "-r",
         "--progress-interval", "1", "config.py"], cwd=sis_setup, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [int(m.group(1)) for m in re.finditer(r"running: demo/training\s+\[ep 1/1 train step (\d+)", result.stdout)]
    # the job changed state only twice (started, finished); the status still followed its steps
    assert len(set(steps)) >= 3 and steps == sorted(steps), result.stdout
