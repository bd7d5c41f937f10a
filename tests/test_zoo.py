"""The holistic study's model zoo: definitions are data and validated with clear errors; models train on
demand and are cached (a second load trains nothing)."""
import dataclasses

import pytest

torch = pytest.importorskip("torch")

from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.registry import UnknownNameError  # noqa: E402
from clipstudy.studies import zoo as Z  # noqa: E402


def test_zoos_are_data_and_validate():
    assert {"shipped", "quick", "smoke"} <= set(Z.list_zoos())
    assert Z.factor_names() == ("architecture", "training_distribution", "training_set_size", "fine_tuning",
                                "contrastive_loss", "test_time_prompts")
    z = Z.load_zoo("quick")
    assert z.names[0] == z.base == "resnet"
    kinds = {m.name: m.kind for m in z.models}
    assert kinds["vit"] == "preset" and kinds["ft"] == kinds["flyp"] == "derived" and kinds["embedded"] == "external"
    # every factor but the prompts (no model needed) is varied by some model
    assert {m.factor for m in z.models} >= set(Z.factor_names()) - {"test_time_prompts"}
    assert z.values("vit")["architecture"] == "ViT" and z.values("vit")["contrastive_loss"] == "CLIP"
    assert z.values("resnet") == dict(z.base_values)
    sizes = [m for m in z.models if m.factor == "training_set_size"]
    assert len(sizes) >= 2  # with the base: at least three training-set sizes
    ext = Z.load_zoo("extended")  # "extends": the quick zoo plus a ConvNeXt tower
    assert ext.names == z.names + ["convnext"] and ext.base == z.base and ext.base_values == z.base_values
    assert ext.values("convnext")["architecture"] == "ConvNeXt"


@pytest.mark.parametrize("name", ["shipped", "quick"])
def test_zoo_presets_differ_from_the_base_in_one_factor_only(name):
    from clipstudy.pretrain import PretrainConfig

    from clipstudy.models import shipped_models

    z = Z.load_zoo(name)
    b = z.get(z.base)  # a preset, or a shipped model (its run's preset)
    base = dataclasses.asdict(PretrainConfig.from_preset(b.preset or shipped_models()[b.model][0]))
    # an architecture comes with its optimiser settings (the shipped ViT trains at a ViT's lr and warm-up)
    field_of = {"architecture": {"arch", "lr", "warmup_steps"}, "training_distribution": {"world"},
                "training_set_size": {"n_train"}, "contrastive_loss": {"arch", "loss"}}
    # how a run is stopped, evaluated and described is not a factor of the model it trains
    run_only = {"preset", "description", "max_minutes", "card_suite"}
    for m in z.models:
        if m.kind == "preset" and m.factor in field_of:
            cfg = dataclasses.asdict(PretrainConfig.from_preset(m.preset))
            changed = {k for k in cfg if cfg[k] != base[k]} - run_only
            assert changed and changed <= field_of[m.factor], (m.name, changed)


def test_the_shipped_zoo_is_the_embedded_recipe_with_shipped_runs():
    from clipstudy.models import shipped_models

    z = Z.load_zoo("shipped")
    # the base is the shipped embedded model itself (never retrained by the notebook); the zoo's own runs ship
    assert z.get(z.base).kind == "external" and shipped_models()[z.get(z.base).model] == ("embedded", 0)
    presets = [m for m in z.models if m.kind == "preset"]
    assert {m.shipped for m in presets} == {n for n in shipped_models() if n.startswith("zoo-")} - {"zoo-resnet"}
    assert all(shipped_models()[m.shipped] == (m.preset, m.run_seed(z.seed)) for m in presets)
    # the base at a second seed, and each fine-tuning value on both base runs (the seed spread of those factors)
    assert [m.run_seed(z.seed) for m in z.models if m.factor == "base"] == [0, 1]
    for value in ("FT", "FLYP"):
        runs = [(m.base, m.run_seed(z.seed)) for m in z.models if m.value == value]
        assert runs == [("resnet", 0), ("resnet@1", 1)]
    assert {m.factor for m in z.models} >= set(Z.factor_names()) - {"test_time_prompts"}
    assert len([m for m in z.models if m.factor == "training_set_size"]) == 2  # three sizes with the base
    with pytest.raises(ConfigError, match="shipped model 'zoo-vit' is not a shipped run of preset 'zoo-smoke'; "
                                          "shipped runs of it: none"):
        _zoo(factor="architecture", preset="zoo-smoke", shipped="zoo-vit")
    with pytest.raises(ConfigError, match="'zoo-resnet' is not a shipped run of preset 'embedded' at seed 1; "
                                          "shipped runs of it: zoo-resnet-s1"):
        _zoo(factor="base", preset="embedded", shipped="zoo-resnet", seed=1)
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        _zoo(factor="base", preset="embedded", seed=-1)


def _zoo(**model):
    return Z.Zoo("t", (Z.ZooModel(name="a", factor="base", preset="zoo-smoke"), Z.ZooModel(name="b", **model)), "a")


@pytest.mark.parametrize("model, match", [
    ({"factor": "colour", "preset": "zoo-smoke"}, "unknown factor 'colour'; valid: architecture"),
    ({"factor": "architecture", "preset": "nope"}, "unknown pretraining preset 'nope'; valid presets:"),
    ({"factor": "fine_tuning", "base": "zz", "recipe": "finetune"}, "base 'zz' must be"),
    ({"factor": "fine_tuning", "base": "a", "recipe": "nope"}, "unknown recipe 'nope'; valid recipes:"),
    ({"factor": "architecture", "preset": "zoo-smoke", "model": "embedded"}, "exactly one of"),
    ({"factor": "architecture"}, "exactly one of"),
    ({"factor": "test_time_prompts", "preset": "zoo-smoke"}, "test-time prompts need no model"),
])
def test_invalid_zoo_models_are_clear_errors(model, match):
    with pytest.raises(ConfigError, match=match):
        _zoo(**model)


def test_zoo_level_errors():
    with pytest.raises(UnknownNameError, match="unknown zoo 'nope'; valid zoos: extended, quick, shipped, smoke"):
        Z.load_zoo("nope")
    a = Z.ZooModel(name="a", factor="base", preset="zoo-smoke")
    with pytest.raises(ConfigError, match="base model 'x' is not among"):
        Z.Zoo("t", (a,), "x")
    with pytest.raises(ConfigError, match="names a model twice"):
        Z.Zoo("t", (a, a), "a")
    with pytest.raises(ConfigError, match="unknown factors \\['size'\\] in base_values"):
        Z.Zoo("t", (a,), "a", (("size", "big"),))
    with pytest.raises(ConfigError, match="has no model 'q'"):
        Z.load_zoo("smoke").get("q")
    with pytest.raises(ConfigError, match="unknown keys \\['colour'\\]"):
        Z._fields({"colour": 1}, "here")


def test_real_models_make_an_external_zoo():
    z = Z.zoo_from_models([["ViT-B-32", "openai"], ["RN50", "openai", "architecture", "ResNet-50"],
                           ["ViT-B-16", "/ckpt/ft.pt"]])
    assert z.names == ["ViT-B-32:openai", "RN50:openai", "ViT-B-16:ft.pt"] and z.base == "ViT-B-32:openai"
    assert [m.factor for m in z.models] == ["base", "architecture", "reference"]
    assert all(m.kind == "external" and m.zero_shot for m in z.models)
    with pytest.raises(ConfigError, match="expected \\[arch, pretrained\\]"):
        Z.zoo_from_models([["ViT-B-32"]])
    with pytest.raises(ConfigError, match="at least one"):
        Z.zoo_from_models([])


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    return tmp_path


def test_preset_models_train_once_then_load_from_cache(home, monkeypatch):
    import clipstudy.pretrain as P

    assert not Z.is_trained("zoo-smoke", 0)
    run_dir, card = Z.ensure_pretrained("zoo-smoke", 0, progress=False)
    assert Z.is_trained("zoo-smoke", 0) and run_dir == P.PretrainConfig.from_preset("zoo-smoke").run_dir()
    assert card["steps_done"] == P.presets()["zoo-smoke"]["steps"]

    def no_training(*a, **k):
        raise AssertionError("a cached zoo model was trained again")

    monkeypatch.setattr(P, "pretrain", no_training)
    again_dir, again = Z.ensure_pretrained("zoo-smoke", 0, progress=False)
    assert again_dir == run_dir and again["zeroshot_accuracy"] == card["zeroshot_accuracy"]
    member = Z.load_member(Z.load_zoo("smoke"), "micro", progress=False)
    assert member.method is None and member.loaded.name == "micro" and member.info["steps"] == card["steps_done"]


def test_derived_models_fine_tune_once(home, monkeypatch):
    import clipstudy.train as T
    from clipstudy.experiment import dataset_from_spec, few_shot_set
    from clipstudy.models import weights_hash

    zoo = Z.load_zoo("smoke")
    pool = dataset_from_spec({"dataset": "world", "split": "train", "n": 24, "classes": "id", "domain": "photo"})
    train = few_shot_set(pool, None, 0)
    first = Z.load_member(zoo, "micro-ft", train=train, classnames=pool.classnames, progress=False)
    assert first.method is not None and first.info["steps"] == 2 and first.entry.factor == "fine_tuning"
    steps = []
    real_lr_at = T.lr_at
    monkeypatch.setattr(T, "lr_at", lambda step, cfg: steps.append(step) or real_lr_at(step, cfg))
    second = Z.load_member(zoo, "micro-ft", train=train, classnames=pool.classnames, progress=False)
    assert steps == [] and weights_hash(second.method) == weights_hash(first.method)
    with pytest.raises(ConfigError, match="needs a training set"):
        Z.load_member(zoo, "micro-ft", progress=False)


# ---------------------------------------------------------------------------------------------- baseline family

def test_baseline_families_are_data_and_validate(monkeypatch):
    assert {"photo-supervised", "photo-supervised-smoke"} <= set(Z.list_baselines())
    assert Z.load_zoo("shipped").baseline == Z.load_zoo("quick").baseline == Z.load_zoo("extended").baseline \
        == "photo-supervised"
    smoke = Z.load_baseline(Z.load_zoo("smoke").baseline)
    assert smoke.method == "supervised" and len(smoke.steps) >= 3 and max(smoke.steps) <= 10  # seconds, not minutes
    default = Z.load_baseline("photo-supervised")
    assert len(default.steps) >= 3 and list(default.steps) == sorted(default.steps)
    r = default.recipe_for(default.steps[-1])
    assert r.method == "supervised" and r.steps == default.steps[-1] and r.params == ()  # the cell's seed drives init
    assert Z.baseline_arch(Z.load_zoo("quick"), default) == "clipstudy-rn-tiny"  # the base model's tower
    assert Z.baseline_arch(Z.load_zoo("shipped"), default) == "clipstudy-rn-tiny"
    assert Z.baseline_arch(Z.load_zoo("smoke"), smoke) == "clipstudy-micro"
    assert Z.zoo_from_models([["ViT-B-32", "openai"]]).baseline == ""  # the real path has no baseline family
    with pytest.raises(UnknownNameError, match="unknown baseline family 'nope'; valid baselines: photo-supervised"):
        Z.load_baseline("nope")
    a = Z.ZooModel(name="a", factor="base", preset="zoo-smoke")
    with pytest.raises(UnknownNameError, match="unknown baseline family"):
        Z.Zoo("t", (a,), "a", baseline="nope")
    table = Z.zoo_table()
    for entry, match in (({"steps": []}, "distinct positive integers"), ({"steps": [2, 2]}, "distinct positive"),
                         ({"steps": [2], "colour": 1}, "unknown keys \\['colour'\\]"),
                         ({"steps": [2], "recipe": {"lrr": 1}}, "unknown recipe fields \\['lrr'\\]"),
                         ({"steps": [2], "method": "nope"}, "unknown method 'nope'")):
        monkeypatch.setitem(table, "baselines", {"x": entry})
        with pytest.raises(ConfigError, match=match):
            Z.load_baseline("x")


def test_baseline_models_train_once_through_the_one_loop(home, monkeypatch):
    import clipstudy.train as T
    from clipstudy.experiment import dataset_from_spec, few_shot_set
    from clipstudy.models import weights_hash

    zoo = Z.load_zoo("smoke")
    family = Z.load_baseline(zoo.baseline)
    pool = dataset_from_spec({"dataset": "world", "split": "train", "n": 24, "classes": "id", "domain": "photo"})
    train = few_shot_set(pool, None, 0)
    fits = []
    real_fit = T.fit
    monkeypatch.setattr(T, "fit", lambda *a, **k: fits.append(a[2].steps) or real_fit(*a, **k))
    first = Z.load_baseline_member(zoo, family, 2, train=train, classnames=pool.classnames, progress=False)
    assert fits == [2] and first.info["steps"] == 2 and first.entry.name == "supervised@2"
    assert type(first.method).__name__ == "Supervised" and first.method.seed == zoo.seed
    steps = []
    real_lr_at = T.lr_at
    monkeypatch.setattr(T, "lr_at", lambda step, cfg: steps.append(step) or real_lr_at(step, cfg))
    second = Z.load_baseline_member(zoo, family, 2, train=train, classnames=pool.classnames, progress=False)
    assert steps == [] and weights_hash(second.method) == weights_hash(first.method)  # read back, not retrained
    with pytest.raises(ConfigError, match="ID training set"):
        Z.load_baseline_member(zoo, family, 2, train=None, classnames=pool.classnames, progress=False)
