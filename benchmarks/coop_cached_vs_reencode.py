"""CoOp on cached image features vs the same CoOp re-encoding its images at every step.

    python benchmarks/coop_cached_vs_reencode.py [--models embedded ViT-B-16] [--shots 16] [--steps 60]

For each model, both runs train the same CoOp recipe (the embedded one; ``--steps`` timed steps) through
the one training loop, from the same seed, on the same few-shot images in the same batch order; they
differ only in where the image features come from:

* cached: one feature-extraction pass over the training images (timed), then steps on features;
* re-encode: every batch goes through the frozen image tower, as CoOp's original trainer does.

Both paths are warmed up (two untimed steps) so that one-off start-up costs do not count. Printed per
model: the extraction time, the seconds per step of each path, the speed-up for the timed run and
projected over the recipe's full schedule at ``--paper-steps`` (CoOp's 16-shot ImageNet-size schedule
is thousands of steps), and the ID test accuracy of both (target: within 1 point; the ViT-B-16 here has
random weights, so only its speed is meaningful). Targets: >= 10x faster. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def reencoding(method, loaded):
    """``method`` (a CoOp) fed images: every training batch is encoded with the frozen image tower."""
    import torch.nn.functional as F

    visual = loaded.model.visual.requires_grad_(False)
    base = type(method)

    class Reencode(base):
        inputs = "images"

        @property
        def encoder(self):
            return visual

        def encode(self, images):
            return F.normalize(visual(images).float(), dim=-1)

        def forward_train(self, batch):  # encode the batch, then exactly CoOp's step on features
            return base.forward_train(self, {"x": self.encode(batch["images"]), "y": batch["y"]})

    method.__class__ = Reencode
    return method


def run(loaded, recipe, train, classnames, seed, reencode: bool):
    """(trained method, extraction seconds, seconds per timed step) with two untimed warm-up steps."""
    from clipstudy.experiment import build, image_batches
    from clipstudy.methods.base import feature_batches
    from clipstudy.train import fit

    import torch

    method = build(loaded, recipe, classnames, seed=0)
    t = time.perf_counter()
    if reencode:
        method = reencoding(method, loaded)
        batches = image_batches(loaded, train, recipe.batch_size, seed)
    else:
        batches = feature_batches(train.features(loaded, progress=False), torch.as_tensor(train.labels),
                                  recipe.batch_size, seed)
    extraction = 0.0 if reencode else time.perf_counter() - t
    cfg = recipe.train_config(len(train), train.shots, seed)
    warm = recipe.replace(steps=2).train_config(len(train), train.shots, seed)
    fit(build(loaded, recipe, classnames, seed=0) if not reencode else reencoding(build(loaded, recipe, classnames, seed=0), loaded),
        batches, warm, progress=False)
    t = time.perf_counter()
    fit(method, batches, cfg, progress=False)
    return method, extraction, (time.perf_counter() - t) / cfg.steps


def bench(model: str, shots: int, steps: int, paper_steps: int, seed: int) -> None:
    from clipstudy.experiment import dataset_from_spec, few_shot_set, get_recipe, method_outputs
    from clipstudy.models import load_model
    from clipstudy.studies.ood import world_benchmark

    loaded = load_model(model)
    specs = world_benchmark(n_train=1200, n_test=900)
    pool, test = dataset_from_spec(specs["train"]), dataset_from_spec(specs["id_test"])
    train = few_shot_set(pool, shots, seed)
    recipe = get_recipe("coop", "embedded", steps=steps)
    print(f"\n== {model} ({loaded.image_size} px): CoOp {recipe.kwargs['n_ctx']} ctx, {shots} shots x "
          f"{len(pool.classnames)} classes = {len(train)} images, batch {recipe.batch_size}, {recipe.precision}, "
          f"{steps} timed steps")
    cached, extraction, step_c = run(loaded, recipe, train, pool.classnames, seed, reencode=False)
    reenc, _, step_r = run(loaded, recipe, train, pool.classnames, seed, reencode=True)
    acc_c = method_outputs(cached, loaded, test, progress=False).accuracy
    reenc.__class__ = reenc.__class__.__mro__[1]  # back to plain CoOp: evaluate on cached test features
    acc_r = method_outputs(reenc, loaded, test, progress=False).accuracy
    for label, n in (("timed run", steps), ("full schedule", paper_steps)):
        ratio = (n * step_r) / (extraction + n * step_c)
        print(f"  {label:14s} ({n:5d} steps): cached {extraction + n * step_c:8.1f} s "
              f"(extraction {extraction:.1f} s + {1000 * step_c:.1f} ms/step), re-encode {n * step_r:8.1f} s "
              f"({1000 * step_r:.1f} ms/step) -> {ratio:.1f}x   target >= 10x")
    print(f"  ID accuracy: cached {acc_c:.3f}, re-encode {acc_r:.3f}, difference {100 * abs(acc_c - acc_r):.2f} "
          f"points (target <= 1)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["embedded", "ViT-B-16"])
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--paper-steps", type=int, default=3000, help="schedule length for the projected ratio")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    os.environ.setdefault("CLIPSTUDY_HOME", tempfile.mkdtemp(prefix="clipstudy-bench-"))  # cold feature cache
    print("The embedded image tower (a 64 px ResNet) is cheaper than CoOp's text-tower step, so caching gains "
          "little there;\nwith a real backbone (ViT-B-16 at 224 px; random weights here, speed only) the image "
          "tower dominates.")
    for model in args.models:
        bench(model, args.shots, args.steps, args.paper_steps, args.seed)


if __name__ == "__main__":
    main()
