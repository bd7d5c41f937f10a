"""WiSE-FT: weight-space ensembling of a zero-shot and a fine-tuned model (Wortsman et al. 2022, CVPR)."""
from __future__ import annotations


def interpolate(theta0: dict, theta1: dict, alpha: float) -> dict:
    """``(1 − alpha)·theta0 + alpha·theta1`` for every floating-point tensor of two state dicts.

    ``mlfoundations/wise-ft`` ``src/wise_ft.py`` ``_merge`` (no Fisher weighting): ``alpha = 0`` gives
    ``theta0`` (zero-shot), ``alpha = 1`` gives ``theta1`` (fine-tuned), both exactly. Non-floating
    entries (e.g. BatchNorm's ``num_batches_tracked``) are copied from ``theta1``; results take
    ``theta1``'s dtype. Raises ``ValueError`` if alpha is outside [0, 1] or the keys or shapes differ.
    """
    import torch

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1] (0 = theta0, 1 = theta1), got {alpha!r}")
    keys0, keys1 = set(theta0), set(theta1)
    if keys0 != keys1:
        only0, only1 = sorted(keys0 - keys1)[:5], sorted(keys1 - keys0)[:5]
        raise ValueError(f"state dicts have different keys: only in theta0 {only0}, only in theta1 {only1}")
    bad = [f"{k}: {tuple(theta0[k].shape)} vs {tuple(theta1[k].shape)}"
           for k in theta0 if tuple(theta0[k].shape) != tuple(theta1[k].shape)]
    if bad:
        raise ValueError(f"state dicts have different shapes for {len(bad)} key(s): {'; '.join(bad[:5])}")
    merged = {}
    with torch.no_grad():
        for key, t1 in theta1.items():
            t0 = theta0[key]
            if torch.is_floating_point(t1) and torch.is_floating_point(t0):
                merged[key] = ((1 - alpha) * t0.to(t1.device) + alpha * t1).to(t1.dtype)
            else:
                merged[key] = t1.detach().clone()
    return merged
