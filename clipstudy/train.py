"""The one training loop.

A *method* (see :mod:`clipstudy.methods`) is an ``nn.Module`` that says which parameters train
(``requires_grad``) and supplies ``loss(batch) -> dict`` with a ``"loss"`` entry. Everything else
— optimizer, warm-up + cosine schedule, bf16 autocast, gradient clipping, progress bar, periodic
checkpoints, resume, evaluation callbacks — lives here, once. The loop never looks at a method's
name.

Batches come from ``batch_fn(step) -> batch``, a pure function of the step index (and the seed it
closes over), so a resumed run sees exactly the batches the interrupted run would have seen.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import ConfigError
from .io import torch_save

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every method (defaults: AdamW, warm-up then cosine)."""

    steps: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    momentum: float = 0.9
    warmup_steps: int = 0
    warmup_lr: float | None = None  # CoOp-style constant warm-up lr; None = linear warm-up from 0
    schedule: str = "cosine"
    grad_clip: float | None = None
    precision: str = "fp32"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 0
    max_minutes: float | None = None

    def __post_init__(self):
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("lr must be > 0, weight_decay and warmup_steps >= 0")


def _check_choice(what: str, value, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): warm-up, then cosine decay to 0 or constant."""
    if step < cfg.warmup_steps:
        return cfg.warmup_lr if cfg.warmup_lr is not None else cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(params, cfg: TrainConfig):
    import torch

    params = [p for p in params if p.requires_grad]
    if not params:
        raise ConfigError("the method has no trainable parameters")
    # no weight decay on gains, biases, embeddings-as-scalars (as open_clip's training script does)
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


@dataclass
class TrainState:
    step: int = 0
    history: list = None
    seconds: float = 0.0


def fit(method, batch_fn: Callable[[int], object], cfg: TrainConfig, *, checkpoint: str | Path | None = None,
        callbacks: Sequence[Callable] = (), progress: bool = True, desc: str = "train",
        checkpoint_extra: dict | None = None) -> list[dict]:
    """Train ``method`` for ``cfg.steps`` steps; returns the history (one dict per logged step).

    With ``checkpoint`` set, the state (trainable weights, optimizer, step, history) is saved every
    ``cfg.checkpoint_every`` steps and at the end, and a rerun resumes from it. Each callback is
    called as ``cb(method, step, history)`` at logging steps and may return a dict of metrics.
    ``checkpoint_extra`` (picklable values) is stored in every checkpoint under its own keys.
    """
    import torch
    from tqdm.auto import tqdm

    opt = make_optimizer(method.parameters(), cfg)
    state = _resume(method, opt, checkpoint, cfg)
    start, t0 = state.step, time.time() - state.seconds
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not progress, leave=False)
    for step in range(start, cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        method.train()
        with _autocast(cfg.precision, _device_type(method)):
            losses = method.loss(batch_fn(step))
        loss = losses["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; try a lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
        opt.step()
        if hasattr(method, "after_step"):
            method.after_step()
        state.step = step + 1
        state.seconds = time.time() - t0
        if state.step % cfg.log_every == 0 or state.step == cfg.steps:
            _log(state, losses, lr_at(step, cfg), method, callbacks, bar)
        bar.update(1)
        if checkpoint and cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
            _save(method, opt, state, checkpoint, cfg, checkpoint_extra)
        if cfg.max_minutes and state.seconds > 60 * cfg.max_minutes:
            break
    bar.close()
    if checkpoint:
        _save(method, opt, state, checkpoint, cfg, checkpoint_extra)
    method.eval()
    return state.history


def _log(state: TrainState, losses: dict, lr: float, method, callbacks, bar) -> None:
    row = {"step": state.step, "seconds": round(state.seconds, 2), "lr": lr, "time": round(time.time(), 1)}
    row.update({k: float(v.detach()) for k, v in losses.items() if hasattr(v, "detach")})
    for cb in callbacks:
        row.update(cb(method, state.step, state.history) or {})
    state.history.append(row)
    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k in ("loss",) or k.startswith("acc")})


def _device_type(method) -> str:
    first = next(iter(method.parameters()), None)
    return first.device.type if first is not None else "cpu"


def _autocast(precision: str, device_type: str = "cpu"):
    """bf16 autocast on the method's device (CPU: 2-4x faster matmuls here; CUDA: tensor cores)."""
    import contextlib

    import torch

    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


TRAINED_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
"""Suffixes of the buffers that training changes (BatchNorm statistics and step counts): a checkpoint keeps them,
so a method reloaded from it has the state (and the weights hash, hence the feature-cache keys) it had when
it finished training."""


def trainable_state(method) -> dict:
    """State of the trainable parameters and of the buffers training changes (what a checkpoint must restore)."""
    names = {n for n, p in method.named_parameters() if p.requires_grad}
    return {k: v for k, v in method.state_dict().items() if k in names or k.endswith(TRAINED_BUFFERS)}


def _save(method, opt, state: TrainState, path, cfg: TrainConfig, extra: dict | None = None) -> None:
    # a finished run keeps no optimizer state (AdamW's moments would double or triple the file); its
    # checkpoint is then just the trained weights that a rerun or a later analysis reloads
    done = state.step >= cfg.steps
    torch_save({"method": trainable_state(method), "optimizer": None if done else opt.state_dict(),
                "step": state.step, "history": state.history, "seconds": state.seconds,
                "config": asdict(cfg), **(extra or {})}, path)


def _resume(method, opt, path, cfg: TrainConfig) -> TrainState:
    import torch

    state = TrainState(0, [], 0.0)
    if not path or not Path(path).exists():
        return state
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        method.load_state_dict(blob["method"], strict=False)
        if blob["optimizer"] is not None:
            opt.load_state_dict(blob["optimizer"])
    except Exception as exc:
        from .errors import CheckpointError

        raise CheckpointError(f"cannot resume from {path} ({type(exc).__name__}: {exc}); delete it to restart") from None
    return TrainState(int(blob["step"]), list(blob["history"]), float(blob["seconds"]))


# Batch sources live in clipstudy.batches (re-exported here for existing imports).
from .batches import epoch_batches, prefetched  # noqa: E402,F401
