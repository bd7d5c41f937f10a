"""Contrastive image-text training of both towers: CLIP pretraining on the embedded world.

(FLYP-style contrastive fine-tuning reuses the same loss on class captions.)
"""
from __future__ import annotations

import torch.nn.functional as F

from ..losses import LOSSES
from . import METHODS
from .base import Method


@METHODS.register("contrastive")
class Contrastive(Method):
    """Trains every parameter of ``loaded.model`` with a registered contrastive loss
    (``clip`` or ``siglip``) on batches ``{"images": [B,3,H,W], "tokens": [B,L]}``."""

    inputs = "images"

    def __init__(self, loaded, classnames=(), loss: str = "clip"):
        super().__init__(loaded, classnames)
        self.model = loaded.model
        self.loss_fn = LOSSES.get(loss)
        if LOSSES.meta(loss).get("kind") != "contrastive":
            valid = [n for n in LOSSES.list() if LOSSES.meta(n).get("kind") == "contrastive"]
            raise ValueError(f"{loss!r} is not a contrastive loss; valid: {', '.join(valid)}")
        if LOSSES.meta(loss).get("needs_bias") and getattr(self.model, "logit_bias", None) is None:
            raise ValueError(f"loss {loss!r} needs a model with a logit_bias; {loaded.arch} has none")
        self.model.requires_grad_(True)

    def loss(self, batch) -> dict:
        img = F.normalize(self.model.encode_image(batch["images"]).float(), dim=-1)
        txt = F.normalize(self.model.encode_text(batch["tokens"]).float(), dim=-1)
        scale = self.model.logit_scale.exp()
        bias = getattr(self.model, "logit_bias", None)
        return {"loss": self.loss_fn(img, txt, scale, bias), "logit_scale": scale.detach()}

    def after_step(self) -> None:
        # CLIP clamps the learned temperature so that exp(logit_scale) <= 100 (Radford et al. 2021)
        self.model.logit_scale.data.clamp_(0, 4.6052)
