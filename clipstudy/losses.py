"""Losses, registered by name: contrastive pretraining objectives and their building blocks.

``clip``: the symmetric InfoNCE loss of CLIP (open_clip ``ClipLoss``).
``siglip``: the pairwise sigmoid loss of SigLIP (open_clip ``SigLipLoss``; needs a model with a
``logit_bias``, e.g. the ``clipstudy-rn-tiny-sigmoid`` config).
"""
from __future__ import annotations

from .registry import Registry

LOSSES = Registry("loss")


@LOSSES.register("clip", needs_bias=False)
def clip_loss(image_features, text_features, logit_scale, logit_bias=None):
    """Symmetric cross-entropy over image-text similarities (Radford et al. 2021; open_clip loss.py)."""
    from open_clip.loss import ClipLoss

    return ClipLoss()(image_features, text_features, logit_scale)


@LOSSES.register("siglip", needs_bias=True)
def siglip_loss(image_features, text_features, logit_scale, logit_bias=None):
    """Pairwise sigmoid loss (Zhai et al. 2023; open_clip loss.py ``SigLipLoss``)."""
    from open_clip.loss import SigLipLoss

    if logit_bias is None:
        raise ValueError("the siglip loss needs a model with a logit_bias (init_logit_bias in its config)")
    return SigLipLoss()(image_features, text_features, logit_scale, logit_bias)
