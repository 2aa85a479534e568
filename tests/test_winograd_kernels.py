"""The numba tile transforms of the Winograd convolution (``glow_tts/winograd_kernels.py``): each equals the
transform written with torch ops, exactly up to float64 rounding; the two adjoints are the adjoints
(``<A x, y> = <x, A^T y>``); every output element is written; the generator refuses matrix entries that are
not exact in float32."""
import pytest
import torch
import torch.nn.functional as F

from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts import winograd, winograd_kernels

SHAPES = [(1, 5, 37), (3, 2, 24), (2, 3, 2), (1, 4, 5)]  # frames not / a multiple of 4, shorter than a tile


def _matrices(r):
    at, _, bt = winograd.winograd_matrices(r, torch.float64)
    return at, bt, winograd._transform_kernels(r)  # compiled once per r (and dtype) in the test session


def _padded(x, r, tiles):
    """x zero-padded as the convolution sees it: (r - 1) // 2 frames in front, up to 4 tiles + r - 1 frames."""
    left = (r - 1) // 2
    return F.pad(x, (left, 4 * tiles + r - 1 - x.shape[-1] - left))


def _nan(*shape):
    return torch.full(shape, float("nan"), dtype=torch.float64)


@pytest.mark.parametrize("r", [1, 3, 5])
@pytest.mark.parametrize("batch,channels,frames", SHAPES)
def test_transforms(r, batch, channels, frames):
    """BT over the tiles of the padded input, and AT back to frames (cut to T), with their outputs NaN-filled first."""
    at, bt, kernels = _matrices(r)
    n, tiles = r + 3, -(-frames // 4)
    torch.manual_seed(0)
    x = torch.randn(batch, channels, frames, dtype=torch.float64)
    v = _nan(batch, n, channels, tiles)
    kernels.input_transform(x.numpy(), (r - 1) // 2, v.numpy())
    windows = _padded(x, r, tiles).unfold(2, n, 4)  # [B, C, tiles, n]
    torch.testing.assert_close(v, torch.einsum("jl,bckl->bjck", bt, windows), rtol=1e-13, atol=1e-13)
    m = torch.randn(batch, n, channels, tiles, dtype=torch.float64)
    y = _nan(batch, channels, frames)
    kernels.output_transform(m.numpy(), y.numpy())
    reference = torch.einsum("qj,bjok->bokq", at, m).reshape(batch, channels, 4 * tiles)[:, :, :frames]
    torch.testing.assert_close(y, reference, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("r", [1, 3, 5])
@pytest.mark.parametrize("batch,channels,frames", SHAPES)
def test_adjoints(r, batch, channels, frames):
    """<BT-transform(x), gv> = <x, adjoint(gv)> and <AT-transform(m), gy> = <m, adjoint(gy)>; with the adjoints'
    outputs NaN-filled first, so an element they leave unwritten fails too."""
    at, bt, kernels = _matrices(r)
    n, tiles, left = r + 3, -(-frames // 4), (r - 1) // 2
    torch.manual_seed(2)
    x, gy = torch.randn(batch, channels, frames, dtype=torch.float64), torch.randn(batch, channels, frames,
                                                                                 dtype=torch.float64)
    gv, m = torch.randn(batch, n, channels, tiles, dtype=torch.float64), torch.randn(batch, n, channels, tiles,
                                                                                    dtype=torch.float64)
    v, gx, y, gm = _nan(*gv.shape), _nan(*x.shape), _nan(*gy.shape), _nan(*m.shape)
    kernels.input_transform(x.numpy(), left, v.numpy())
    kernels.input_transform_adjoint(gv.numpy(), left, gx.numpy())
    kernels.output_transform(m.numpy(), y.numpy())
    kernels.output_transform_adjoint(gy.numpy(), gm.numpy())
    torch.testing.assert_close((v * gv).sum(), (x * gx).sum(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close((y * gy).sum(), (m * gm).sum(), rtol=1e-12, atol=1e-12)
    # and the adjoints element by element, against the transposed transforms in torch
    grad_tiles = torch.einsum("jl,bjck->bckl", bt, gv)  # what each tile adds to its n padded frames
    padded = torch.zeros(batch, channels, 4 * tiles + r - 1, dtype=torch.float64)
    for l in range(n):
        padded[:, :, l : l + 4 * tiles : 4] += grad_tiles[..., l]
    torch.testing.assert_close(gx, padded[:, :, left : left + frames], rtol=1e-13, atol=1e-13)
    gy_tiles = F.pad(gy, (0, 4 * tiles - frames)).view(batch, channels, tiles, 4)
    torch.testing.assert_close(gm, torch.einsum("qj,bokq->bjok", at, gy_tiles), rtol=1e-13, atol=1e-13)


def test_float32_kernels_match_float64():
    """The float32 compilation (what training runs) gives the float64 kernels' result to float32 rounding."""
    at, bt, kernels = _matrices(5)
    torch.manual_seed(3)
    x = torch.randn(2, 16, 41)
    v32, v64 = torch.empty(2, 8, 16, 11), torch.empty(2, 8, 16, 11, dtype=torch.float64)
    kernels.input_transform(x.numpy(), 2, v32.numpy())
    kernels.input_transform(x.double().numpy(), 2, v64.numpy())
    torch.testing.assert_close(v32.double(), v64, rtol=1e-6, atol=1e-5)


def test_generator_refuses_inexact_entries():
    at, _, bt = winograd.winograd_matrices(5, torch.float64)
    assert not torch.equal(bt, bt.float().double())  # the float64 construction is off by ~1e-15 here and there
    source = winograd_kernels.kernel_source(at, bt)
    assert "np.float32(5.25)" in source and "0.99999" not in source  # entries snapped to their exact values
    with pytest.raises(AssertionError, match="not a dyadic rational"):
        winograd_kernels.kernel_source(at, bt + 1.0 / 3.0)
