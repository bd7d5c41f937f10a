"""KgCoOp: knowledge-guided context optimisation (Yao, Zhang & Xu, CVPR 2023; docs/protocols.md §2.3).

CoOp (:class:`~clipstudy.methods.prompt_learning.CoOp`) with the ``kgcoop`` regularizer
(:mod:`clipstudy.regularizers.knowledge_guidance`) attached: ``L = CE + W · (1 − mean_k cos(w_k, w_k^clip))``.
Defaults follow ``htyao89/KgCoOp``'s base-to-new runs: 4 context vectors initialised from
``"a photo of a"`` (``CTX_INIT=True``), ``W = 8``, the dataset's hand-crafted prompt as the anchor.
"""
from __future__ import annotations

from ..errors import ConfigError
from . import METHODS
from .prompt_learning import CoOp


@METHODS.register("kgcoop")
class KgCoOp(CoOp):
    """CoOp + knowledge guidance. ``weight`` is KgCoOp's ``W`` (``TRAINER.COOP.W``), ``template`` the
    hand-crafted prompt of the frozen anchor features; other regularizers (e.g. DOR) attach as usual
    with ``regularizers={...}``."""

    def __init__(self, loaded, classnames, n_ctx: int = 4, ctx_init: str = "a photo of a", weight: float = 8.0,
                 template: str = "a photo of a {}.", class_token_position: str = "end", class_specific: bool = False,
                 seed: int = 0, regularizers=None):
        regularizers = dict(regularizers or {})
        if "kgcoop" in regularizers:
            raise ConfigError("kgcoop attaches its own 'kgcoop' regularizer; set its weight with weight=, "
                              "not regularizers={'kgcoop': ...}")
        regularizers = {"kgcoop": {"weight": weight, "template": template}, **regularizers}
        super().__init__(loaded, classnames, n_ctx, ctx_init, class_token_position, class_specific, seed,
                         regularizers=regularizers)
