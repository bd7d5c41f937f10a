"""Tests for clipstudy.scores. Each scorer is checked against a brute-force reference written here; the
higher = more ID convention, torch input and shapes are checked for every registered scorer (parametrised over
``SCORERS.list()``, so a new scorer fails ``test_every_scorer_has_a_reference`` until it gets one)."""
import math

import numpy as np
import pytest
import torch

from clipstudy import scores as S
from clipstudy.metrics import auroc
from clipstudy.registry import UnknownNameError


# ----------------------------------------------------------------------------------------------------------
# brute-force references (loops over samples, math module), one per registered scorer
# ----------------------------------------------------------------------------------------------------------
def _softmax_row(row, T):
    m = max(row)
    e = [math.exp((v - m) / T) for v in row]
    return [v / sum(e) for v in e]


def _ref_mcm(s, T=1.0):
    return np.array([max(_softmax_row(r, T)) for r in s])


def _ref_msp(s, logit_scale=100.0):
    return np.array([max(_softmax_row([v * logit_scale for v in r], 1.0)) for r in s])


def _ref_max_logit(s):
    return np.array([max(r) for r in s])


def _ref_energy_cos(s, T=1.0):
    """The MCM code's energy on raw cosines: T * log sum_k exp(s_k / T), shifted by the row max for range."""
    out = []
    for r in s:
        m = max(v / T for v in r)
        out.append(T * (m + math.log(sum(math.exp(v / T - m) for v in r))))
    return np.array(out)


def _ref_entropy_cos(s, T=1.0):
    return np.array([sum(p * math.log(p) for p in _softmax_row(r, T) if p > 0) for r in s])


def _ref_variance_cos(s, T=1.0):
    out = []
    for r in s:
        p = _softmax_row(r, T)
        mu = sum(p) / len(p)
        out.append(sum((v - mu) ** 2 for v in p) / len(p))
    return np.array(out)


def _logits(s, logit_scale):
    return [[logit_scale * v for v in r] for r in s]


def _ref_energy(s, logit_scale=100.0, T=1.0):
    return _ref_energy_cos(_logits(s, logit_scale), T)


def _ref_entropy(s, logit_scale=100.0, T=1.0):
    return _ref_entropy_cos(_logits(s, logit_scale), T)


def _ref_variance(s, logit_scale=100.0, T=1.0):
    return _ref_variance_cos(_logits(s, logit_scale), T)


def _ref_gl_mcm(g, loc, T=1.0, lambda_local=1.0):
    local = [max(max(_softmax_row(cell, T)) for cell in img) for img in loc]
    return _ref_mcm(g, T) + lambda_local * np.array(local)


def _ref_mahalanobis(fit_z, fit_y, z):
    """Lee et al. with the within-class covariance and an explicit inverse (full-rank case)."""
    nrm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    fit_z, z = nrm(fit_z), nrm(z)
    classes = sorted(set(fit_y.tolist()))
    mus = {c: fit_z[fit_y == c].mean(0) for c in classes}
    cov = sum(np.outer(x - mus[c], x - mus[c]) for x, c in zip(fit_z, fit_y)) / len(fit_z)
    P = np.linalg.inv(cov)
    return np.array([max(-0.5 * (x - mus[c]) @ P @ (x - mus[c]) for c in classes) for x in z])


def _ref_knn(fit_z, fit_y, z, k=1):
    nrm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    fit_z, z = nrm(fit_z), nrm(z)
    return np.array([-sorted(np.linalg.norm(fit_z - x, axis=1))[k - 1] for x in z])


SIM_REFS = {"mcm": _ref_mcm, "msp": _ref_msp, "max_logit": _ref_max_logit, "energy": _ref_energy,
            "entropy": _ref_entropy, "variance": _ref_variance, "energy_cos": _ref_energy_cos,
            "entropy_cos": _ref_entropy_cos, "variance_cos": _ref_variance_cos}
LOCAL_REFS = {"gl_mcm": _ref_gl_mcm}
FEATURE_REFS = {"mahalanobis": _ref_mahalanobis, "knn": _ref_knn}
PARAMS = {"mcm": [{}, {"T": 0.05}], "msp": [{}, {"logit_scale": 20.0}], "max_logit": [{}],
          "energy": [{}, {"T": 0.1}, {"logit_scale": 22.7}, {"logit_scale": 10.0, "T": 2.0}],
          "entropy": [{}, {"T": 2.0}, {"logit_scale": 20.0}], "variance": [{}, {"logit_scale": 20.0, "T": 0.5}],
          "energy_cos": [{}, {"T": 0.1}], "entropy_cos": [{}, {"T": 0.02}], "variance_cos": [{}, {"T": 0.5}],
          "gl_mcm": [{}, {"T": 0.1, "lambda_local": 0.5}], "mahalanobis": [{}], "knn": [{}, {"k": 3}]}


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------
def _id_ood_sims(seed, n=200, k=10):
    """ID: one class clearly more similar (peaked); OOD: flat similarities. Raw cosines around 0.2."""
    rng = np.random.default_rng(seed)
    id_s = 0.2 + 0.01 * rng.normal(size=(n, k))
    id_s[np.arange(n), rng.integers(0, k, n)] += 0.12
    ood_s = 0.2 + 0.01 * rng.normal(size=(n, k))
    return id_s, ood_s


def _id_ood_local(seed, n=100, hw=9, k=10):
    rng = np.random.default_rng(seed)
    id_g, ood_g = _id_ood_sims(seed, n, k)
    id_l = 0.2 + 0.01 * rng.normal(size=(n, hw, k))
    id_l[np.arange(n), rng.integers(0, hw, n), rng.integers(0, k, n)] += 0.12
    return (id_g, id_l), (ood_g, 0.2 + 0.01 * rng.normal(size=(n, hw, k)))


def _id_ood_features(seed, n_cls=5, shots=16, d=16, n=100):
    """ID: tight clusters around class centres; OOD: points around other random directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_cls, d))
    fit_y = np.repeat(np.arange(n_cls), shots)
    fit_z = centres[fit_y] + 0.15 * rng.normal(size=(len(fit_y), d))
    id_y = rng.integers(0, n_cls, n)
    id_z = centres[id_y] + 0.15 * rng.normal(size=(n, d))
    ood_z = rng.normal(size=(n, d))
    return fit_z, fit_y, id_z, ood_z


def _run(name, params, sims=None, local=None, feats=None):
    needs = S.SCORERS.meta(name)["needs"]
    if needs == "similarities":
        return S.score(name, sims=sims, **params)
    if needs == "local":
        return S.score(name, sims=local[0], local_sims=local[1], **params)
    fit_z, fit_y, z = feats
    return S.score(name, features=z, fit_features=fit_z, fit_labels=fit_y, **params)


# ----------------------------------------------------------------------------------------------------------
# tests over every registered scorer
# ----------------------------------------------------------------------------------------------------------
def test_higher_is_more_id_constant():
    assert S.HIGHER_IS_MORE_ID is True


@pytest.mark.parametrize("name", S.SCORERS.list())
def test_every_scorer_has_a_reference(name):
    needs = S.SCORERS.meta(name).get("needs")
    assert needs in S.NEEDS
    assert name in {**SIM_REFS, **LOCAL_REFS, **FEATURE_REFS}, f"add a brute-force reference for {name!r}"
    assert name in PARAMS


@pytest.mark.parametrize("name", S.SCORERS.list())
def test_scorer_matches_brute_force(name):
    rng = np.random.default_rng(0)
    sims = rng.uniform(-0.1, 0.4, size=(25, 7))
    local = (sims, rng.uniform(-0.1, 0.4, size=(25, 4, 7)))
    fit_z, fit_y, id_z, _ = _id_ood_features(0, d=8)
    for params in PARAMS[name]:
        got = _run(name, params, sims=sims, local=local, feats=(fit_z, fit_y, id_z))
        assert isinstance(got, np.ndarray) and got.shape == (len(id_z) if name in FEATURE_REFS else 25,)
        if name in SIM_REFS:
            ref = SIM_REFS[name](sims, **params)
        elif name in LOCAL_REFS:
            ref = LOCAL_REFS[name](*local, **params)
        else:
            ref = FEATURE_REFS[name](fit_z, fit_y, id_z, **params)
        np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", S.SCORERS.list())
def test_scorer_higher_is_more_id(name):
    id_s, ood_s = _id_ood_sims(1)
    id_l, ood_l = _id_ood_local(1)
    fit_z, fit_y, id_z, ood_z = _id_ood_features(1)
    for params in PARAMS[name]:
        a = _run(name, params, sims=id_s, local=id_l, feats=(fit_z, fit_y, id_z))
        b = _run(name, params, sims=ood_s, local=ood_l, feats=(fit_z, fit_y, ood_z))
        assert auroc(a, b) > 0.9, (name, params, auroc(a, b))


@pytest.mark.parametrize("name", S.SCORERS.list())
def test_scorer_accepts_torch(name):
    rng = np.random.default_rng(2)
    sims = rng.uniform(0, 0.4, size=(10, 5))
    local = (sims, rng.uniform(0, 0.4, size=(10, 3, 5)))
    fit_z, fit_y, id_z, _ = _id_ood_features(2, d=8, n=10)
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    got = _run(name, {}, sims=t(sims), local=(t(local[0]), t(local[1])),
               feats=(t(fit_z), torch.tensor(fit_y), t(id_z)))
    ref = _run(name, {}, sims=sims, local=local, feats=(fit_z, fit_y, id_z))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in S.SCORERS.list() if S.SCORERS.meta(n)["needs"] == "similarities"])
def test_similarity_scorers_invariant_to_class_permutation(name):
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 0.4, size=(30, 9))
    perm = rng.permutation(9)
    np.testing.assert_allclose(S.score(name, sims=s), S.score(name, sims=s[:, perm]), rtol=1e-12)


# ----------------------------------------------------------------------------------------------------------
# specific properties
# ----------------------------------------------------------------------------------------------------------
def test_msp_is_mcm_at_inverse_logit_scale():
    s = np.random.default_rng(4).uniform(0.1, 0.35, size=(50, 20))
    np.testing.assert_allclose(S.msp(s), S.mcm(s, T=1 / 100), rtol=1e-12)
    np.testing.assert_allclose(S.msp(s, logit_scale=50.0), S.mcm(s, T=0.02), rtol=1e-12)


def test_max_logit_is_monotone():
    s = np.random.default_rng(5).uniform(0, 0.4, size=(40, 6))
    bumped = s.copy()
    bumped[np.arange(40), s.argmax(1)] += 0.05
    assert np.all(S.max_logit(bumped) > S.max_logit(s))
    assert np.all(S.max_logit(s + 0.1) == pytest.approx(S.max_logit(s) + 0.1))


def test_energy_small_T_approaches_max():
    s = np.random.default_rng(6).uniform(0, 0.4, size=(40, 6))
    gaps = [np.max(np.abs(S.energy_cos(s, T=T) - s.max(1))) for T in (1.0, 0.1, 0.01, 1e-4)]
    assert gaps[-1] < 1e-3 and all(a >= b for a, b in zip(gaps, gaps[1:]))
    assert np.all(S.energy_cos(s, T=1e-4) >= s.max(1))  # T*logsumexp(s/T) >= max s
    # on logits: T * logsumexp(a s / T) -> a * max s
    assert np.max(np.abs(S.energy(s, logit_scale=20.0, T=1e-3) - 20.0 * s.max(1))) < 1e-2


# ----------------------------------------------------------------------------------------------------------
# energy, entropy and variance: on the model's logits by default, on cosines as the *_cos variants
# ----------------------------------------------------------------------------------------------------------
SCALES = (1.0, 10.0, 22.6712, 100.0)


def _random_sims(seed, n=60, k=13):
    return np.random.default_rng(seed).uniform(-0.2, 0.45, size=(n, k))


def test_logsumexp_helper_matches_fsum_and_keeps_float64():
    x = np.random.default_rng(22).normal(size=(9, 6)) * 50 + 800.0  # exp(800) overflows: needs the max shift
    ref = [max(r) + math.log(math.fsum(math.exp(v - max(r)) for v in r)) for r in x]
    out = S._logsumexp(x)
    assert out.shape == (9,) and out.dtype == np.float64
    np.testing.assert_allclose(out, ref, rtol=1e-14)
    np.testing.assert_allclose(S._logsumexp(np.zeros((2, 4))), [math.log(4)] * 2, rtol=1e-15)


@pytest.mark.parametrize("a", SCALES)
@pytest.mark.parametrize("T", (1.0, 0.5, 3.0))
def test_energy_is_scaled_logsumexp_of_logits(a, T):
    from scipy.special import logsumexp

    s = _random_sims(20)
    np.testing.assert_allclose(S.energy(s, logit_scale=a, T=T), T * logsumexp(a * s / T, axis=1), rtol=1e-12)
    # energy on logits = a * (energy on cosines at T / a): same ranking, so the same AUROC
    np.testing.assert_allclose(S.energy(s, logit_scale=a, T=T), a * S.energy_cos(s, T=T / a), rtol=1e-12)


def test_energy_default_scale_is_clip_100_and_differs_from_cosines():
    from scipy.special import logsumexp

    s = _random_sims(21)
    np.testing.assert_allclose(S.energy(s), logsumexp(100.0 * s, axis=1), rtol=1e-12)
    assert not np.allclose(S.energy(s), S.energy_cos(s))
    assert not np.allclose(S.energy(s, logit_scale=10.0), S.energy(s, logit_scale=100.0))


def test_cosine_variants_are_the_mcm_code_formulas():
    """``*_cos`` = MCM's ``get_ood_scores_clip`` at T = 1 (negated): logsumexp, scipy entropy and np.var of
    the softmax of the raw cosines."""
    from scipy.special import logsumexp, softmax
    from scipy.stats import entropy

    s = _random_sims(22)
    for T in (1.0, 0.1):
        p = softmax(s / T, axis=1)
        np.testing.assert_allclose(S.energy_cos(s, T=T), T * logsumexp(s / T, axis=1), rtol=1e-12)
        np.testing.assert_allclose(S.entropy_cos(s, T=T), -entropy(p, axis=1), rtol=1e-10)
        np.testing.assert_allclose(S.variance_cos(s, T=T), np.var(p, axis=1), rtol=1e-10)
    np.testing.assert_allclose(S.energy_cos(s), logsumexp(s, axis=1), rtol=1e-12)  # T = 1 by default


@pytest.mark.parametrize("a", SCALES)
def test_entropy_and_variance_are_on_the_softmax_of_logits(a):
    import statistics

    from scipy.special import softmax
    from scipy.stats import entropy

    s = _random_sims(23)
    p = softmax(a * s, axis=1)
    np.testing.assert_allclose(S.entropy(s, logit_scale=a), -entropy(p, axis=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(S.variance(s, logit_scale=a), [statistics.pvariance(r) for r in p.tolist()],
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(S.entropy(s, logit_scale=a), S.entropy_cos(s, T=1 / a), rtol=1e-12, atol=1e-15)


def test_needs_scale_metadata():
    assert {n for n in S.SCORERS if S.needs_scale(n)} == {"msp", "energy", "entropy", "variance"}
    for n in S.SCORERS:
        assert S.needs_scale(n) == bool(S.SCORERS.meta(n).get("needs_scale", False))


def test_score_passes_logit_scale_to_scorers_that_need_it():
    from scipy.special import logsumexp

    s = _random_sims(24)
    np.testing.assert_allclose(S.score("energy", sims=s, logit_scale=7.0), logsumexp(7.0 * s, axis=1), rtol=1e-12)
    np.testing.assert_allclose(S.score("energy", sims=s), S.energy(s))  # None: the scorer's default (100)
    np.testing.assert_allclose(S.score("msp", sims=s, logit_scale=20.0), S.mcm(s, T=0.05), rtol=1e-12)
    np.testing.assert_allclose(S.score("entropy", sims=s, logit_scale=5.0, T=2.0), S.entropy(s, 5.0, T=2.0))
    # scorers without the metadata ignore it (they would raise TypeError if it reached them)
    np.testing.assert_array_equal(S.score("mcm", sims=s, logit_scale=7.0), S.mcm(s))
    np.testing.assert_array_equal(S.score("energy_cos", sims=s, logit_scale=7.0), S.energy_cos(s))
    np.testing.assert_array_equal(S.score("max_logit", sims=s, logit_scale=7.0), S.max_logit(s))
    loc = np.random.default_rng(25).uniform(0, 0.4, size=(len(s), 4, s.shape[1]))
    np.testing.assert_array_equal(S.score("gl_mcm", sims=s, local_sims=loc, logit_scale=7.0), S.gl_mcm(s, loc))
    fit_z, fit_y, id_z, _ = _id_ood_features(26, d=8)
    np.testing.assert_array_equal(S.score("knn", features=id_z, fit_features=fit_z, logit_scale=7.0),
                                  S.KNN().fit(fit_z)(id_z))


def test_score_forwards_logit_scale_by_metadata_only(monkeypatch):
    seen = {}

    def spy(name):
        def f(s, **kw):
            seen[name] = kw
            return np.zeros(len(s))
        return f

    for name, meta in (("spy_plain", {"needs": "similarities"}),
                       ("spy_scaled", {"needs": "similarities", "needs_scale": True})):
        monkeypatch.setitem(S.SCORERS._items, name, spy(name))
        monkeypatch.setitem(S.SCORERS._meta, name, meta)
    s = _random_sims(27, n=3)
    S.score("spy_plain", sims=s, logit_scale=3.0, T=0.5)
    S.score("spy_scaled", sims=s, logit_scale=3.0, T=0.5)
    assert seen == {"spy_plain": {"T": 0.5}, "spy_scaled": {"T": 0.5, "logit_scale": 3.0}}
    S.score("spy_scaled", sims=s)
    assert seen["spy_scaled"] == {}


def test_logits_change_the_energy_auroc():
    """At T = 1 on cosines in a narrow range, logsumexp_k s_k ~ log K + mean_k s_k: energy_cos follows the mean
    cosine, so flat OOD rows with a slightly higher mean look more ID than peaked ID rows. On the logits
    (x100) energy follows the peak and separates them; its ranking is that of energy_cos at T = 1 / scale."""
    id_s, ood_s = _id_ood_sims(28, k=30)
    ood_s = ood_s + 0.012  # OOD: flat but slightly higher on average
    cos = auroc(S.energy_cos(id_s), S.energy_cos(ood_s))
    logit = auroc(S.energy(id_s, logit_scale=100.0), S.energy(ood_s, logit_scale=100.0))
    assert cos < 0.5 < 0.9 < logit
    assert logit == pytest.approx(auroc(S.energy_cos(id_s, T=0.01), S.energy_cos(ood_s, T=0.01)), abs=1e-12)


def test_mcm_near_uniform_at_T1():
    s = np.random.default_rng(7).uniform(0.15, 0.35, size=(10, 100))
    assert np.all(np.abs(S.mcm(s) - 1 / 100) < 3e-3)  # docs/protocols.md §1.2: MCM(T=1) sits near 1/K


def test_mahalanobis_few_shot_and_options():
    fit_z, fit_y, id_z, ood_z = _id_ood_features(8, n_cls=10, shots=2, d=64)  # n - K = 10 < D = 64
    auto = S.Mahalanobis().fit(fit_z, fit_y)
    assert np.all(np.isfinite(auto(id_z))) and auroc(auto(id_z), auto(ood_z)) > 0.9
    lw = S.Mahalanobis(shrinkage="ledoit_wolf").fit(fit_z, fit_y)
    np.testing.assert_allclose(auto(id_z), lw(id_z))
    # explicit shrinkage a: inv((1-a) S + a tr(S)/D I) with the within-class covariance
    nrm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    zf = nrm(fit_z)
    mus = np.stack([zf[fit_y == c].mean(0) for c in range(10)])
    C = (zf - mus[fit_y]).T @ (zf - mus[fit_y]) / len(zf)
    P = np.linalg.inv(0.7 * C + 0.3 * np.trace(C) / 64 * np.eye(64))
    zt = nrm(id_z)
    ref = np.max([[-0.5 * (x - m) @ P @ (x - m) for m in mus] for x in zt], axis=1)
    np.testing.assert_allclose(S.Mahalanobis(shrinkage=0.3).fit(fit_z, fit_y)(id_z), ref, rtol=1e-8)
    # covariance="total": centred on the global mean (MCM's torch.cov), full rank case
    fz, fy, iz, _ = _id_ood_features(9)
    zf = nrm(fz)
    Ct = np.cov(zf.T, bias=True)
    mus = np.stack([zf[fy == c].mean(0) for c in range(5)])
    ref = np.max([[-0.5 * (x - m) @ np.linalg.inv(Ct) @ (x - m) for m in mus] for x in nrm(iz)], axis=1)
    np.testing.assert_allclose(S.Mahalanobis(covariance="total").fit(fz, fy)(iz), ref, rtol=1e-7)


def test_knn_chunking_and_k():
    fit_z, fit_y, id_z, _ = _id_ood_features(10, d=8)
    a = S.KNN(k=5, chunk=7).fit(fit_z)(id_z)
    np.testing.assert_allclose(a, _ref_knn(fit_z, fit_y, id_z, k=5), rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError):
        S.KNN(k=1000).fit(fit_z)


def test_unknown_scorer_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        S.score("mcmm", sims=np.zeros((2, 2)))
    for n in S.SCORERS.list():
        assert n in str(e.value)


@pytest.mark.parametrize("call", [
    lambda: S.score("mcm"),
    lambda: S.score("gl_mcm", sims=np.zeros((2, 3))),
    lambda: S.score("knn", features=np.ones((2, 3))),
    lambda: S.score("mahalanobis", features=np.ones((2, 3)), fit_features=np.ones((2, 3))),
])
def test_score_missing_inputs_raise(call):
    with pytest.raises(ValueError, match="requires"):
        call()


@pytest.mark.parametrize("call", [
    lambda: S.mcm(np.zeros(3)),
    lambda: S.mcm(np.zeros((0, 3))),
    lambda: S.mcm(np.array([[np.nan, 0.1]])),
    lambda: S.mcm(np.zeros((2, 3)), T=0),
    lambda: S.energy(np.zeros((2, 3)), T=-1),
    lambda: S.energy(np.zeros((2, 3)), logit_scale=0),
    lambda: S.entropy(np.zeros((2, 3)), logit_scale=-1.0),
    lambda: S.variance(np.zeros((2, 3)), logit_scale=0.0),
    lambda: S.energy_cos(np.zeros((2, 3)), T=0),
    lambda: S.gl_mcm(np.zeros((2, 3)), np.zeros((2, 4, 5))),
    lambda: S.Mahalanobis().fit(np.ones((3, 2)), np.array([0, 1])),
    lambda: S.Mahalanobis(shrinkage=2.0),
    lambda: S.KNN(k=0),
    lambda: S.KNN().fit(np.eye(3))(np.eye(4)),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()


def test_unfitted_feature_scorers_raise():
    for cls in (S.Mahalanobis, S.KNN):
        with pytest.raises(RuntimeError):
            cls()(np.ones((2, 3)))
