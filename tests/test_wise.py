"""WiSE-FT's weight interpolation (Wortsman et al. 2022, ``mlfoundations/wise-ft`` ``_merge``): exact at
its endpoints, linear in between, strict about its inputs; and the ``finetune`` method it merges."""
import pytest

torch = pytest.importorskip("torch")

from clipstudy.methods import build_method  # noqa: E402
from clipstudy.models import load_model  # noqa: E402
from clipstudy.train import TrainConfig, fit  # noqa: E402
from clipstudy.wise import interpolate  # noqa: E402

CLASSES = ("circle", "square", "star")


def _thetas():
    g = torch.Generator().manual_seed(0)
    theta0 = {"w": torch.randn(4, 3, generator=g), "b": torch.randn(3, generator=g), "n": torch.tensor(2)}
    theta1 = {"w": torch.randn(4, 3, generator=g), "b": torch.randn(3, generator=g), "n": torch.tensor(7)}
    return theta0, theta1


def test_endpoints_are_exact_and_midpoint_is_the_mean():
    theta0, theta1 = _thetas()
    for key in ("w", "b"):
        assert torch.equal(interpolate(theta0, theta1, 0.0)[key], theta0[key])
        assert torch.equal(interpolate(theta0, theta1, 1)[key], theta1[key])
        torch.testing.assert_close(interpolate(theta0, theta1, 0.5)[key], (theta0[key] + theta1[key]) / 2)
    assert interpolate(theta0, theta1, 0.3)["n"].item() == 7  # non-float entries come from theta1
    assert interpolate(theta0, theta1, 0.3)["w"] is not theta1["w"]


def test_invalid_inputs_raise_clear_errors():
    theta0, theta1 = _thetas()
    for alpha in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\]"):
            interpolate(theta0, theta1, alpha)
    with pytest.raises(ValueError, match="different keys.*only in theta1 \\['extra'\\]"):
        interpolate(theta0, {**theta1, "extra": torch.zeros(1)}, 0.5)
    with pytest.raises(ValueError, match=r"different shapes.*w: \(4, 3\) vs \(3, 4\)"):
        interpolate(theta0, {**theta1, "w": torch.zeros(3, 4)}, 0.5)


def test_finetune_starts_at_zeroshot_and_wise_recovers_both_ends():
    loaded = load_model("clipstudy-micro", "random", seed=0)
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    images, y = torch.randn(6, 3, 32, 32, generator=g), torch.arange(6) % 3
    zs = build_method("zeroshot", loaded, CLASSES)
    with torch.no_grad():
        zs_sims = zs.similarities(torch.nn.functional.normalize(loaded.model.encode_image(images), dim=-1))
    ft0, ft = build_method("finetune", loaded, CLASSES), build_method("finetune", loaded, CLASSES)
    torch.testing.assert_close(ft.predict_similarities(images), zs_sims)
    assert all(p.requires_grad for p in ft.parameters()) and ft.scale.requires_grad is False
    fit(ft, lambda step: {"images": images, "y": y}, TrainConfig(steps=3, lr=1e-2, log_every=3), progress=False)
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in before.items())  # caller untouched
    tuned = ft.predict_similarities(images)
    assert not torch.allclose(tuned, zs_sims)
    for alpha, expected in ((0.0, zs_sims), (1.0, tuned)):
        ft0.load_state_dict(interpolate(build_method("finetune", loaded, CLASSES).state_dict(), ft.state_dict(), alpha))
        torch.testing.assert_close(ft0.predict_similarities(images), expected)
