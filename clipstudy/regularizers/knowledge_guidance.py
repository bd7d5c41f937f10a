"""KgCoOp's knowledge-guided regularizer (Yao, Zhang & Xu, CVPR 2023; docs/protocols.md §2.3).

``htyao89/KgCoOp`` ``KgCoOp/trainers/kgcoop.py``: the frozen CLIP text features ``w_k^clip`` of the
dataset's hand-crafted prompt (``CUSTOM_TEMPLATES``, e.g. ``"a photo of a {}."``) anchor the learned class
text features ``w_k``: ``L = CE + W · (1 − mean_k cos(w_k, w_k^clip))`` over all training classes,
``W = 8`` in the base-to-new runs.
"""
from __future__ import annotations

from ..losses import mean_cosine_distance
from ..methods.base import Regularizer
from . import REGULARIZERS

DEFAULT_TEMPLATE = "a photo of a {}."


def kgcoop_loss(text_features, clip_features):
    """``1 − mean_k cos(w_k, w_k^clip)`` (KgCoOp ``trainers/kgcoop.py``: ``score = 1.0 - mean(cos(...))``).

    ``text_features`` ``[K, d]`` (or ``[B, K, d]`` for instance-conditioned prompts), ``clip_features``
    ``[K, d]``; neither needs to be normalised."""
    return mean_cosine_distance(text_features, clip_features)


@REGULARIZERS.register("kgcoop", scale_power=0,
                       description="KgCoOp's knowledge guidance: class text features kept near the zero-shot ones")
class KnowledgeGuidance(Regularizer):
    """Keeps the method's class text features close to frozen zero-shot ones (:func:`kgcoop_loss`).

    ``template``: the hand-crafted prompt of the dataset (one ``{}``). The frozen features are computed
    once, here; the learned ones come from the step's outputs (``text_features``) when the method returns
    them, otherwise from ``method.encode_names(method.classnames)``.
    """

    def __init__(self, method, loaded, template: str = DEFAULT_TEMPLATE):
        super().__init__()
        from ..errors import ConfigError
        from ..prompts import zeroshot_head

        if not isinstance(template, str) or template.count("{}") != 1:
            raise ConfigError(f"kgcoop template must contain exactly one '{{}}', got {template!r}")
        self.template = template
        self.register_buffer("clip_features", zeroshot_head(loaded, method.classnames, template), persistent=False)

    def forward(self, method, batch, outputs):
        t = outputs.get("text_features")
        if t is None:
            t = method.encode_names(method.classnames)
        return kgcoop_loss(t, self.clip_features)
