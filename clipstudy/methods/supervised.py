"""Supervised training from scratch: an image tower of the loaded model's architecture, randomly initialised,
plus a linear head, trained with cross-entropy on labelled images.

The baseline family of the holistic study's effective robustness (Taori et al. 2020, "Measuring robustness
to natural distribution shifts in image classification": the line is fitted on logit-transformed
accuracies of standard ImageNet-trained models; Tu et al., TPAMI 2025, follow them for their visual-factor
axis). On the embedded world the analogue of an ImageNet-trained
model is this method trained on the ID classes' photos only (:mod:`clipstudy.studies.zoo`, ``baselines`` of
``zoo.json``). Nothing of the loaded model's weights is used: only its architecture, preprocessing and
logit scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import METHODS
from .base import Method


@METHODS.register("supervised")
class Supervised(Method):
    """A fresh image tower ``F_θ`` (``loaded.arch`` at random init) and a head ``(W, b)``:
    ``logits = scale · normalize(F_θ(x)) @ Wᵀ + b``, trained on batches ``{"images", "y"}``.

    The random init is a pure function of ``seed``: the tower is created under ``torch.random.fork_rng`` +
    ``torch.manual_seed(seed)`` (:func:`clipstudy.models.load_model` with ``"random"`` weights) and the head
    is drawn from ``torch.Generator().manual_seed(seed)``; the global RNG is left untouched. ``scale``
    (default: the loaded model's logit scale) is fixed, not trained.
    """

    inputs = "images"
    batch_keys = ("images", "y")

    def __init__(self, loaded, classnames, seed: int = 0, scale: float | None = None, regularizers=None):
        super().__init__(loaded, classnames, regularizers)
        if not classnames:
            raise ConfigError("the supervised method needs the class names of its training labels")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"supervised: seed must be an integer, got {seed!r}")
        if scale is not None:
            if not isinstance(scale, (int, float)) or scale <= 0:
                raise ConfigError(f"supervised: scale must be a positive number, got {scale!r}")
            self.scale.fill_(float(scale))
        self.seed = seed
        self.visual = random_tower(loaded, seed).requires_grad_(True)
        dim = _output_dim(self.visual, loaded)
        g = torch.Generator().manual_seed(seed)
        bound = 1.0 / dim ** 0.5  # nn.Linear's default init, drawn from the seeded generator
        self.head = nn.Parameter((torch.rand(len(self.classnames), dim, generator=g) * 2 - 1) * bound)
        self.head_bias = nn.Parameter(torch.zeros(len(self.classnames)))

    @property
    def encoder(self):
        return self.visual

    def feature_similarities(self, z):
        return F.normalize(z.float(), dim=-1) @ self.head.t() + self.head_bias / self.scale


def random_tower(loaded, seed: int):
    """A randomly initialised image tower of ``loaded``'s architecture, a pure function of ``seed``."""
    from ..models import load_model

    fresh = load_model(loaded.arch, "random", device=str(loaded.device), seed=int(seed))
    return fresh.model.visual


def _output_dim(visual, loaded) -> int:
    with torch.no_grad():
        x = torch.zeros(1, 3, loaded.image_size, loaded.image_size, device=loaded.device)
        return int(visual(x).shape[-1])
