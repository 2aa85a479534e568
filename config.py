"""RETURNN configs for training and forward, with the model config written explicitly into them.

Everything that changes what a model learns or outputs (datasets, optimizer, learning rates, batch
sizes, preloaded checkpoints, every model-config field) goes into the hashed ``config``; what only
changes how it runs (logging, checkpoint cleanup, data-loader workers) goes into ``post_config``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .jobs.returnn_config import ReturnnConfig
from .jobs.serialization import NetworkCode

BEHAVIOR_VERSION = 21


# ------------------------------------------------------------------------------------- learning rates

def tri_lr(num_epochs: int, low: float = 1e-5, peak: float = 5e-4) -> Tuple[float, ...]:
    """Linear warm-up to ``peak`` over the first half, linear decay to ``low`` over the second (tri100/tri200)."""
    up = num_epochs // 2
    return tuple(float(x) for x in np.concatenate([np.linspace(low, peak, up), np.linspace(peak, low, num_epochs - up)]))


def long_cooldown_lr(num_epochs: int = 200, low: float = 1e-6, peak: float = 5e-4) -> Tuple[float, ...]:
    """A quarter warm-up, three quarters cool-down ("long_cooldown", 50 + 150 epochs in the original)."""
    up = num_epochs // 4
    return tuple(float(x) for x in np.concatenate([np.linspace(low, peak, up), np.linspace(peak, low, num_epochs - up)]))


def oclr(num_epochs: int = 250, low: float = 7e-6, peak: float = 7e-4, final: float = 1e-8) -> Tuple[float, ...]:
    """One-cycle: 44% up, 44% down to ``low*10``, 12% annealing to ``final`` (110/110/30 for 250 epochs)."""
    a = round(num_epochs * 0.44)
    c = num_epochs - 2 * a
    return tuple(float(x) for x in np.concatenate([np.linspace(low, peak, a), np.linspace(peak, low * 10, a),
                                                   np.linspace(low * 10, final, c)]))


def warmup_cooldown_lr(num_epochs: int = 400, start: float = 1e-5, peak: float = 5e-4, end: float = 1e-6
                       ) -> Tuple[float, ...]:
    """A quarter warm-up from ``start`` to ``peak``, three quarters cool-down to ``end`` (the original's 400-epoch
    schedule: 1e-5 -> 5e-4 over 100 epochs, then -> 1e-6 over 300)."""
    up = num_epochs // 4
    return tuple(float(x) for x in np.concatenate([np.linspace(start, peak, up),
                                                   np.linspace(peak, end, num_epochs - up)]))


def warmup_decay_lr(num_epochs: int, peak: float = 1e-3, low: float = 1e-5, warmup_fraction: float = 0.1
                    ) -> Tuple[float, ...]:
    """Short linear warm-up (``warmup_fraction`` of the epochs, at least one) to ``peak``, then linear decay to
    ``low``: short laptop-sized trainings spend most of their few updates near the peak, where the tri schedule
    would spend half of them warming up."""
    up = max(1, round(num_epochs * warmup_fraction))
    return tuple(float(x) for x in np.concatenate([np.linspace(low, peak, up + 1)[1:],
                                                   np.linspace(peak, low, num_epochs - up + 1)[1:]]))


# ------------------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class TrainingSettings:
    """How a model is trained; all of it is hashed (the number of epochs via the learning-rate list)."""

    learning_rates: Tuple[float, ...]
    optimizer: str = "radam"
    epsilon: float = 1e-9
    weight_decay: Optional[float] = None
    batch_size_seconds: float = 300.0
    max_seq_length_seconds: Optional[float] = 25.0
    max_seqs: int = 60
    gradient_clip_norm: Optional[float] = None
    accum_grad_multiple_step: int = 1
    stop_on_nonfinite_train_score: bool = True
    sample_rate: int = 16000
    # torch's fused optimizer implementation (``fused=True``: one kernel per parameter group instead of ~8 tensor
    # ops per parameter). Same update rule, only float rounding differs; on CPU the Adam step of the 33.6 M
    # parameter Glow-TTS takes ~60 instead of ~145 ms (1 thread), ~5 % of a training step. Only for the optimizers
    # torch fuses (FUSED_OPTIMIZERS). Off by default: it adds ``fused`` to the hashed optimizer dict.
    fused_optimizer: bool = False
    # RETURNN's ``random_seed`` (the initial weights and the training's random stream, e.g. dropout; not the data
    # order, which RETURNN seeds per epoch and dataset); None: RETURNN's default (42), not written, so configs
    # without it keep their hash. Why: short MAS trainings end in very different alignments depending only
    # on the seed, so replicates with other seeds are the control that tells a real difference from chance.
    random_seed: Optional[int] = None

    def __post_init__(self):
        if self.fused_optimizer and self.optimizer.lower() not in FUSED_OPTIMIZERS:
            raise ValueError(f"TrainingSettings: fused_optimizer=True needs one of {sorted(FUSED_OPTIMIZERS)}, "
                             f"got optimizer={self.optimizer!r} (torch has no fused implementation of it)")

    @property
    def num_epochs(self) -> int:
        return len(self.learning_rates)


@dataclass(frozen=True)
class SeedSelection:
    """Train a model as the best of several seeds: every seed in ``seeds`` trains the first ``select_after_epochs``
    epochs of the model's schedule; the candidate with the lowest ``score`` after them continues (its weights
    preloaded, fresh optimizer state) through the schedule's remaining epochs.

    Why: on laptop-sized trainings whether MAS settles on a token-by-token path depends on the random seed alone
    (README, "Blank tokens"), and the duration loss tells settled from unsettled trainings after about half of a
    10-epoch training. The score is the duration loss on ``devtrain`` (training utterances): the selection never
    sees the TTS-CV split that the synthesis is judged on."""

    seeds: Tuple[int, ...]
    select_after_epochs: int
    score: str = "devtrain_loss_dp"

    def __post_init__(self):
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"SeedSelection: needs at least two distinct seeds, got {self.seeds}")
        if self.select_after_epochs < 1:
            raise ValueError(f"SeedSelection: select_after_epochs must be >= 1, got {self.select_after_epochs}")

    def split(self, settings: TrainingSettings) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        """The learning rates of the candidates and of the continuation (``settings``' schedule, cut)."""
        if not self.select_after_epochs < settings.num_epochs:
            raise ValueError(f"SeedSelection: select_after_epochs ({self.select_after_epochs}) must be below the "
                             f"training's {settings.num_epochs} epochs")
        return (settings.learning_rates[:self.select_after_epochs],
                settings.learning_rates[self.select_after_epochs:])


# RETURNN optimizer names (``returnn.torch.updater.get_optimizer_class``) whose torch class takes ``fused=True``
# (and ``eps``, which the optimizer dict always sets)
FUSED_OPTIMIZERS = frozenset({"adam", "adamw"})


def _optimizer(settings: TrainingSettings) -> Dict[str, Any]:
    opt: Dict[str, Any] = {"class": settings.optimizer, "epsilon": settings.epsilon}
    if settings.weight_decay is not None:
        opt["weight_decay"] = settings.weight_decay
    if settings.fused_optimizer:  # only when set: configs without it keep their hash
        opt["fused"] = True
    return opt


def returnn_optimizer(module: Any, settings: TrainingSettings) -> Any:
    """The torch optimizer RETURNN's own updater builds for ``module`` from these settings' optimizer dict and first
    learning rate (as its engine passes it, ``initial_learning_rate``). For benchmarks and tests that must step
    exactly what a training would; the import is local so that building graphs needs no torch."""
    from returnn.config import Config
    from returnn.torch.updater import Updater

    updater = Updater(config=Config({"optimizer": _optimizer(settings)}), network=module,
                      device=str(next(module.parameters()).device), initial_learning_rate=settings.learning_rates[0])
    updater.create_optimizer()
    return updater.get_optimizer()


def preload(name: str, checkpoint: Any, *, new_params_prefixes: Sequence[str] = ()) -> Dict[str, Dict[str, Any]]:
    """``preload_from_files`` entries that initialise a training from ``checkpoint`` (``init_for_train``), strictly.

    Every parameter of the model must come from the checkpoint (``ignore_missing=False``), except those under
    ``new_params_prefixes`` (module names with a trailing ".", e.g. ``"phoneme_head."``): the parts the model adds
    and trains from scratch, left to their random initialisation by RETURNN's ``filename=None`` entries. Why: with
    missing names ignored, a renamed or missing module would silently train (or freeze) random weights; now the
    training fails at load time, naming the missing parameters. Checkpoint parameters the model does not have (e.g.
    the text encoder of a TTS loaded into a latent ASR) are ignored.
    """
    if not name[:1].isalpha():
        raise ValueError(f"preload name must start with a letter, got {name!r}")
    entries: Dict[str, Dict[str, Any]] = {name: {"filename": checkpoint, "init_for_train": True,
                                                 "ignore_missing": False}}
    for i, prefix in enumerate(new_params_prefixes):
        if not prefix.endswith("."):
            raise ValueError(f"new_params_prefixes are module names ending in '.', got {prefix!r}")
        # RETURNN applies the entries in reverse sorted key order; these keys sort before ``name``, so they come
        # after the checkpoint and exempt only what it left missing.
        entries[f"0_new_params_{name}_{i}"] = {"filename": None, "init_for_train": True, "prefix": prefix}
    return entries


def _post_config(keep_epochs: Optional[List[int]] = None) -> Dict[str, Any]:
    return {
        "cleanup_old_models": {"keep": keep_epochs} if keep_epochs else True,
        "allow_missing_optimizer_checkpoint": True,
        "torch_dataloader_opts": {"num_workers": 0},
        "log_batch_size": True,
    }


def get_training_config(
    *,
    train: Dict[str, Any],
    dev: Optional[Dict[str, Any]],
    extern_data: Dict[str, Dict[str, Any]],
    network: NetworkCode,
    settings: TrainingSettings,
    eval_datasets: Optional[Dict[str, Dict[str, Any]]] = None,
    preload_from_files: Optional[Dict[str, Dict[str, Any]]] = None,
    audio_key: str = "audio_features",
    keep_epochs: Optional[List[int]] = None,
) -> ReturnnConfig:
    if not network.train:
        raise ValueError("get_training_config needs a NetworkCode serialized with train=True")
    config: Dict[str, Any] = {
        "behavior_version": BEHAVIOR_VERSION,
        "train": copy.deepcopy(train),
        "extern_data": copy.deepcopy(extern_data),
        "optimizer": _optimizer(settings),
        "learning_rates": list(settings.learning_rates),
        "batch_size": int(settings.batch_size_seconds * settings.sample_rate),
        "max_seqs": settings.max_seqs,
        "stop_on_nonfinite_train_score": settings.stop_on_nonfinite_train_score,
    }
    if dev is not None:
        config["dev"] = copy.deepcopy(dev)
    if eval_datasets:
        config["eval_datasets"] = copy.deepcopy(eval_datasets)
    if settings.max_seq_length_seconds is not None:
        config["max_seq_length"] = {audio_key: int(settings.max_seq_length_seconds * settings.sample_rate)}
    if settings.gradient_clip_norm is not None:
        config["gradient_clip_global_norm"] = settings.gradient_clip_norm
    if settings.accum_grad_multiple_step > 1:
        config["accum_grad_multiple_step"] = settings.accum_grad_multiple_step
    if settings.random_seed is not None:
        config["random_seed"] = settings.random_seed
    if preload_from_files:
        config["preload_from_files"] = copy.deepcopy(preload_from_files)
    return ReturnnConfig(config, post_config=_post_config(keep_epochs), python_epilog=network)


def get_forward_config(
    *,
    forward_data: Dict[str, Any],
    extern_data: Dict[str, Dict[str, Any]],
    network: NetworkCode,
    model_outputs: Optional[Dict[str, Dict[str, Any]]] = None,
    batch_size_seconds: float = 50.0,
    max_seqs: int = 60,
    sample_rate: int = 16000,
    not_needed_keys: Sequence[str] = (),
) -> ReturnnConfig:
    """Forward over ``forward_data``; keys in ``not_needed_keys`` are marked unavailable for inference."""
    if network.train:
        raise ValueError("get_forward_config needs a NetworkCode serialized with train=False")
    extern = copy.deepcopy(extern_data)
    for key in not_needed_keys:
        if key in extern:
            extern[key]["available_for_inference"] = False
    config = {
        "behavior_version": BEHAVIOR_VERSION,
        "forward_data": copy.deepcopy(forward_data),
        "extern_data": extern,
        "batch_size": int(batch_size_seconds * sample_rate),
        "max_seqs": max_seqs,
    }
    if model_outputs is not None:
        config["model_outputs"] = copy.deepcopy(model_outputs)
    return ReturnnConfig(config, post_config={"torch_dataloader_opts": {"num_workers": 0}}, python_epilog=network)
