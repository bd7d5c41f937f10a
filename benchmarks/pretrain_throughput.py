"""Pretraining throughput (image-caption pairs per second) of pretraining presets, against a baseline preset
run in the same process.

    python benchmarks/pretrain_throughput.py [--presets embedded zoo-vit zoo-siglip] [--steps 12]

For each preset (the first is the baseline), timed separately and in this order:

* data: rendering and tokenising ``--steps`` batches of the preset's pretraining stream, after two untimed ones
  (:func:`clipstudy.pretrain.world_batches`, the world mixture and texture fields of the preset);
* train: ``--steps`` optimiser steps of the one training loop (:func:`clipstudy.train.fit`, the preset's
  loss, precision, batch size and learning rate) on those batches, held in memory, after two untimed
  warm-up steps;
* end to end: ``--steps`` steps of the same loop fed by rendering in a background thread, as
  ``clipstudy pretrain`` runs (:func:`clipstudy.batches.prefetched`), on batches not rendered before.

Printed per preset: pairs/s of each part, the ratio to the baseline's end-to-end pairs/s and the minutes a
full run of the preset's ``steps`` would take at that rate. The numbers depend on the machine and on what else
runs on it; compare presets within one run. On a 2-core machine rendering and training share the cores, so
the end-to-end rate is below the slower of the two parts (`embedded-v4`: 245 pairs/s end to end, 38 minutes
projected for its 4,400 steps; the run took 37.4). Nothing is asserted.
"""
from __future__ import annotations

import argparse
import time


def measure(preset: str, steps: int, seed: int = 0) -> dict:
    import torch  # noqa: F401

    from clipstudy.batches import prefetched
    from clipstudy.pretrain import PretrainConfig, pretraining_setup
    from clipstudy.train import TrainConfig, fit

    cfg = PretrainConfig.from_preset(preset, seed=seed)
    _, method, make = pretraining_setup(cfg)
    warm = 2
    batches = [make(s) for s in range(warm)]  # untimed: first-call costs of the renderer and tokenizer
    t = time.perf_counter()
    batches += [make(s) for s in range(warm, steps + warm)]
    data_s = (time.perf_counter() - t) / steps

    def run(n, batch_fn):
        tcfg = TrainConfig(steps=n, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=0,
                           precision=cfg.precision, seed=cfg.seed, log_every=10 ** 9, checkpoint_every=10 ** 9)
        fit(method, batch_fn, tcfg, progress=False)

    run(warm, lambda s: batches[s])
    t = time.perf_counter()
    run(steps + warm, lambda s: batches[s])  # a fresh optimiser; the warm-up steps are timed once more
    train_s = (time.perf_counter() - t) / (steps + warm)
    live = prefetched(lambda s: make(steps + warm + s))
    t = time.perf_counter()
    run(steps, live)
    step_s = (time.perf_counter() - t) / steps
    return {"preset": preset, "arch": cfg.arch, "loss": cfg.loss, "batch": cfg.batch_size,
            "data_pairs_s": cfg.batch_size / data_s, "train_pairs_s": cfg.batch_size / train_s,
            "pairs_s": cfg.batch_size / step_s, "run_minutes": cfg.steps * step_s / 60, "steps": cfg.steps}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["embedded", "zoo-vit", "zoo-siglip"],
                   help="pretraining presets; the first is the baseline")
    p.add_argument("--steps", type=int, default=12, help="timed steps per preset")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be at least 1, got {args.steps}")
    rows = [measure(name, args.steps) for name in args.presets]
    base = rows[0]["pairs_s"]
    print(f"{'preset':<16} {'arch':<26} {'loss':<7} {'batch':>5} {'data p/s':>9} {'train p/s':>10} "
          f"{'pairs/s':>8} {'vs base':>8} {'full run':>9}")
    for r in rows:
        print(f"{r['preset']:<16} {r['arch']:<26} {r['loss']:<7} {r['batch']:>5} {r['data_pairs_s']:>9.0f} "
              f"{r['train_pairs_s']:>10.0f} {r['pairs_s']:>8.0f} {r['pairs_s'] / base:>7.2f}x "
              f"{r['run_minutes']:>6.1f} min")
    print(f"baseline: {rows[0]['preset']}; {args.steps} timed steps per preset after 2 warm-up steps; a full run is "
          f"the preset's steps at the measured end-to-end rate (rendering in a background thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
