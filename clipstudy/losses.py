"""Contrastive losses, registered by name in :data:`LOSSES`, and the weight rule of regularizers.

Contrastive losses (``kind="contrastive"``), ``f(image_features, text_features, logit_scale, logit_bias)``:

* ``clip``: the symmetric InfoNCE loss of CLIP (open_clip ``ClipLoss``);
* ``siglip``: the pairwise sigmoid loss of SigLIP (open_clip ``SigLipLoss``; needs a model with a
  ``logit_bias``, e.g. the ``clipstudy-rn-tiny-sigmoid`` config).

Regularizers have their own registry, :data:`clipstudy.regularizers.REGULARIZERS` (DOR, KgCoOp's term,
L2-SP, KD, CAR-FT, Lipsum-FT); :func:`build_regularizer`, :func:`regularizer_class` and
:func:`list_regularizers` are importable from here too. :func:`scaled_weight` carries a regularizer weight
from CLIP's logit scale to the model's.
"""
from __future__ import annotations

from .registry import Registry
from .regularizers import REGULARIZERS, build_regularizer, list_regularizers, regularizer_class  # noqa: F401

LOSSES = Registry("loss")


@LOSSES.register("clip", kind="contrastive", needs_bias=False)
def clip_loss(image_features, text_features, logit_scale, logit_bias=None):
    """Symmetric cross-entropy over image-text similarities (Radford et al. 2021; open_clip loss.py)."""
    from open_clip.loss import ClipLoss

    return ClipLoss()(image_features, text_features, logit_scale)


@LOSSES.register("siglip", kind="contrastive", needs_bias=True)
def siglip_loss(image_features, text_features, logit_scale, logit_bias=None):
    """Pairwise sigmoid loss (Zhai et al. 2023; open_clip loss.py ``SigLipLoss``)."""
    from open_clip.loss import SigLipLoss

    if logit_bias is None:
        raise ValueError("the siglip loss needs a model with a logit_bias (init_logit_bias in its config)")
    return SigLipLoss()(image_features, text_features, logit_scale, logit_bias)


REFERENCE_LOGIT_SCALE = 100.0
"""The logit scale of OpenAI CLIP (and of every paper's model): the scale at which recipes give weights."""


def scaled_weight(weight: float, scale_power: int, logit_scale: float,
                  reference: float = REFERENCE_LOGIT_SCALE) -> float:
    """The one rule that carries a regularizer weight from CLIP's logit scale to another model's.

    A recipe gives every regularizer weight ``λ`` at the papers' logit scale ``s_ref = 100``. The gradient
    of cross-entropy with respect to the cosine similarities (or the features, or the parameters behind
    them) grows like ``s``; a regularizer whose loss is a polynomial of degree ``p`` in ``s``-scaled
    similarities has a gradient that grows like ``s^p``. To keep the paper's balance between the task
    gradient and the regularizer's at another scale ``s``, the weight becomes

    ``λ(s) = λ · (s / s_ref)^(1 − p)``

    * ``p = 0`` (terms on unit features or weights: DOR, KgCoOp's guidance, L2-SP): ``λ · s / 100``;
    * ``p = 1`` (KL terms on ``s``-scaled logits: KD, CAR-FT): unchanged;
    * ``p = 2`` (squared differences of ``s``-scaled logits: Lipsum-FT): ``λ · 100 / s``.

    At ``s = 100`` (the paper path with OpenAI CLIP) every weight is the paper's. Each regularizer declares
    its ``p`` as ``scale_power`` in :data:`clipstudy.regularizers.REGULARIZERS`.
    """
    if not float(logit_scale) > 0 or not float(reference) > 0:
        raise ValueError(f"logit scales must be > 0, got {logit_scale} and {reference}")
    return float(weight) * (float(logit_scale) / float(reference)) ** (1 - int(scale_power))


def mean_cosine_distance(tuned, frozen, eps: float = 1e-7):
    """``1 − mean_i cos(tuned_i, frozen_i)`` over the last dimension, ``frozen`` broadcast against ``tuned``
    (e.g. ``[B, n, d]`` per-image features against ``[n, d]``). ``torch.nn.CosineSimilarity(dim=1,
    eps=1e-7)`` as in KgCoOp (``htyao89/KgCoOp`` ``trainers/kgcoop.py``) and DOR (docs/protocols.md §2.2); for unit
    vectors it equals ``½ mean ‖tuned − frozen‖²``."""
    import torch.nn.functional as F

    frozen = frozen.to(tuned.dtype).expand_as(tuned)
    return 1.0 - F.cosine_similarity(tuned.float(), frozen.float(), dim=-1, eps=eps).mean()
