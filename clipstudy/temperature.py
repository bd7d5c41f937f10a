"""Post-hoc calibration by temperature scaling (the feature-divergence diagnostic of prompt learners is
:func:`clipstudy.analysis.divergence.feature_divergence`).

Temperature ``T`` divides logits: ``p = softmax(logits / T)``; ``T > 1`` softens, ``T < 1`` sharpens. For CLIP,
logits are ``logit_scale * cosine`` (docs/protocols.md §0.2, §3.4). Inputs may be numpy arrays or torch tensors; outputs
are numpy arrays / python floats / dicts. torch is not needed.
"""
from __future__ import annotations

import numpy as np

from .metrics import _labels, as_numpy, log_softmax

__all__ = ["temperature_nll", "tune_temperature", "fit_temperature", "temperature_at_bound", "warn_if_at_bound",
           "apply_temperature"]

TEMPERATURE_BOUNDS = (0.01, 10.0)
"""The search interval of :func:`fit_temperature` (Klaus-Tu/VLM_calibrate's ``tune_temp`` values)."""


def _logits_labels(logits, labels):
    x = as_numpy(logits, "logits", ndim=2)
    return x, _labels(labels, len(x), n_classes=x.shape[1])


def temperature_nll(logits, labels, T: float) -> float:
    """Mean cross-entropy ``CE(logits / T, labels)`` in float64 (natural log)."""
    x, y = _logits_labels(logits, labels)
    return _ce(x, y, float(T))


def _ce(x: np.ndarray, y: np.ndarray, t: float) -> float:
    return float(-np.mean(log_softmax(x / t)[np.arange(len(x)), y]))


def _ce_grad_sign(x: np.ndarray, y: np.ndarray, t: float) -> float:
    """Sign-carrying part of dCE(x/t)/dt = (1/t^2) mean_i (x_iy - E_{p_i}[x_i]), p_i = softmax(x_i/t)."""
    p = np.exp(log_softmax(x / t))
    return float(np.mean(x[np.arange(len(x)), y] - (p * x).sum(1)))


def tune_temperature(logits, labels, lower: float = 0.01, upper: float = 10.0, tol: float = 1e-4) -> float:
    """Temperature by bisection on the sign of ``dCE(logits/t)/dt`` (Klaus-Tu/VLM_calibrate ``tune_temp``, §0.4).

    Starting from ``[lower, upper]`` (README values 0.01, 10), the gradient at the midpoint decides which half
    to keep until ``upper - lower <= tol``; the result is whichever of ``{lower, mid, upper}`` has the lowest
    CE (first in that order on ties). The derivative is analytic in float64 (the reference uses float32
    autograd; only its sign matters). CE is convex in ``1/t``, hence unimodal in ``t``.
    """
    if not (0 < lower < upper) or not tol > 0:
        raise ValueError(f"need 0 < lower < upper and tol > 0, got lower={lower}, upper={upper}, tol={tol}")
    x, y = _logits_labels(logits, labels)
    lower, upper = float(lower), float(upper)
    while upper - lower > tol:
        mid = 0.5 * (lower + upper)
        if _ce_grad_sign(x, y, mid) > 0:
            upper = mid
        else:
            lower = mid
    return float(min([lower, 0.5 * (lower + upper), upper], key=lambda t: _ce(x, y, t)))


def _fit_lbfgs(x: np.ndarray, y: np.ndarray, lower: float, upper: float) -> float:
    from scipy.optimize import minimize

    def f(v):  # optimise u = log t; dCE/du = t * dCE/dt = mean(x_y - E_p x) / t
        t = float(np.exp(v[0]))
        return _ce(x, y, t), np.array([_ce_grad_sign(x, y, t) / t])

    res = minimize(f, x0=np.array([0.0]), jac=True, method="L-BFGS-B",
                   bounds=[(np.log(lower), np.log(upper))], options={"gtol": 1e-10, "ftol": 1e-14})
    return float(np.exp(res.x[0]))


def fit_temperature(logits, labels, method: str = "bisection", lower: float = 0.01, upper: float = 10.0,
                    tol: float = 1e-4) -> float:
    """Fit a temperature minimising NLL. ``method="bisection"``: :func:`tune_temperature` (Tu et al. code);
    ``"lbfgs"``: scipy L-BFGS-B on ``log t`` within ``[lower, upper]`` from t=1 (Guo et al. 2017 style), for
    comparison."""
    if method == "bisection":
        return tune_temperature(logits, labels, lower=lower, upper=upper, tol=tol)
    if method == "lbfgs":
        if not 0 < lower < upper:
            raise ValueError(f"need 0 < lower < upper, got lower={lower}, upper={upper}")
        return _fit_lbfgs(*_logits_labels(logits, labels), float(lower), float(upper))
    raise ValueError(f"method must be 'bisection' or 'lbfgs', got {method!r}")


def temperature_at_bound(T: float, lower: float = TEMPERATURE_BOUNDS[0], upper: float = TEMPERATURE_BOUNDS[1],
                         rtol: float = 1e-2) -> bool:
    """Whether a fitted temperature sits at (within ``rtol`` relative of) an end of its search interval: the
    NLL optimum may lie outside it, so the calibrated numbers are those of the bound, not of the optimum.
    Runs flag it (``ts_at_bound``) and warn."""
    T = float(T)
    return bool(abs(T - lower) <= rtol * lower or abs(T - upper) <= rtol * upper)


def warn_if_at_bound(T: float, where: str, lower: float = TEMPERATURE_BOUNDS[0],
                     upper: float = TEMPERATURE_BOUNDS[1]) -> bool:
    """:func:`temperature_at_bound`, with a one-line warning naming ``where`` when it is."""
    hit = temperature_at_bound(T, lower, upper)
    if hit:
        import warnings

        warnings.warn(f"temperature scaling ({where}): the fitted T = {T:.4g} is at the search bound "
                      f"[{lower:g}, {upper:g}]; the NLL optimum may lie outside it", stacklevel=2)
    return hit


def apply_temperature(logits, T: float) -> np.ndarray:
    """``logits / T`` as a float64 numpy array (temperature scaling, Guo et al. 2017; docs/protocols.md §3.4)."""
    if not float(T) > 0:
        raise ValueError(f"temperature must be > 0, got {T}")
    return as_numpy(logits, "logits") / float(T)
