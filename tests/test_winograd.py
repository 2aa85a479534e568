"""The Winograd F(4, r) convolution (``glow_tts/winograd.py``) is ``F.conv1d`` with "same" padding: exactly in
float64 (forward, its own backward by gradcheck), within a few 1e-6 in float32; the WaveNet runs it only where
``layers.wavenet_conv1d`` says, and a WaveNet with it gives the outputs and gradients of the direct convolution."""
import pytest
import torch
import torch.nn.functional as F

from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts import layers, winograd


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.double() - reference).abs().max() / reference.abs().max())


@pytest.mark.parametrize("r", [1, 3, 5])
def test_transforms_are_the_correlation(r):
    """AT [(G w) * (BT x)] is the 4-output correlation of any x and w, in the float64 matrices."""
    at, g, bt = winograd.winograd_matrices(r, torch.float64)
    n = 4 + r - 1
    assert at.shape == (4, n) and g.shape == (n, r) and bt.shape == (n, n)
    torch.manual_seed(0)
    x, w = torch.randn(n, dtype=torch.float64), torch.randn(r, dtype=torch.float64)
    torch.testing.assert_close(at @ ((g @ w) * (bt @ x)), torch.stack([x[i : i + r] @ w for i in range(4)]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("r", [1, 3, 5])
@pytest.mark.parametrize("batch,frames", [(1, 37), (3, 24), (2, 2)])  # frames not / a multiple of 4, shorter than a tile
@pytest.mark.parametrize("bias", [True, False])
def test_equals_conv1d_in_float64(r, batch, frames, bias):
    torch.manual_seed(1)
    x = torch.randn(batch, 6, frames, dtype=torch.float64)
    w = torch.randn(5, 6, r, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64) if bias else None
    torch.testing.assert_close(winograd.winograd_conv1d(x, w, b), F.conv1d(x, w, b, padding=r // 2),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch,frames", [(1, 9), (2, 6)])
@pytest.mark.parametrize("frozen_weight", [False, True])
def test_backward_by_gradcheck(batch, frames, frozen_weight):
    torch.manual_seed(2)
    x = torch.randn(batch, 3, frames, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=not frozen_weight)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(winograd.winograd_conv1d, (x, w, b))


@pytest.mark.parametrize("batch,frames", [(1, 438), (3, 121)])
def test_float32_rounding_is_small(batch, frames):
    """The flow's sizes in float32 against a float64 convolution: the largest errors relative to the largest values
    stay below 5e-6 (measured ~7e-7 output, ~9e-7 input gradient, ~2.5e-6 weight gradient; the direct float32
    convolution ~2e-7 / 2.4e-7 / 9e-7)."""
    torch.manual_seed(3)
    x = torch.randn(batch, 192, frames, requires_grad=True)
    w = (torch.randn(384, 192, 5) / (192 * 5) ** 0.5).requires_grad_()
    b = torch.randn(384, requires_grad=True)
    grad_y = torch.randn(batch, 384, frames)
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    reference = F.conv1d(x64, w64, b64, padding=2)
    reference.backward(grad_y.double())
    y = winograd.winograd_conv1d(x, w, b)
    y.backward(grad_y)
    for value, ref in ((y.detach(), reference.detach()), (x.grad, x64.grad), (w.grad, w64.grad), (b.grad, b64.grad)):
        assert _relative_error(value, ref) < 5e-6


def test_rejects_what_it_cannot_compute():
    x = torch.randn(1, 4, 10)
    for weight in (torch.randn(3, 4, 4), torch.randn(3, 4, 7), torch.randn(3, 5, 5)):
        with pytest.raises(ValueError, match="winograd_conv1d needs"):
            winograd.winograd_conv1d(x, weight)
    with pytest.raises(ValueError, match="kernel size between 1 and 5"):
        winograd.winograd_matrices(7)
    with pytest.raises(ValueError, match="runs in float32 or float64 on the CPU"):
        winograd.winograd_conv1d(x.to("meta"), torch.randn(3, 4, 5, device="meta"))
    with pytest.raises(ValueError, match="runs in float32 or float64 on the CPU"):
        winograd.winograd_conv1d(x.bfloat16(), torch.randn(3, 4, 5, dtype=torch.bfloat16))


def test_wavenet_conv1d_takes_winograd_only_where_it_pays(monkeypatch):
    calls = []
    real = layers.winograd_conv1d
    monkeypatch.setattr(layers, "winograd_conv1d", lambda *args: calls.append(1) or real(*args))
    monkeypatch.setattr(layers, "cpu_prefers_onednn", lambda: True)
    wide = torch.nn.Conv1d(128, 256, 5, padding=2)
    x = torch.randn(1, 128, 40)

    def used(conv, inp, grad=True, onednn=True):
        calls.clear()
        monkeypatch.setattr(layers, "cpu_prefers_onednn", lambda: onednn)
        with torch.set_grad_enabled(grad):
            out = layers.wavenet_conv1d(conv, inp)
        torch.testing.assert_close(out, F.conv1d(inp, conv.weight, conv.bias, padding=conv.padding,
                                                 dilation=conv.dilation), rtol=1e-4, atol=1e-5)
        return bool(calls)

    assert used(wide, x)
    assert used(torch.nn.Conv1d(128, 256, 3, padding=1), x)
    assert not used(wide, x, grad=False)  # inference keeps the direct convolution's outputs
    assert not used(wide, x, onednn=False)
    assert not used(torch.nn.Conv1d(128, 256, 5, padding=4, dilation=2), x)
    assert not used(torch.nn.Conv1d(64, 128, 5, padding=2), torch.randn(1, 64, 40))  # laptop widths
    assert not used(torch.nn.Conv1d(128, 256, 7, padding=3), x)
    assert not used(wide.double(), x.double())


def test_wavenet_with_winograd_equals_direct(monkeypatch):
    """A WaveNet wide enough for Winograd (training mode, speaker conditioning, no dropout): its output and every
    parameter gradient equal those of the same WaveNet on the direct convolution, up to float32 rounding."""
    monkeypatch.setattr(layers, "cpu_prefers_onednn", lambda: True)
    torch.manual_seed(4)
    net = layers.WaveNet(128, 5, 1, 3, gin_channels=8).train()
    mask = torch.ones(2, 1, 50)
    mask[1, :, 37:] = 0
    x = torch.randn(2, 128, 50) * mask
    g = torch.randn(2, 8, 1)

    def run(conv_fn):
        monkeypatch.setattr(layers, "wavenet_conv1d", conv_fn)
        net.zero_grad()
        out = net(x, mask, g)
        (out * torch.linspace(-1, 1, 50)).sum().backward()
        return out.detach(), {name: p.grad.clone() for name, p in net.named_parameters()}

    calls = []
    real_winograd = layers.winograd_conv1d
    monkeypatch.setattr(layers, "winograd_conv1d", lambda *args: calls.append(1) or real_winograd(*args))
    out_w, grads_w = run(layers.wavenet_conv1d)
    assert len(calls) == 3, "the WaveNet's convolutions did not run by Winograd"
    out_d, grads_d = run(layers.same_conv1d)
    torch.testing.assert_close(out_w, out_d, rtol=1e-4, atol=1e-5)
    for name, grad in grads_d.items():
        torch.testing.assert_close(grads_w[name], grad, rtol=1e-4, atol=1e-4, msg=name)
