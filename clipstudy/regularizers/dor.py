"""Dynamic Outlier Regularization (DOR): Wang, Li & Wei, *Understanding and Mitigating Miscalibration in
Prompt Tuning for Vision-Language Models* (ICML 2025); docs/protocols.md §2.2.

Every training step draws as many outlier class names as there are training (base) classes from an
outlier pool (:mod:`clipstudy.vocabulary`), prompts them with the method's *learned* context
(``method.encode_names``) and pulls their text features toward the frozen zero-shot features of
``"a photo of a {name}."``::

    L_DOR = 1 − (1/B) Σ_b cos(t'_b, t_b)          # Outlier-Calibration trainers/coop.py (indexed) [C]
    L     = CE + λ · L_DOR                         # λ = cfg.OOD.ALPHA

The frozen features of the whole pool are computed once per pool and cached on disk
(:func:`clipstudy.vocabulary.candidate_features`); a step only looks rows up. CoCoOp-DOR prompts the
outliers with each training image's context ``ctx + π(z)``. λ = 8 for CoOp and 2 for the other methods
are the recipes' defaults, **unverified vs paper** (secondary sources, docs/protocols.md §2.2 / §6.5).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import ConfigError
from ..losses import mean_cosine_distance
from ..methods.base import Regularizer
from ..vocabulary import DEFAULT_K, DEFAULT_TEMPLATE, OutlierSampler, build_outlier_pool, candidate_features
from . import REGULARIZERS


def dor_loss(tuned, frozen):
    """``1 − (1/B) Σ_b cos(t'_b, t_b)`` (docs/protocols.md §2.2, ``torch.nn.CosineSimilarity(dim=1, eps=1e-7)``):
    ``tuned`` ``[B, d]`` (or ``[n_images, B, d]`` for CoCoOp) learned-context outlier features, ``frozen``
    ``[B, d]`` zero-shot features of the same names."""
    return mean_cosine_distance(tuned, frozen)


def outlier_pool(loaded, base_classes: Sequence[str], mode: str = "near", k: int = DEFAULT_K,
                 vocabulary="wordnet", vocabulary_file=None, new_classes=None, seed: int = 0,
                 template: str = DEFAULT_TEMPLATE, progress: bool = False):
    """``(names, frozen features [P, d])`` of DOR's outlier pool (:func:`clipstudy.vocabulary.build_outlier_pool`)
    and the zero-shot features of ``template`` filled with each name, both cached on disk."""
    names = build_outlier_pool(loaded, base_classes, mode, k, vocabulary, new_classes, seed,
                               vocabulary_file=vocabulary_file, template=template, progress=progress)
    feats, _ = candidate_features(loaded, list(names), template, progress=progress)
    return tuple(names), feats


@REGULARIZERS.register("dor", scale_power=0,
                       description="DOR: learned-prompt features of outlier names kept near their zero-shot ones")
class DynamicOutlierRegularizer(Regularizer):
    """DOR's term for any method with ``encode_names`` (CoOp, CoCoOp, KgCoOp, MaPLe, deep text prompts).

    Parameters: ``mode`` (near | far | random | oracle), ``k`` (pool size), ``vocabulary`` (wordnet | world
    | world+wordnet | a file), ``vocabulary_file``, ``new_classes`` (for ``oracle``), ``template`` (the
    frozen branch's prompt, ``cfg.OOD.TEMP``), ``seed`` (sampler and random pool), ``n_outliers`` (names per
    step; default: the number of training classes, as DOR; capped at the pool size).

    Step ``s`` always uses the sampler's ``s``-th batch when the batch carries its ``step`` (feature and image
    batches of :mod:`clipstudy.experiment` do), so a resumed run draws the names the uninterrupted run would.
    """

    def __init__(self, method, loaded, mode: str = "near", k: int = DEFAULT_K, vocabulary="wordnet",
                 vocabulary_file=None, new_classes=None, template: str = DEFAULT_TEMPLATE, seed: int = 0,
                 n_outliers: int | None = None):
        super().__init__()
        names, feats = outlier_pool(loaded, method.classnames, mode, k, vocabulary, vocabulary_file,
                                    new_classes, seed, template)
        n = len(method.classnames) if n_outliers is None else n_outliers
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"dor: n_outliers must be an integer >= 1, got {n_outliers!r}")
        self.mode, self.pool = mode, names
        self.sampler = OutlierSampler(names, min(n, len(names)), seed)
        self.register_buffer("frozen", feats.to(next(iter(method.buffers())).device), persistent=False)
        self._index = {name: i for i, name in enumerate(names)}
        self._cached = False

    def forward(self, method, batch, outputs):
        step = batch.get("step")
        if step is not None and int(step) != self.sampler.batches_drawn:  # a resumed run: replay to its step
            self.sampler.load_state_dict({**self.sampler.state_dict(), "batches_drawn": int(step)})
        if not self._cached:  # tokenize the whole pool once (the method's prompts exist only after __init__)
            method.cache_names(self.pool)
            self._cached = True
        names = self.sampler.next_batch()
        idx = torch.tensor([self._index[n] for n in names], device=self.frozen.device)
        z = outputs.get("features") if getattr(method, "instance_conditioned", False) else None
        if z is None and getattr(method, "instance_conditioned", False):
            raise ConfigError(f"dor: {type(method).__name__} conditions prompts on the image, but its step "
                              "outputs carry no 'features'")
        return dor_loss(method.encode_names(names, image_features=z), self.frozen[idx])
