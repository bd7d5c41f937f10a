"""End-to-end fine-tuning of the image encoder with a zero-shot-initialised linear head.

The classifier of WiSE-FT (``mlfoundations/wise-ft`` ``src/models/modeling.py``, docs/protocols.md §5.4) and
Lipsum-FT (``cs-giung/lipsum-ft`` ``scripts/Lipsum-FT.py``, docs/protocols.md §4.3–4.5):
``logits = exp(logit_scale) · normalize(F_θ(x)) @ Wᵀ``, ``W`` initialised with the zero-shot head
and trained (not re-normalised unless ``normalize_head``), the text tower and the logit scale frozen.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..prompts import zeroshot_head
from . import METHODS
from .base import Method


@METHODS.register("finetune")
class FineTune(Method):
    """Trains a deep copy of ``loaded.model.visual`` (the caller's model is untouched) and the head
    ``W`` [K, d] on batches ``{"images": [B, 3, H, W], "y": [B]}``.

    ``templates`` names the zero-shot head's prompts ("photo", "imagenet80", ... see
    :func:`clipstudy.prompts.get_templates`). Before training the method equals zero-shot CLIP. Its
    state dict (``visual.*``, ``head``, ``scale``) has the same keys for every instance built from the
    same model, so :func:`clipstudy.wise.interpolate` merges a zero-shot and a fine-tuned instance.
    ``head_init`` (a ``[K, d]`` tensor) replaces the zero-shot head, e.g. with a linear probe's weights
    for LP-FT; ``head_bias_init`` (a ``[K]`` tensor, e.g. the probe's bias) adds a trained class bias
    ``b`` to the head, ``logits = scale · z @ Wᵀ + b`` (without it the state dict has no bias entry).
    ``normalize_head`` re-normalises every row of ``W`` in the forward pass (a cosine classifier), so the
    similarities stay cosines after training, as OOD scorers defined on cosines (MCM) assume; the
    default (False) is the WiSE-FT / Lipsum-FT classifier, whose trained rows change norm.
    """

    inputs = "images"
    batch_keys = ("images", "y")

    def __init__(self, loaded, classnames, templates="photo", head_init=None, regularizers=None,
                 head_bias_init=None, freeze_bn_stats: bool = False, normalize_head: bool = False):
        super().__init__(loaded, classnames)
        self.freeze_bn_stats = bool(freeze_bn_stats)
        self.normalize_head = bool(normalize_head)
        self.visual = copy.deepcopy(loaded.model.visual).requires_grad_(True)
        head = zeroshot_head(loaded, classnames, templates) if head_init is None else torch.as_tensor(head_init)
        self.head = nn.Parameter(head.detach().float().clone())
        if head_bias_init is not None:
            self.head_bias = nn.Parameter(torch.as_tensor(head_bias_init).detach().float().clone().reshape(-1))
        for name, params in (regularizers or {}).items():  # after the tower exists: some regularizers copy it
            self.add_regularizer(name, **dict(params))

    @property
    def encoder(self):
        return self.visual

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_bn_stats:
            freeze_batchnorm_stats(self.visual)
        return self

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm features ``F_θ(x)/‖F_θ(x)‖`` of the fine-tuned encoder."""
        return self.encode(images)

    def feature_similarities(self, z):
        head = F.normalize(self.head, dim=-1) if self.normalize_head else self.head
        sims = F.normalize(z.float(), dim=-1) @ head.t()
        bias = getattr(self, "head_bias", None)
        return sims if bias is None else sims + bias / self.scale


def freeze_batchnorm_stats(module) -> int:
    """Put every BatchNorm layer of ``module`` in eval mode (running statistics used, not updated); returns
    how many there are."""
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        m.eval()
    return len(layers)
