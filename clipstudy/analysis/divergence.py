"""Feature Divergence of class text features (Wang, Li & Wei, ICML 2025, Def. 3.1; docs/protocols.md §2.2):
how far each class's text feature sits from its nearest other classes, the diagnostic that shows prompt tuning
pushing new-class features apart."""
from __future__ import annotations

import numpy as np

from ..metrics import as_numpy


def feature_divergence(text_features, m: int = 5, metric: str = "cosine", normalize: bool = True) -> dict:
    """Feature Divergence (FD) of class text features (Wang, Li, Wei, Def. 3.1; docs/protocols.md §2.2).

    ``FD(t_k)`` = mean distance from ``t_k`` to its ``m`` nearest *other* class text features. The paper's M and
    distance are not known ([NF]); defaults here: ``m=5``, ``metric="cosine"`` (``1 - cos``), or
    ``"euclidean"`` (on L2-normalised features if ``normalize``). Returns ``dict(per_class [K], mean)``.
    """
    t = as_numpy(text_features, "text_features", ndim=2)
    k = len(t)
    if not isinstance(m, (int, np.integer)) or not 1 <= m <= k - 1:
        raise ValueError(f"m must be an integer in [1, {k - 1}] for {k} classes, got {m!r}")
    if normalize:
        norm = np.linalg.norm(t, axis=1, keepdims=True)
        if np.any(norm == 0):
            raise ValueError("text_features: cannot L2-normalise a zero vector")
        t = t / norm
    if metric == "cosine":
        d = 1.0 - (t @ t.T) / np.outer(np.linalg.norm(t, axis=1), np.linalg.norm(t, axis=1))
    elif metric == "euclidean":
        sq = (t * t).sum(1)
        d = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2.0 * t @ t.T, 0.0, None))
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    np.fill_diagonal(d, np.inf)
    per_class = np.sort(d, axis=1)[:, :m].mean(1)
    return {"per_class": per_class, "mean": float(per_class.mean())}
