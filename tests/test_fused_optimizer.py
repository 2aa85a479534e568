"""``TrainingSettings.fused_optimizer``: RETURNN builds torch's fused optimizer from the config, it computes the
default implementation's update, and configs without the switch keep their optimizer dict (and hash)."""
import dataclasses

import pytest
import torch

from librispeech_joint_training_given_alignments.config import TrainingSettings, _optimizer, returnn_optimizer
from librispeech_joint_training_given_alignments.experiment_setup import (EMBEDDED, asr_training_settings,
                                                                           mel_to_linear_training_settings,
                                                                           probe_training_settings,
                                                                           training_settings)


def test_default_optimizer_dict_unchanged_and_fused_only_when_set():
    assert _optimizer(TrainingSettings(learning_rates=(1e-3,), optimizer="adam")) == {"class": "adam",
                                                                                      "epsilon": 1e-9}
    assert _optimizer(TrainingSettings(learning_rates=(1e-3,), optimizer="adam", fused_optimizer=True)) == {
        "class": "adam", "epsilon": 1e-9, "fused": True}
    with pytest.raises(ValueError, match="optimizer='radam'"):
        TrainingSettings(learning_rates=(1e-3,), fused_optimizer=True)


def test_experiment_setup_switch_fuses_adam_trainings_only():
    laptop = dataclasses.replace(EMBEDDED, tts_peak_lr=1e-3, fused_optimizer=True)
    assert training_settings(laptop, "tri", 10).fused_optimizer  # laptop TTS schedule: Adam
    recipe = dataclasses.replace(EMBEDDED, tts_peak_lr=None, fused_optimizer=True)
    assert not training_settings(recipe, "tri", 10).fused_optimizer  # the recipe's RAdam has no fused version
    assert not training_settings(dataclasses.replace(laptop, fused_optimizer=False), "tri", 10).fused_optimizer


def test_embedded_setup_fuses_every_adam_preset():
    """The default run's CTC models, probes and vocoder train with Adam presets too; all of them fuse, and none
    does once the switch is off."""
    for setup, fused in ((EMBEDDED, True), (dataclasses.replace(EMBEDDED, fused_optimizer=False), False)):
        presets = (asr_training_settings(setup, "tri", 100), probe_training_settings(setup, "tri", 100),
                   mel_to_linear_training_settings(setup), training_settings(setup, "tri", 100))
        assert [p.fused_optimizer for p in presets] == [fused] * 4
        assert {p.optimizer for p in presets} == {"adam"}


def test_returnn_builds_fused_adam_with_the_default_update():
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    optims = [returnn_optimizer(m, TrainingSettings(learning_rates=(1e-2,), optimizer="adam", fused_optimizer=fused))
              for m, fused in zip(models, (False, True))]
    assert isinstance(optims[1], torch.optim.Adam) and optims[1].defaults["fused"] and not optims[0].defaults["fused"]
    x, y = torch.randn(16, 7), torch.randn(16, 3)
    for _ in range(5):
        for model, opt in zip(models, optims):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    moved = max((p - q).abs().max() for p, q in zip(models[0].parameters(), _initial(models[0])))
    assert moved > 1e-2  # five steps of lr 1e-2 moved the weights
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)


def _initial(model):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).parameters()
