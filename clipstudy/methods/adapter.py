"""CLIP-Adapter (Gao et al. 2021, "CLIP-Adapter: Better Vision-Language Models with Feature Adapters"),
visual adapter variant, as in ``gaopengcuhk/CLIP-Adapter`` ``clip_adapter.py``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..prompts import zeroshot_head
from . import METHODS
from .base import Method


@METHODS.register("clip_adapter")
class ClipAdapter(Method):
    """``f' = ratio·A(f) + (1−ratio)·f`` with
    ``A = Linear(d, d/reduction) → ReLU → Linear(d/reduction, d) → ReLU`` (both Linear layers without
    bias, as in the reference), then cosine to the frozen zero-shot head built from ``templates``.

    The reference applies the adapter to unnormalised image features; here the cached features are
    unit norm. Because ``A`` has no biases it is positively homogeneous (``A(c·f) = c·A(f)``, c > 0), so
    after the final L2 normalisation the result is identical. ``seed`` seeds PyTorch's default
    ``nn.Linear`` init of the adapter.
    """

    def __init__(self, loaded, classnames, ratio: float = 0.2, reduction: int = 4, templates="photo", seed: int = 0,
                 regularizers=None):
        super().__init__(loaded, classnames, regularizers)
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"ratio must be in [0, 1], got {ratio!r}")
        head = zeroshot_head(loaded, classnames, templates)
        d = head.shape[1]
        if not isinstance(reduction, int) or reduction < 1 or d // reduction < 1:
            raise ConfigError(f"reduction must be an integer in [1, {d}], got {reduction!r}")
        self.ratio = float(ratio)
        self.register_buffer("head", head)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.adapter = nn.Sequential(nn.Linear(d, d // reduction, bias=False), nn.ReLU(),
                                         nn.Linear(d // reduction, d, bias=False), nn.ReLU())
        self.adapter.to(head.device)

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        """Adapted, unit-norm image features ``[N, d]``."""
        x = x.float()
        return F.normalize(self.ratio * self.adapter(x) + (1 - self.ratio) * x, dim=-1)

    def feature_similarities(self, z):
        return self.adapt(z) @ self.head.t()
