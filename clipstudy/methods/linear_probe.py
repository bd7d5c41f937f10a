"""Linear probe on frozen image features.

The head ``W`` acts on unit-norm features, ``logits = scale * f @ W^T``, as in WiSE-FT/Lipsum-FT's
classifier. ``init="zeroshot"`` starts from the zero-shot text head (so step 0 equals zero-shot);
``init="random"`` starts from small random weights (CLIP's classic linear probe).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..prompts import zeroshot_head
from . import METHODS
from .base import Method


@METHODS.register("linear_probe")
class LinearProbe(Method):
    def __init__(self, loaded, classnames, init: str = "zeroshot", templates="photo", seed: int = 0,
                 regularizers=None):
        super().__init__(loaded, classnames, regularizers)
        if init not in ("zeroshot", "random"):
            raise ConfigError(f"unknown linear-probe init {init!r}; valid: zeroshot, random")
        weight = zeroshot_head(loaded, classnames, templates).clone()
        if init == "random":
            g = torch.Generator().manual_seed(seed)
            weight = torch.randn(weight.shape, generator=g) * 0.01
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(len(classnames)))

    def feature_similarities(self, z):
        return z.float() @ self.weight.t() + self.bias / self.scale
