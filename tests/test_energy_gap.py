"""The analyses of paper 4 (Lipsum-FT, docs/protocols.md §4): energy gap, Lipsum-FT's regulariser, random token
sequences and feature distortion, against brute-force loops and their invariances."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipstudy.analysis import (energy_gap, feature_distortion, lipsum_regularizer, random_text_features,  # noqa: E402
                                random_text_tokens, text_token_spec)
from clipstudy.errors import ConfigError  # noqa: E402


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_energy_gap_is_zero_for_identical_models_and_matches_a_loop():
    f, f0, g = _unit(7, 5, seed=0), _unit(7, 5, seed=1), _unit(4, 5, seed=2)
    assert energy_gap(f, f, g) == 0.0
    brute = np.mean([[(float(g[m] @ f[i]) - float(g[m] @ f0[i])) ** 2 for m in range(4)] for i in range(7)])
    assert energy_gap(f, f0, g) == pytest.approx(brute, rel=1e-5)
    assert energy_gap(f, f0, g, scale=3.0) == pytest.approx(9 * brute, rel=1e-5)
    assert energy_gap(f.numpy(), f0.numpy(), g.numpy(), chunk=2) == pytest.approx(brute, rel=1e-5)
    assert energy_gap(f0, f, g) == pytest.approx(brute, rel=1e-5)  # symmetric


def test_energy_gap_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="features \\[N, d\\]"):
        energy_gap(_unit(3, 5), _unit(4, 5), _unit(2, 5))
    with pytest.raises(ValueError, match="text features"):
        energy_gap(_unit(3, 5), _unit(3, 5), _unit(2, 4))


def test_lipsum_regularizer_matches_the_code_loop_and_only_trains_theta():
    """``mean_x Σ_m (s<F_θ(x), G(t_m)> − s<F_θ0(x), G(t_m)>)² / 2M`` (cs-giung/lipsum-ft scripts/Lipsum-FT.py)."""
    f, f0, g, s = _unit(6, 8, seed=3), _unit(6, 8, seed=4), _unit(5, 8, seed=5), 22.7
    brute = np.mean([sum((s * float(f[i] @ g[m]) - s * float(f0[i] @ g[m])) ** 2 for m in range(5)) / (2 * 5)
                     for i in range(6)])
    assert float(lipsum_regularizer(f, f0, g, s)) == pytest.approx(brute, rel=1e-5)
    assert float(lipsum_regularizer(f0, f0, g, s)) == 0.0
    ft = f.clone().requires_grad_(True)
    f0g = f0.clone().requires_grad_(True)
    lipsum_regularizer(ft, f0g, g, s).backward()
    assert ft.grad is not None and ft.grad.abs().sum() > 0 and f0g.grad is None  # θ0 side is a fixed target
    # reg = energy gap scaled by s² · M / 2M on the same images and texts
    assert float(lipsum_regularizer(f, f0, g, s)) == pytest.approx(energy_gap(f, f0, g, scale=s) / 2, rel=1e-5)


def test_random_tokens_are_seeded_per_step_and_avoid_special_tokens():
    a = random_text_tokens(80, 8, seed=0, step=3, context_length=32)
    assert a.shape == (80, 32) and a.dtype == torch.int64
    assert torch.equal(a, random_text_tokens(80, 8, seed=0, step=3, context_length=32))
    assert not torch.equal(a, random_text_tokens(80, 8, seed=0, step=4, context_length=32))
    assert not torch.equal(a, random_text_tokens(80, 8, seed=1, step=3, context_length=32))
    assert (a[:, 0] == 49406).all() and (a[:, 9] == 49407).all() and (a[:, 10:] == 0).all()
    body = a[:, 1:9]
    assert body.min() >= 0 and body.max() < 49406
    # special ids inside the vocabulary are skipped and the draw stays uniform over the rest
    t = random_text_tokens(60_000, 1, seed=0, vocab_size=6, sot_id=2, eot_id=4)[:, 1]
    values, counts = t.unique(return_counts=True)
    assert values.tolist() == [0, 1, 3, 5]
    assert counts.min() > 0.95 * 15_000 and counts.max() < 1.05 * 15_000


def test_random_tokens_reject_impossible_shapes():
    with pytest.raises(ConfigError, match="context_length >= length \\+ 2"):
        random_text_tokens(4, 8, seed=0, context_length=9)
    with pytest.raises(ConfigError):
        random_text_tokens(0, 8, seed=0)


def test_feature_distortion():
    f = _unit(5, 6, seed=7)
    assert feature_distortion(f, f) == 0.0
    assert feature_distortion(3 * f, f) == pytest.approx(0.0, abs=1e-7)  # normalised first
    e0, e1 = torch.eye(4)[:2], torch.eye(4)[2:]
    assert feature_distortion(e0, e1) == pytest.approx(np.sqrt(2))
    assert feature_distortion(f, -f) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="differ in shape"):
        feature_distortion(_unit(3, 6), _unit(4, 6))


def test_random_text_features_of_a_model_and_zero_gap_for_the_same_tower():
    from clipstudy.features import encode_images
    from clipstudy.methods import build_method
    from clipstudy.models import load_model

    loaded = load_model("clipstudy-micro", "random", seed=0)
    spec = text_token_spec(loaded)
    assert spec == {"vocab_size": 49408, "sot_id": 49406, "eot_id": 49407, "context_length": 16}
    g = random_text_features(loaded, 12, 8, seed=0)
    assert g.shape == (12, 32) and torch.allclose(g.norm(dim=-1), torch.ones(12), atol=1e-5)
    # padding dropped before the text tower: same features as open_clip's own encode_text
    ids = random_text_tokens(12, 8, seed=0, **spec)
    with torch.no_grad():
        full = torch.nn.functional.normalize(loaded.model.encode_text(ids).float(), dim=-1)
    torch.testing.assert_close(g, full, atol=1e-5, rtol=1e-4)
    ft = build_method("finetune", loaded, ("circle", "square"))
    images = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        f = encode_images(ft.encoder.eval(), images)
        f0 = encode_images(loaded.model.visual, images)
    assert energy_gap(f, f0, g) == 0.0
