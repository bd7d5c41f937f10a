"""Tests for clipstudy.metrics: every metric is compared with an independent reference (sklearn, torchmetrics,
scipy, or a brute-force loop written here)."""
import math

import numpy as np
import pytest
import torch

from clipstudy import metrics as M


def _rand_probs(rng, n, k, sharp=3.0):
    z = rng.normal(size=(n, k)) * sharp
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


# ----------------------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------------------
def test_accuracy_matches_loop_and_accepts_torch():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(200, 7))
    y = rng.integers(0, 7, 200)
    ref = sum(int(max(range(7), key=lambda k: s[i, k]) == y[i]) for i in range(200)) / 200
    assert M.accuracy(s, y) == pytest.approx(ref)
    assert M.accuracy(torch.tensor(s, dtype=torch.float32), torch.tensor(y)) == pytest.approx(ref)
    assert M.accuracy(s.argmax(1), y) == pytest.approx(ref)  # 1-D predictions


def test_top_k_accuracy_matches_brute_force_with_ties():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, size=(300, 6)).astype(float)  # many ties
    y = rng.integers(0, 6, 300)
    for k in (1, 2, 3, 6):
        hits = 0
        for i in range(300):
            order = sorted(range(6), key=lambda c: (-s[i, c], c))  # ties -> lower index first
            hits += y[i] in order[:k]
        assert M.top_k_accuracy(s, y, k) == pytest.approx(hits / 300)
    assert M.top_k_accuracy(s, y, 1) == pytest.approx(M.accuracy(s, y))


def test_top_k_matches_sklearn_without_ties():
    from sklearn.metrics import top_k_accuracy_score
    rng = np.random.default_rng(2)
    s, y = rng.normal(size=(500, 10)), rng.integers(0, 10, 500)
    for k in (1, 3, 5):
        assert M.top_k_accuracy(s, y, k) == pytest.approx(top_k_accuracy_score(y, s, k=k, labels=range(10)))


@pytest.mark.parametrize("bad", [
    lambda: M.accuracy(np.zeros((3, 2)), [0, 1]),
    lambda: M.accuracy(np.zeros((0, 2)), []),
    lambda: M.accuracy(np.array([[np.nan, 1.0]]), [0]),
    lambda: M.accuracy(np.zeros((2, 2, 2)), [0, 1]),
    lambda: M.top_k_accuracy(np.zeros((2, 3)), [0, 1], k=0),
    lambda: M.top_k_accuracy(np.zeros((2, 3)), [0, 3], k=1),
])
def test_classification_bad_input(bad):
    with pytest.raises(ValueError):
        bad()


# ----------------------------------------------------------------------------------------------------------
# OOD metrics
# ----------------------------------------------------------------------------------------------------------
def _ood_data(seed, n_id=300, n_ood=200, ties=True):
    rng = np.random.default_rng(seed)
    i, o = rng.normal(1.0, 1.0, n_id), rng.normal(0.0, 1.0, n_ood)
    if ties:
        i, o = np.round(i, 1), np.round(o, 1)
    return i, o


def _fpr_brute(id_s, ood_s, tpr):
    """FPR at the threshold whose ID recall is closest to tpr (lowest such threshold on ties), scanning
    thresholds from high to low and stopping at full ID recall (MCM fpr_and_fdr_at_recall semantics)."""
    cands = []
    for t in sorted(set(np.r_[id_s, ood_s]), reverse=True):
        rec = np.sum(id_s >= t) / len(id_s)
        cands.append((abs(rec - tpr), t, np.sum(ood_s >= t) / len(ood_s)))
        if rec == 1.0:
            break
    return min(cands)[2]  # smallest distance, then lowest threshold


@pytest.mark.parametrize("seed", range(6))
def test_ood_metrics_match_sklearn_and_brute_force(seed):
    from sklearn.metrics import average_precision_score, roc_auc_score
    i, o = _ood_data(seed, ties=seed % 2 == 0)
    y = np.r_[np.ones(len(i)), np.zeros(len(o))]
    s = np.r_[i, o]
    assert M.auroc(i, o) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert M.aupr_in(i, o) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert M.aupr_out(i, o) == pytest.approx(average_precision_score(1 - y, -s), abs=1e-12)
    for tpr in (0.95, 0.9, 0.5):
        assert M.fpr_at_tpr(i, o, tpr) == pytest.approx(_fpr_brute(i, o, tpr), abs=1e-12)
    d = M.ood_metrics(torch.tensor(i), torch.tensor(o))
    assert set(d) == {"auroc", "aupr_in", "aupr_out", "fpr95"}
    assert d["fpr95"] == pytest.approx(_fpr_brute(i, o, 0.95))


def _auroc_pairs(id_s, ood_s):
    """Mann-Whitney by brute force: P(id > ood) + P(id == ood) / 2 over all ID/OOD pairs."""
    d = np.asarray(id_s, float)[:, None] - np.asarray(ood_s, float)[None, :]
    return float(np.mean(d > 0) + 0.5 * np.mean(d == 0))


def _ap_loop(pos, neg):
    """Step-wise AP sum_n (R_n - R_{n-1}) P_n, one step per distinct threshold, by an explicit loop."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    ap, prev_r = 0.0, 0.0
    for t in sorted(set(np.r_[pos, neg]), reverse=True):
        tp, fp = np.sum(pos >= t), np.sum(neg >= t)
        r = tp / len(pos)
        ap += (r - prev_r) * tp / (tp + fp)
        prev_r = r
    return ap


@pytest.mark.parametrize("seed", range(4))
def test_auroc_aupr_match_brute_force(seed):
    i, o = _ood_data(seed, n_id=120, n_ood=90, ties=seed % 2 == 0)
    assert M.auroc(i, o) == pytest.approx(_auroc_pairs(i, o), abs=1e-12)
    assert M.aupr_in(i, o) == pytest.approx(_ap_loop(i, o), abs=1e-12)
    assert M.aupr_out(i, o) == pytest.approx(_ap_loop(-o, -i), abs=1e-12)


def test_ood_metrics_degenerate_inputs_and_types():
    # constant scores: AUROC 0.5; AP = the positive-class prevalence (one threshold, recall 1)
    assert M.auroc(np.ones(4), np.ones(3)) == 0.5
    assert M.aupr_in(np.ones(4), np.ones(3)) == pytest.approx(4 / 7, abs=1e-15)
    assert M.aupr_out(np.ones(4), np.ones(3)) == pytest.approx(3 / 7, abs=1e-15)
    # one sample per side
    assert M.ood_metrics([1.0], [0.0]) == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95": 0.0}
    assert M.ood_metrics([1.0], [1.0]) == {"auroc": 0.5, "aupr_in": 0.5, "aupr_out": 0.5, "fpr95": 1.0}
    # python floats back for lists of ints, 2-D arrays (raveled) and half-precision torch tensors
    i16, o16 = torch.tensor([0.5, 1.0, 1.0, 2.0], dtype=torch.float16), torch.tensor([0.0, 1.0], dtype=torch.float16)
    for f in (M.auroc, M.aupr_in, M.aupr_out):
        assert type(f([1, 2, 3], [0, 2])) is float
        assert f(np.arange(6.0).reshape(2, 3), [[0.5], [2.5]]) == f(np.arange(6.0), [0.5, 2.5])
        assert f(i16, o16) == f(i16.double().numpy(), o16.double().numpy())
    assert M.auroc(i16, o16) == pytest.approx(_auroc_pairs([0.5, 1, 1, 2], [0, 1]), abs=1e-15)


def test_ood_single_class_input_raises():
    # an empty side (single-class input) is rejected before sklearn sees it, with clipstudy's message
    with pytest.raises(ValueError, match="ood_scores: empty array"):
        M.auroc([1.0, 2.0], [])
    with pytest.raises(ValueError, match="id_scores: empty array"):
        M.aupr_in([], [1.0])
    with pytest.raises(ValueError, match="ood_scores: empty array"):
        M.aupr_out([1.0], np.zeros((0, 3)))


def test_fpr_mcm_tie_quirk_hand_case():
    # ID 1..20: recall is exactly 0.95 at thresholds 2 and 1.5 (the OOD 1.5 lies between ID 2 and ID 1).
    # MCM picks the lowest equally-close threshold (1.5), so every OOD sample counts: FPR = 4/4.
    i = np.arange(1.0, 21.0)
    o = np.array([1.5, 2.0, 2.5, 25.0])
    assert M.fpr_at_tpr(i, o) == 1.0
    assert M.fpr_at_tpr(i, np.array([0.5, 2.5, 25.0])) == pytest.approx(2 / 3)


def test_ood_metrics_perfect_and_reversed():
    i, o = np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0])
    assert M.ood_metrics(i, o) == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95": 0.0}
    assert M.auroc(o, i) == 0.0
    assert M.auroc(np.ones(4), np.ones(3)) == 0.5


def test_ood_metrics_over_sets_mean():
    i, o1 = _ood_data(0)
    _, o2 = _ood_data(1)
    r = M.ood_metrics_over_sets(i, {"a": o1, "b": o2})
    assert r["mean"]["auroc"] == pytest.approx((M.auroc(i, o1) + M.auroc(i, o2)) / 2)
    with pytest.raises(ValueError):
        M.ood_metrics_over_sets(i, {})


@pytest.mark.parametrize("bad", [
    lambda: M.auroc([], [1.0]),
    lambda: M.auroc([1.0, np.nan], [0.0]),
    lambda: M.fpr_at_tpr([1.0], [0.0], tpr=0.0),
    lambda: M.aupr_in([1.0], []),
])
def test_ood_bad_input(bad):
    with pytest.raises(ValueError):
        bad()


def test_log_softmax_matches_brute_force_in_float64():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, 5)) * 40 + 500.0  # large logits: the naive exp would overflow
    def rows(a):  # log p_k = -log sum_j exp(x_j - x_k), row by row
        return np.array([[-math.log(math.fsum(math.exp(w - v) for w in r)) for v in r] for r in a])
    np.testing.assert_allclose(M.log_softmax(x), rows(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(M.log_softmax(x, axis=0), rows(x.T).T, rtol=0, atol=1e-12)
    for inp in (x.astype(np.float32), torch.tensor(x, dtype=torch.float16), [1, 2, 3]):
        assert M.log_softmax(inp).dtype == np.float64
    np.testing.assert_allclose(M.softmax([[0.0, 0.0]]), [[0.5, 0.5]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(M.log_softmax([1e300, -1e300, 0.0]), [0.0, -2e300, -1e300])  # no overflow
    for bad in ([], [[np.nan, 0.0]], [[np.inf, 0.0]]):
        with pytest.raises(ValueError, match="logits: "):
            M.log_softmax(bad)


# ----------------------------------------------------------------------------------------------------------
# calibration
# ----------------------------------------------------------------------------------------------------------
def _bins_brute(conf, correct, n_bins, closed):
    """Loop reference: per-bin (count, mean conf, acc); (lower, upper] or [lower, upper) with the end cases."""
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        if closed == "right":
            m = [(c > lo and c <= hi) or (b == 0 and c == 0) for c in conf]
        else:
            m = [(c >= lo and c < hi) or (b == n_bins - 1 and c == 1.0) for c in conf]
        m = np.array(m)
        out.append((m.sum(), conf[m].mean() if m.any() else np.nan, correct[m].mean() if m.any() else np.nan))
    return out


def _ece_brute(probs, y, n_bins, closed="right", kind="ece"):
    conf, correct = probs.max(1), (probs.argmax(1) == y).astype(float)
    gaps = [(n / len(conf), abs(a - c)) for n, c, a in _bins_brute(conf, correct, n_bins, closed) if n > 0]
    if kind == "ece":
        return sum(w * g for w, g in gaps)
    if kind == "mce":
        return max(g for _, g in gaps)
    return max(w * g for w, g in gaps)  # DAC weighted MCE


def _exact_edge_probs():
    """Confidences at 1.0 exactly, on bin edges, and some empty bins (K=2, so conf >= 0.5)."""
    conf = np.array([1.0, 1.0, 1.0, 0.6, 0.6, 0.55, 0.8, 0.8, 0.7, 1.0, 0.65, 0.5])
    probs = np.stack([conf, 1 - conf], 1)
    y = np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0])
    return probs, y


@pytest.mark.parametrize("n_bins", [1, 10, 15])
@pytest.mark.parametrize("closed", ["right", "left"])
def test_ece_mce_match_brute_force(n_bins, closed):
    rng = np.random.default_rng(n_bins)
    for probs, y in [(_rand_probs(rng, 400, 5), rng.integers(0, 5, 400)), _exact_edge_probs()]:
        assert M.ece(probs, y, n_bins, closed=closed) == pytest.approx(_ece_brute(probs, y, n_bins, closed))
        assert M.mce(probs, y, n_bins, closed=closed) == pytest.approx(_ece_brute(probs, y, n_bins, closed, "mce"))
        assert M.mce(probs, y, n_bins, weighted=True, closed=closed) == pytest.approx(
            _ece_brute(probs, y, n_bins, closed, "wmce"))


def test_bin_closure_differs_on_edges():
    probs, y = _exact_edge_probs()  # with 4 bins the edges 0.5, 0.75 are exact; 0.5 sits on one
    r = M.reliability_bins(probs, y, 4, closed="right")
    left = M.reliability_bins(probs, y, 4, closed="left")
    assert list(r["counts"]) == [0, 1, 5, 6]     # (0.25,0.5] holds 0.5 ; 1.0 in the last bin
    assert list(left["counts"]) == [0, 0, 6, 6]  # [0.5,0.75) holds 0.5 ; 1.0 in the last bin


def test_reliability_bins_empty_bins_are_nan():
    probs, y = _exact_edge_probs()
    r = M.reliability_bins(probs, y, 15)
    empty = r["counts"] == 0
    assert empty.any() and np.all(np.isnan(r["confidence"][empty])) and np.all(np.isnan(r["accuracy"][empty]))
    assert not np.any(np.isnan(r["confidence"][~empty]))
    assert len(r["edges"]) == 16 and r["edges"][0] == 0 and r["edges"][-1] == 1


def test_bin_index_end_cases():
    # a max probability cannot be 0, but the binning helper must still place 0 and 1 sanely
    conf = np.array([0.0, 1 / 3, 0.5, 1.0])
    edges = np.linspace(0, 1, 4)
    assert list(M._bin_index(conf, edges, "right")) == [0, 0, 1, 2]
    assert list(M._bin_index(conf, edges, "left")) == [0, 1, 1, 2]


def test_ece_matches_torchmetrics():
    from torchmetrics.classification import MulticlassCalibrationError
    rng = np.random.default_rng(3)
    cases = [(_rand_probs(rng, 500, 8), rng.integers(0, 8, 500), 15)]
    # conf exactly 1.0 while the last bin [14/15, 1) is otherwise empty -> torchmetrics' extra "1.0" bin and
    # our "1.0 in the last bin" agree; plus several empty bins.
    conf = np.r_[np.full(5, 1.0), rng.uniform(0.5, 0.7, 50), rng.uniform(0.8, 0.9, 30)]
    cases.append((np.stack([conf, 1 - conf], 1), rng.integers(0, 2, len(conf)), 15))
    for probs, y, n_bins in cases:
        k = probs.shape[1]
        for norm, ours in (("l1", M.ece), ("max", M.mce)):
            tm = MulticlassCalibrationError(num_classes=k, n_bins=n_bins, norm=norm)
            ref = float(tm(torch.tensor(probs, dtype=torch.float64), torch.tensor(y)))
            for closed in ("left", "right"):
                assert ours(probs, y, n_bins, closed=closed) == pytest.approx(ref, abs=1e-6)  # tm works in fp32


def test_ece_from_logits_and_torch_input():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(300, 6)) * 2
    y = rng.integers(0, 6, 300)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert M.ece(logits, y, from_logits=True) == pytest.approx(M.ece(p, y))
    assert M.ece(torch.tensor(p, dtype=torch.float32), torch.tensor(y)) == pytest.approx(M.ece(p, y), abs=1e-6)
    with pytest.raises(ValueError, match="from_logits"):
        M.ece(logits, y)


def test_adaptive_ece_matches_kbins_reference():
    from sklearn.preprocessing import KBinsDiscretizer
    rng = np.random.default_rng(5)
    for probs, y in [(_rand_probs(rng, 400, 5), rng.integers(0, 5, 400)), _exact_edge_probs()]:
        conf, correct = probs.max(1), probs.argmax(1) == y
        assert M.adaptive_ece(probs, y, 1) == pytest.approx(abs(correct.mean() - conf.mean()))
        for n_bins in (2, 5, 10):
            kb = KBinsDiscretizer(n_bins=n_bins, encode="ordinal", strategy="quantile", quantile_method="linear")
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                b = kb.fit_transform(conf[:, None])[:, 0]
            ref = sum(np.sum(b == v) / len(conf) * abs(correct[b == v].mean() - conf[b == v].mean())
                      for v in np.unique(b))
            assert M.adaptive_ece(probs, y, n_bins) == pytest.approx(ref, abs=1e-12)


def test_piece_brute_force():
    rng = np.random.default_rng(6)
    probs, y = _rand_probs(rng, 300, 4), rng.integers(0, 4, 300)
    prox = rng.uniform(size=300)
    conf, correct = probs.max(1), probs.argmax(1) == y
    qe = np.quantile(prox, np.linspace(0, 1, 4))
    pb = np.clip(np.searchsorted(qe, prox, side="right") - 1, 0, 2)  # [q_j, q_j+1), max in last
    cb = np.minimum((conf * 5).astype(int), 4)
    ref = 0.0
    for a in range(3):
        for c in range(5):
            m = (pb == a) & (cb == c)
            if m.any():
                ref += m.sum() / 300 * abs(correct[m].mean() - conf[m].mean())
    assert M.piece(probs, y, prox, n_bins=5, n_proximity_bins=3) == pytest.approx(ref)


def test_nll_and_brier_brute_force():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(100, 5)) * 3
    y = rng.integers(0, 5, 100)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ref_nll = -sum(math.log(p[i, y[i]]) for i in range(100)) / 100
    ref_brier = sum(sum((p[i, k] - (k == y[i])) ** 2 for k in range(5)) for i in range(100)) / 100
    assert M.nll(p, y) == pytest.approx(ref_nll)
    assert M.nll(logits, y, from_logits=True) == pytest.approx(
        float(torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(y))))
    assert M.brier(p, y) == pytest.approx(ref_brier)
    assert M.brier(logits, y, from_logits=True) == pytest.approx(ref_brier)
    one_hot_wrong = np.eye(3)[[1, 2]]
    assert M.nll(one_hot_wrong, [0, 0], eps=1e-12) == pytest.approx(-math.log(1e-12))
    assert M.brier(one_hot_wrong, [0, 0]) == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [
    lambda: M.ece(np.full((3, 2), 0.5), [0, 1]),            # length mismatch
    lambda: M.ece(np.full((2, 2), 0.5), [0, 1], n_bins=0),  # n_bins < 1
    lambda: M.ece(np.full(2, 0.5), [0, 1]),                 # wrong ndim
    lambda: M.ece(np.full((0, 2), 0.5), []),                # empty
    lambda: M.ece(np.array([[np.nan, 1.0]]), [0]),          # NaN
    lambda: M.ece(np.full((2, 2), 0.5), [0, 1], closed="both"),
    lambda: M.adaptive_ece(np.full((2, 2), 0.5), [0, 1], n_bins=-1),
    lambda: M.nll(np.full((2, 2), 0.5), [0, 2]),            # label out of range
    lambda: M.brier(np.full((2, 2), 0.7), [0, 1]),          # rows do not sum to 1
    lambda: M.piece(np.full((2, 2), 0.5), [0, 1], [0.1]),
])
def test_calibration_bad_input(bad):
    with pytest.raises(ValueError):
        bad()


# ----------------------------------------------------------------------------------------------------------
# harmonic mean, retrieval, effective robustness, shape bias
# ----------------------------------------------------------------------------------------------------------
def test_harmonic_mean():
    assert M.harmonic_mean(0.8, 0.6) == pytest.approx(2 * 0.8 * 0.6 / 1.4)
    assert M.harmonic_mean(0, 0) == 0.0
    np.testing.assert_allclose(M.harmonic_mean([1.0, 0.5], [1.0, 0.0]), [1.0, 0.0])
    with pytest.raises(ValueError):
        M.harmonic_mean(-1, 1)


def _recall_brute(img, txt, t2i, k):
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    s = img @ txt.T
    i2t = np.mean([any(t2i[j] == i for j in sorted(range(len(txt)), key=lambda j: (-s[i, j], j))[:k])
                   for i in range(len(img))])
    t2i_r = np.mean([t2i[j] in sorted(range(len(img)), key=lambda i: (-s[i, j], i))[:k] for j in range(len(txt))])
    return i2t, t2i_r


def test_recall_at_k_brute_force():
    rng = np.random.default_rng(8)
    img = rng.normal(size=(30, 8))
    t2i = np.r_[np.arange(30), rng.integers(0, 30, 60)]  # every image >= 1 caption, some several
    txt = img[t2i] + rng.normal(size=(90, 8)) * 1.0
    txt[5] = txt[40]  # duplicate captions -> exact ties
    r = M.recall_at_k(img, txt, t2i, k=(1, 5, 10), chunk=7)
    for k in (1, 5, 10):
        i2t, t2i_r = _recall_brute(img, txt, t2i, k)
        assert r[f"i2t@{k}"] == pytest.approx(i2t)
        assert r[f"t2i@{k}"] == pytest.approx(t2i_r)
    assert M.recall_at_k(torch.tensor(img), torch.tensor(txt), torch.tensor(t2i), 3)["i2t@3"] == pytest.approx(
        _recall_brute(img, txt, t2i, 3)[0])
    with pytest.raises(ValueError):
        M.recall_at_k(img, txt, t2i[:-1])
    with pytest.raises(ValueError):
        M.recall_at_k(img, txt, np.zeros(90, dtype=int))  # images without captions


def test_recall_at_k_exact_ties_rank_lower_index_first():
    e = np.eye(2)
    img = e[[0, 0, 1]]           # images 0 and 1 are identical
    txt = e[[0, 1, 0]]           # captions 0 and 2 are identical
    t2i = np.array([0, 2, 1])
    r = M.recall_at_k(img, txt, t2i, k=(1, 2))
    assert r == {"i2t@1": 2 / 3, "i2t@2": 1.0, "t2i@1": 2 / 3, "t2i@2": 1.0}
    for k in (1, 2):
        assert (r[f"i2t@{k}"], r[f"t2i@{k}"]) == pytest.approx(_recall_brute(img, txt, t2i, k))


def test_effective_robustness_matches_polyfit():
    rng = np.random.default_rng(9)
    x = rng.uniform(0.3, 0.9, 20)
    y = np.clip(1 / (1 + np.exp(-(0.8 * np.log(x / (1 - x)) - 0.3))) + rng.normal(0, 0.02, 20), 0.01, 0.99)
    lx, ly = np.log(x / (1 - x)), np.log(y / (1 - y))
    a, b = np.polyfit(lx, ly, 1)
    ref = y - 1 / (1 + np.exp(-(a * lx + b)))
    r = M.effective_robustness(x, y)
    np.testing.assert_allclose(r["residuals"], ref, atol=1e-10)
    assert r["slope"] == pytest.approx(a) and r["intercept"] == pytest.approx(b)
    # separate fit set: fit on the first 10 models, evaluate all
    r2 = M.effective_robustness(x, y, fit_x=x[:10], fit_y=y[:10])
    a2, b2 = np.polyfit(lx[:10], ly[:10], 1)
    np.testing.assert_allclose(r2["residuals"], y - 1 / (1 + np.exp(-(a2 * lx + b2))), atol=1e-10)
    from scipy.stats import norm
    r3 = M.effective_robustness(x, y, transform="probit")
    a3, b3 = np.polyfit(norm.ppf(x), norm.ppf(y), 1)
    np.testing.assert_allclose(r3["residuals"], y - norm.cdf(a3 * norm.ppf(x) + b3), atol=1e-10)


def test_effective_robustness_robust_ignores_outlier():
    x = np.linspace(0.2, 0.8, 15)
    lx = np.log(x / (1 - x))
    y = 1 / (1 + np.exp(-(0.9 * lx + 0.1)))
    y[3] = 0.99  # one very robust model
    slopes = [(np.log(y[j] / (1 - y[j])) - np.log(y[i] / (1 - y[i]))) / (lx[j] - lx[i])
              for i in range(15) for j in range(i + 1, 15)]
    r = M.effective_robustness(x, y, robust=True)
    assert r["slope"] == pytest.approx(np.median(slopes))
    assert abs(r["slope"] - 0.9) < 1e-9 and abs(np.delete(r["residuals"], 3)).max() < 1e-9
    assert abs(M.effective_robustness(x, y)["slope"] - 0.9) > 1e-3  # least squares is pulled by it
    with pytest.raises(ValueError):
        M.effective_robustness(x, y * 100)
    with pytest.raises(ValueError):
        M.effective_robustness(x, y[:-1])


def test_shape_bias_constructed():
    shape = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    texture = np.array([1, 2, 3, 4, 5, 6, 6, 7])  # last two: shape == texture -> excluded
    pred = np.array([0, 1, 3, 9, 5, 6, 6, 7])      # shape, shape, texture, neither, texture, texture, (excl)
    assert M.shape_bias(pred, shape, texture) == pytest.approx(2 / 5)
    scores = np.eye(10)[pred]
    assert M.shape_bias(scores, shape, texture) == pytest.approx(2 / 5)
    assert math.isnan(M.shape_bias([9, 9], [0, 1], [1, 2]))
    with pytest.raises(ValueError):
        M.shape_bias(pred, shape[:-1], texture)
