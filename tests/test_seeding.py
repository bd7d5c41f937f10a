"""One seed per cell drives every random choice: construction (context vectors, meta-nets, adapters,
MaPLe's prompts, FLYP's template draws, Lipsum-FT's random texts, DOR's sampler), batch order and training.

Same seed -> bitwise-identical initial parameters and trained outputs; different seeds -> different draws.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipstudy import experiment as ex  # noqa: E402
from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.methods import build_method  # noqa: E402

CLASSES = ("circle", "square", "star")




# recipe, overrides (fit the 16-token, 2-layer micro model), the parameters drawn at random
RANDOM_INIT = {
    "coop": ({"params": {"n_ctx": 4, "ctx_init": ""}}, "prompt_learner.ctx"),
    "cocoop": ({}, "meta_net"),
    "clip_adapter": ({}, "adapter"),
    "maple": ({"params": {"n_ctx": 2, "ctx_init": "a photo of a", "prompt_depth": 1}}, "image_encoder"),
}


def _state(method, prefix):
    return {k: v.detach().clone() for k, v in method.state_dict().items() if prefix in k}


@pytest.mark.parametrize("name", sorted(RANDOM_INIT))
def test_same_seed_same_initialisation_other_seed_other_draw(micro, name):
    overrides, prefix = RANDOM_INIT[name]
    recipe = ex.get_recipe(name, "paper", **overrides)
    a, b = (_state(ex.build(micro, recipe, CLASSES, seed=7), prefix) for _ in range(2))
    c = _state(ex.build(micro, recipe, CLASSES, seed=8), prefix)
    assert a and set(a) == set(c)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the seed reaches the draw


def test_construction_leaves_the_global_generator_alone(micro):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.build(micro, ex.get_recipe("cocoop", "paper"), CLASSES, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_flyp_templates_and_lipsum_texts_follow_the_seed(micro):
    flyp = {s: ex.build(micro, ex.get_recipe("flyp", "embedded", params={"templates": "world", "freeze_bn_stats": False}),
                        CLASSES, seed=s) for s in (1, 2)}
    labels = torch.arange(64) % 3
    assert not torch.equal(flyp[1].caption_tokens(labels, 0), flyp[2].caption_tokens(labels, 0))
    assert flyp[1].seed == 1 and flyp[2].seed == 2
    lipsum = {s: ex.build(micro, ex.get_recipe("lipsum_ft", "embedded"), CLASSES, seed=s).regularizers[0]
              for s in (1, 2, 1)}
    assert lipsum[1].seed == 1 and lipsum[2].seed == 2


def test_dor_sampler_follows_the_cell_seed(micro, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(f"thing{i}" for i in range(40)))
    recipe = ex.get_recipe("coop_dor", "embedded")
    params = recipe.kwargs
    params["regularizers"]["dor"].update(vocabulary=str(vocab), k=30, mode="random")
    recipe = recipe.replace(params=params)
    draws = {s: ex.build(micro, recipe, CLASSES, seed=s).regularizers[0].sampler.next_batch() for s in (1, 2)}
    again = ex.build(micro, recipe, CLASSES, seed=1).regularizers[0].sampler.next_batch()
    assert list(draws[1]) == list(again) and list(draws[1]) != list(draws[2])


def test_a_recipe_may_not_set_the_seed_itself(micro):
    coop = ex.get_recipe("coop", "embedded")
    with pytest.raises(ConfigError, match="seed.*remove it from the recipe"):
        ex.build(micro, coop.replace(params={**coop.kwargs, "seed": 3}), CLASSES, seed=1)
    with pytest.raises(ConfigError, match="regularizer 'lipsum'.*seed"):
        build_method("finetune", micro, CLASSES, seed=1, regularizers={"lipsum": {"seed": 3}})


def _world(n=45):
    return ex.dataset_from_spec({"dataset": "world", "n": n, "seed": 0, "classes": ",".join(CLASSES)})


def test_same_seed_same_trained_outputs(micro, home):
    ds = _world()
    recipe = ex.get_recipe("coop", "paper", params={"n_ctx": 4, "ctx_init": ""}, steps=3, precision="fp32")

    def run(seed):
        train = ex.few_shot_set(ds, 2, seed)
        method, _, theta0 = ex.train_method(micro, recipe, train, CLASSES, seed, progress=False)
        return theta0["prompt_learner.ctx"], ex.method_outputs(method, micro, ds, progress=False).sims

    (ctx1, sims1), (ctx1b, sims1b), (ctx2, sims2) = run(1), run(1), run(2)
    assert torch.equal(ctx1, ctx1b) and np.array_equal(sims1, sims1b)
    assert not torch.equal(ctx1, ctx2) and not np.array_equal(sims1, sims2)
