"""The Glow-TTS speed paths compute the same function as the plain implementation: packed WaveNet couplings
(``FlowDecoder.pack_frames``) give equal z, log-det, reverse output and gradients for the same weights; the
convolutions with the GEMM weight-gradient backward (``layers.same_conv1d``, flow and text encoder) and the 1x1
convolutions sent to oneDNN (``layers.pointwise_conv1d``) equal conv1d; the WaveNet's gate equals tanh * sigmoid."""
import copy

import pytest
import torch

from librispeech_joint_training_given_alignments.pytorch_networks import configs as C
from librispeech_joint_training_given_alignments.pytorch_networks.commons import sequence_mask
from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.flow import FlowDecoder
from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.packing import FramePacking


def _flow_pair(gin, **cfg_kwargs):
    """(padded reference, packed) decoders with identical weights, ActNorm already data-initialised."""
    torch.manual_seed(0)
    kwargs = dict(hidden_channels=16, kernel_size=5, n_blocks=3, n_layers=3, p_dropout=0.0)
    kwargs.update(cfg_kwargs)
    ref = FlowDecoder(C.FlowDecoderConfig(**kwargs), in_channels=6, gin_channels=gin).double().train()
    with torch.no_grad():  # non-trivial couplings (the end conv is zero-initialised)
        for name, p in ref.named_parameters():
            if "end" in name:
                p.normal_(0, 0.1)
    ref.pack_frames = False
    new = copy.deepcopy(ref)
    new.pack_frames = True
    return ref, new


def _batch(gin, lengths=(24, 18, 10, 24), t=24):
    torch.manual_seed(1)
    mask = sequence_mask(torch.tensor(lengths), t).unsqueeze(1).double()
    x = torch.randn(len(lengths), 6, t, dtype=torch.float64) * mask
    g = torch.randn(len(lengths), gin, dtype=torch.float64) if gin else None
    return x, mask, g


@pytest.mark.parametrize("gin,cfg", [(5, {}), (0, {}), (5, {"dilation_rate": 2}), (5, {"n_early_every": 2, "n_split": 2}),
                                     (5, {"n_sqz": 1, "n_split": 2})])
def test_packed_flow_equals_padded_flow(gin, cfg):
    ref, new = _flow_pair(gin, **cfg)
    x, mask, g = _batch(gin)
    results = []
    for flow in (ref, new):
        xi = x.clone().requires_grad_()
        gi = g.clone().requires_grad_() if g is not None else None
        z, logdet = flow(xi, mask, gi)  # first call: ActNorm data-dependent init, identical in both
        z, logdet = flow(xi, mask, gi)
        weights = torch.randn(z.shape, dtype=z.dtype, generator=torch.Generator().manual_seed(2))
        ((z * weights).sum() + logdet.sum()).backward()
        grads = {n: p.grad.clone() for n, p in flow.named_parameters()}
        with torch.no_grad():
            y_rev, _ = flow(z.detach(), mask, gi, reverse=True)
        results.append((z.detach(), logdet.detach(), xi.grad, gi.grad if gi is not None else None, grads, y_rev))
    (z0, ld0, gx0, gg0, gr0, yr0), (z1, ld1, gx1, gg1, gr1, yr1) = results
    assert (z0 - x).abs().max() > 1e-3  # the flow is not the identity
    torch.testing.assert_close(z1, z0, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ld1, ld0, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gx1, gx0, rtol=1e-10, atol=1e-10)
    if gg0 is not None:
        torch.testing.assert_close(gg1, gg0, rtol=1e-10, atol=1e-10)
    assert gr0.keys() == gr1.keys()
    for name in gr0:
        torch.testing.assert_close(gr1[name], gr0[name], rtol=1e-9, atol=1e-10, msg=name)
    torch.testing.assert_close(yr1, yr0, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(yr1, x, rtol=1e-8, atol=1e-8)  # and it is still the inverse
    assert (z1 * (1 - mask)).abs().max() == 0


def test_frame_packing_layout():
    """Sequences back to back with `gap` zero frames; unpack(pack(x)) restores every valid frame."""
    mask = sequence_mask(torch.tensor([3, 5, 2]), 5).unsqueeze(1).float()
    packing = FramePacking(mask, gap=2)
    assert packing.n_frames == 3 + 2 + 5 + 2 + 2
    assert packing.mask[0, 0].tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1]
    assert packing.segments == [3 + 2, 5 + 2, 2]  # frames per sequence, its trailing gap included
    x = torch.arange(3 * 2 * 5, dtype=torch.float32).view(3, 2, 5) * mask
    packed = packing.pack(x) * packing.mask
    assert packed[0, 0].tolist() == [0, 1, 2, 0, 0, 10, 11, 12, 13, 14, 0, 0, 20, 21]
    assert torch.equal(packing.unpack(packed) * mask, x)
    assert FramePacking.worthwhile(mask) and not FramePacking.worthwhile(torch.ones(3, 1, 5))


@pytest.mark.parametrize("dilation,batch,kernel", [(1, 3, 5), (2, 1, 5), (1, 4, 3)])
def test_gemm_backward_conv_equals_conv1d(monkeypatch, dilation, batch, kernel):
    """The convolution with the GEMM weight-gradient backward (what ``same_conv1d`` runs on CPUs that do not prefer
    oneDNN, forced here) has conv1d's value and gradients (kernel 5: the WaveNet's, 3: the text encoder's
    feed-forward and duration predictor)."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts import layers

    monkeypatch.setattr(layers, "cpu_prefers_onednn", lambda: False)
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(4, 6, kernel, dilation=dilation, padding=(kernel // 2) * dilation).double()
    x = torch.randn(batch, 4, 11, dtype=torch.float64, requires_grad=True)
    calls = []
    monkeypatch.setattr(layers._Conv1dGemmBackward, "backward",
                        staticmethod(_counted(calls, layers._Conv1dGemmBackward.backward)))
    torch.autograd.gradcheck(lambda inp, w, b: layers.same_conv1d(_WithParams(conv, w, b), inp),
                             (x, conv.weight.detach().clone().requires_grad_(), conv.bias.detach().clone().requires_grad_()))
    assert calls, "same_conv1d did not run the GEMM backward"
    torch.testing.assert_close(layers.same_conv1d(conv, x), conv(x))


def _counted(calls, fn):
    def wrapper(*args):
        calls.append(1)
        return fn(*args)
    return wrapper


def test_pointwise_conv_on_onednn_equals_conv1d(monkeypatch):
    """A 1x1 convolution asked for with dilation 2 (``pointwise_conv1d`` on CPUs that prefer oneDNN) has conv1d's
    value and gradients (float64 gradcheck); in float32 torch runs a wide one on oneDNN (``aten::mkldnn_convolution``,
    which it does not pick for the undilated call on one thread) with results equal to the plain call's up to
    float rounding, and leaves narrow ones (the laptop models') on its own path. Convolutions it would change are
    refused."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts import layers

    monkeypatch.setattr(layers, "cpu_prefers_onednn", lambda: True)
    with monkeypatch.context() as narrow:  # the small float64 convolution through the dilated call too
        narrow.setattr(layers, "ONEDNN_POINTWISE_MIN_CHANNELS", 1)
        _check_pointwise_float64(layers, narrow)
    torch.manual_seed(0)
    conv32 = torch.nn.Conv1d(192, 384, 1)
    x32 = torch.randn(1, 192, 300, requires_grad=True)
    out, ops = _single_threaded_ops(lambda: layers.pointwise_conv1d(conv32, x32))
    ref, plain_ops = _single_threaded_ops(lambda: conv32(x32))
    _, narrow_ops = _single_threaded_ops(lambda: layers.pointwise_conv1d(torch.nn.Conv1d(64, 128, 1),
                                                                         torch.randn(1, 64, 300)))
    assert "aten::mkldnn_convolution" in ops
    assert "aten::mkldnn_convolution" not in plain_ops
    assert "aten::mkldnn_convolution" not in narrow_ops
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), (x32, conv32.weight, conv32.bias))
    ref_grads = torch.autograd.grad(ref.square().sum(), (x32, conv32.weight, conv32.bias))
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-3)

    for bad in (torch.nn.Conv1d(8, 12, 3, padding=1), torch.nn.Conv1d(8, 12, 1, stride=2)):
        with pytest.raises(ValueError, match="kernel-size-1"):
            layers.pointwise_conv1d(bad, torch.randn(1, 8, 40))


def _single_threaded_ops(fn):
    """``fn()``'s result and the names of the torch ops it ran, on one thread (as the trainings run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.profiler.profile() as prof:
            result = fn()
    finally:
        torch.set_num_threads(threads)
    return result, {e.key for e in prof.key_averages()}


def _check_pointwise_float64(layers, patch):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(8, 12, 1).double()
    x = torch.randn(1, 8, 40, dtype=torch.float64, requires_grad=True)
    dilations = []
    real_conv1d = torch.nn.functional.conv1d

    def counting_conv1d(*args, **kwargs):
        dilations.append(kwargs.get("dilation", 1))
        return real_conv1d(*args, **kwargs)

    patch.setattr(torch.nn.functional, "conv1d", counting_conv1d)
    torch.autograd.gradcheck(lambda inp, w, b: layers.pointwise_conv1d(_Pointwise(w, b), inp),
                             (x, conv.weight.detach().clone().requires_grad_(), conv.bias.detach().clone().requires_grad_()))
    assert dilations and set(dilations) == {2}, "pointwise_conv1d did not take the dilated call"
    torch.testing.assert_close(layers.pointwise_conv1d(conv, x), real_conv1d(x, conv.weight, conv.bias),
                               rtol=1e-12, atol=1e-12)


class _Pointwise(torch.nn.Module):
    """A kernel-size-1 Conv1d's geometry with given weight/bias tensors (for gradcheck)."""

    kernel_size, stride, padding, groups = (1,), (1,), (0,), 1
    in_channels = property(lambda self: self.weight.shape[1])
    out_channels = property(lambda self: self.weight.shape[0])

    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x):
        return torch.nn.functional.conv1d(x, self.weight, self.bias)


def test_cpu_choice_follows_torch_cpu_capability(monkeypatch):
    """oneDNN's kernels are preferred exactly where torch dispatches AVX-512 code (MKL's GEMM runs AVX2 code on
    the AMD machines measured); the choice is made once per process."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts import layers

    for capability, expected in (("AVX512", True), ("AVX2", False), ("DEFAULT", False)):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert layers.cpu_prefers_onednn.__wrapped__() is expected
    assert layers.cpu_prefers_onednn() is layers.cpu_prefers_onednn()


def test_gated_tanh_sigmoid_equals_tanh_times_sigmoid():
    """The WaveNet's gate (tanh through the sigmoid identity, dropout mask and conditioning taken in, own backward)
    is ``tanh(a) * sigmoid(b)`` of ``[a; b] = h * noise + cond``: values and gradients of h and cond in float64
    (gradcheck) with and without each of noise and cond, cond broadcast over frames or one row per frame; float32
    values within 2.5e-7, also far in the saturated tails."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.layers import gated_tanh_sigmoid

    torch.manual_seed(0)
    noise = (torch.rand(2, 6, 9, dtype=torch.float64) > 0.3).double() / 0.7
    for cond_shape in (None, (2, 6, 1), (1, 6, 9), (2, 6, 9)):
        for mask in (None, noise):
            h = torch.randn(2, 6, 9, dtype=torch.float64, requires_grad=True)
            cond = None if cond_shape is None else torch.randn(cond_shape, dtype=torch.float64, requires_grad=True)
            gate = lambda h_, c_, m=mask: gated_tanh_sigmoid(h_, c_, m)  # noqa: E731
            torch.autograd.gradcheck(gate, (h, cond))
            pre = h * (1.0 if mask is None else mask) + (0.0 if cond is None else cond)
            a, b = pre.chunk(2, dim=1)
            torch.testing.assert_close(gate(h, cond), torch.tanh(a) * torch.sigmoid(b), rtol=1e-14, atol=1e-14)
    h32 = torch.cat([torch.linspace(-60, 60, 4001), torch.randn(4001)]).view(1, 2, 4001)
    a32, b32 = h32.chunk(2, dim=1)
    assert (gated_tanh_sigmoid(h32) - torch.tanh(a32) * torch.sigmoid(b32)).abs().max() < 2.5e-7


@pytest.mark.parametrize("packed", [False, True])
def test_wavenet_equals_reference_layers(packed):
    """The WaveNet (fused gate, dropout mask taken in, residual update as one ``addcmul``) gives the outputs and
    gradients of the textbook layer sequence ``conv -> dropout -> + cond -> tanh * sigmoid -> res/skip conv ->
    (x + res) * mask``, in training mode with dropout (the same masks: same seed, same draws), float64; padded batch
    with conditioning broadcast over frames, or packed with one conditioning row per segment."""
    import torch.nn.functional as F

    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.layers import WaveNet

    torch.manual_seed(0)
    wn = WaveNet(hidden=8, kernel_size=5, dilation_rate=2, n_layers=3, gin_channels=4, p_dropout=0.3).double().train()
    lengths = torch.tensor([11, 7])
    if packed:
        segments = [11 + wn.max_padding, 7]
        mask = torch.ones(1, 1, sum(segments), dtype=torch.float64)
        mask[..., 11:11 + wn.max_padding] = 0
    else:
        segments = None
        mask = sequence_mask(lengths, 11).unsqueeze(1).double()
    x = (torch.randn(mask.shape[0], 8, mask.shape[2], dtype=torch.float64) * mask).requires_grad_()
    g = torch.randn(2, 4, 1, dtype=torch.float64)

    def reference():
        cond = wn.cond_layer(g)
        if packed:
            cond = torch.cat([cond[b].expand(-1, n) for b, n in enumerate(segments)], dim=1).unsqueeze(0)
        h_in, output = x, 0.0
        for i in range(wn.n_layers):
            conv = wn.in_layers[i]
            h = F.conv1d(h_in, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)
            h = h * wn.dropout.scaled_mask(h) + cond[:, 2 * 8 * i : 2 * 8 * (i + 1)]
            acts = torch.tanh(h[:, :8]) * torch.sigmoid(h[:, 8:])
            res_skip = F.conv1d(acts, wn.res_skip_layers[i].weight, wn.res_skip_layers[i].bias)
            if i < wn.n_layers - 1:
                h_in = (h_in + res_skip[:, :8]) * mask
                output = output + res_skip[:, 8:]
            else:
                output = output + res_skip
        return output * mask

    outputs, grads = [], []
    for run in (lambda: wn(x, mask, g, g_segments=segments), reference):
        torch.manual_seed(1)
        out = run()
        params = [x] + list(wn.parameters())
        grads.append(torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), params))
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-12, atol=1e-12)
    # x's gradient where the mask is 0 differs (the residual update passes it through instead of zeroing it);
    # every caller multiplies x by the mask, which zeroes it there: parameters and x's valid frames must agree
    (x_fused, *params_fused), (x_plain, *params_plain) = grads
    torch.testing.assert_close(x_fused * mask, x_plain * mask, rtol=1e-10, atol=1e-12)
    for fused, plain in zip(params_fused, params_plain):
        torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-12)


class _WithParams(torch.nn.Module):
    """A Conv1d's geometry with given weight/bias tensors (for gradcheck)."""

    def __init__(self, conv, weight, bias):
        super().__init__()
        self.padding, self.dilation, self.weight, self.bias = conv.padding, conv.dilation, weight, bias


@pytest.mark.parametrize("prefers_onednn", [False, True])
def test_text_encoder_with_gemm_backward_equals_plain_conv(monkeypatch, prefers_onednn):
    """The whole text encoder (prenet, Transformer FFN, duration predictor use ``same_conv1d``; prenet projection and
    attention ``pointwise_conv1d``) gives the outputs and parameter gradients of the same encoder with plain
    ``nn.Conv1d`` calls, in float64, on either CPU choice (GEMM backward / 1x1 convolutions dilated)."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts import attention, layers, text_encoder

    cfg = C.TextEncoderConfig(n_vocab=12, hidden_channels=16, filter_channels=24, filter_channels_dp=20, n_heads=2,
                              n_layers=2, p_dropout=0.0)
    torch.manual_seed(0)
    enc = text_encoder.TextEncoder(cfg, out_channels=6, gin_channels=5).double().train()
    with torch.no_grad():  # the zero-initialised prenet projection would leave the prenet convs without gradient
        for p in enc.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    tokens = torch.randint(1, 12, (3, 9))
    lengths = torch.tensor([9, 6, 3])
    g = torch.randn(3, 5, dtype=torch.float64)
    weights = [torch.randn(3, c, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(c)) for c in (6, 6, 1)]

    def run():
        enc.zero_grad(set_to_none=True)
        torch.manual_seed(3)  # the prenet's dropout (p=0.5, fixed) draws the same masks in both runs
        x_m, x_logs, logw, _ = enc(tokens, lengths, g)
        sum((out * w).sum() for out, w in zip((x_m, x_logs, logw), weights)).backward()
        return [x_m.detach(), x_logs.detach(), logw.detach()], {n: p.grad.clone() for n, p in enc.named_parameters()}

    monkeypatch.setattr(layers, "cpu_prefers_onednn", lambda: prefers_onednn)
    # this small encoder's 1x1 convolutions through the dilated call too (on its own, only >= 160 channels are)
    monkeypatch.setattr(layers, "ONEDNN_POINTWISE_MIN_CHANNELS", 1)
    outs, grads = run()
    for module in (attention, layers, text_encoder):
        monkeypatch.setattr(module, "same_conv1d", lambda conv, x: conv(x))
        monkeypatch.setattr(module, "pointwise_conv1d", lambda conv, x: conv(x), raising=False)
    ref_outs, ref_grads = run()
    for out, ref in zip(outs, ref_outs):
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert grads.keys() == ref_grads.keys() and all(grad.abs().max() > 0 for grad in ref_grads.values())
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-10, atol=1e-12, msg=name)


def _table_attention(attn, x, attn_mask):
    """The relative attention written with ``[L, L, d]`` embedding tables (zero outside the window) and L-batched
    einsums: the textbook form of Shaw et al. the gathered band of ``RelativeMultiHeadAttention`` replaces."""
    b, c, length = x.shape
    h, d, w = attn.n_heads, attn.d_k, attn.window_size
    q, k, v = (conv(x).view(b, h, d, length).transpose(2, 3) for conv in (attn.conv_q, attn.conv_k, attn.conv_v))
    dist = torch.arange(length)[None, :] - torch.arange(length)[:, None]
    inside = (dist.abs() <= w)[:, :, None].to(x.dtype)
    rel_k = attn.emb_rel_k[torch.clamp(dist + w, 0, 2 * w)] * inside
    rel_v = attn.emb_rel_v[torch.clamp(dist + w, 0, 2 * w)] * inside
    scores = (q @ k.transpose(-2, -1) + torch.einsum("bhid,ijd->bhij", q, rel_k)) / d**0.5
    p = torch.softmax(scores.masked_fill(attn_mask == 0, -1e4), dim=-1)
    out = p @ v + torch.einsum("bhij,ijd->bhid", p, rel_v)
    return attn.conv_o(out.transpose(2, 3).reshape(b, c, length))


@pytest.mark.parametrize("length,window", [(11, 4), (3, 4), (9, 1)])
def test_relative_attention_band_gather_equals_embedding_tables(length, window):
    """The relative attention's gathered ``2w+1`` band gives the output and gradients (input, all parameters incl.
    both relative embeddings) of the ``[L, L, d]`` table form, in float64; also for sequences shorter than the
    window."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.attention import (
        RelativeMultiHeadAttention)

    torch.manual_seed(0)
    attn = RelativeMultiHeadAttention(8, 2, window_size=window).double()
    x = torch.randn(3, 8, length, dtype=torch.float64)
    mask = sequence_mask(torch.tensor([length, max(1, length - 3), 1]), length).unsqueeze(1).double()
    attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
    weights = torch.randn(3, 8, length, dtype=torch.float64)
    results = []
    for fn in (attn, lambda xi, m: _table_attention(attn, xi, m)):
        attn.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_()
        out = fn(xi, attn_mask)
        ((out * weights * mask).sum()).backward()
        results.append((out.detach() * mask, xi.grad, {n: p.grad.clone() for n, p in attn.named_parameters()}))
    (out, gx, grads), (ref, ref_gx, ref_grads) = results
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, ref_gx, rtol=1e-12, atol=1e-12)
    assert ref_grads["emb_rel_k"].abs().max() > 0 and ref_grads["emb_rel_v"].abs().max() > 0
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_cpu_dropout_from_random_bits_is_dropout(p):
    """``layers.Dropout`` (int64 random words read as four int16 lanes) keeps every element with probability
    k = 1 - p rounded to 2^-16, in each lane of a word (positions mod 4: a 63-bit draw would bias the top lane),
    scales kept ones by 1 / k (expectation exactly x), back-propagates through the same mask, follows torch's seed,
    and is the identity in eval mode."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.layers import Dropout

    drop = Dropout(p).train()
    keep = round((1 - p) * 2**16) / 2**16
    assert abs(keep - (1 - p)) <= 2**-17
    x = torch.ones(2, 500, 1000, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    n = kept.numel() // 4
    for lane in range(4):  # within 6 standard deviations of k
        share = kept.flatten()[lane::4].double().mean().item()
        assert abs(share - keep) < 6 * ((keep * (1 - keep) / n) ** 0.5), (lane, share)
    assert torch.equal(y[kept], torch.full_like(y[kept], 1.0).div_(keep))
    y.backward(torch.full_like(y, 2.0))
    assert torch.equal(x.grad, y.detach() * 2.0)
    torch.manual_seed(0)
    assert torch.equal(drop(x), y) and not torch.equal(drop(x), y)
    assert drop.eval()(x) is x
    drop.train()
    torch.manual_seed(0)
    mask = drop.scaled_mask(x)  # what the WaveNet's gate takes in: the very mask the forward multiplies by
    assert mask.dtype == x.dtype and torch.equal(mask, y.detach())
    assert drop.scaled_mask(x.double()).dtype == torch.float64
    assert drop.eval().scaled_mask(x) is None and Dropout(0.0).train().scaled_mask(x) is None


def test_cpu_dropout_keep_probability_rounding_to_0_or_1():
    """Where 1 - p rounds to 1 (p < 2^-17) the CPU mask keeps everything at scale 1; where it rounds to 0, nothing."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.layers import Dropout

    x = torch.randn(3, 70)
    assert torch.equal(Dropout(1e-6).train().scaled_mask(x), torch.ones_like(x))
    assert torch.equal(Dropout(1 - 1e-6).train()(x), torch.zeros_like(x))
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
