"""Batch sources for the one training loop (:func:`clipstudy.train.fit`), in one place.

A batch source is a pure function ``step -> batch`` (of the step and the seed it closes over), so a resumed
run sees exactly the batches the interrupted run would have seen; batches carry their ``step`` so methods
and regularizers that draw per-step randomness (DOR's outlier names, Lipsum-FT's random texts, FLYP's
templates) draw it from ``(seed, step)``.

* :func:`epoch_batches`: shuffled epochs of indices;
* :func:`feature_batches`: cached features and labels (feature methods);
* :func:`image_batches`: preprocessed training images (image methods), optional seeded flips;
* :func:`prefetched`: builds the next batch in a background thread.
"""
from __future__ import annotations

import math
from typing import Callable

from .errors import ConfigError


def epoch_batches(n: int, batch_size: int, seed: int, drop_last: bool = False) -> Callable[[int], "object"]:
    """``step -> index tensor`` over shuffled epochs of ``range(n)``; epoch e uses seed (seed, e)."""
    import torch

    per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
    if per_epoch < 1:
        raise ConfigError(f"batch size {batch_size} is larger than the {n} training samples")
    cache: dict[int, object] = {}

    def indices(step: int):
        epoch, j = divmod(step, per_epoch)
        if epoch not in cache:
            cache.clear()
            g = torch.Generator().manual_seed(seed * 100_003 + epoch)
            cache[epoch] = torch.randperm(n, generator=g)
        return cache[epoch][j * batch_size : (j + 1) * batch_size]

    indices.steps_per_epoch = per_epoch
    return indices


def prefetched(batch_fn: Callable[[int], object]) -> Callable[[int], object]:
    """Wrap a pure ``batch_fn`` so the next step's batch is built in a background thread while the
    current step trains (rendering and tokenising overlap with the forward/backward pass)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clipstudy-batches")
    pending: dict[int, object] = {}

    def get(step: int):
        fut = pending.pop(step, None) or pool.submit(batch_fn, step)
        pending.clear()
        pending[step + 1] = pool.submit(batch_fn, step + 1)
        return fut.result()

    return get


def feature_batches(features, labels, batch_size: int, seed: int):
    """``step -> {"x": features, "y": labels, "step": step}`` over shuffled epochs (see :func:`epoch_batches`);
    the step lets regularizers that draw per-step randomness (DOR's outlier names) resume exactly."""
    idx = epoch_batches(len(labels), batch_size, seed)

    def batch(step: int) -> dict:
        i = idx(step)
        return {"x": features[i], "y": labels[i], "step": step}

    batch.steps_per_epoch = idx.steps_per_epoch
    return batch


def image_batches(loaded, train: TrainSet, batch_size: int, seed: int, augment: str = "none",
                  preload_bytes: int = 1 << 30):
    """``step -> {"images", "y"}`` over shuffled epochs of the training images, preprocessed with the
    model's transform. Small sets (the few-shot world, < ``preload_bytes``) are transformed once and held
    in memory; larger ones are read per batch. ``augment="flip"`` mirrors each image with probability
    1/2, drawn from ``(seed, step)``. Batches carry their ``step`` so methods and regularizers that draw
    per-step randomness (Lipsum-FT's random texts, FLYP's templates) draw it from ``(seed, step)`` and
    resume exactly."""
    import torch

    from .features import _Transformed

    data = _Transformed(train.images, loaded.preprocess)
    labels = torch.as_tensor(train.labels)
    size = loaded.image_size
    order = epoch_batches(len(train), min(batch_size, len(train)), seed)
    cached = None
    if len(train) * 3 * size * size * 4 <= preload_bytes:
        cached = torch.stack([data[i][0] for i in range(len(data))])

    def batch(step: int) -> dict:
        j = order(step)
        images = cached[j] if cached is not None else torch.stack([data[int(k)][0] for k in j])
        if augment == "flip":
            g = torch.Generator().manual_seed(seed * 1_000_003 + step)
            flip = torch.rand(len(j), generator=g) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return {"images": images.to(loaded.device), "y": labels[j].to(loaded.device), "step": step}

    batch.steps_per_epoch = order.steps_per_epoch
    return batch
