"""Tests for clipstudy.temperature against independent references: a known-temperature generative model, a
grid search, a torch-autograd re-statement of the VLM_calibrate bisection, and brute-force FD loops."""
import math

import numpy as np
import pytest
import torch

from clipstudy import temperature as C
from clipstudy.analysis.divergence import feature_divergence  # noqa: E402
from clipstudy.metrics import nll


def _sample(rng, n, k=10, T0=2.0, scale=3.0):
    """Logits z ~ N(0, scale^2); labels drawn from softmax(z / T0), so the NLL-optimal temperature is ~T0."""
    z = rng.normal(size=(n, k)) * scale
    p = np.exp(z / T0 - (z / T0).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    u = rng.uniform(size=(n, 1))
    y = np.minimum((p.cumsum(1) < u).sum(1), k - 1)
    return z, y


@pytest.mark.parametrize("T0", [0.5, 2.0, 4.0])
def test_recovers_known_temperature(T0):
    z, y = _sample(np.random.default_rng(0), 20000, T0=T0)
    T = C.tune_temperature(z, y)
    assert abs(T - T0) / T0 < 0.05


def test_scaling_reduces_heldout_nll():
    rng = np.random.default_rng(1)
    z_fit, y_fit = _sample(rng, 5000, T0=2.5)
    z_test, y_test = _sample(rng, 5000, T0=2.5)
    T = C.tune_temperature(z_fit, y_fit)
    before = nll(z_test, y_test, from_logits=True)
    after = nll(C.apply_temperature(z_test, T), y_test, from_logits=True)
    assert after < before - 0.05


def _grid_ce(z, y, grid):
    """Mean CE(z / t) for every t in grid, vectorised with scipy's logsumexp (independent of the module)."""
    from scipy.special import logsumexp
    zz = z[None] / grid[:, None, None]
    return np.mean(logsumexp(zz, axis=2) - zz[:, np.arange(len(y)), y], axis=1)


def test_agrees_with_grid_search_and_lbfgs():
    z, y = _sample(np.random.default_rng(2), 1000, T0=1.7)
    t_grid, half_width = 5.0, 5.0
    for _ in range(4):  # coarse-to-fine grid search, spacing 0.1 -> 4e-3 -> 1.6e-4 -> 6.4e-6
        grid = np.linspace(max(t_grid - half_width, 0.01), t_grid + half_width, 101)
        losses = _grid_ce(z, y, grid)
        t_grid, half_width = grid[np.argmin(losses)], 2 * (grid[1] - grid[0])
    t_bis = C.tune_temperature(z, y)
    assert abs(t_bis - t_grid) < 1e-4
    assert C.temperature_nll(z, y, t_bis) <= losses.min() + 1e-9
    assert C.fit_temperature(z, y, method="lbfgs") == pytest.approx(t_bis, abs=1e-4)
    assert C.fit_temperature(z, y) == t_bis


def _torch_bisection(logits, labels, lower, upper, eps):
    """The procedure of docs/protocols.md §0.4 restated with torch autograd (float32), as an independent reference."""
    logits, labels = torch.tensor(logits, dtype=torch.float32), torch.tensor(labels)
    ce = lambda t: float(torch.nn.functional.cross_entropy(logits / t, labels))
    while upper - lower > eps:
        t = torch.tensor([0.5 * (lower + upper)], requires_grad=True)
        g = torch.autograd.grad(torch.nn.functional.cross_entropy(logits / t, labels), t)[0]
        if g > 0:
            upper = 0.5 * (lower + upper)
        else:
            lower = 0.5 * (lower + upper)
    return min([lower, 0.5 * (lower + upper), upper], key=ce)


@pytest.mark.parametrize("bounds", [(0.01, 10.0), (0.5, 10.0), (0.01, 1.0)])
def test_matches_autograd_bisection(bounds):
    z, y = _sample(np.random.default_rng(3), 3000, T0=0.8)
    assert C.tune_temperature(z, y, *bounds) == pytest.approx(_torch_bisection(z, y, *bounds, 1e-4), abs=2e-4)


def test_bisection_clamps_to_bounds():
    z, y = _sample(np.random.default_rng(4), 2000, T0=3.0)
    assert C.tune_temperature(z, y, lower=0.01, upper=1.0) == pytest.approx(1.0, abs=1e-4)


def test_apply_temperature_and_torch_input():
    z = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(C.apply_temperature(torch.tensor(z), 2.0), z / 2)
    with pytest.raises(ValueError):
        C.apply_temperature(z, 0.0)


@pytest.mark.parametrize("call", [
    lambda: C.tune_temperature(np.zeros((3, 2)), [0, 1]),
    lambda: C.tune_temperature(np.zeros((2, 2)), [0, 1], lower=2.0, upper=1.0),
    lambda: C.tune_temperature(np.zeros((2, 2)), [0, 1], tol=0),
    lambda: C.tune_temperature(np.zeros(2), [0, 1]),
    lambda: C.tune_temperature(np.array([[np.nan, 0.0]]), [0]),
    lambda: C.fit_temperature(np.zeros((2, 2)), [0, 1], method="newton"),
])
def test_temperature_bad_input(call):
    with pytest.raises(ValueError):
        call()


def _fd_brute(t, m, metric):
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    out = []
    for i in range(len(t)):
        d = []
        for j in range(len(t)):
            if j != i:
                d.append(1 - float(t[i] @ t[j]) if metric == "cosine" else float(np.linalg.norm(t[i] - t[j])))
        out.append(sum(sorted(d)[:m]) / m)
    return np.array(out)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("m", [1, 3, 11])
def test_feature_divergence_brute_force(metric, m):
    t = np.random.default_rng(5).normal(size=(12, 16))
    r = feature_divergence(t, m=m, metric=metric)
    ref = _fd_brute(t, m, metric)
    np.testing.assert_allclose(r["per_class"], ref, rtol=1e-10, atol=1e-12)
    assert r["mean"] == pytest.approx(ref.mean())


def test_feature_divergence_spread_increases():
    rng = np.random.default_rng(6)
    base = rng.normal(size=16)
    tight = base + 0.1 * rng.normal(size=(8, 16))
    spread = base + 1.0 * rng.normal(size=(8, 16))
    assert feature_divergence(spread, m=3)["mean"] > feature_divergence(tight, m=3)["mean"]
    with pytest.raises(ValueError):
        feature_divergence(tight, m=8)
    with pytest.raises(ValueError):
        feature_divergence(tight, m=2, metric="l1")
    assert math.isclose(feature_divergence(np.eye(3), m=2)["mean"], 1.0)
