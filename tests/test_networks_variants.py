"""Tests of the Glow-TTS variants reachable by config: multiscale flow, conformer coupling, invertible batch norm,
distance losses ("ed"), extra mean embedding (v2_1), and the forward modes "invertibility" and "statistics" with their
callbacks."""
import dataclasses
import os

import numpy as np
import pytest
import torch

from librispeech_joint_training_given_alignments.pytorch_networks import callbacks as CB
from librispeech_joint_training_given_alignments.pytorch_networks import configs as C
from librispeech_joint_training_given_alignments.pytorch_networks import tts_model
from librispeech_joint_training_given_alignments.pytorch_networks.commons import (
    RunningStatistics, encoding_distance_loss, sequence_mask)
from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.flow import FlowDecoder, InvBatchNorm
from librispeech_joint_training_given_alignments.pytorch_networks.tts_model import GlowTTSJointModel, run_model

from networks_returnn_helpers import FakeTensorDict, check_logdet_matches_jacobian, tiny_batch, tiny_tts_config

SCOPE = {cls.__name__: cls for cls in C.ALL_CONFIG_CLASSES}


def _randomise(module, std=0.2):
    """Zero/identity-initialised parts (coupling end, norm logs/bias) would make invertibility tests trivial."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "end" in name or "logs" in name or "bias" in name:
                p.normal_(0, std)
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.3)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    return module


def _tiny_flow(seed=0, gin=3, **cfg_kwargs):
    torch.manual_seed(seed)
    kwargs = dict(hidden_channels=8, kernel_size=3, n_blocks=2, n_layers=2, p_dropout=0.0)
    kwargs.update(cfg_kwargs)
    flow = FlowDecoder(C.FlowDecoderConfig(**kwargs), in_channels=4, gin_channels=gin).double()
    return _randomise(flow).eval()


def _check_roundtrip(flow, gin=3, t=10, lengths=(10, 8, 4)):
    torch.manual_seed(1)
    x = torch.randn(len(lengths), 4, t, dtype=torch.float64)
    mask = sequence_mask(torch.tensor(lengths), t).unsqueeze(1).double()
    x = x * mask
    g = torch.randn(len(lengths), gin, dtype=torch.float64) if gin else None
    z, logdet = flow(x, mask, g)
    assert z.shape == x.shape and logdet.shape == (len(lengths),)
    assert (z * (1 - mask)).abs().max() == 0  # padding stays zero
    x_rec, _ = flow(z, mask, g, reverse=True)
    assert (x_rec - x).abs().max() < 1e-4
    # padded frames do not influence the valid ones
    x_noisy = x + torch.randn_like(x) * (1 - mask)
    z_noisy, logdet_noisy = flow(x_noisy * mask, mask, g)
    assert torch.allclose(z_noisy, z) and torch.allclose(logdet_noisy, logdet)
    return z


def test_new_config_fields_roundtrip_and_defaults():
    default = C.FlowDecoderConfig()
    assert (default.norm_type, default.coupling_type, default.n_early_every) == ("actnorm", "wavenet", 0)
    assert C.TextEncoderConfig(n_vocab=3).mean_extra_embedding is False
    assert C.GlowTTSModelConfig(text_encoder=C.TextEncoderConfig(n_vocab=3)).distance_loss is None
    cfgs = [
        tiny_tts_config(decoder=C.FlowDecoderConfig(n_early_every=4, coupling_type="conformer", n_heads=2,
                                                    norm_type="batchnorm"),
                        distance_loss="logdist", aux_latent="prior_sample",
                        text_encoder=C.TextEncoderConfig(n_vocab=10, mean_extra_embedding=True)),
        tiny_tts_config(distance_loss="dist"),
    ]
    for cfg in cfgs:
        assert eval(repr(cfg), SCOPE) == cfg
        hash(cfg)


def test_multiscale_flow_exactly_invertible_with_correct_logdet():
    flow = _tiny_flow(n_blocks=6, n_early_every=2, n_split=2)
    assert flow.block_channels == [8, 8, 4, 4, 2, 2]
    z = _check_roundtrip(flow)
    check_logdet_matches_jacobian(flow)
    # the factored-out halves leave the flow early: perturbing the last blocks changes only the final channels
    with torch.no_grad():
        for p in flow.flows[-3:].parameters():
            p.add_(0.1)
    x = torch.randn(3, 4, 10, dtype=torch.float64) * sequence_mask(torch.tensor([10, 8, 4]), 10).unsqueeze(1)
    mask = sequence_mask(torch.tensor([10, 8, 4]), 10).unsqueeze(1).double()
    g = torch.randn(3, 3, dtype=torch.float64)
    from librispeech_joint_training_given_alignments.pytorch_networks.commons import channel_squeeze

    flow2 = _tiny_flow(n_blocks=6, n_early_every=2, n_split=2)
    zs1 = channel_squeeze(flow(x, mask, g)[0], mask)[0]
    zs2 = channel_squeeze(flow2(x, mask, g)[0], mask)[0]
    assert torch.allclose(zs1[:, :6], zs2[:, :6]) and not torch.allclose(zs1[:, 6:], zs2[:, 6:])
    with pytest.raises(ValueError):
        FlowDecoder(C.FlowDecoderConfig(n_blocks=6, n_early_every=2, n_split=4), in_channels=4)


def test_default_size_variants_float32_and_param_counts():
    """Default sizes (80 mel, gin 256): float32 round trip < 1e-4 and parameter counts of docs/networks.md §10."""
    m = sequence_mask(torch.tensor([16, 10]), 16).unsqueeze(1).float()
    torch.manual_seed(0)
    y = torch.randn(2, 80, 16) * m
    g = torch.randn(2, 256)
    expected = {"multiscale": 25.95e6, "conformer": 29.77e6}
    for name, cfg in [("multiscale", C.FlowDecoderConfig(n_early_every=4)),
                      ("conformer", C.FlowDecoderConfig(coupling_type="conformer", n_heads=2))]:
        dec = FlowDecoder(cfg, in_channels=80, gin_channels=256)
        n_params = sum(p.numel() for p in dec.parameters())
        assert abs(n_params - expected[name]) < 0.005e6, (name, n_params)
        if name == "multiscale":
            assert dec.block_channels == [160] * 4 + [80] * 4 + [40] * 4
        _randomise(dec, std=0.02).eval()
        with torch.no_grad():
            z, logdet = dec(y, m, g)
            y_rec, _ = dec(z, m, g, reverse=True)
        assert torch.isfinite(logdet).all() and (y_rec - y).abs().max() < 1e-4, (name, float((y_rec - y).abs().max()))


def test_conformer_coupling_invertible_with_correct_logdet():
    flow = _tiny_flow(coupling_type="conformer", n_heads=2, n_split=4)
    assert hasattr(flow.flows[2], "conformer") and not hasattr(flow.flows[2], "wn")
    _check_roundtrip(flow)
    check_logdet_matches_jacobian(flow)
    # without speaker conditioning
    _check_roundtrip(_tiny_flow(gin=0, coupling_type="conformer", n_heads=4), gin=0)


def test_inv_batch_norm():
    torch.manual_seed(0)
    bn = InvBatchNorm(3).double()
    x = torch.randn(2, 3, 6, dtype=torch.float64) * 2 + 1
    mask = sequence_mask(torch.tensor([6, 3]), 6).unsqueeze(1).double()
    x_padded = x * mask + 100.0 * (1 - mask)  # garbage at padding must not enter the statistics
    bn.train()
    z, logdet = bn(x_padded, mask)
    valid = torch.cat([x[0], x[1, :, :3]], dim=1)  # [3, 9]
    mean, var = valid.mean(1), valid.var(1, unbiased=False)
    z_ref = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + bn.eps) * mask
    assert torch.allclose(z, z_ref)
    assert torch.allclose(logdet, -0.5 * torch.log(var + bn.eps).sum() * mask.sum([1, 2]))
    assert torch.allclose(bn.running_mean.view(-1), 0.1 * mean) and not bn.running_mean.requires_grad
    assert torch.allclose(bn.running_var.view(-1), 0.9 + 0.1 * var)
    # eval mode: exact bijection with the running statistics
    _randomise(bn).eval()
    z, logdet = bn(x * mask, mask)
    x_rec, _ = bn(z, mask, reverse=True)
    assert torch.allclose(x_rec, x * mask, atol=1e-10)
    # whole flow with batch-norm layers (eval mode): round trip + logdet vs Jacobian
    flow = _tiny_flow(norm_type="batchnorm")
    assert isinstance(flow.flows[0], InvBatchNorm)
    _check_roundtrip(flow)
    check_logdet_matches_jacobian(flow)
    # training mode updates the running statistics of every norm layer of the model
    model = GlowTTSJointModel(tiny_tts_config(decoder=dataclasses.replace(tiny_tts_config().decoder,
                                                                          norm_type="batchnorm")))
    model.train()
    before = model.decoder.flows[0].running_var.clone()
    run_model(model, FakeTensorDict(tiny_batch()))
    assert not torch.equal(before, model.decoder.flows[0].running_var)


def _reference_encoding_distance(tokens, x_m, lengths, log=False):
    """Straightforward re-statement of the original ``commons.encoding_distance_loss``."""
    groups = {}
    for b in range(tokens.shape[0]):
        for n in range(int(lengths[b])):
            groups.setdefault(int(tokens[b, n]), []).append(x_m[b, :, n])
    means = [torch.stack(v).mean(0) for _, v in sorted(groups.items())]
    total = sum(torch.norm(a - b) for a in means for b in means)
    dist = total / (tokens.shape[0] * float(tokens.max()))
    return -torch.log(dist) if log else -dist


def test_distance_losses():
    torch.manual_seed(0)
    tokens = torch.tensor([[3, 1, 3, 2], [5, 1, 0, 0]])
    lengths = torch.tensor([4, 2])
    x_m = torch.randn(2, 5, 4, dtype=torch.float64) * sequence_mask(lengths, 4).unsqueeze(1)
    x_m.requires_grad_(True)
    for log in (False, True):
        loss = encoding_distance_loss(tokens, x_m, lengths, log=log)
        assert torch.allclose(loss, _reference_encoding_distance(tokens, x_m.detach(), lengths, log))
        (grad,) = torch.autograd.grad(loss, x_m)
        assert torch.isfinite(grad).all() and grad[1, :, 2:].abs().max() == 0  # padding gets no gradient


class _LossCollector:
    def __init__(self):
        self.losses = {}

    def __call__(self, name, loss, scale=1.0, inv_norm=None):
        self.losses[name] = (loss, scale)


@pytest.mark.parametrize("kind", ["dist", "logdist", None])
def test_train_step_ed_loss(monkeypatch, kind):
    torch.manual_seed(0)
    collector = _LossCollector()
    monkeypatch.setattr(tts_model, "mark_loss", collector)
    monkeypatch.setattr(tts_model, "current_epoch", lambda: 1)
    model = GlowTTSJointModel(tiny_tts_config(distance_loss=kind))
    tts_model.train_step(model=model, extern_data=FakeTensorDict(tiny_batch()), ed_scale=0.1)
    if kind is None:
        assert set(collector.losses) == {"mle", "dp"}
        return
    assert set(collector.losses) == {"mle", "dp", "ed"}
    ed, scale = collector.losses["ed"]
    assert scale == 0.1 and ed.dim() == 0 and torch.isfinite(ed)
    ed.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.proj_m.parameters())


def test_mean_extra_embedding():
    torch.manual_seed(0)
    cfg = tiny_tts_config(text_encoder=dataclasses.replace(tiny_tts_config().text_encoder, mean_extra_embedding=True))
    model = GlowTTSJointModel(cfg).eval()
    assert model.encoder.mean_emb.weight.shape == (10, 8)
    data = tiny_batch()
    tokens, lengths = data["phonemes"]
    g = model.speaker(data["speaker_labels"][0])
    emb = model.encoder.mean_emb.weight.detach().clone()
    x_m, _, _, x_mask = model.encoder(tokens, lengths, g)
    with torch.no_grad():
        model.encoder.mean_emb.weight.zero_()
    x_m0, _, _, _ = model.encoder(tokens, lengths, g)
    assert (x_m * (1 - x_mask)).abs().max() == 0
    assert torch.allclose(x_m - x_m0, emb[tokens.long()].transpose(1, 2) * x_mask, atol=1e-6)
    assert "encoder.mean_emb.weight" in dict(model.named_parameters())
    assert "encoder.mean_emb.weight" not in dict(GlowTTSJointModel(tiny_tts_config()).named_parameters())


def test_running_statistics_merge():
    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal(n) * 3 + 5 for n in (1, 17, 100, 3)]
    stats = RunningStatistics()
    for c in chunks:
        stats.update(c)
    allv = np.concatenate(chunks)
    d = stats.as_dict()
    assert d["count"] == len(allv)
    np.testing.assert_allclose([d["mean"], d["var"], d["max"], d["min"]],
                               [allv.mean(), allv.var(), allv.max(), allv.min()], rtol=1e-12)


class _Out:
    def __init__(self, arr):
        self.raw_tensor = arr


def _collect_outputs(monkeypatch):
    outputs = {}

    def fake_mark_output(name, tensor, lengths=None):
        outputs[name] = (tensor.detach(), lengths)

    monkeypatch.setattr(tts_model, "mark_output", fake_mark_output)
    return outputs


def _per_seq(tensor, lengths):
    return [tensor[b, : int(lengths[b])].numpy() for b in range(tensor.shape[0])]


def test_forward_invertibility(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    cfg = tiny_tts_config(decoder=dataclasses.replace(tiny_tts_config().decoder, n_blocks=4, n_early_every=2,
                                                      n_split=2, norm_type="batchnorm"))
    model = _randomise(GlowTTSJointModel(cfg), std=0.05).eval()
    data = FakeTensorDict(tiny_batch())
    outputs = _collect_outputs(monkeypatch)
    tts_model.forward_step(model=model, extern_data=data, mode="invertibility")
    err, lengths = outputs["abs_error"]
    assert err.shape[0] == 4 and err.shape[2] == 8
    cb = tts_model.InvertibilityStatsCallback()
    cb.init(model=model)
    for i, seq in enumerate(_per_seq(err, lengths)):
        cb.process_seq(seq_tag=f"t{i}", outputs={"abs_error": _Out(seq)})
    cb.finish()
    header, row = open("invertibility.csv").read().split()
    stats = dict(zip(header.split(","), map(float, row.split(","))))
    assert stats["count"] == 8 * int(lengths.sum())
    assert 0 <= stats["min"] <= stats["mean"] <= stats["max"] < 1e-4 and stats["var"] >= 0
    assert issubclass(CB.InvertibilityStatsCallback, CB.RunningStatsCallback)


class _KnownFeatures(torch.nn.Module):
    """Stands in for the front end: fixed features ``[B, T, F]`` with their lengths."""

    def __init__(self, feats, lengths):
        super().__init__()
        self.feats, self.lengths = feats, lengths

    def forward(self, audio, audio_lengths):
        return self.feats, self.lengths


def _read_stats(path):
    header, row = open(path).read().split()
    return dict(zip(header.split(","), map(float, row.split(","))))


def test_forward_statistics_of_known_features(monkeypatch, tmp_path):
    """Mode "statistics" gives the features the flow sees (frames cut to a multiple of n_sqz = 2) with their lengths;
    cut by those lengths (as RETURNN does), padding and the cut frame do not enter the statistics."""
    monkeypatch.chdir(tmp_path)
    model = GlowTTSJointModel(tiny_tts_config(out_channels=2)).eval()
    assert model.cfg.decoder.n_sqz == 2
    feats = torch.tensor([[[0.0, 2.0], [4.0, 6.0], [8.0, 10.0], [12.0, 14.0]],  # 4 valid frames
                          [[-1.0, 3.0], [5.0, -7.0], [99.0, 99.0], [1000.0, -1000.0]]])  # 3 valid, 2 after n_sqz
    model.feature_extraction = _KnownFeatures(feats, torch.tensor([4, 3]))
    outputs = _collect_outputs(monkeypatch)
    tts_model.forward_step(model=model, extern_data=FakeTensorDict(tiny_batch()), mode="statistics")
    features, lengths = outputs["features"]
    assert lengths.tolist() == [4, 2]
    cb = tts_model.FeatureStatsCallback()
    cb.init(model=model)
    for i, seq in enumerate(_per_seq(features, lengths)):
        cb.process_seq(seq_tag=f"t{i}", outputs={"features": _Out(seq)})
    cb.finish()
    stats = _read_stats("statistics.csv")
    valid = np.array([0, 2, 4, 6, 8, 10, 12, 14, -1, 3, 5, -7], dtype=np.float64)  # mean 56/12
    assert stats["count"] == 12
    assert stats["mean"] == pytest.approx(56 / 12, rel=1e-12)
    assert stats["var"] == pytest.approx(np.mean(valid ** 2) - (56 / 12) ** 2, rel=1e-12)
    assert stats["std"] == pytest.approx(np.sqrt(stats["var"]), rel=1e-12)
    assert (stats["max"], stats["min"]) == (14.0, -7.0)
    assert issubclass(CB.FeatureStatsCallback, CB.RunningStatsCallback)


def test_returnn_forward_feature_statistics(tmp_path):
    """Real RETURNN forward of mode "statistics" (no checkpoint: the front end has no parameters) over padded batches
    equals the statistics of each utterance's features computed alone."""
    from librispeech_joint_training_given_alignments.jobs.serialization import serialize_network

    from networks_returnn_helpers import PKG, meta_dataset, returnn_config_text, run_returnn, tiny_utterances, \
        write_tiny_hdfs

    utts = tiny_utterances(6)
    files = write_tiny_hdfs(str(tmp_path), utts)
    cfg = tiny_tts_config()
    code = serialize_network(f"{PKG}.pytorch_networks.tts_model", cfg, forward_step_kwargs={"mode": "statistics"},
                             forward_callback="FeatureStatsCallback", train=False)
    text = returnn_config_text(code, meta_dataset(files, [C.AUDIO_KEY]), [C.AUDIO_KEY], task="forward",
                               extra='log = ["./returnn.forward.log"]')
    run_returnn(str(tmp_path), text, name="forward.config")
    stats = _read_stats(os.path.join(tmp_path, "statistics.csv"))
    model = GlowTTSJointModel(cfg).eval()
    with torch.no_grad():
        alone = [model.mel_features(torch.from_numpy(u["audio"]).float().reshape(1, -1),
                                    torch.tensor([len(u["audio"])]))[0][0].double().numpy() for u in utts]
    values = np.concatenate([a.reshape(-1) for a in alone])
    assert stats["count"] == values.size == 8 * sum(a.shape[1] for a in alone)
    np.testing.assert_allclose([stats["mean"], stats["var"], stats["max"], stats["min"]],
                               [values.mean(), values.var(), values.max(), values.min()], rtol=1e-4, atol=1e-5)


def test_returnn_train_all_variant_options_and_invertibility_forward(tmp_path):
    """Real RETURNN run: multiscale + conformer coupling + batch norm + v2_1 mean embedding + "logdist" loss,
    1 epoch; then forward mode "invertibility" with :class:`InvertibilityStatsCallback`."""
    from librispeech_joint_training_given_alignments.jobs.serialization import serialize_network

    from networks_returnn_helpers import PKG, meta_dataset, returnn_config_text, run_returnn, tiny_utterances, \
        write_tiny_hdfs

    files = write_tiny_hdfs(str(tmp_path), tiny_utterances(6))
    base = tiny_tts_config()
    cfg = tiny_tts_config(decoder=dataclasses.replace(base.decoder, n_blocks=4, n_early_every=2, n_split=2,
                                                      coupling_type="conformer", norm_type="batchnorm"),
                          text_encoder=dataclasses.replace(base.text_encoder, mean_extra_embedding=True),
                          distance_loss="logdist")
    keys = [C.AUDIO_KEY, C.PHONEMES_KEY, C.SPEAKER_KEY]
    module = f"{PKG}.pytorch_networks.tts_model"
    code = serialize_network(module, cfg, train_step_kwargs={"ed_scale": 0.1})
    out = run_returnn(str(tmp_path), returnn_config_text(code, meta_dataset(files, keys), keys))
    loss_lines = [l for l in out.splitlines() if "train score" in l.lower() or "Total train loss" in l]
    assert loss_lines and all(n in loss_lines[-1] for n in ("mle", "dp", "ed")), loss_lines[-1:]
    code = serialize_network(module, cfg, forward_step_kwargs={"mode": "invertibility"},
                             forward_callback="InvertibilityStatsCallback", train=False)
    text = returnn_config_text(code, meta_dataset(files, keys), keys, task="forward",
                               extra='load = "models/epoch.001.pt"\nlog = ["./returnn.forward.log"]')
    run_returnn(str(tmp_path), text, name="forward.config")
    header, row = open(os.path.join(tmp_path, "invertibility.csv")).read().split()
    stats = dict(zip(header.split(","), map(float, row.split(","))))
    frames = sum((len(u["audio"]) // 200 + 1) // 2 * 2 for u in tiny_utterances(6))
    assert stats["count"] == 8 * frames  # all valid elements of all 6 sequences, padding excluded
    assert 0 <= stats["mean"] <= stats["max"] < 1e-3
