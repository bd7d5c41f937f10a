"""The cost of the holistic study's full axis suite for one model, relative to a single feature-extraction
pass over the same images.

    python benchmarks/holistic_axis_cost.py [--model embedded] [--pretrained ""] [--scale 1.0] [--threads 0]

The world benchmark of notebook 04 (sizes times ``--scale``) is rendered once into memory, as the study
does. Then, in the same process and without the on-disk feature cache:

* extraction: one ``extract_features`` pass over every dataset of the study (ID, validation, shifts, OOD,
  cue-conflict, every corruption and severity, retrieval);
* suite: :func:`clipstudy.studies.holistic.evaluate_member` — every axis (factor accuracy, shape bias,
  OOD detection, calibration before/after temperature scaling, retrieval, corruptions) for both prompt sets,
  including its own feature pass, the prompt heads and the caption features.

Printed: both times, the images encoded and the ratio suite / extraction (target: at most 3x; every axis
reads the features of the one pass). One warm-up extraction of a small set runs first and is not timed.
Nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded")
    p.add_argument("--pretrained", default="")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every set size of the default profile")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("CLIPSTUDY_HOME", tempfile.mkdtemp(prefix="clipstudy-bench-"))

    import torch

    from clipstudy.features import extract_features
    from clipstudy.studies import holistic as H
    from clipstudy.studies.zoo import load_member

    if args.threads:
        torch.set_num_threads(args.threads)
    n = lambda k: max(8, int(round(k * args.scale)))  # noqa: E731
    sets = H.holistic_benchmark("world", n_train=n(64), n_test=n(600), n_val=n(400), n_shift=n(300), n_ood=n(300),
                                n_cue=n(400), n_corrupt=n(100), n_retrieval=n(400))
    study = H.HolisticStudy(models=((args.model, args.pretrained),), sets={k: v for k, v in sets.items() if k != "train"})
    t = time.perf_counter()
    data = H.load_study_data(study)
    render = time.perf_counter() - t
    member = load_member(study.get_zoo(), study.get_zoo().base, progress=False)
    datasets = [ds for role in ("id", "val", "shift", "ood", "cue_conflict", "corruptions", "retrieval")
                for ds in data.items(role).values()]
    extract_features(member.loaded, datasets[0], cache=False, progress=False)  # warm-up (not timed)

    t = time.perf_counter()
    for ds in datasets:
        extract_features(member.loaded, ds, cache=False, progress=False)
    extraction = time.perf_counter() - t
    t = time.perf_counter()
    H.evaluate_member(study, data, member, progress=False, cache=False)
    suite = time.perf_counter() - t

    images = sum(len(ds) for ds in datasets)
    print(f"model {args.model} {args.pretrained or '(default weights)'}, torch threads {torch.get_num_threads()}, "
          f"{len(datasets)} datasets, {images} images (rendered once in {render:.1f} s)")
    print(f"one feature-extraction pass: {extraction:7.2f} s  ({images / extraction:.0f} images/s)")
    print(f"full axis suite:             {suite:7.2f} s  (2 prompt sets, every axis, its own feature pass)")
    print(f"ratio suite / extraction:    {suite / extraction:7.2f}x  (target <= 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
