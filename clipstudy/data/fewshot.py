"""Few-shot training subsets, drawn as CoOp draws them."""
from __future__ import annotations

from typing import Sequence


def few_shot_indices(targets, k: int, seed: int, classnames: Sequence[str] | None = None):
    """Indices of ``k`` samples per class, as Dassl's ``DatasetBase.generate_fewshot_dataset`` (used by
    ``KaiyangZhou/CoOp``): group the items by label (each group in dataset order), then per class
    ``random.sample(items, k)``. Classes are visited in increasing label order and the generator is
    ``random.Random(seed)``, so the split depends only on ``(targets, k, seed)``.

    Unlike Dassl, which silently keeps every item of a class with fewer than ``k``, this raises
    ``ConfigError`` (a ``ValueError``) naming the class, its count and the largest valid k. Returns an
    ``int64`` array, class by class, each class's indices in sampling order.
    """
    import random

    import numpy as np

    from ..errors import ConfigError

    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise ValueError(f"targets must be one-dimensional, got shape {targets.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (shots per class) must be a positive integer, got {k!r}")
    rng = random.Random(seed)
    out: list[int] = []
    for label in np.unique(targets):
        items = np.flatnonzero(targets == label).tolist()
        if len(items) < k:
            name = f" ({classnames[int(label)]!r})" if classnames is not None else ""
            raise ConfigError(f"class {int(label)}{name} has only {len(items)} samples, fewer than k={k} shots; "
                              f"use k <= {np.unique(targets, return_counts=True)[1].min()} or a larger pool")
        out.extend(rng.sample(items, int(k)))
    return np.asarray(out, dtype=np.int64)
