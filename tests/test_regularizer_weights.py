"""One rule carries every regularizer weight from CLIP's logit scale (100) to the model's:
lambda(s) = lambda * (s / 100) ** (1 - p), p = the power of s in the regularizer's gradient."""
import pytest

torch = pytest.importorskip("torch")

from clipstudy.losses import LOSSES, list_regularizers, scaled_weight  # noqa: E402
from clipstudy.regularizers import REGULARIZERS  # noqa: E402
from clipstudy.methods import build_method  # noqa: E402

CLASSES = ("circle", "square", "star")
POWERS = {"dor": 0, "kgcoop": 0, "l2sp": 0, "kd": 1, "car_ft": 1, "lipsum": 2}



def test_every_regularizer_declares_its_power():
    assert {n: REGULARIZERS.meta(n)["scale_power"] for n in list_regularizers()} == POWERS
    assert LOSSES.list() == ["clip", "siglip"]  # regularizers are not losses' registry entries any more


@pytest.mark.parametrize("s", [22.7, 100.0, 50.0])
def test_scaled_weight_rule(s):
    assert scaled_weight(8.0, 0, s) == pytest.approx(8.0 * s / 100)
    assert scaled_weight(1.0, 1, s) == pytest.approx(1.0)
    assert scaled_weight(1.0, 2, s) == pytest.approx(100 / s)
    with pytest.raises(ValueError):
        scaled_weight(1.0, 0, 0.0)


def test_weights_attach_scaled_and_record_the_nominal_one(micro):
    s = float(micro.logit_scale)
    ft = build_method("finetune", micro, CLASSES, seed=0, regularizers={"lipsum": {"weight": 1.0, "n_texts": 4},
                                                                       "kd": {"weight": 1.0}, "l2sp": {"weight": 0.1}})
    got = {r.name: (r.nominal_weight, r.weight) for r in ft.regularizers}
    assert got["lipsum"] == (1.0, pytest.approx(100 / s))
    assert got["kd"] == (1.0, pytest.approx(1.0))
    assert got["l2sp"] == (0.1, pytest.approx(0.1 * s / 100))


# --------------------------------------------------------------------------- smaller conventions (issue 13 §6)

def test_prompt_learners_use_dassls_weight_decay():
    from clipstudy.experiment import get_recipe

    for name in ("coop", "cocoop", "clip_adapter", "kgcoop", "maple", "deep_text_prompt", "coop_dor"):
        for scale in ("paper", "embedded"):
            assert get_recipe(name, scale).weight_decay == 5e-4, (name, scale)


def test_ood_finetune_head_stays_cosine_after_training(micro):
    """The OOD study's full fine-tuning re-normalises its head rows, so MCM reads cosines after training; the
    robust fine-tuning recipes keep WiSE-FT's unnormalised head."""
    from clipstudy.experiment import get_recipe
    from clipstudy.train import TrainConfig, fit

    assert get_recipe("finetune").kwargs["normalize_head"] is True
    assert "normalize_head" not in get_recipe("ft").kwargs
    g = torch.Generator().manual_seed(0)
    batch = {"images": torch.randn(6, 3, 32, 32, generator=g), "y": torch.arange(6) % 3}
    for norm in (True, False):
        ft = build_method("finetune", micro, CLASSES, seed=0, normalize_head=norm)
        fit(ft, lambda step: batch, TrainConfig(steps=5, lr=0.5, optimizer="sgd"), progress=False)
        rows = ft.head.detach().norm(dim=-1)
        assert not torch.allclose(rows, torch.ones(3), atol=1e-3)  # the raw rows moved off the sphere
        sims = ft.predict_similarities(batch["images"])
        if norm:
            z = torch.nn.functional.normalize(ft.visual(batch["images"]).float(), dim=-1)
            torch.testing.assert_close(sims, z @ torch.nn.functional.normalize(ft.head.detach(), dim=-1).t())
            assert float(sims.abs().max()) <= 1.0 + 1e-6
        else:
            assert float(sims.abs().max()) > 0  # WiSE-FT's classifier: raw rows


def test_temperature_at_bound_is_flagged():
    import numpy as np

    from clipstudy.temperature import TEMPERATURE_BOUNDS, fit_temperature, temperature_at_bound, warn_if_at_bound

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 5))
    labels = rng.integers(0, 5, 200)  # labels unrelated to the logits: the NLL optimum is T -> infinity
    T = fit_temperature(logits, labels)
    assert temperature_at_bound(T) and T == pytest.approx(TEMPERATURE_BOUNDS[1], rel=1e-3)
    with pytest.warns(UserWarning, match="at the search bound"):
        assert warn_if_at_bound(T, "test")
    good = fit_temperature(3 * np.eye(5)[labels] + rng.normal(size=(200, 5)), labels)
    assert not temperature_at_bound(good)
