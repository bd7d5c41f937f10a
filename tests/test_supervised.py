"""The supervised method (the holistic study's baseline family): a randomly initialised image tower and a
linear head trained with cross-entropy through the one training loop; its init is a pure function of its
seed."""
import pytest

torch = pytest.importorskip("torch")

from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.methods import build_method, list_methods  # noqa: E402
from clipstudy.models import load_model, weights_hash  # noqa: E402
from clipstudy.train import TrainConfig, fit  # noqa: E402

NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def loaded():
    return load_model("clipstudy-micro", "random", seed=0)


def test_supervised_is_registered_and_ignores_the_loaded_weights(loaded):
    assert "supervised" in list_methods()
    m = build_method("supervised", loaded, NAMES, seed=0)
    assert m.inputs == "images" and m.encoder is m.visual and m.visual is not loaded.model.visual
    assert m.head.shape[0] == len(NAMES) and all(p.requires_grad for p in m.parameters())
    other = load_model("clipstudy-micro", "random", seed=5)  # different loaded weights, same seed: same init
    assert weights_hash(build_method("supervised", other, NAMES, seed=0)) == weights_hash(m)
    assert float(m.scale) == pytest.approx(loaded.logit_scale)
    assert float(build_method("supervised", loaded, NAMES, seed=0, scale=10.0).scale) == 10.0


def test_supervised_init_is_a_pure_function_of_the_seed(loaded):
    state = torch.random.get_rng_state()
    a, b = (build_method("supervised", loaded, NAMES, seed=3) for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left untouched
    assert weights_hash(a) == weights_hash(b)
    c = build_method("supervised", loaded, NAMES, seed=4)
    assert weights_hash(c) != weights_hash(a) and not torch.equal(c.head, a.head)


def test_supervised_trains_through_the_one_loop(loaded):
    g = torch.Generator().manual_seed(0)
    size = loaded.image_size
    images = torch.randn(12, 3, size, size, generator=g)
    y = torch.arange(12) % len(NAMES)
    images[y == 1] += 1.0  # separable classes
    m = build_method("supervised", loaded, NAMES, seed=0)
    before = m.loss({"images": images, "y": y})["loss"].item()
    hist = fit(m, lambda step: {"images": images, "y": y, "step": step},
               TrainConfig(steps=15, lr=3e-3, log_every=15), progress=False)
    assert hist[-1]["loss"] < before
    sims = m.similarities(images)
    assert sims.shape == (12, len(NAMES))


def test_supervised_errors(loaded):
    with pytest.raises(ConfigError, match="class names"):
        build_method("supervised", loaded, (), seed=0)
    with pytest.raises(ConfigError, match="scale must be a positive number"):
        build_method("supervised", loaded, NAMES, seed=0, scale=-1.0)
