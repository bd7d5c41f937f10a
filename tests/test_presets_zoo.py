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
