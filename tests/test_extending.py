"""docs/extending.md followed once, for real: a toy scorer and a toy method (with its recipe) registered from
this module run through the OOD study's smoke cells, and their rows appear in the tidy tables. Also: every
study module exposes the one contract (``BENCHMARKS`` registry, ``make_study``, ``run``, key numbers,
verdicts, captions)."""
import importlib

import numpy as np
import pytest

from clipstudy.registry import Registry, UnknownNameError

STUDIES = ("ood", "calibration", "robust_ft", "holistic")


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_module_exposes_the_one_contract(name):
    from clipstudy.study import Study

    mod = importlib.import_module(f"clipstudy.studies.{name}")
    assert isinstance(mod.BENCHMARKS, Registry) and "world" in mod.BENCHMARKS
    for fn in ("make_study", "run", "key_numbers", "verdicts"):
        assert callable(getattr(mod, fn)), fn
    with pytest.raises(UnknownNameError, match="valid .*world"):
        mod.make_study("no-such-benchmark")
    study = mod.make_study("world") if name != "calibration" else mod.make_study("world", methods=["zeroshot_hc"])
    assert isinstance(study, Study) and callable(study.run)


# --------------------------------------------------------------------------- the toy extensions

def toy_margin(s):
    """Top-1 minus top-2 cosine similarity: higher = more ID (a confident match to one class)."""
    top = np.sort(np.asarray(s, dtype=np.float64), axis=1)
    return top[:, -1] - top[:, -2]


TOY_RECIPE = {"method": "toy_bias", "params": {"smoothing": 0.1}, "optimizer": "sgd", "lr": 0.01, "batch_size": 8,
              "epochs": 1, "source": "tests/test_extending.py", "paper": {}, "embedded": {"max_steps": 3}}


def toy_method_class():
    """A feature method: the zero-shot head frozen, one trainable bias per class, and its own loss
    (label-smoothed cross-entropy)."""
    import torch
    from torch import nn

    from clipstudy.methods.base import Method
    from clipstudy.prompts import zeroshot_head

    class ToyBias(Method):
        inputs = "features"
        losses_seen = 0

        def __init__(self, loaded, classnames, smoothing: float = 0.0, seed: int = 0, regularizers=None):
            super().__init__(loaded, classnames, regularizers)
            self.register_buffer("head", zeroshot_head(loaded, classnames, "photo").clone().float())
            self.bias = nn.Parameter(torch.zeros(len(classnames)))  # the trainable parameters
            self.smoothing = float(smoothing)

        def feature_similarities(self, z):
            return z.float() @ self.head.t() + self.bias / self.scale

        def task_loss(self, batch, outputs):  # the method's loss
            type(self).losses_seen += 1
            return nn.functional.cross_entropy(outputs["logits"].float(), batch["y"], label_smoothing=self.smoothing)

    return ToyBias


@pytest.fixture()
def toys(tmp_path, monkeypatch):
    from clipstudy.methods import METHODS
    from clipstudy.recipes import RECIPES
    from clipstudy.scores import SCORERS

    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    cls = toy_method_class()
    SCORERS.register("toy_margin", obj=toy_margin, needs="similarities", needs_scale=False)
    METHODS.register("toy_bias", obj=cls)
    RECIPES.register("toy_bias", obj=TOY_RECIPE, description="a toy method for tests/test_extending.py",
                     study="ood", source=TOY_RECIPE["source"])
    yield cls
    for registry, name in ((SCORERS, "toy_margin"), (METHODS, "toy_bias"), (RECIPES, "toy_bias")):
        registry.unregister(name)
    assert "toy_margin" not in SCORERS and "toy_bias" not in METHODS and "toy_bias" not in RECIPES


def test_a_toy_scorer_and_a_toy_method_run_through_the_ood_study(toys, tmp_path):
    pytest.importorskip("torch")
    from clipstudy.results import ResultStore
    from clipstudy.studies import ood

    study = ood.make_study("world", n_train=240, n_test=60, n_ood=24, shift_domains=["sketch"],
                           model="clipstudy-micro", pretrained="random", methods=["zeroshot", "toy_bias"],
                           shots=[1], seeds=[1], scorers=["mcm", "toy_margin"], temperatures=[1.0])
    assert study.recipe("toy_bias").kwargs == {"smoothing": 0.1} and study.recipe("toy_bias").max_steps == 3
    res = ood.run(study, ResultStore(tmp_path / "results"), progress=False)
    assert toys.losses_seen == 3  # the toy method trained through the one loop, with its own loss
    assert set(res.accuracy.variant) == {"zeroshot", "toy_bias"}
    rows = res.ood[res.ood.scorer == "toy_margin"]
    assert set(rows.variant) == {"zeroshot", "toy_bias"} and set(rows.set) == {"near_ood", "far_ood", "texture",
                                                                                "sketch"}
    assert rows.auroc.between(0, 1).all()
    # the toy scorer's AUROC is the one recomputed from the stored similarities
    from clipstudy.metrics import ood_metrics

    arrays = res.sims("toy_bias", 1, 1)
    far = rows[(rows.variant == "toy_bias") & (rows.set == "far_ood")].iloc[0]
    expect = ood_metrics(toy_margin(arrays["id/sims"]), toy_margin(arrays["far_ood/sims"]))["auroc"]
    assert far.auroc == pytest.approx(expect, abs=2e-3)  # similarities stored as fp16
    numbers = study.key_numbers(res)
    assert 0 <= numbers["auroc_toy_margin_toy_bias"] <= 1
    # resumable: the same study reads its cells back
    toys.losses_seen = 0
    again = study.run(ResultStore(tmp_path / "results"), progress=False)
    assert toys.losses_seen == 0 and again.ood.equals(res.ood)


def test_make_study_equals_the_notebooks_former_construction():
    """``make_study(benchmark, **params)`` builds the very study the notebooks used to assemble by hand (so
    every cell spec, and every stored result, stays the same)."""
    from clipstudy.studies import calibration as cal, holistic as H, ood

    methods = ["zeroshot", "coop", "finetune"]
    specs = ood.ood_benchmark("world", n_train=240, n_test=60, n_ood=24, shift_domains=("sketch",), seed=0)
    old = ood.OODStudy(methods=tuple(methods), shots=(1, 2), seeds=(1,), scorers=("mcm", "msp"),
                       recipe_overrides={m: {"max_steps": 2, **({"lr": 0.1} if m == "coop" else {})} for m in methods},
                       **specs)
    assert ood.make_study("world", n_train=240, n_test=60, n_ood=24, shift_domains=["sketch"], seed=0,
                          methods=methods, shots=[1, 2], seeds=[1], scorers=["mcm", "msp"], max_steps=2,
                          recipe_overrides={"coop": {"lr": 0.1}}) == old

    cm = ["zeroshot_hc", "coop"]
    old = cal.CalibrationStudy(methods=tuple(cm), shots=(16,), seeds=(1,), lambdas=(2.0,), dor={"k": 10},
                               recipe_overrides={"zeroshot_hc": {"max_steps": 5}, "coop": {"max_steps": 5},
                                                 "coop_dor": {"max_steps": 5}},
                               **cal.dataset_specs("world", n_train=100, n_test=90, n_val=0, max_test_images=0))
    suite = cal.make_study(["world"], methods=cm, shots=16, seeds=[1], lambdas=[2.0], dor={"k": 10}, max_steps=5,
                           n_train=100, n_test=90, n_val=0, max_test_images=0)
    assert list(suite.studies) == ["world"] and suite.first == old and suite.recipe("coop") == old.recipe("coop")

    d = H.benchmark_defaults("world")
    sizes = dict(n_train=32, n_test=30, n_val=20, n_shift=10, n_ood=10, n_cue=20, n_corrupt=6, severities=(1, 5),
                 corruptions=("contrast",), n_retrieval=12, seed=0)
    old = H.HolisticStudy(zoo="smoke", prompts=d["prompts"], geometric=d["geometric"], factors=d["factors"],
                          sets=H.holistic_benchmark("world", data_root=None, **sizes))
    assert H.make_study("world", zoo="smoke", models=[], prompts={}, data_root="",
                        **{k: list(v) if isinstance(v, tuple) else v for k, v in sizes.items()}) == old
