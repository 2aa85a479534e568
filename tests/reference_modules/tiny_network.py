"""A frame classifier small enough to train in seconds: exercises the RETURNN jobs, not modelling."""
from dataclasses import dataclass

import numpy as np
import torch
from returnn.datasets.hdf import SimpleHDFWriter
from returnn.forward_iface import ForwardCallbackIface
import returnn.frontend as rf


@dataclass
class TinyConfig:
    in_dim: int = 4
    hidden: int = 8
    num_classes: int = 3


class TinyModel(torch.nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(config.in_dim, config.hidden), torch.nn.Tanh(),
                                       torch.nn.Linear(config.hidden, config.num_classes))


def get_model(*, epoch, step, config: TinyConfig, **_kwargs):
    return TinyModel(config)


def train_step(*, model, extern_data, ce_scale=1.0, slow_down=0.0, **_kwargs):
    import time

    time.sleep(slow_down)
    data = extern_data["data"]
    logits = model.net(data.raw_tensor)
    lens = data.dims[1].dyn_size_ext.raw_tensor
    mask = torch.arange(logits.shape[1])[None, :] < lens[:, None]
    targets = extern_data["classes"].raw_tensor.long()
    ce = torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="none")
    rf.get_run_ctx().mark_as_loss(ce, "ce", scale=ce_scale)


def forward_step(*, model, extern_data, **_kwargs):
    data = extern_data["data"]
    ctx = rf.get_run_ctx()
    ctx.expected_outputs["posteriors"].dims[1].dyn_size_ext.raw_tensor = data.dims[1].dyn_size_ext.raw_tensor
    ctx.mark_as_output(torch.softmax(model.net(data.raw_tensor), -1), "posteriors")


class PosteriorHDFCallback(ForwardCallbackIface):
    def __init__(self, filename="posteriors.hdf", num_classes=3):
        self.filename = filename
        self.num_classes = num_classes

    def init(self, *, model):
        self.writer = SimpleHDFWriter(self.filename, dim=self.num_classes, ndim=2)

    def process_seq(self, *, seq_tag, outputs):
        post = outputs["posteriors"].raw_tensor
        self.writer.insert_batch(post[None], seq_len=[post.shape[0]], seq_tag=[seq_tag])

    def finish(self):
        self.writer.close()


def write_tiny_data(directory, num_seqs=12, seed=0):
    """Features whose class is the argmax of the first 3 dims: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    feats = SimpleHDFWriter(f"{directory}/feats.hdf", dim=4, ndim=2)
    labels = SimpleHDFWriter(f"{directory}/classes.hdf", dim=3, ndim=1)
    for i in range(num_seqs):
        length = int(rng.integers(5, 15))
        x = rng.normal(size=(length, 4)).astype("float32")
        y = x[:, :3].argmax(-1).astype("int32")
        feats.insert_batch(x[None], seq_len=[length], seq_tag=[f"seq-{i}"])
        labels.insert_batch(y[None], seq_len=[length], seq_tag=[f"seq-{i}"])
    feats.close()
    labels.close()
