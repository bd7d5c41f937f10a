"""OOD scores for CLIP-style classifiers. **Every scorer returns higher = more in-distribution (ID).**

That single convention (``HIGHER_IS_MORE_ID = True``) is the one of the MCM evaluation code after its final
negation (``deeplearning-wisc/MCM`` ``utils/detection_util.py``, docs/protocols.md §0.3, §1.2), so the outputs plug
straight into :func:`clipstudy.metrics.ood_metrics` (ID positive).

Registry ``SCORERS``; each entry carries ``needs`` metadata saying what it consumes:

* ``needs="similarities"``: a function ``f(s, **params) -> [N]`` on raw cosine similarities ``s`` [N, K]
  (``z @ W.T`` of L2-normalised features, **no** x100 logit scale): ``mcm``, ``msp``, ``max_logit``,
  ``energy``, ``entropy``, ``variance`` and the cosine variants ``energy_cos``, ``entropy_cos``,
  ``variance_cos``. Those registered with ``needs_scale=True`` (``msp``, ``energy``, ``entropy``,
  ``variance``) work on the model's logits ``logit_scale * s`` and take a ``logit_scale`` parameter (default
  100, CLIP's); callers pass the model's own scale, read from ``SCORERS.meta(name).get("needs_scale")``.
* ``needs="local"``: ``f(global_sims [N, K], local_sims [N, HW, K], **params)``: ``gl_mcm``.
* ``needs="features"``: a class ``C(**params)`` with ``.fit(features, labels)`` and ``__call__(features)``
  on image features [N, D]: ``mahalanobis`` (``needs_labels=True``), ``knn`` (``needs_labels=False``).

:func:`score` dispatches on that metadata. ``SCORERS.meta(name)["needs"]`` tells callers which inputs to build;
``needs_scale`` whether the scorer takes the model's ``logit_scale``.
"""
from __future__ import annotations

import numpy as np

from .metrics import as_numpy, log_softmax
from .registry import Registry

__all__ = ["HIGHER_IS_MORE_ID", "SCORERS", "NEEDS", "mcm", "msp", "max_logit", "energy", "entropy", "variance",
           "energy_cos", "entropy_cos", "variance_cos", "gl_mcm", "Mahalanobis", "KNN", "needs_scale", "score"]

HIGHER_IS_MORE_ID = True
NEEDS = ("similarities", "local", "features")

SCORERS = Registry("scorer")


def _sims(s, name: str = "sims") -> np.ndarray:
    return as_numpy(s, name, ndim=2)


def _temperature(T) -> float:
    T = float(T)
    if not T > 0:
        raise ValueError(f"temperature T must be > 0, got {T}")
    return T


@SCORERS.register("mcm", needs="similarities")
def mcm(s, T: float = 1.0) -> np.ndarray:
    """MCM: ``max_k softmax(s/T)_k`` on raw cosines, T = 1 by default (MCM code, docs/protocols.md §1.2)."""
    return np.exp(log_softmax(_sims(s) / _temperature(T)).max(1))


def _scale(logit_scale) -> float:
    a = float(logit_scale)
    if not a > 0:
        raise ValueError(f"logit_scale must be > 0, got {logit_scale}")
    return a


@SCORERS.register("msp", needs="similarities", needs_scale=True)
def msp(s, logit_scale: float = 100.0) -> np.ndarray:
    """MSP of CLIP's logits ``logit_scale * s`` = MCM at ``T = 1/logit_scale`` (docs/protocols.md §1.2; default 100)."""
    return mcm(s, T=1.0 / _scale(logit_scale))


@SCORERS.register("max_logit", needs="similarities")
def max_logit(s) -> np.ndarray:
    """Maximum cosine similarity ``max_k s_k`` ("MS" / max-logit on unscaled cosines; MCM code, docs/protocols.md §1.2)."""
    return _sims(s).max(1)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """Row-wise ``log sum_k exp(x_k)`` [N] of ``x`` [N, K]: ``scipy.special.logsumexp(x, axis=1)`` (max-shifted,
    the function MCM's ``get_ood_scores_clip`` calls for its ``energy`` score)."""
    from scipy.special import logsumexp
    return logsumexp(x, axis=1)


def _logits(s, logit_scale) -> np.ndarray:
    return _scale(logit_scale) * _sims(s)


@SCORERS.register("energy", needs="similarities", needs_scale=True)
def energy(s, logit_scale: float = 100.0, T: float = 1.0) -> np.ndarray:
    """Negative energy of the model's logits ``l = logit_scale * s``: ``T * logsumexp_k(l_k / T)``.

    Liu, Wang, Owens & Li, "Energy-based out-of-distribution detection" (NeurIPS 2020), Sec. 2: the free
    energy ``E(x; f) = -T log sum_k exp(f_k(x) / T)`` of a classifier's logits ``f``, T = 1; returned negated
    (higher = more ID). Callers pass the model's own scale (CLIP: 100). On cosines at T = 1, see
    :func:`energy_cos`; ``energy(s, a, T) = a * energy_cos(s, T / a)``.
    """
    T = _temperature(T)
    return T * _logsumexp(_logits(s, logit_scale) / T)


@SCORERS.register("energy_cos", needs="similarities")
def energy_cos(s, T: float = 1.0) -> np.ndarray:
    """Negative energy on raw cosines, ``T * logsumexp_k(s_k / T)``, T = 1: what the MCM reference code
    computes (``deeplearning-wisc/MCM``, ``utils/detection_util.py::get_ood_scores_clip``, score ``energy``:
    ``-T * logsumexp(output / T)`` with ``output`` the cosine similarities and ``--T`` default 1; negated here)."""
    T = _temperature(T)
    return T * _logsumexp(_sims(s) / T)


def _neg_entropy(x: np.ndarray) -> np.ndarray:
    lp = log_softmax(x)
    return np.sum(np.exp(lp) * lp, axis=1)


@SCORERS.register("entropy", needs="similarities", needs_scale=True)
def entropy(s, logit_scale: float = 100.0, T: float = 1.0) -> np.ndarray:
    """Negative entropy of the model's predictive distribution ``p = softmax(logit_scale * s / T)``:
    ``-H(p) = sum_k p_k log p_k`` (natural log), T = 1 by default.

    The MCM code's ``entropy`` score (``deeplearning-wisc/MCM``) applied to the model's logits instead of its
    cosines, as energy is defined on logits (Liu et al., NeurIPS 2020, Sec. 2); higher = more ID. On cosines
    at T = 1, see :func:`entropy_cos`.
    """
    return _neg_entropy(_logits(s, logit_scale) / _temperature(T))


@SCORERS.register("entropy_cos", needs="similarities")
def entropy_cos(s, T: float = 1.0) -> np.ndarray:
    """Negative entropy ``-H(softmax(s/T))`` on raw cosines, T = 1: the MCM reference code's ``entropy`` score
    (``deeplearning-wisc/MCM``, ``utils/detection_util.py::get_ood_scores_clip``: ``scipy.stats.entropy`` of
    ``softmax(output / T)``; negated here so that higher = more ID)."""
    return _neg_entropy(_sims(s) / _temperature(T))


@SCORERS.register("variance", needs="similarities", needs_scale=True)
def variance(s, logit_scale: float = 100.0, T: float = 1.0) -> np.ndarray:
    """Population variance (ddof=0) over classes of the model's predictive distribution
    ``softmax(logit_scale * s / T)``, T = 1 by default: the MCM code's ``var`` score (``deeplearning-wisc/MCM``)
    applied to the model's logits instead of its cosines. On cosines at T = 1, see :func:`variance_cos`."""
    return np.var(np.exp(log_softmax(_logits(s, logit_scale) / _temperature(T))), axis=1)


@SCORERS.register("variance_cos", needs="similarities")
def variance_cos(s, T: float = 1.0) -> np.ndarray:
    """Population variance (ddof=0) of ``softmax(s/T)`` on raw cosines, T = 1: the MCM reference code's ``var``
    score (``deeplearning-wisc/MCM``, ``utils/detection_util.py::get_ood_scores_clip``: ``np.var(softmax(output
    / T))``, stored negated there and returned un-negated here, higher = more ID)."""
    return np.var(np.exp(log_softmax(_sims(s) / _temperature(T))), axis=1)


@SCORERS.register("gl_mcm", needs="local")
def gl_mcm(global_sims, local_sims, T: float = 1.0, lambda_local: float = 1.0) -> np.ndarray:
    """GL-MCM: ``MCM(global) + lambda_local * max_{hw,k} softmax_k(local/T)`` (AtsuMiyai/GL-MCM, docs/protocols.md §1.2).

    ``global_sims`` [N, K] and ``local_sims`` [N, HW, K] are raw cosines of normalised global / local
    features with the class text features; the softmax runs over classes at every location.
    """
    g = _sims(global_sims, "global_sims")
    loc = as_numpy(local_sims, "local_sims", ndim=3)
    if loc.shape[0] != g.shape[0] or loc.shape[2] != g.shape[1]:
        raise ValueError(f"local_sims shape {loc.shape} does not match global_sims {g.shape} as [N, HW, K]")
    T = _temperature(T)
    local = np.exp(log_softmax(loc / T, axis=-1).max(axis=(1, 2)))
    return mcm(g, T=T) + float(lambda_local) * local


def _l2n(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("cannot L2-normalise a zero feature vector")
    return x / norm


@SCORERS.register("mahalanobis", needs="features", needs_labels=True)
class Mahalanobis:
    """Mahalanobis score ``max_k -1/2 (z - mu_k)^T P (z - mu_k)`` (Lee et al. 2018; MCM ``maha``, docs/protocols.md §1.2).

    ``fit(features, labels)``: class means ``mu_k`` and one shared covariance: ``covariance="within"`` pools the
    class-centred features (Lee et al.); ``"total"`` centres on the global mean (what the MCM code's
    ``torch.cov(all_features)`` does). Precision ``P``: ``shrinkage=None`` -> Moore-Penrose pseudo-inverse
    (equals MCM's ``inv`` when the covariance is full rank); a float ``a`` in [0, 1] ->
    ``inv((1-a) S + a tr(S)/D I)``; ``"auto"`` (default) -> pseudo-inverse when ``n - K >= D`` (full rank
    possible), else Ledoit-Wolf shrinkage, because few-shot covariances (e.g. 16 shots x 10 classes, D = 512)
    are singular. ``normalize=True`` L2-normalises fit and test features first (MCM ``--normalize``; class
    means are not re-normalised here).
    """

    def __init__(self, shrinkage="auto", covariance: str = "within", normalize: bool = True):
        if covariance not in ("within", "total"):
            raise ValueError(f"covariance must be 'within' or 'total', got {covariance!r}")
        if not (shrinkage in (None, "auto", "ledoit_wolf") or (isinstance(shrinkage, (int, float))
                                                               and 0 <= shrinkage <= 1)):
            raise ValueError(f"shrinkage must be None, 'auto', 'ledoit_wolf' or a float in [0, 1], got {shrinkage!r}")
        self.shrinkage, self.covariance, self.normalize = shrinkage, covariance, normalize
        self.means = self.precision = None

    def fit(self, features, labels) -> "Mahalanobis":
        z = as_numpy(features, "fit_features", ndim=2)
        y = as_numpy(labels, "fit_labels", ndim=1, dtype=None)
        if len(y) != len(z) or y.dtype.kind not in "iu":
            raise ValueError("fit_labels: need one integer label per fit feature")
        z = _l2n(z) if self.normalize else z
        classes = np.unique(y)
        self.means = np.stack([z[y == c].mean(0) for c in classes])
        centred = z - (self.means[np.searchsorted(classes, y)] if self.covariance == "within" else z.mean(0))
        self.precision = self._precision(centred, len(classes))
        return self

    def _precision(self, centred: np.ndarray, n_classes: int) -> np.ndarray:
        n, d = centred.shape
        cov = centred.T @ centred / n
        a = self.shrinkage
        if a == "auto":
            a = None if n - n_classes >= d else "ledoit_wolf"
        if a is None:
            return np.linalg.pinv(cov, hermitian=True)
        if a == "ledoit_wolf":
            from sklearn.covariance import ledoit_wolf_shrinkage
            a = float(ledoit_wolf_shrinkage(centred, assume_centered=True))
        target = np.trace(cov) / d * np.eye(d)
        return np.linalg.pinv((1 - a) * cov + a * target, hermitian=True)

    def __call__(self, features) -> np.ndarray:
        if self.means is None:
            raise RuntimeError("Mahalanobis: call fit(features, labels) first")
        z = as_numpy(features, "features", ndim=2)
        if z.shape[1] != self.means.shape[1]:
            raise ValueError(f"features: dim {z.shape[1]} != fitted dim {self.means.shape[1]}")
        z = _l2n(z) if self.normalize else z
        zp = z @ self.precision
        m = (zp * z).sum(1)[:, None] - 2 * zp @ self.means.T + ((self.means @ self.precision) * self.means).sum(1)
        return (-0.5 * m).max(1)


@SCORERS.register("knn", needs="features", needs_labels=False)
class KNN:
    """KNN score: minus the distance to the k-th nearest L2-normalised fit feature (Sun et al., ICML 2022).

    Sun, Ming, Zhu & Li, "Out-of-distribution detection with deep nearest neighbors" (``deeplearning-wisc/
    knn-ood``): features are L2-normalised, score = ``-||z - z_(k)||_2``. Default ``k=1`` suits few-shot fit sets
    (Sun et al. use larger k with full training sets). Labels are accepted and ignored.
    """

    def __init__(self, k: int = 1, chunk: int = 4096):
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k, self.chunk, self.bank = int(k), int(chunk), None

    def fit(self, features, labels=None) -> "KNN":
        bank = _l2n(as_numpy(features, "fit_features", ndim=2))
        if len(bank) < self.k:
            raise ValueError(f"knn: k={self.k} exceeds the {len(bank)} fit features")
        self.bank = bank
        return self

    def __call__(self, features) -> np.ndarray:
        if self.bank is None:
            raise RuntimeError("KNN: call fit(features) first")
        z = _l2n(as_numpy(features, "features", ndim=2))
        if z.shape[1] != self.bank.shape[1]:
            raise ValueError(f"features: dim {z.shape[1]} != fitted dim {self.bank.shape[1]}")
        out = []
        for s in range(0, len(z), self.chunk):
            d2 = np.clip(2.0 - 2.0 * z[s:s + self.chunk] @ self.bank.T, 0.0, None)  # unit vectors
            out.append(-np.sqrt(np.partition(d2, self.k - 1, axis=1)[:, self.k - 1]))
        return np.concatenate(out)


def needs_scale(name: str) -> bool:
    """Whether scorer ``name`` works on the model's logits and takes its ``logit_scale`` (registry metadata)."""
    return bool(SCORERS.meta(name).get("needs_scale", False))


def score(name: str, sims=None, features=None, local_sims=None, fit_features=None, fit_labels=None,
          logit_scale=None, **params) -> np.ndarray:
    """Compute scorer ``name`` (higher = more ID), dispatching on its registry ``needs`` metadata.

    similarities: ``sims`` [N, K]; local: ``sims`` (global) and ``local_sims`` [N, HW, K]; features:
    ``features`` [N, D] plus ``fit_features`` (and ``fit_labels`` for mahalanobis). ``params`` go to the
    function, or to the class constructor for feature scorers. ``logit_scale`` (the model's) is passed only
    to scorers registered with ``needs_scale=True`` and ignored by the others, so a caller can pass it for
    every scorer; ``None`` leaves the scorer's default. Missing inputs raise ``ValueError``.
    """
    fn = SCORERS.get(name)
    needs = SCORERS.meta(name).get("needs")
    if logit_scale is not None and needs_scale(name):
        params["logit_scale"] = logit_scale

    def require(**kw):
        missing = [k for k, v in kw.items() if v is None]
        if missing:
            raise ValueError(f"scorer {name!r} (needs={needs!r}) requires {', '.join(missing)}")

    if needs == "similarities":
        require(sims=sims)
        return fn(sims, **params)
    if needs == "local":
        require(sims=sims, local_sims=local_sims)
        return fn(sims, local_sims, **params)
    if needs == "features":
        require(features=features, fit_features=fit_features)
        if SCORERS.meta(name).get("needs_labels", False):
            require(fit_labels=fit_labels)
        return fn(**params).fit(fit_features, fit_labels)(features)
    raise ValueError(f"scorer {name!r} has unknown needs={needs!r}; expected one of {NEEDS}")
