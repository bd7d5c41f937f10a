"""FLYP: contrastive fine-tuning of both towers on class captions (Goyal et al. 2023, "Finetune like you
pretrain", CVPR; ``locuslab/FLYP`` ``src/models/flyp_loss.py``; docs/protocols.md §5.5).

Each training image is paired with the caption ``template.format(class)``, the template drawn per image
from the template set; the image and text towers are trained with CLIP's symmetric contrastive loss
over the batch (open_clip ``ClipLoss``). Prediction uses the zero-shot head built from the *fine-tuned*
text tower with the same template ensemble. The other robust fine-tuning baselines (L2-SP, KD, CAR-FT,
Lipsum-FT) are regularizers of ``finetune`` (:mod:`clipstudy.regularizers.zero_shot_anchors`).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..prompts import get_templates
from . import METHODS
from .base import Method
from .finetune import freeze_batchnorm_stats


@METHODS.register("flyp")
class FLYP(Method):
    """Fine-tunes a deep copy of the whole CLIP model (the caller's is untouched) on batches
    ``{"images", "y"}`` (plus ``"step"``: the template of each image is drawn from ``(seed, step)``).

    ``train_logit_scale`` (default True, as FLYP's code, which optimises CLIP's ``logit_scale`` with the
    rest of the model and clamps it at 100 as open_clip's training loop does): the contrastive loss uses
    ``exp(model.logit_scale)`` and the method's ``scale`` (what its logits, NLL and ECE use) follows it
    after every step and every ``load_state_dict``; False keeps the loaded model's scale.
    ``freeze_bn_stats`` as in ``finetune``. ``feature_similarities`` uses the template-ensemble head of
    the current text tower, recomputed after every change of the weights (a training step or
    ``load_state_dict``, e.g. a WiSE-FT interpolation). ``text_tower`` is the fine-tuned text tower
    (``ids -> features``): energy gaps of FLYP are measured with it (the paper's Eq. 6 compares
    ``⟨G_φ(t), F_θ(x)⟩`` of the fine-tuned pair with the zero-shot pair's).
    """

    inputs = "images"
    batch_keys = ("images", "y")

    max_logit_scale = 100.0

    def __init__(self, loaded, classnames, templates="photo", seed: int = 0, regularizers=None,
                 freeze_bn_stats: bool = False, train_logit_scale: bool = True):
        super().__init__(loaded, classnames)
        self.freeze_bn_stats = bool(freeze_bn_stats)
        self.train_logit_scale = bool(train_logit_scale)
        self.model = copy.deepcopy(loaded.model).requires_grad_(True)
        self.model.logit_scale.requires_grad_(self.train_logit_scale)
        self.templates, self.seed, self._calls = get_templates(templates), int(seed), 0
        captions = [t.format(c) for t in self.templates for c in self.classnames]
        self.register_buffer("captions", loaded.tokenize(captions).reshape(len(self.templates), len(self.classnames), -1),
                             persistent=False)
        self._head = None
        self.register_load_state_dict_post_hook(lambda module, keys: module._weights_changed())
        for name, params in (regularizers or {}).items():
            self.add_regularizer(name, **dict(params))

    @property
    def encoder(self):
        return self.model.visual

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_bn_stats:
            freeze_batchnorm_stats(self.model.visual)
        return self

    def clear_head(self) -> None:
        self._head = None

    def _weights_changed(self) -> None:
        self.clear_head()
        if self.train_logit_scale:
            with torch.no_grad():
                self.model.logit_scale.clamp_(max=float(np.log(self.max_logit_scale)))
                self.scale.copy_(self.model.logit_scale.exp().to(self.scale.dtype))

    def after_step(self) -> None:
        self._weights_changed()

    def train_scale(self) -> torch.Tensor:
        """The logit scale of the contrastive loss: ``exp(logit_scale)`` (trained) or the fixed scale."""
        return self.model.logit_scale.exp() if self.train_logit_scale else self.scale

    @property
    def text_tower(self):
        """``ids -> text features`` (not normalised) of the fine-tuned text tower."""
        return self.model.encode_text

    def class_head(self) -> torch.Tensor:
        """Unit class text features ``[K, d]``: per class, the mean of the unit features of every template,
        re-normalised (docs/protocols.md §0.2), from the current text tower; cached until the weights change."""
        if self._head is None or self.training:
            with torch.no_grad():
                t, k, n = self.captions.shape
                feats = F.normalize(self.model.encode_text(self.captions.reshape(t * k, n)).float(), dim=-1)
                head = F.normalize(feats.reshape(t, k, -1).mean(0), dim=-1)
            if self.training:
                return head
            self._head = head
        return self._head

    def feature_similarities(self, z):
        return F.normalize(z.float(), dim=-1) @ self.class_head().t()

    def caption_tokens(self, labels, step: int) -> torch.Tensor:
        """One caption per image: the template of each drawn from ``default_rng([seed, step])``."""
        rng = np.random.default_rng([self.seed, int(step)])
        which = torch.as_tensor(rng.integers(0, len(self.templates), size=len(labels)), device=labels.device)
        return self.captions[which, labels]

    def forward_train(self, batch) -> dict:
        step = batch.get("step")
        if step is None:  # hand-made batches without a step index: count calls instead
            step, self._calls = self._calls, self._calls + 1
        z = self.encode(batch["images"])
        text = F.normalize(self.model.encode_text(self.caption_tokens(batch["y"], step)).float(), dim=-1)
        scale = self.train_scale()
        return {"features": z, "text_features": text, "pair_logits": scale * z @ text.t(), "train_scale": scale}

    def task_loss(self, batch, outputs) -> torch.Tensor:
        """CLIP's symmetric contrastive loss over the batch's image-caption pairs (open_clip ``ClipLoss``)."""
        from ..losses import LOSSES

        return LOSSES.get("clip")(outputs["features"], outputs["text_features"], outputs["train_scale"])
