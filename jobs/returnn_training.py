"""RETURNN (PyTorch backend) training and checkpoint handling as Sisyphus jobs.

Semantics follow i6_core's ``ReturnnTrainingJob``: epochs, devices, logging and requirements live in
``post_config`` and are not hashed; checkpoints are available to later jobs as soon as RETURNN writes
them; rerunning the ``run`` task after a kill continues from the last checkpoint (RETURNN resumes
from the newest ``epoch.NNN.pt`` that has its optimizer state).
"""
from __future__ import annotations

import copy
import glob
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional

from ..sisyphus_api import Job, Task, tk
from .learning_rates import LearningRatesError, read_learning_rates
from .returnn_config import ReturnnConfig
from .returnn_progress import TrainingProgress, last_progress


class PtCheckpoint:
    """A PyTorch checkpoint file; hashes as its path, as in i6_core."""

    def __init__(self, path: tk.Path):
        self.path = path

    def _sis_hash(self) -> bytes:
        return self.path._sis_hash()

    def get_path(self) -> str:
        return self.path.get_path()

    def __str__(self) -> str:
        return self.path.get_path()

    def __fspath__(self) -> str:
        return self.path.get_path()

    def exists(self) -> bool:
        return os.path.exists(self.path.get_path())

    def __repr__(self) -> str:
        return f"PtCheckpoint({self.path!r})"


def returnn_command(returnn_python_exe: Optional[tk.Path], config_file: str, device: Optional[str] = None) -> List[str]:
    """``python -m returnn CONFIG``, with ``++device DEVICE`` (RETURNN's command-line override) when given."""
    exe = returnn_python_exe.get_path() if returnn_python_exe is not None else sys.executable
    return [exe, "-m", "returnn", config_file] + (["++device", device] if device else [])


def runtime_device(gpu_rqmt: int) -> str:
    """The RETURNN device of a task, decided where it runs (not written into the config at graph time, so one work dir
    serves GPU and CPU-only setups): "gpu" when the task asked for a GPU and CUDA is visible, else "cpu".

    A task that asked for a GPU but sees none (e.g. ``check_engine_limits`` in a CPU-only ``settings.py`` removed the
    GPU requirement) runs on the CPU, with a warning in its log.
    """
    if gpu_rqmt <= 0:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "gpu"
    print(f"WARNING: the task asked for {gpu_rqmt} GPU(s) but CUDA sees none "
          f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); running RETURNN on the CPU", flush=True)
    return "cpu"


def _loadable(path: str) -> Optional[str]:
    """None if ``torch.load`` reads the file, else the reason it cannot."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zip, bad pickle, ...: whatever stops RETURNN from resuming
        return f"{type(exc).__name__}: {exc}"
    return None


def set_aside_unloadable_checkpoints(model_dir: str) -> List[str]:
    """Before RETURNN resumes: move the newest checkpoints that cannot be loaded (e.g. truncated by a full disk or a
    kill while writing) to ``<name>.unloadable[.N]``, until the newest left loads (model and optimizer state).

    Why: RETURNN resumes from the newest ``epoch.NNN.pt``; an unreadable one made every rerun fail the same way.
    Moved aside (not deleted), RETURNN continues from the checkpoint before it and trains that epoch again.
    Returns the moved files.
    """
    moved: List[str] = []
    if not os.path.isdir(model_dir):
        return moved
    epochs = sorted((int(m.group(1)) for f in os.listdir(model_dir) if (m := re.match(r"epoch\.(\d+)\.pt$", f))),
                    reverse=True)
    for epoch in epochs:
        files = [os.path.join(model_dir, f"epoch.{epoch:03d}{ext}") for ext in (".pt", ".opt.pt")]
        problems = {f: reason for f in files if os.path.exists(f) and (reason := _loadable(f)) is not None}
        if not problems:
            break
        for f in files:
            if os.path.exists(f):
                target, n = f + ".unloadable", 1
                while os.path.exists(target):
                    target, n = f"{f}.unloadable.{n}", n + 1
                os.replace(f, target)
                moved.append(f)
        print(f"checkpoint of epoch {epoch} cannot be loaded ({'; '.join(f'{k}: {v}' for k, v in problems.items())});"
              f" moved aside as *.unloadable, resuming from the checkpoint before it", flush=True)
    return moved


def _checkpoint_epochs(num_epochs: int, save_interval: int, keep_epochs: Optional[List[int]]) -> List[int]:
    epochs = sorted(set(range(save_interval, num_epochs, save_interval)) | {num_epochs})
    return [e for e in epochs if keep_epochs is None or e in keep_epochs]


class ReturnnTrainingJob(Job):
    def __init__(
        self,
        returnn_config: ReturnnConfig,
        *,
        log_verbosity: int = 3,
        device: str = "gpu",
        num_epochs: int = 1,
        save_interval: int = 1,
        keep_epochs: Optional[List[int]] = None,
        time_rqmt: float = 4,
        mem_rqmt: float = 4,
        cpu_rqmt: int = 2,
        returnn_python_exe: Optional[tk.Path] = None,
    ):
        for key in ("log_verbosity", "device", "num_epochs", "save_interval", "keep_epochs"):
            if key in returnn_config.config or key in returnn_config.post_config:
                raise ValueError(f"ReturnnTrainingJob: set {key!r} as a job parameter, not in the RETURNN config")
        self.returnn_python_exe = returnn_python_exe
        self.num_epochs = num_epochs
        self.device = device
        self.out_returnn_config_file = self.output_path("returnn.config")
        self.out_learning_rates = self.output_path("learning_rates")
        self.out_model_dir = self.output_path("models", directory=True)
        self.out_checkpoints: Dict[int, PtCheckpoint] = {
            epoch: PtCheckpoint(self.output_path(f"models/epoch.{epoch:03d}.pt"))
            for epoch in _checkpoint_epochs(num_epochs, save_interval, keep_epochs)
        }
        self.returnn_config = self.create_returnn_config(
            returnn_config, log_verbosity=log_verbosity, device=device, num_epochs=num_epochs,
            save_interval=save_interval, keep_epochs=keep_epochs,
        )
        self.returnn_config.post_config["model"] = os.path.join(self.out_model_dir.get_path(), "epoch")
        self.returnn_config.post_config["learning_rate_file"] = self.out_learning_rates.get_path()
        self.rqmt = {"gpu": 1 if device == "gpu" else 0, "cpu": cpu_rqmt, "mem": mem_rqmt, "time": time_rqmt}

    @staticmethod
    def create_returnn_config(returnn_config: ReturnnConfig, *, log_verbosity: int, device: str, num_epochs: int,
                              save_interval: int, keep_epochs: Optional[List[int]], **_unused: Any) -> ReturnnConfig:
        config = {"task": "train", "backend": "torch"}
        config.update(copy.deepcopy(returnn_config.config))
        post_config = {  # no "device": the run task chooses it (runtime_device), so the config file serves any node
            "log": ["./returnn.log"],
            "log_verbosity": log_verbosity,
            "num_epochs": num_epochs,
            "save_interval": save_interval,
        }
        post_config.update(copy.deepcopy(returnn_config.post_config))
        if "backend" in post_config:
            config.pop("backend")
        if keep_epochs is not None:
            post_config.setdefault("cleanup_old_models", {})["keep"] = list(keep_epochs)
        result = copy.deepcopy(returnn_config)
        result.config, result.post_config = config, post_config
        result.check_consistency()
        return result

    @classmethod
    def hash(cls, kwargs: Dict[str, Any]) -> str:
        return super().hash({
            "returnn_config": cls.create_returnn_config(**kwargs),
            "returnn_python_exe": kwargs["returnn_python_exe"],
        })

    def tasks(self):
        yield Task("create_files", mini_task=True)
        yield Task("run", resume="run", rqmt=self.rqmt)

    def create_files(self) -> None:
        self.returnn_config.write(self.out_returnn_config_file.get_path())
        with open("rnn.sh", "w") as f:
            f.write("#!/usr/bin/env bash\n" + " ".join(returnn_command(self.returnn_python_exe,
                                                                      self.out_returnn_config_file.get_path())) + "\n")
        os.chmod("rnn.sh", 0o755)

    def run(self) -> None:
        set_aside_unloadable_checkpoints(self.out_model_dir.get_path())
        device = runtime_device(self.rqmt["gpu"])
        subprocess.check_call(returnn_command(self.returnn_python_exe, self.out_returnn_config_file.get_path(), device))

    def path_available(self, path: tk.Path) -> bool:
        """Checkpoints count as soon as RETURNN has written them, so evaluation can start during training."""
        if self._sis_finished():
            return True
        if path.path.startswith("models/epoch.") and path.path.endswith(".pt"):
            return os.path.exists(path.get_path())
        return False

    def trained_epochs(self) -> List[int]:
        files = glob.glob(os.path.join(glob.escape(self.out_model_dir.get_path()), "epoch.*.pt"))
        epochs = [int(m.group(1)) for f in files if (m := re.search(r"epoch\.(\d+)\.pt$", f))]
        return sorted(epochs)

    def _job_dir(self) -> str:
        # outputs live in <job dir>/output/ under both engines (work_path() differs between them)
        return os.path.dirname(os.path.dirname(self.out_learning_rates.get_path()))

    def progress(self) -> Optional[TrainingProgress]:
        """The last epoch/step/losses RETURNN printed (the task log, else RETURNN's own log in work/)."""
        job_dir = self._job_dir()
        return last_progress([os.path.join(job_dir, "log.run.1"), os.path.join(job_dir, "work", "returnn.log")])

    def info(self) -> Optional[str]:
        """Shown next to the running job by the manager: epoch, step, current losses and the last dev scores."""
        progress = self.progress()
        if progress is None:
            epochs = self.trained_epochs()
            text = f"ep {epochs[-1] if epochs else 0}/{self.num_epochs}"
        else:
            text = progress.describe(self.num_epochs)
        dev = self._last_dev_scores()
        return text + (" | " + " ".join(f"{k} {v:.4g}" for k, v in dev.items()) if dev else "")

    def _last_dev_scores(self) -> Dict[str, float]:
        try:
            epochs = read_learning_rates(self.out_learning_rates.get_path())
        except (OSError, LearningRatesError):
            return {}
        for epoch in sorted(epochs, reverse=True):
            dev = {k: v for k, v in epochs[epoch].items() if k.startswith("dev_")}
            if dev:
                return dev
        return {}

    def completed_fraction(self) -> Optional[float]:
        progress = self.progress()
        if progress is not None and progress.step is not None and progress.epoch_fraction is not None:
            return min(1.0, (progress.epoch - 1 + progress.epoch_fraction) / self.num_epochs)
        epochs = self.trained_epochs()
        return (epochs[-1] if epochs else 0) / self.num_epochs


def _link_or_copy(source: str, target: str) -> None:
    """A checkpoint file as a job output: a hard link (no copy of a large file) where the file system allows it.
    (Real Sisyphus' ``tools.hardlink_or_copy`` walks directories only, so it cannot serve a single file.)"""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)


class GetBestPtCheckpointJob(Job):
    """The checkpoint with the lowest score ``key`` in the learning-rates file (e.g. ``dev_loss_mle``)."""

    def __init__(self, model_dir: tk.Path, learning_rates: tk.Path, key: str, index: int = 0):
        self.model_dir = model_dir
        self.learning_rates = learning_rates
        self.key = key
        self.index = index
        self.out_epoch = self.output_var("epoch")
        self.out_checkpoint = PtCheckpoint(self.output_path("checkpoint.pt"))

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        scores = read_learning_rates(self.learning_rates.get_path())
        available = {int(m.group(1)) for f in os.listdir(self.model_dir.get_path())
                     if (m := re.match(r"epoch\.(\d+)\.pt$", f))}
        ranked = sorted((error[self.key], epoch) for epoch, error in scores.items()
                        if self.key in error and epoch in available)
        if not ranked:
            raise KeyError(f"{self.learning_rates.get_path()}: no saved epoch has score {self.key!r}")
        epoch = ranked[self.index][1]
        self.out_epoch.set(epoch)
        _link_or_copy(os.path.join(self.model_dir.get_path(), f"epoch.{epoch:03d}.pt"), self.out_checkpoint.get_path())


class SelectBestTrainingJob(Job):
    """Of several trainings of one model (e.g. other random seeds), the one with the lowest score ``key`` at its
    last epoch: its last checkpoint (``out_checkpoint``, to continue it), and per candidate its score
    (``out_scores[name]``) and whether it was chosen (``out_selected[name]``: 1 or 0). Ties go to the first
    candidate in ``sorted`` name order, so the choice does not depend on the order the dict was built in.

    Why: whether MAS settles on a token-by-token path in a short training depends on the seed alone, and the
    duration loss separates settled from unsettled trainings after a few epochs; continuing only the best of several
    short candidates costs the updates of one long training. Which data the score comes from is the caller's
    choice (``config.SeedSelection`` uses ``devtrain``, training utterances, so the judged split stays unseen).

    :param checkpoints: candidate name -> the checkpoint of its last epoch
    :param learning_rates: candidate name -> its training's learning-rates file (the same names)
    :param key: a score of the learning-rates file, lower is better (e.g. ``dev_loss_dp``)
    """

    def __init__(self, checkpoints: Dict[str, PtCheckpoint], learning_rates: Dict[str, tk.Path], key: str):
        if not checkpoints or set(checkpoints) != set(learning_rates):
            raise ValueError(f"SelectBestTrainingJob: checkpoints {sorted(checkpoints)} and learning-rates files "
                             f"{sorted(learning_rates)} must name the same, non-empty set of candidates")
        self.checkpoints = checkpoints
        self.learning_rates = learning_rates
        self.key = key
        self.out_checkpoint = PtCheckpoint(self.output_path("checkpoint.pt"))
        self.out_scores = {name: self.output_var(f"score.{name}") for name in sorted(checkpoints)}
        self.out_selected = {name: self.output_var(f"selected.{name}") for name in sorted(checkpoints)}

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        scores = {}
        for name in sorted(self.checkpoints):
            path = self.learning_rates[name].get_path()
            epochs = read_learning_rates(path)
            if not epochs:
                raise ValueError(f"{path}: candidate {name!r} has no finished epoch")
            last = epochs[max(epochs)]
            if self.key not in last:
                raise KeyError(f"{path}: candidate {name!r} has no score {self.key!r} at its last epoch "
                               f"{max(epochs)} (it has {sorted(last)})")
            if last[self.key] != last[self.key]:  # NaN: a diverged candidate cannot be ranked
                raise ValueError(f"{path}: candidate {name!r} has score {self.key!r} NaN at epoch {max(epochs)}")
            scores[name] = last[self.key]
        best = min(sorted(scores), key=lambda name: scores[name])
        for name, score in scores.items():
            self.out_scores[name].set(score)
            self.out_selected[name].set(int(name == best))
        _link_or_copy(self.checkpoints[best].get_path(), self.out_checkpoint.get_path())
