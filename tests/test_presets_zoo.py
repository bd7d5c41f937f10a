"""Every pretraining preset (the embedded model and the holistic zoo) trains with the same command."""
import pytest

torch = pytest.importorskip("torch")

from clipstudy.pretrain import PretrainConfig, presets, world_batches, _mean_std  # noqa: E402
from clipstudy.methods import build_method  # noqa: E402
from clipstudy.models import load_model  # noqa: E402
from clipstudy.train import TrainConfig, fit  # noqa: E402


@pytest.mark.parametrize("preset", sorted(presets()))
def test_preset_takes_two_training_steps(preset):
    cfg = PretrainConfig.from_preset(preset, batch_size=8, n_train=64)
    loaded = load_model(cfg.arch, "random", seed=cfg.seed)
    method = build_method("contrastive", loaded, (), loss=cfg.loss)
    batches = world_batches(cfg, loaded.tokenizer, *_mean_std(loaded))
    assert batches(0)["images"].shape[-1] == cfg.image_size
    hist = fit(method, batches, TrainConfig(steps=2, lr=cfg.lr, log_every=1, precision=cfg.precision), progress=False)
    assert len(hist) == 2 and all(h["loss"] == h["loss"] for h in hist)  # finite, not NaN


@pytest.mark.parametrize("family", ["photo-supervised", "photo-supervised-smoke"])
def test_baseline_family_takes_two_training_steps(family):
    """Each baseline family (the holistic study's supervised photo-only models) trains through the same loop."""
    from clipstudy.experiment import dataset_from_spec, few_shot_set, image_batches
    from clipstudy.studies import zoo as Z

    fam = Z.load_baseline(family)
    zoo = next(Z.load_zoo(z) for z in Z.list_zoos() if Z.load_zoo(z).baseline == family)
    loaded = load_model(Z.baseline_arch(zoo, fam), "random", seed=zoo.seed)
    pool = dataset_from_spec({"dataset": "world", "split": "train", "n": 16, "classes": "id", "domain": "photo"})
    train = few_shot_set(pool, None, 0)
    method = build_method(fam.method, loaded, pool.classnames, seed=zoo.seed)
    recipe = fam.recipe_for(2)
    cfg = recipe.train_config(len(train), None, zoo.seed)
    hist = fit(method, image_batches(loaded, train, min(8, recipe.batch_size), zoo.seed),
               TrainConfig(steps=2, lr=cfg.lr, log_every=1, precision=cfg.precision), progress=False)
    assert cfg.steps == 2 and len(hist) == 2 and all(h["loss"] == h["loss"] for h in hist)
