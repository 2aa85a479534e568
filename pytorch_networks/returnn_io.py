"""Thin helpers between RETURNN's TensorDict / run context and plain torch tensors."""
from __future__ import annotations

from typing import Optional, Tuple

import torch


def get_data(extern_data, key: str, device: Optional[torch.device] = None
             ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Raw tensor and (if the data has a dynamic axis) its lengths ``[B]`` (on the tensor's device)."""
    data = extern_data[key]
    raw = data.raw_tensor
    lengths = None
    for dim in data.dims[1:]:
        if dim.dyn_size_ext is not None and dim.dyn_size_ext.raw_tensor is not None:
            lengths = dim.dyn_size_ext.raw_tensor.to(raw.device).long()
            break
    if device is not None:
        raw = raw.to(device)
        lengths = lengths.to(device) if lengths is not None else None
    return raw, lengths


def seq_len_tensor(extern_data, key: str):
    """The RETURNN length tensor of ``key`` (for ``custom_inv_norm_factor``)."""
    for dim in extern_data[key].dims[1:]:
        if dim.dyn_size_ext is not None:
            return dim.dyn_size_ext
    raise ValueError(f"{key!r} has no dynamic axis")


def mark_output(name: str, tensor: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> None:
    """``run_ctx.mark_as_output`` for ``[B]``, ``[B, T]`` or ``[B, T, F]`` tensors with axis 1 dynamic (lengths).

    Works with and without ``model_outputs`` in the config: with it, the expected dynamic sizes are filled in.
    """
    import returnn.frontend as rf
    from returnn.tensor import Dim, Tensor, batch_dim

    ctx = rf.get_run_ctx()
    expected = ctx.expected_outputs.data.get(name) if ctx.expected_outputs is not None else None
    if expected is not None:
        if lengths is not None:
            expected.dims[1].dyn_size_ext.raw_tensor = lengths.detach().cpu().int()
        ctx.mark_as_output(tensor, name)
        return
    dims = [batch_dim]
    for axis in range(1, tensor.dim()):
        if axis == 1 and lengths is not None:
            size = Tensor(f"{name}_len", dims=[batch_dim], dtype="int32", raw_tensor=lengths.detach().cpu().int())
            dims.append(Dim(size, name=f"{name}_time"))
        else:
            dims.append(Dim(tensor.shape[axis], name=f"{name}_dim{axis}"))
    ctx.mark_as_output(tensor, name, dims=dims)


def mark_loss(name: str, loss: torch.Tensor, scale: float = 1.0, inv_norm=None) -> None:
    """Register a loss. Scalar losses are already normalised; ``inv_norm`` (RETURNN tensor) normalises a sum."""
    import returnn.frontend as rf

    ctx = rf.get_run_ctx()
    if inv_norm is None:
        ctx.mark_as_loss(loss, name, scale=scale)
    else:
        ctx.mark_as_loss(loss, name, scale=scale, custom_inv_norm_factor=inv_norm, use_normalized_loss=True)


def current_epoch() -> int:
    import returnn.frontend as rf

    epoch = rf.get_run_ctx().epoch
    return int(epoch.raw_tensor) if hasattr(epoch, "raw_tensor") else int(epoch)
