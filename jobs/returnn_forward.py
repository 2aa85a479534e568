"""RETURNN forward (synthesis, latent dumps, alignments, recognition) as a Sisyphus job.

Like i6_core's ``ReturnnForwardJobV2``: the checkpoint becomes ``load`` in the hashed config; the
forward callback writes the declared ``output_files`` into a fresh run directory, from where they are
moved to ``output/``; ``output_files`` themselves are not hashed.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
from typing import Any, Dict, List, Optional

from ..sisyphus_api import Job, Task, tk
from .returnn_config import ReturnnConfig
from .returnn_training import PtCheckpoint, returnn_command, runtime_device


class ReturnnForwardJob(Job):
    def __init__(
        self,
        model_checkpoint: Optional[PtCheckpoint],
        returnn_config: ReturnnConfig,
        *,
        output_files: List[str],
        log_verbosity: int = 5,
        device: str = "gpu",
        time_rqmt: float = 4,
        mem_rqmt: float = 4,
        cpu_rqmt: int = 2,
        returnn_python_exe: Optional[tk.Path] = None,
    ):
        if "load" in returnn_config.config or "model" in returnn_config.config:
            raise ValueError("ReturnnForwardJob: give the checkpoint as model_checkpoint, not as load/model in the config")
        self.model_checkpoint = model_checkpoint
        self.returnn_python_exe = returnn_python_exe
        self.output_files = list(output_files)
        self.returnn_config = self.create_returnn_config(model_checkpoint, returnn_config, log_verbosity, device)
        self.out_returnn_config_file = self.output_path("returnn.config")
        self.out_files: Dict[str, tk.Path] = {name: self.output_path(name) for name in self.output_files}
        self.rqmt = {"gpu": 1 if device == "gpu" else 0, "cpu": cpu_rqmt, "mem": mem_rqmt, "time": time_rqmt}

    @staticmethod
    def create_returnn_config(model_checkpoint: Optional[PtCheckpoint], returnn_config: ReturnnConfig,
                              log_verbosity: int, device: str) -> ReturnnConfig:
        result = copy.deepcopy(returnn_config)
        result.config.setdefault("task", "forward")
        if "backend" not in result.post_config:
            result.config.setdefault("backend", "torch")
        if model_checkpoint is not None:
            result.config["load"] = model_checkpoint
        else:
            result.config["allow_random_model_init"] = True
        result.post_config.setdefault("log", ["./returnn.log"])
        result.post_config.setdefault("log_verbosity", log_verbosity)
        result.check_consistency()
        return result

    @classmethod
    def hash(cls, kwargs: Dict[str, Any]) -> str:
        config = cls.create_returnn_config(kwargs["model_checkpoint"], kwargs["returnn_config"],
                                           kwargs["log_verbosity"], kwargs["device"])
        return super().hash({"returnn_config": config, "returnn_python_exe": kwargs["returnn_python_exe"]})

    def tasks(self):
        yield Task("create_files", mini_task=True)
        yield Task("run", resume="run", rqmt=self.rqmt)

    def create_files(self) -> None:
        if self.model_checkpoint is not None and not self.model_checkpoint.exists():
            raise FileNotFoundError(f"checkpoint {self.model_checkpoint.get_path()} does not exist")
        self.returnn_config.write(self.out_returnn_config_file.get_path())

    def run(self) -> None:
        run_dir = os.path.abspath("forward_run")
        if os.path.exists(run_dir):  # leftovers of an interrupted attempt
            shutil.rmtree(run_dir)
        os.makedirs(run_dir)
        # a device set explicitly in the config wins; otherwise the task's GPU requirement decides here, at run time
        device = None if "device" in self.returnn_config.post_config else runtime_device(self.rqmt["gpu"])
        subprocess.check_call(returnn_command(self.returnn_python_exe, self.out_returnn_config_file.get_path(), device),
                              cwd=run_dir)
        missing = [name for name in self.output_files if not os.path.exists(os.path.join(run_dir, name))]
        if missing:
            raise FileNotFoundError(f"RETURNN forward did not write {missing} in {run_dir} "
                                    f"(files there: {sorted(os.listdir(run_dir))})")
        for name in self.output_files:
            target = self.out_files[name].get_path()
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(os.path.join(run_dir, name), target)
