"""Pretraining runs side by side: the image-caption pairs per second of ``--jobs`` runs trained at once, each in
its own process with the CPU cores divided among them, against one run with torch's default threads (the
baseline, timed in the same invocation).

    python benchmarks/pretrain_parallel.py [--preset embedded] [--jobs 2] [--steps 30]

Each process builds the preset's model and batch stream, trains three untimed warm-up steps, then times
``--steps`` optimiser steps of the one training loop fed by rendering in a background thread, as
``clipstudy pretrain`` runs. The side-by-side processes start together; their warm-up overlaps, so the timed
windows overlap for most of their length. Printed: each process's pairs/s, their sum, and the sum's ratio to the
baseline. This is what notebook 04's ``pretrain_jobs`` (:func:`clipstudy.studies.zoo.pretrain_zoo`) trades on: a
small model's step leaves part of a core idle (Python, small kernels, the optimiser), which a second run fills.
On the 2-core machine that trained the shipped zoo, two one-thread runs made about 1.25x the pairs/s of one
two-thread run. The numbers depend on the machine and on what else runs on it. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time


def _worker(preset: str, steps: int, threads: int, seed: int, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    from clipstudy.batches import prefetched
    from clipstudy.pretrain import PretrainConfig, pretraining_setup
    from clipstudy.train import TrainConfig, fit

    cfg = PretrainConfig.from_preset(preset, seed=seed)
    _, method, make = pretraining_setup(cfg)

    def run(n, batch_fn):
        fit(method, batch_fn, TrainConfig(steps=n, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=0,
                                          precision=cfg.precision, seed=cfg.seed, log_every=10 ** 9,
                                          checkpoint_every=10 ** 9), progress=False)

    run(3, prefetched(make))
    t = time.perf_counter()
    run(steps, prefetched(lambda s: make(100 + s)))
    queue.put(cfg.batch_size * steps / (time.perf_counter() - t))


def side_by_side(preset: str, steps: int, jobs: int, threads: int) -> list[float]:
    """Pairs/s of each of ``jobs`` processes training ``preset`` at once with ``threads`` torch threads each."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(preset, steps, threads, seed, queue)) for seed in range(jobs)]
    for p in procs:
        p.start()
    rates = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return rates


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="embedded", help="pretraining preset")
    p.add_argument("--jobs", type=int, default=2, help="runs side by side")
    p.add_argument("--steps", type=int, default=30, help="timed steps per process")
    args = p.parse_args(argv)
    if args.jobs < 2 or args.steps < 1:
        p.error(f"--jobs must be at least 2 and --steps at least 1, got {args.jobs} and {args.steps}")
    cores = os.cpu_count() or 1
    threads = max(1, cores // args.jobs)
    import torch

    [one] = side_by_side(args.preset, args.steps, 1, torch.get_num_threads())
    many = side_by_side(args.preset, args.steps, args.jobs, threads)
    print(f"{args.preset}: one run ({torch.get_num_threads()} threads): {one:.0f} pairs/s")
    print(f"{args.jobs} runs side by side ({threads} thread{'s' if threads > 1 else ''} each): "
          + " + ".join(f"{r:.0f}" for r in many) + f" = {sum(many):.0f} pairs/s, {sum(many) / one:.2f}x the baseline")
    print(f"{cores} CPU cores; {args.steps} timed steps per process after 3 warm-up steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
