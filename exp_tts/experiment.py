"""Glow-TTS trainings with MAS (TTS only): speaker embedding vs x-vector conditioning, encoder sizes,
decoder dropout, LR schedules, simple encoder.

Also the *alignment model*: the Glow-TTS whose Viterbi (MAS) alignment of the training data becomes
the external durations HDF that every "given alignment" experiment uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .. import pipeline
from ..experiment_setup import EMBEDDED, ExperimentSetup, get_data, glow_tts, training_settings
from ..pytorch_networks.configs import DURATIONS_KEY

FAMILY = "TTS_only"
ALIGNMENT_MODEL = "glowTTS/enc192/200ep/long_cooldown"


@dataclass(frozen=True)
class TTSExperiment:
    model: Dict[str, Any] = field(default_factory=dict)  # keyword arguments of experiment_setup.glow_tts
    schedule: str = "tri"
    num_epochs: int = 100
    training: Dict[str, Any] = field(default_factory=dict)  # extra TrainingSettings fields
    train_step: Dict[str, Any] = field(default_factory=dict)  # train_step kwargs, e.g. ed_scale
    core: bool = False  # part of the laptop-sized default run
    latent_space: bool = False
    invertibility: bool = False


def _exps() -> Dict[str, TTSExperiment]:
    exps: Dict[str, TTSExperiment] = {}
    xv = {"speaker_mode": "xvector"}
    emb = {"speaker_mode": "embedding"}
    exps["glowTTS_x_vector/enc768/100ep/dec_drop_0.05"] = TTSExperiment({**xv, "gin_channels": 512, "bottleneck": False})
    exps["glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05"] = TTSExperiment(xv, core=True)
    for epochs, schedule in ((200, "tri"), (200, "long_cooldown"), (400, "tri")):
        tag = f"{epochs}ep" if schedule == "tri" else f"{epochs}ep_long_cooldown"
        for enc in (768, 192):
            for drop in (0.05, 0.0):
                if epochs == 400 and drop == 0.0:
                    continue
                exps[f"glowTTS_x_vector_v2/enc{enc}/{tag}/dec_drop_{drop}"] = TTSExperiment(
                    {**xv, "filter_channels": enc, "decoder_dropout": drop}, schedule, epochs)
    for epochs in (100, 200, 400):
        for enc in (768, 192):
            exps[f"glowTTS/enc{enc}/{epochs}ep/dec_drop_0.05"] = TTSExperiment(
                {**emb, "filter_channels": enc}, "tri", epochs, latent_space=(enc == 768 and epochs == 200),
                invertibility=(enc == 768 and epochs == 200))
            exps[f"glowTTS/enc{enc}/{epochs}ep/grad_clip_10/dec_drop_0.0"] = TTSExperiment(
                {**emb, "filter_channels": enc, "decoder_dropout": 0.0}, "tri", epochs, {"gradient_clip_norm": 10.0})
        exps[f"glowTTS/enc768/{epochs}ep/dec_drop_0.05_epsilon_1e-8"] = TTSExperiment(
            emb, "tri", epochs, {"epsilon": 1e-8})
    exps["glowTTS/enc768/400ep/gin512/dec_drop_0.05"] = TTSExperiment({**emb, "gin_channels": 512}, "tri", 400)
    exps[ALIGNMENT_MODEL] = TTSExperiment({**emb, "filter_channels": 192}, "long_cooldown", 200, core=True)
    v2 = {**xv, "filter_channels": 768}
    exps["glowTTS_x_vector_v2_multiscale/enc768/200ep/dec_drop_0.05"] = TTSExperiment(
        {**v2, "decoder_options": {"n_early_every": 4}}, "tri", 200)
    exps["glowTTS_x_vector_v2_conformer_coupling/enc768/200ep/dec_drop_0.05"] = TTSExperiment(
        {**v2, "decoder_options": {"coupling_type": "conformer", "n_heads": 2}}, "tri", 200,
        {"batch_size_seconds": 75.0, "accum_grad_multiple_step": 4}, invertibility=True)
    exps["glowTTS_batch_norm/enc768/200ep/dec_drop_0.05"] = TTSExperiment(
        {**emb, "decoder_options": {"norm_type": "batchnorm"}}, "tri", 200)
    for loss in ("dist", "logdist"):
        for scale in (0.1, 1.0):
            exps[f"glowTTS_x_vector_v2_{loss}_loss/enc192/200ep/ed_scale_{scale}"] = TTSExperiment(
                {**xv, "filter_channels": 192, "distance_loss": loss}, "tri", 200, train_step={"ed_scale": scale})
    for blocks in (12, 20):
        exps[f"glowTTS_simple_encoder/{blocks}cb/200ep/dec_drop_0.05"] = TTSExperiment(
            {**emb, "encoder_type": "embedding", "n_blocks": blocks}, "tri", 200)
    return exps


EXPERIMENTS = _exps()


def run_experiment(setup: ExperimentSetup, name: str, datasets: Optional[Any] = None) -> Dict[str, Any]:
    """Build one TTS experiment (idempotent: equal jobs are the same objects)."""
    exp = EXPERIMENTS[name]
    if datasets is None:  # the alignment model is trained without the durations it is used to make
        datasets = get_data(setup).base if name == ALIGNMENT_MODEL else get_data(setup).tts
    model = glow_tts(setup, datasets, **exp.model)
    epochs = setup.alignment_epochs if name == ALIGNMENT_MODEL else None
    settings = training_settings(setup, exp.schedule, exp.num_epochs, epochs=epochs, **exp.training)
    return pipeline.tts_experiment(f"{setup.prefix}/{FAMILY}/{name}", model, datasets, settings,
                                   train_step_kwargs=exp.train_step, latent_space=exp.latent_space,
                                   invertibility=exp.invertibility)


def alignment_durations(setup: ExperimentSetup, base_datasets: Any) -> Any:
    """Durations HDF: Viterbi (MAS) alignment of all training utterances by the alignment Glow-TTS."""
    result = run_experiment(setup, ALIGNMENT_MODEL, datasets=base_datasets)
    extern = {k: v for k, v in base_datasets.extern_data.items() if k != DURATIONS_KEY}
    return pipeline.extract_durations(f"{setup.prefix}/{FAMILY}/{ALIGNMENT_MODEL}", result["checkpoint"],
                                      result["model_config"], base_datasets.joint, extern)


def run(setup: ExperimentSetup = EMBEDDED) -> Dict[str, Dict[str, Any]]:
    get_data(setup)  # the alignment model and its durations
    return {name: run_experiment(setup, name) for name, exp in EXPERIMENTS.items() if exp.core or not setup.core_only}


def py() -> None:
    """Sisyphus config entry point: ``sis manager .../exp_tts/experiment.py`` (embedded setup)."""
    run()
