"""Evaluation metrics: classification, OOD detection, calibration, retrieval, robustness.

Every function accepts numpy arrays or torch tensors (converted with ``.detach().cpu()``) and returns
python floats, numpy arrays or plain dicts. torch is never imported here.

Conventions (each function's docstring repeats the one it uses):

* OOD detection follows the MCM code (``deeplearning-wisc/MCM`` ``utils/detection_util.py``, docs/protocols.md §0.3):
  **ID is the positive class and scores are higher = more ID**.
* Calibration functions take probabilities ``[N, K]`` by default; pass ``from_logits=True`` to apply a softmax
  first (for CLIP, logits = ``logit_scale * cosine``). Confidence = max probability, prediction = argmax
  (ties -> lowest class index, as ``np.argmax``).
* Equal-width calibration bins are ``(lower, upper]`` by default (Klaus-Tu/VLM_calibrate ``_ECELoss``, docs/protocols.md
  §0.4), with a confidence of exactly 0 put in the first bin; ``closed="left"`` gives ``[lower, upper)`` bins
  (DAC ``np.digitize`` / torchmetrics), with a confidence of exactly 1.0 put in the last bin.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "as_numpy", "softmax", "log_softmax",
    "accuracy", "top_k_accuracy",
    "auroc", "aupr_in", "aupr_out", "fpr_at_tpr", "ood_metrics", "ood_metrics_over_sets",
    "confidence_and_correct", "reliability_bins", "ece", "adaptive_ece", "mce", "nll", "brier", "piece",
    "confidence_gap", "calibration_summary",
    "harmonic_mean", "recall_at_k", "effective_robustness", "shape_bias",
]


# ----------------------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------------------
def as_numpy(x, name: str = "input", ndim: int | None = None, dtype=np.float64,
             allow_empty: bool = False) -> np.ndarray:
    """Convert a numpy array / torch tensor / sequence to numpy and validate it (clipstudy convention).

    Raises ``ValueError`` for a wrong ``ndim``, an empty array (unless ``allow_empty``) or NaN/inf values.
    """
    if hasattr(x, "detach"):  # torch tensor, without importing torch
        x = x.detach().cpu()
        if dtype is not None and not x.dtype.is_floating_point and np.dtype(dtype).kind == "f":
            x = x.double()
        elif x.dtype.is_floating_point and str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        x = x.numpy()
    try:
        arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot convert to a numeric array ({e})") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name}: empty array")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def _labels(labels, n: int, name: str = "labels", n_classes: int | None = None) -> np.ndarray:
    lab = as_numpy(labels, name, ndim=1, dtype=None)
    if lab.dtype.kind == "f":
        if not np.all(lab == np.round(lab)):
            raise ValueError(f"{name}: must be integer class indices")
        lab = lab.astype(np.int64)
    if lab.dtype.kind not in "iub":
        raise ValueError(f"{name}: must be integer class indices, got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    if len(lab) != n:
        raise ValueError(f"{name}: length {len(lab)} does not match {n} predictions")
    if n_classes is not None and (lab.min() < 0 or lab.max() >= n_classes):
        raise ValueError(f"{name}: class indices must lie in [0, {n_classes - 1}]")
    return lab


def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax in float64, ``x - max(x) - log sum exp(x - max(x))`` along ``axis``
    (standard formula; used for NLL with ``from_logits``): ``scipy.special.log_softmax`` on the validated input."""
    from scipy.special import log_softmax as _scipy_log_softmax
    return _scipy_log_softmax(as_numpy(logits, "logits"), axis=axis)


def softmax(logits, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64. For CLIP pass ``logit_scale * cosine`` (docs/protocols.md §0.2)."""
    return np.exp(log_softmax(logits, axis=axis))


def _probs(probs, from_logits: bool, name: str = "probs") -> np.ndarray:
    """Validated probabilities [N, K]; applies softmax when ``from_logits``."""
    p = as_numpy(probs, name, ndim=2)
    if from_logits:
        return softmax(p)
    if p.min() < -1e-6 or p.max() > 1 + 1e-6 or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise ValueError(f"{name}: rows must be probabilities summing to 1; pass from_logits=True for logits")
    return np.clip(p, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------------------
def accuracy(logits_or_probs, labels) -> float:
    """Top-1 accuracy. ``[N, K]`` scores -> argmax (ties -> lowest index); a 1-D int array is taken as predictions."""
    s = as_numpy(logits_or_probs, "logits_or_probs", dtype=None)
    if s.ndim == 2:
        pred = as_numpy(s, "logits_or_probs").argmax(1)
    elif s.ndim == 1:
        pred = _labels(s, len(s), "predictions")
    else:
        raise ValueError(f"logits_or_probs: expected [N, K] scores or [N] predictions, got shape {s.shape}")
    return float(np.mean(pred == _labels(labels, len(pred))))


def top_k_accuracy(logits_or_probs, labels, k: int = 5) -> float:
    """Top-k accuracy over ``[N, K]`` scores.

    Tie convention: the true class's rank is ``#(scores > s_y) + #(scores == s_y with lower index)``, so k=1
    equals :func:`accuracy` (argmax picks the lowest index among ties).
    """
    s = as_numpy(logits_or_probs, "logits_or_probs", ndim=2)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    y = _labels(labels, len(s), n_classes=s.shape[1])
    sy = s[np.arange(len(s)), y][:, None]
    idx = np.arange(s.shape[1])[None, :]
    rank = (s > sy).sum(1) + ((s == sy) & (idx < y[:, None])).sum(1)
    return float(np.mean(rank < k))


# ----------------------------------------------------------------------------------------------------------
# OOD detection (MCM convention: ID positive, higher score = more ID)
# ----------------------------------------------------------------------------------------------------------
def _ood_inputs(id_scores, ood_scores):
    i = as_numpy(id_scores, "id_scores").ravel()
    o = as_numpy(ood_scores, "ood_scores").ravel()
    return i, o


def _id_positive(i: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_score)`` for sklearn: ID samples labelled 1 (positive), OOD samples 0."""
    return np.r_[np.ones(len(i)), np.zeros(len(o))], np.concatenate([i, o])


def auroc(id_scores, ood_scores) -> float:
    """AUROC with ID as the positive class, higher = more ID (MCM ``get_measures``, docs/protocols.md §0.3).

    ``sklearn.metrics.roc_auc_score`` with ID labelled 1, as MCM: the area under the ROC curve, equal to the
    Mann-Whitney U statistic ``U / (n_id n_ood)`` with tied ID/OOD scores counting 1/2 (constant scores give 0.5).
    """
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(*_id_positive(*_ood_inputs(id_scores, ood_scores))))


def aupr_in(id_scores, ood_scores) -> float:
    """AUPR-In: average precision with ID positive, higher = more ID (MCM's "AUPR", docs/protocols.md §0.3).

    ``sklearn.metrics.average_precision_score`` with ID labelled 1, as MCM: the step-wise (non-interpolated)
    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds (tied scores form one threshold).
    """
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(*_id_positive(*_ood_inputs(id_scores, ood_scores))))


def aupr_out(id_scores, ood_scores) -> float:
    """AUPR-Out: average precision with OOD positive and negated scores (Hendrycks & Gimpel convention).

    ``sklearn.metrics.average_precision_score`` with OOD labelled 1 and scores ``-s``; same step-wise AP as
    :func:`aupr_in`.
    """
    from sklearn.metrics import average_precision_score
    i, o = _ood_inputs(id_scores, ood_scores)
    return float(average_precision_score(*_id_positive(-o, -i)))


def fpr_at_tpr(id_scores, ood_scores, tpr: float = 0.95) -> float:
    """FPR at ``tpr`` recall of ID: MCM ``fpr_and_fdr_at_recall`` semantics (docs/protocols.md §0.3).

    Thresholds are the distinct scores, from the highest down to the first one where every ID sample is
    recalled. The threshold whose ID recall ``#(id >= t)/n_id`` is *closest* to ``tpr`` is chosen (it may lie
    below ``tpr``); among equally close thresholds the *lowest* one wins (MCM scans them from low to high and
    ``argmin`` takes the first). Returns the fraction of OOD scores ``>=`` that threshold.
    """
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must lie in (0, 1], got {tpr}")
    i, o = _ood_inputs(id_scores, ood_scores)
    s = np.concatenate([i, o])
    y = np.r_[np.ones(len(i)), np.zeros(len(o))]
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tie group
    tps = np.cumsum(y)[ends]
    fps = ends + 1 - tps
    last = int(np.searchsorted(tps, tps[-1]))  # first threshold with full ID recall
    recall = (tps / tps[-1])[last::-1]
    cut = int(np.argmin(np.abs(recall - tpr)))
    return float(fps[last::-1][cut] / len(o))


def ood_metrics(id_scores, ood_scores, tpr: float = 0.95) -> dict:
    """``dict(auroc, aupr_in, aupr_out, fpr95)`` for one ID/OOD pair; MCM convention (docs/protocols.md §0.3).

    The ``fpr95`` key holds :func:`fpr_at_tpr` at ``tpr`` (0.95 by default). All values are fractions in [0, 1].
    """
    return {
        "auroc": auroc(id_scores, ood_scores),
        "aupr_in": aupr_in(id_scores, ood_scores),
        "aupr_out": aupr_out(id_scores, ood_scores),
        "fpr95": fpr_at_tpr(id_scores, ood_scores, tpr),
    }


def ood_metrics_over_sets(id_scores, ood_sets: Mapping[str, object], tpr: float = 0.95) -> dict:
    """Per-OOD-set :func:`ood_metrics` plus their arithmetic mean under key ``"mean"`` (MCM "Mean Test Results")."""
    if not ood_sets:
        raise ValueError("ood_sets: need at least one OOD set")
    if "mean" in ood_sets:
        raise ValueError("ood_sets: the name 'mean' is reserved for the average")
    out = {name: ood_metrics(id_scores, o, tpr) for name, o in ood_sets.items()}
    keys = next(iter(out.values())).keys()
    out["mean"] = {k: float(np.mean([m[k] for m in out.values()])) for k in keys}
    return out


# ----------------------------------------------------------------------------------------------------------
# calibration
# ----------------------------------------------------------------------------------------------------------
def confidence_and_correct(probs, labels, *, from_logits: bool = False):
    """``(confidence, correct)``: max probability and ``argmax == label`` per sample (docs/protocols.md §0.4)."""
    p = _probs(probs, from_logits)
    y = _labels(labels, len(p), n_classes=p.shape[1])
    return p.max(1), (p.argmax(1) == y).astype(np.float64)


def _bin_index(conf: np.ndarray, edges: np.ndarray, closed: str) -> np.ndarray:
    n_bins = len(edges) - 1
    if closed == "right":  # (lower, upper]; conf == 0 -> first bin
        idx = np.searchsorted(edges, conf, side="left") - 1
    elif closed == "left":  # [lower, upper); conf == 1 -> last bin
        idx = np.searchsorted(edges, conf, side="right") - 1
    else:
        raise ValueError(f"closed must be 'right' (lower, upper] or 'left' [lower, upper), got {closed!r}")
    return np.clip(idx, 0, n_bins - 1)


def _check_bins(n_bins) -> int:
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    return int(n_bins)


def reliability_bins(probs, labels, n_bins: int = 15, *, from_logits: bool = False, closed: str = "right") -> dict:
    """Equal-width reliability diagram data (docs/protocols.md §0.4).

    Returns ``dict(edges [B+1], counts [B], confidence [B], accuracy [B])``; empty bins have count 0 and NaN
    means. ``closed="right"``: ``(lower, upper]`` bins (VLM_calibrate), conf 0 in the first bin;
    ``closed="left"``: ``[lower, upper)`` bins (DAC / torchmetrics), conf 1.0 in the last bin. Edges are
    ``np.linspace(0, 1, n_bins + 1)`` as in the reference code, so e.g. the 10-bin edge "0.6" is
    0.6000000000000001 and a confidence of 0.6 falls below it under either closure.
    """
    n_bins = _check_bins(n_bins)
    conf, correct = confidence_and_correct(probs, labels, from_logits=from_logits)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = _bin_index(conf, edges, closed)
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / counts
    return {"edges": edges, "counts": counts, "confidence": mean_conf, "accuracy": acc}


def _weighted_gaps(bins: dict) -> tuple[np.ndarray, np.ndarray]:
    nonempty = bins["counts"] > 0
    gaps = np.abs(bins["accuracy"][nonempty] - bins["confidence"][nonempty])
    weights = bins["counts"][nonempty] / bins["counts"].sum()
    return gaps, weights


def ece(probs, labels, n_bins: int = 15, *, from_logits: bool = False, closed: str = "right") -> float:
    """Expected calibration error ``sum_b (n_b/N) |acc_b - conf_b|`` with equal-width bins, as a fraction.

    Default: 15 ``(lower, upper]`` bins (Klaus-Tu/VLM_calibrate ``_ECELoss``, Tu et al.). DAC/DOR report
    ``n_bins=10`` (docs/protocols.md §0.4; their ``[lower, upper)`` binning is ``closed="left"``, except that DAC drops
    conf == 1.0 from the bin means, which we do not). Multiply by 100 for the papers' tables.
    """
    gaps, weights = _weighted_gaps(reliability_bins(probs, labels, n_bins, from_logits=from_logits, closed=closed))
    return float(np.sum(gaps * weights))


def mce(probs, labels, n_bins: int = 15, *, weighted: bool = False, from_logits: bool = False,
        closed: str = "right") -> float:
    """Maximum calibration error over non-empty equal-width bins.

    ``weighted=False``: textbook ``max_b |acc_b - conf_b|`` (= torchmetrics ``norm="max"``).
    ``weighted=True``: the DAC code quirk ``max_b (n_b/N)|acc_b - conf_b|`` (CLIP_Calibration
    ``tools/metrics.py::MCE``, docs/protocols.md §0.4; use with ``n_bins=10, closed="left"`` to match it).
    """
    gaps, weights = _weighted_gaps(reliability_bins(probs, labels, n_bins, from_logits=from_logits, closed=closed))
    return float(np.max(gaps * weights if weighted else gaps))


def _quantile_bin_index(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass bins as sklearn ``KBinsDiscretizer(strategy='quantile')`` with linear-interpolated quantiles."""
    edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    edges = edges[np.ediff1d(edges, to_begin=np.inf) > 1e-8]  # sklearn drops (near-)zero-width bins
    return np.searchsorted(edges[1:-1], x, side="right")


def adaptive_ece(probs, labels, n_bins: int = 15, *, from_logits: bool = False) -> float:
    """Adaptive ECE (ACE): ECE over equal-mass confidence bins (DAC ``AdaptiveECE``, docs/protocols.md §0.4; DAC uses 10).

    Bin edges are the linear-interpolated quantiles of the confidences; bins are ``[lower, upper)`` with the
    maximum in the last bin, and bins narrower than 1e-8 are merged away, as sklearn's ``KBinsDiscretizer``.
    """
    n_bins = _check_bins(n_bins)
    conf, correct = confidence_and_correct(probs, labels, from_logits=from_logits)
    idx = _quantile_bin_index(conf, n_bins)
    counts = np.bincount(idx)
    nz = counts > 0
    gap = np.abs(np.bincount(idx, weights=correct)[nz] - np.bincount(idx, weights=conf)[nz])
    return float(gap.sum() / len(conf))  # sum_b (n_b/N)|acc_b - conf_b| = sum_b |sum correct - sum conf| / N


def piece(probs, labels, proximity, n_bins: int = 10, n_proximity_bins: int = 10, *,
          from_logits: bool = False) -> float:
    """Proximity-informed ECE (DAC ``PIECE``, docs/protocols.md §0.4): ECE over joint (proximity-quantile x conf) bins.

    ``proximity`` [N] (e.g. ``exp(-mean kNN distance)`` to validation features) is cut into equal-mass bins,
    confidence into equal-width ``[lower, upper)`` bins; returns ``sum_cells (n_c/N)|acc_c - conf_c|``.
    """
    n_bins, n_proximity_bins = _check_bins(n_bins), _check_bins(n_proximity_bins)
    conf, correct = confidence_and_correct(probs, labels, from_logits=from_logits)
    prox = as_numpy(proximity, "proximity", ndim=1)
    if len(prox) != len(conf):
        raise ValueError(f"proximity: length {len(prox)} does not match {len(conf)} predictions")
    cidx = _bin_index(conf, np.linspace(0.0, 1.0, n_bins + 1), "left")
    cell = _quantile_bin_index(prox, n_proximity_bins) * n_bins + cidx
    nz = np.bincount(cell) > 0
    gap = np.abs(np.bincount(cell, weights=correct)[nz] - np.bincount(cell, weights=conf)[nz])
    return float(gap.sum() / len(conf))


def nll(probs, labels, *, from_logits: bool = False, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood ``-(1/N) sum_i log p_{i, y_i}`` (docs/protocols.md §0.4), natural log.

    With ``from_logits=True`` an exact log-softmax is used (no clamping, as Lipsum-FT's validation). With
    probabilities, ``p_y`` is clamped to ``[eps, 1]`` before the log (Lipsum-FT ``src/metrics.py`` adds 1e-8
    instead; the difference is below 1e-8 per sample unless ``p_y`` is tiny).
    """
    if from_logits:
        lp = log_softmax(as_numpy(probs, "logits", ndim=2))
        y = _labels(labels, len(lp), n_classes=lp.shape[1])
        return float(-np.mean(lp[np.arange(len(lp)), y]))
    p = _probs(probs, False)
    y = _labels(labels, len(p), n_classes=p.shape[1])
    return float(-np.mean(np.log(np.clip(p[np.arange(len(p)), y], eps, 1.0))))


def brier(probs, labels, *, from_logits: bool = False) -> float:
    """Multi-class Brier score ``(1/N) sum_i sum_k (p_ik - 1[k = y_i])^2`` (docs/protocols.md §0.4); range [0, 2]."""
    p = _probs(probs, from_logits)
    y = _labels(labels, len(p), n_classes=p.shape[1])
    onehot = np.zeros_like(p)
    onehot[np.arange(len(p)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def confidence_gap(probs, labels, *, from_logits: bool = False) -> float:
    """Mean confidence minus accuracy, ``(1/N) sum_i (conf_i - 1[pred_i = y_i])``: > 0 overconfident, < 0
    underconfident (the signed one-bin ECE; Wang, Li & Wei's over/under-confidence of new/base classes,
    docs/protocols.md §2.1)."""
    conf, correct = confidence_and_correct(probs, labels, from_logits=from_logits)
    return float(np.mean(conf - correct))


def calibration_summary(probs, labels, *, from_logits: bool = False, n_bins: int = 10, closed: str = "left") -> dict:
    """Every calibration number of DOR's tables for one set (docs/protocols.md §0.4), as fractions:

    ``accuracy``, ``confidence`` (mean max probability), ``gap`` (:func:`confidence_gap`), ``ece`` and
    ``mce`` / ``mce_weighted`` (``n_bins`` equal-width bins, ``closed``; default 10 ``[lower, upper)`` bins, the
    DAC/DOR convention), ``ece15`` (15 ``(lower, upper]`` bins, Tu et al.), ``ace`` (``n_bins`` equal-mass
    bins), ``nll`` and ``brier``."""
    p = _probs(probs, from_logits)
    conf, correct = p.max(1), (p.argmax(1) == _labels(labels, len(p), n_classes=p.shape[1])).astype(np.float64)
    return {
        "accuracy": float(correct.mean()), "confidence": float(conf.mean()), "gap": float(np.mean(conf - correct)),
        "ece": ece(p, labels, n_bins, closed=closed), "ece15": ece(p, labels, 15, closed="right"),
        "ace": adaptive_ece(p, labels, n_bins), "mce": mce(p, labels, n_bins, closed=closed),
        "mce_weighted": mce(p, labels, n_bins, weighted=True, closed=closed),
        "nll": nll(probs, labels, from_logits=True) if from_logits else nll(p, labels), "brier": brier(p, labels),
    }


# ----------------------------------------------------------------------------------------------------------
# misc
# ----------------------------------------------------------------------------------------------------------
def harmonic_mean(a, b):
    """Harmonic mean ``2ab/(a+b)`` of base and new metrics (CoOp base-to-new "H", docs/protocols.md §0.5).

    Returns 0 where ``a + b == 0``; a float for scalar inputs, an array otherwise. Negative inputs raise.
    """
    x, y = as_numpy(a, "a"), as_numpy(b, "b")
    if np.any(x < 0) or np.any(y < 0):
        raise ValueError("harmonic_mean: inputs must be non-negative")
    x, y = np.broadcast_arrays(x, y)
    s = x + y
    out = np.where(s > 0, 2.0 * x * y / np.where(s > 0, s, 1.0), 0.0)
    return float(out) if out.ndim == 0 else out


def _l2n(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("cannot L2-normalise a zero feature vector")
    return x / norm


def _first_hit_rank(sims: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Rank (0-based) of the best-ranked positive per row; ties go to the lower column index."""
    masked = np.where(positive, sims, -np.inf)
    best = masked.max(1, keepdims=True)
    first_best = np.argmax(positive & (sims == best), axis=1)[:, None]
    cols = np.arange(sims.shape[1])[None, :]
    return (sims > best).sum(1) + ((sims == best) & (cols < first_best)).sum(1)


def recall_at_k(image_features, text_features, text_to_image, k: int | Sequence[int] = (1, 5, 10), *,
                normalize: bool = True, chunk: int = 1024) -> dict:
    """Zero-shot retrieval Recall@K in both directions (CLIP / COCO-Flickr protocol, docs/protocols.md §3.2 axis 4).

    ``text_to_image[j]`` is the index of the image caption ``j`` describes (an image may have several
    captions). image->text: hit if any of the image's captions is in its top-k texts; text->image: hit if the
    caption's image is in its top-k images. Similarity = dot product of (L2-normalised, if ``normalize``)
    features; ties rank the lower index first. Returns ``{"i2t@k": r, "t2i@k": r}`` for every k (fractions).
    """
    img = as_numpy(image_features, "image_features", ndim=2)
    txt = as_numpy(text_features, "text_features", ndim=2)
    if img.shape[1] != txt.shape[1]:
        raise ValueError(f"feature dims differ: image {img.shape[1]} vs text {txt.shape[1]}")
    t2i = _labels(text_to_image, len(txt), "text_to_image", n_classes=len(img))
    if np.bincount(t2i, minlength=len(img)).min() == 0:
        raise ValueError("text_to_image: every image needs at least one caption")
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or any(not isinstance(v, (int, np.integer)) or v < 1 for v in ks):
        raise ValueError(f"k must be positive integers, got {k!r}")
    if normalize:
        img, txt = _l2n(img), _l2n(txt)
    i2t_rank = np.concatenate([_first_hit_rank(img[s:s + chunk] @ txt.T,
                                               t2i[None, :] == np.arange(s, min(s + chunk, len(img)))[:, None])
                               for s in range(0, len(img), chunk)])
    t2i_rank = np.concatenate([_first_hit_rank(txt[s:s + chunk] @ img.T,
                                               t2i[s:s + chunk, None] == np.arange(len(img))[None, :])
                               for s in range(0, len(txt), chunk)])
    out = {f"i2t@{v}": float(np.mean(i2t_rank < v)) for v in ks}
    out.update({f"t2i@{v}": float(np.mean(t2i_rank < v)) for v in ks})
    return out


_AXES = ("logit", "probit", "linear")


def _axis_forward(p: np.ndarray, transform: str, clip: float) -> np.ndarray:
    if transform == "linear":
        return p
    p = np.clip(p, clip, 1.0 - clip)
    if transform == "logit":
        return np.log(p) - np.log1p(-p)
    from scipy.special import ndtri
    return ndtri(p)


def _axis_inverse(z: np.ndarray, transform: str) -> np.ndarray:
    if transform == "linear":
        return z
    if transform == "logit":
        return 1.0 / (1.0 + np.exp(-z))
    from scipy.special import ndtr
    return ndtr(z)


def effective_robustness(x_acc, y_acc, *, fit_x=None, fit_y=None, transform: str = "logit",
                         robust: bool = False, clip: float = 1e-6) -> dict:
    """Effective robustness: ``y - f^{-1}(a f(x) + b)`` with the line fitted on transformed accuracies.

    Taori et al. 2020 / Tu et al. (docs/protocols.md §3.2, axis 1). ``f`` is ``transform`` ("logit", "probit",
    "linear"); accuracies are fractions in [0, 1], clipped to ``[clip, 1 - clip]`` before ``f``. The line is
    least squares (``np.polyfit`` deg 1) or, with ``robust=True``, Theil-Sen (median pairwise slope, intercept
    ``median(y - slope x)``: ``scipy.stats.theilslopes(method="joint")``). It
    is fitted on ``(fit_x, fit_y)`` if given (e.g. ImageNet-trained baselines), else on ``(x_acc, y_acc)``.
    Returns ``dict(residuals, predicted, slope, intercept)``; residuals are in accuracy space.
    """
    if transform not in _AXES:
        raise ValueError(f"transform must be one of {_AXES}, got {transform!r}")
    x, y = as_numpy(x_acc, "x_acc", ndim=1), as_numpy(y_acc, "y_acc", ndim=1)
    fx = x if fit_x is None else as_numpy(fit_x, "fit_x", ndim=1)
    fy = y if fit_y is None else as_numpy(fit_y, "fit_y", ndim=1)
    if len(x) != len(y) or len(fx) != len(fy):
        raise ValueError("x and y accuracies must have the same length")
    if (fit_x is None) != (fit_y is None):
        raise ValueError("give both fit_x and fit_y, or neither")
    for v, n in ((x, "x_acc"), (y, "y_acc"), (fx, "fit_x"), (fy, "fit_y")):
        if v.min() < 0 or v.max() > 1:
            raise ValueError(f"{n}: accuracies must be fractions in [0, 1]")
    if len(fx) < 2 or np.ptp(fx) == 0:
        raise ValueError("need at least two distinct x accuracies to fit a line")
    tx, ty = _axis_forward(fx, transform, clip), _axis_forward(fy, transform, clip)
    if robust:
        from scipy.stats import theilslopes
        slope, intercept = theilslopes(ty, tx, method="joint")[:2]
    else:
        slope, intercept = np.polyfit(tx, ty, 1)
    pred = _axis_inverse(slope * _axis_forward(x, transform, clip) + intercept, transform)
    return {"residuals": y - pred, "predicted": pred, "slope": float(slope), "intercept": float(intercept)}


def shape_bias(pred, shape_labels, texture_labels) -> float:
    """Shape bias on cue-conflict stimuli (Geirhos et al. 2019; docs/protocols.md §3.2 axis 1b).

    ``#(pred == shape) / (#(pred == shape) + #(pred == texture))`` over images whose shape and texture labels
    differ (images with equal labels are excluded). ``pred`` is [N] class ids or [N, C] scores (argmax). Returns
    NaN when no kept image is classified as either its shape or its texture class.
    """
    p = as_numpy(pred, "pred", dtype=None)
    if p.ndim == 2:
        p = as_numpy(p, "pred").argmax(1)
    p = _labels(p, len(p), "pred")
    s = _labels(shape_labels, len(p), "shape_labels")
    t = _labels(texture_labels, len(p), "texture_labels")
    keep = s != t
    n_shape = int(np.sum(p[keep] == s[keep]))
    n_texture = int(np.sum(p[keep] == t[keep]))
    total = n_shape + n_texture
    return float(n_shape / total) if total else math.nan
