import math

import pytest

torch = pytest.importorskip("torch")

from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.train import TrainConfig, epoch_batches, fit, lr_at  # noqa: E402


class Toy(torch.nn.Module):
    """A stand-in method: linear regression on fixed data, trainable weight only."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)
        torch.nn.init.zeros_(self.lin.weight)
        torch.nn.init.zeros_(self.lin.bias)
        self.frozen = torch.nn.Parameter(torch.ones(1), requires_grad=False)

    def loss(self, batch):
        x, y = batch
        return {"loss": ((self.lin(x).squeeze(-1) - y) ** 2).mean()}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0])


def _batches(x, y, seed=0):
    idx = epoch_batches(len(y), 8, seed)
    return lambda step: (x[idx(step)], y[idx(step)])


def test_fit_reduces_loss_and_never_touches_frozen():
    x, y = _data()
    m = Toy()
    hist = fit(m, _batches(x, y), TrainConfig(steps=60, lr=0.3, log_every=10), progress=False)
    assert hist[-1]["loss"] < 0.1 * hist[0]["loss"]
    assert m.frozen.item() == 1.0 and [h["step"] for h in hist] == [10, 20, 30, 40, 50, 60]


def test_resume_matches_uninterrupted_run(tmp_path):
    x, y = _data()
    cfg = TrainConfig(steps=30, lr=0.05, warmup_steps=5, log_every=5, checkpoint_every=5)
    ref = Toy()
    fit(ref, _batches(x, y), cfg, progress=False)

    def interrupt(method, step, history):
        if step == 15:
            raise KeyboardInterrupt

    ckpt = tmp_path / "state.pt"
    first = Toy()
    with pytest.raises(KeyboardInterrupt):
        fit(first, _batches(x, y), cfg, checkpoint=ckpt, callbacks=[interrupt], progress=False)
    resumed = Toy()
    hist = fit(resumed, _batches(x, y), cfg, checkpoint=ckpt, progress=False)
    torch.testing.assert_close(resumed.lin.weight, ref.lin.weight)
    assert [h["step"] for h in hist] == [5, 10, 15, 20, 25, 30]


def test_lr_schedule_endpoints():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0) and lr_at(100, cfg) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(55, cfg) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    coop = TrainConfig(steps=100, lr=0.002, warmup_steps=10, warmup_lr=1e-5)
    assert lr_at(3, coop) == 1e-5


def test_epoch_batches_cover_each_epoch_once_and_are_seeded():
    idx = epoch_batches(10, 4, seed=1)
    first = torch.cat([idx(s) for s in range(idx.steps_per_epoch)])
    assert sorted(first.tolist()) == list(range(10))
    assert torch.equal(idx(0), epoch_batches(10, 4, seed=1)(0))
    assert not torch.equal(torch.cat([idx(s) for s in range(3, 6)]), first)
    with pytest.raises(ConfigError):
        epoch_batches(3, 4, 0, drop_last=True)


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="valid: adamw, sgd"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ConfigError):
        TrainConfig(steps=0)
