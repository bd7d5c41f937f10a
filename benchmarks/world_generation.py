"""Images per second of the procedural world, per domain and kind, on one CPU core.

    python benchmarks/world_generation.py [--n 2000] [--size 64]

The process pins itself to one core (where the OS allows) and reports both wall-clock and
CPU-time rates; CPU time is the better number on a busy machine. Texture banks are built before
timing (their one-off cost is printed separately). Two references are measured in the same
process: a *baseline* that does the least any renderer must do (an ``np.zeros`` canvas plus one
PIL polygon for one shape, returned as an array), and the 1,000 img/s target. Results are
printed, never asserted.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from PIL import Image, ImageDraw

TARGET = 1000.0


def _pin_to_one_core() -> str:
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    except (AttributeError, OSError):
        return "not pinned (sched_setaffinity unavailable); rates are per process"


def _timed(fn, n: int) -> tuple[float, float]:
    """(wall images/s, cpu images/s) of ``fn(i)`` for ``i < n``."""
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return n / wall, n / max(cpu, 1e-9)


def _baseline(size: int):
    pts = [(size / 2 + size * 0.4 * np.cos(a), size / 2 + size * 0.4 * np.sin(a))
           for a in np.linspace(0, 2 * np.pi, 7)[:-1]]

    def draw(i):
        canvas = Image.fromarray(np.zeros((size, size, 3), np.uint8))
        ImageDraw.Draw(canvas).polygon(pts, fill=(200, 60, 60))
        return np.asarray(canvas)

    return draw


def _warm_up(size: int) -> float:
    """Build every bank (patterns, backgrounds, strokes, pages) once; return the seconds spent."""
    from clipstudy.world import DOMAINS, WorldConfig, render

    t0 = time.perf_counter()
    warm = WorldConfig(n=400, image_size=size)
    for kind, domains in (("object", DOMAINS), ("texture_only", ("photo", "painting"))):
        for d in domains:
            cfg = warm.replace(kind=kind, domains=((d, 1.0),))
            for i in range(60):
                render(cfg, i)
    return time.perf_counter() - t0


def _configs(n: int, size: int) -> list:
    from clipstudy.world import DOMAINS, WorldConfig

    base = WorldConfig(n=n, image_size=size)
    rows = [(f"object / {d}", base.replace(domains=((d, 1.0),))) for d in DOMAINS]
    rows += [("object / default mixture", base),
             ("cue_conflict / default mixture", base.replace(kind="cue_conflict")),
             ("texture_only / default mixture", base.replace(kind="texture_only")),
             ("object / gaussian_noise sev 3", base.replace(corruption="gaussian_noise"))]
    return rows


def _row(name: str, rates: tuple[float, float], base_cpu: float | None) -> None:
    wall, cpu = rates
    ratio = f"{cpu / base_cpu:12.3f}" if base_cpu else f"{'':12s}"
    print(f"{name:34s} {wall:11.0f} {cpu:10.0f} {ratio} {cpu / TARGET:10.2f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="images per measurement")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    args = ap.parse_args(argv)
    print(_pin_to_one_core())
    from clipstudy.world import WorldConfig, WorldDataset, render, sample_factors

    print(f"bank warm-up (one-off per process and image size): {_warm_up(args.size):.2f} s\n")
    print(f"{'what':34s} {'img/s wall':>11s} {'img/s cpu':>10s} {'vs baseline':>12s} {'vs 1000/s':>10s}")
    base = _timed(_baseline(args.size), args.n)
    _row("baseline (zeros + 1 polygon)", base, base[1])
    for name, cfg in _configs(args.n, args.size):
        _row(name, _timed(lambda i, c=cfg: render(c, i), args.n), base[1])
    ds = WorldDataset(WorldConfig(n=args.n, image_size=args.size))
    _row("dataset[i] (PIL image + caption)", _timed(lambda i: ds[i], args.n), base[1])
    n_batches = -(-args.n // 256)
    per_batch = _timed(lambda k: ds.get_batch(range(256 * k, min(256 * k + 256, args.n))), n_batches)
    _row("get_batch (256 images per call)", tuple(r * args.n / n_batches for r in per_batch), base[1])
    _row("sample_factors (no rendering)", _timed(lambda i: sample_factors(ds.cfg, i), args.n), None)


if __name__ == "__main__":
    main()
