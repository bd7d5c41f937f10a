"""Shared pieces of methods: the base class and feature batches for the training loop."""
from __future__ import annotations

import torch
from torch import nn

from ..train import epoch_batches


class Method(nn.Module):
    """Base class: subclasses set ``inputs`` and implement ``similarities`` (and ``loss`` to train)."""

    inputs = "features"
    trains = True

    def __init__(self, loaded, classnames):
        super().__init__()
        self.classnames = tuple(classnames)
        self.register_buffer("scale", torch.tensor(float(loaded.logit_scale)))

    def similarities(self, x) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, x) -> torch.Tensor:
        return self.scale * self.similarities(x)

    def loss(self, batch) -> dict:
        logits = self.logits(batch["x"])
        return {"loss": nn.functional.cross_entropy(logits.float(), batch["y"])}

    @torch.no_grad()
    def predict_similarities(self, x, batch_size: int = 1024) -> torch.Tensor:
        self.eval()
        return torch.cat([self.similarities(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])


def feature_batches(features, labels, batch_size: int, seed: int):
    """``step -> {"x": features, "y": labels}`` over shuffled epochs (see :func:`epoch_batches`)."""
    idx = epoch_batches(len(labels), batch_size, seed)

    def batch(step: int) -> dict:
        i = idx(step)
        return {"x": features[i], "y": labels[i]}

    batch.steps_per_epoch = idx.steps_per_epoch
    return batch
