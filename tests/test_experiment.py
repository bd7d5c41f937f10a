"""The experiment driver: dataset specs, recipes, few-shot sets, training with resume, outputs, WiSE."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipstudy import experiment as ex  # noqa: E402
from clipstudy.errors import ConfigError, DataError  # noqa: E402
from clipstudy.registry import UnknownNameError  # noqa: E402




def world(n=60, seed=0, **kw):
    return ex.dataset_from_spec({"dataset": "world", "n": n, "seed": seed, "classes": "circle,square,star", **kw})


def test_dataset_specs_and_subsets():
    ds = world(40)
    sub = ex.dataset_from_spec({"dataset": "world", "n": 40, "seed": 0, "classes": "circle,square,star",
                                "max_images": 10, "subset_seed": 3})
    assert len(sub) == 10 and sub.classnames == ds.classnames
    assert sub.cache_key != ds.cache_key and sub.cache_key.startswith(ds.cache_key)
    np.testing.assert_array_equal(sub.targets, ds.targets[sub.indices])
    assert sub[0]["label"] == ds[int(sub.indices[0])]["label"]
    with pytest.raises(UnknownNameError, match="valid datasets: .*world"):
        ex.dataset_from_spec({"dataset": "wrold"})
    with pytest.raises(ConfigError, match="'dataset' key"):
        ex.dataset_from_spec({"name": "world"})
    with pytest.raises(DataError, match="expected layout"):
        ex.dataset_from_spec({"dataset": "imagenet", "split": "val"}, data_root="/nonexistent/data")


def test_recipes_scales_and_validation():
    paper, emb = ex.get_recipe("coop", "paper"), ex.get_recipe("coop", "embedded")
    assert paper.kwargs["n_ctx"] == 16 and paper.lr == 0.002 and emb.kwargs["ctx_init"] == "a photo of a"
    # CoOp's epochs by shots (COOP.md), capped by the embedded step budget
    assert paper.epochs_for(1) == 50 and paper.epochs_for(16) == 200
    assert paper.train_config(n_train=16 * 30, shots=16, seed=1).steps == 200 * 15
    assert emb.train_config(n_train=16 * 30, shots=16, seed=1).steps == 300
    cfg = paper.train_config(n_train=64, shots=2, seed=1)  # 2 steps per epoch, warm-up 1 epoch at 1e-5
    assert cfg.warmup_steps == 2 and cfg.warmup_lr == 1e-5
    with pytest.raises(UnknownNameError, match="valid recipes: .*coop"):
        ex.get_recipe("cop")
    with pytest.raises(ConfigError, match="unknown settings \\['learning_rate'\\]"):
        ex.get_recipe("coop", learning_rate=0.1)
    with pytest.raises(ConfigError, match="alphas must lie in \\[0, 1\\]"):
        ex.get_recipe("finetune", wise_alphas=[0.5, 1.5])
    with pytest.raises(ConfigError, match="no epochs for 3 shots"):
        paper.epochs_for(3)


def test_recipes_are_unchanged_by_the_move_to_one_file_each():
    """Every recipe of ``clipstudy/recipes/`` gives the Recipe it gave when recipes were entries of the three
    ``data/resources/recipes*.json`` files (dumped into the fixture before the move, issue 14)."""
    import json
    from pathlib import Path

    before = json.loads((Path(__file__).parent / "fixtures" / "recipes_before_issue14.json").read_text())["recipes"]
    # one name per recipe: the robust-FT study's 'zs' had exactly zeroshot_ensemble's settings and was merged
    # into it (only the label differed)
    merged = {"zs": "zeroshot_ensemble"}
    assert ex.list_recipes() == sorted(set(before) - set(merged))
    for old_name, name in merged.items():
        for scale in ex.SCALES:
            old = {k: v for k, v in before[old_name][scale].items() if k not in ("label", "source")}
            new = {k: v for k, v in json.loads(json.dumps(ex.recipe_spec(ex.get_recipe(name, scale)))).items()
                   if k not in ("label", "source")}
            assert new == old, (old_name, scale)
    for name, old in ((n, o) for n, o in before.items() if n not in merged):
        assert json.loads(json.dumps(ex._recipe_table()[name])) == old["entry"], name
        for scale in ex.SCALES:
            expected = {k: v for k, v in old[scale].items() if k != "source"}  # prose is not part of a cell's spec
            assert json.loads(json.dumps(ex.recipe_spec(ex.get_recipe(name, scale)))) == expected, (name, scale)
            assert ex.get_recipe(name, scale).source == old[scale]["source"], (name, scale)


def test_recipe_registry_files_descriptions_and_extends(tmp_path):
    import json

    from clipstudy.recipes import RECIPES, load_recipe_files, recipes_dir
    from clipstudy.registry import Registry

    files = sorted(p.stem for p in recipes_dir().glob("*.json"))
    assert RECIPES.list() == files == ex.list_recipes()
    for name in RECIPES:
        meta = RECIPES.meta(name)
        assert set(meta["study"].split(", ")) <= {"ood", "calibration", "robust_ft"}, name
        assert meta["description"] and "\n" not in meta["description"], name
    assert (recipes_dir() / "README.md").is_file()
    with pytest.raises(UnknownNameError, match="^unknown recipe 'cop'; valid recipes: .*coop"):
        RECIPES.get("cop")
    ex.get_recipe("coop").kwargs["n_ctx"] = 99  # kwargs and entries are copies
    ex._recipe_table()["coop"]["params"]["n_ctx"] = 99
    assert ex.get_recipe("coop", "paper").kwargs["n_ctx"] == 16

    # a folder of recipes: a new file is a new recipe, `extends` across files, metadata kept out of settings
    (tmp_path / "base.json").write_text(json.dumps({"method": "zeroshot", "trains": False, "params": {"a": 1}}))
    (tmp_path / "child.json").write_text(json.dumps({"description": "base plus b", "study": "ood",
                                                      "extends": "base", "params": {"b": 2}}))
    (tmp_path / "loop.json").write_text(json.dumps({"extends": "loop"}))
    reg = Registry("recipe", loader=lambda r: load_recipe_files(r, tmp_path))
    with pytest.raises(ConfigError, match="'loop' extends 'loop', which forms a cycle"):
        reg.list()
    (tmp_path / "loop.json").unlink()
    assert reg.list() == ["base", "child"]
    assert reg.get("child") == {"method": "zeroshot", "trains": False, "params": {"a": 1, "b": 2}}
    assert reg.describe("child") == "base plus b" and reg.meta("child")["study"] == "ood"


def test_few_shot_sets_are_seeded_and_checked():
    ds = world(90)
    a, b, c = ex.few_shot_set(ds, 4, 1), ex.few_shot_set(ds, 4, 1), ex.few_shot_set(ds, 4, 2)
    assert len(a) == 12 and np.array_equal(a.indices, b.indices) and not np.array_equal(a.indices, c.indices)
    assert np.bincount(a.labels).tolist() == [4, 4, 4]
    np.testing.assert_array_equal(a.labels, ds.targets[a.indices])
    with pytest.raises(ValueError, match="has only .* fewer than k=50 shots"):
        ex.few_shot_set(ds, 50, 1)
    relabelled = ex.few_shot_set(ds, 2, 1, label_map={2: 0, 0: 1})
    assert sorted(set(relabelled.labels)) == [0, 1] and len(relabelled) == 4


def test_train_resumes_from_a_finished_checkpoint(home, micro):
    ds = world(60)
    train = ex.few_shot_set(ds, 4, 1)
    recipe = ex.get_recipe("linear_probe", steps=6)
    spec = ex.cell_spec(micro, recipe, train, 1, experiment="test")
    path = ex.checkpoint_path(spec)
    m1, hist1, theta0 = ex.train_method(micro, recipe, train, ds.classnames, 1, checkpoint=path, progress=False)
    assert path.exists() and len(hist1) > 0
    assert torch.load(path, weights_only=False)["optimizer"] is None  # finished: weights only
    m2, hist2, _ = ex.train_method(micro, recipe, train, ds.classnames, 1, checkpoint=path, progress=False)
    assert hist2 == hist1  # nothing retrained: the history comes back from the checkpoint
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k
    assert not torch.equal(theta0["weight"], m1.weight.detach())


def test_image_method_outputs_use_its_own_tower_and_wise_endpoints(home, micro):
    ds = world(30)
    train = ex.few_shot_set(ds, 2, 1)
    recipe = ex.get_recipe("finetune", steps=3, lr=1e-2, precision="fp32", wise_alphas=[0.0, 1.0])
    ft, _, theta0 = ex.train_method(micro, recipe, train, ds.classnames, 1, progress=False)
    zs = ex.build(micro, ex.get_recipe("finetune"), ds.classnames, seed=1)  # untrained: the zero-shot state
    out_ft = ex.method_outputs(ft, micro, ds, progress=False)
    out_zs = ex.method_outputs(zs, micro, ds, progress=False)
    assert not np.allclose(out_ft.sims, out_zs.sims)
    variants = {a: ex.method_outputs(m, micro, ds, progress=False).sims for a, m in
                ex.wise_variants(ft, theta0, recipe.wise_alphas)}
    np.testing.assert_allclose(variants[0.0], out_zs.sims, atol=1e-5)
    np.testing.assert_allclose(variants[1.0], out_ft.sims, atol=1e-5)
    # the trained tower's features were cached under its own weights hash, the frozen tower's untouched
    frozen = ex.method_outputs(ex.build(micro, ex.get_recipe("zeroshot"), ds.classnames, seed=1), micro, ds, progress=False)
    assert not torch.allclose(frozen.features, out_ft.features)


def test_flip_augmentation_is_seeded(micro):
    ds = world(30)
    train = ex.few_shot_set(ds, 2, 1)
    a = ex.image_batches(micro, train, 4, seed=0, augment="flip")
    b = ex.image_batches(micro, train, 4, seed=0, augment="flip")
    plain = ex.image_batches(micro, train, 4, seed=0)
    assert torch.equal(a(3)["images"], b(3)["images"])
    diffs = [not torch.equal(a(s)["images"], plain(s)["images"]) for s in range(6)]
    assert any(diffs)
    with pytest.raises(ConfigError, match="unknown augment 'rotate'; valid: none, flip"):
        ex.get_recipe("finetune", augment="rotate")


def test_editing_a_recipes_source_keeps_its_cells():
    """A cell's spec holds what changes numbers; the recipe's ``source`` prose is not part of it."""
    r = ex.get_recipe("coop")
    assert ex.recipe_spec(r) == ex.recipe_spec(r.replace(source="another citation"))
    assert ex.recipe_spec(r) != ex.recipe_spec(r.replace(lr=r.lr * 2))
