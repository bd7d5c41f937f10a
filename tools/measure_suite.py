"""Measure the conditions of the world suite (clipstudy/data/world_suite.py) with a model: per dataset,
zero-shot accuracy, ECE and mean confidence on the base, new and all classes, and the 16-shot headroom on
the base classes (CoOp and a linear probe against zero-shot). Prints a markdown table.

Zero-shot uses each dataset's own prompt (``ds.template``). ECE has 10 equal-width ``[lower, upper)`` bins,
the DAC/DOR convention (:func:`clipstudy.metrics.calibration_summary`), on logits ``s * cos`` at the model's
logit scale ``s``. Base/new: CoOp's split (labels in order, the first ceil(n/2) are base; docs/protocols.md
§0.5), each group a closed set over its own class names. CoOp and the linear probe are the ``coop`` and
``linear_probe`` recipes at the ``embedded`` scale, trained on ``--shots`` images per base class drawn from the
train split (:func:`clipstudy.experiment.few_shot_set`) and tested on the base test images; CoOp's learned
context is also moved to the new classes (:func:`clipstudy.experiment.transfer_to_classes`).

Every number depends only on the arguments (the suite's ``--seed`` for the images, ``--seeds`` for training)::

    python tools/measure_suite.py                       # every suite dataset, test n 900, seed 1
    python tools/measure_suite.py --n-test 600 --datasets world-shapes,world-scenes
"""
from __future__ import annotations

import argparse
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded")
    p.add_argument("--pretrained", default="")
    p.add_argument("--suite", default="world-suite")
    p.add_argument("--datasets", default="", help="comma-separated suite datasets (default: the whole suite)")
    p.add_argument("--seed", type=int, default=0, help="the suite's image seed")
    p.add_argument("--seeds", default="1", help="comma-separated training seeds (results averaged)")
    p.add_argument("--shots", type=int, default=16)
    p.add_argument("--n-train", type=int, default=None, help="train-split pool (default: the dataset's)")
    p.add_argument("--n-test", type=int, default=900)
    p.add_argument("--methods", default="coop,linear_probe,finetune", help="recipes trained on the base classes")
    p.add_argument("--prompts", default="dataset", choices=("dataset", "photo"),
                   help="dataset: every recipe's single prompt (zero-shot-initialised heads, CoOp's context) is the "
                   "dataset's own, as notebook 01 prompts its ID set (clipstudy.studies.ood.with_id_prompt); photo: "
                   "the recipes' 'a photo of a {}.' prompt")
    p.add_argument("--precision", default="fp32", help="training precision of every recipe (fp32, as notebook 02 "
                   "trains on a CPU; bf16; '' keeps the recipes')")
    p.add_argument("--out", default="", help="also write the table to this file")
    return p.parse_args(argv)


def group_logits(method, feats, mask):
    """Logits ``s * cos`` of ``method`` on the rows ``mask`` of the test features."""
    import torch

    method.eval()
    with torch.no_grad():
        return (float(method.scale) * method.feature_similarities(feats[mask]).float()).numpy()


def summary(logits, labels) -> dict:
    from clipstudy.metrics import calibration_summary

    return calibration_summary(logits, labels, from_logits=True, n_bins=10)


def measure(loaded, name: str, args, seeds) -> dict:
    """Every number of one dataset's row."""
    import numpy as np

    from clipstudy.data import build_dataset
    from clipstudy.experiment import (few_shot_set, get_recipe, subsample_classes, train_method,
                                      transfer_to_classes)
    from clipstudy.features import extract_features
    from clipstudy.methods import build_method
    from clipstudy.studies.ood import with_id_prompt

    test = build_dataset(name, split="test", n=args.n_test, seed=args.seed)
    pool = build_dataset(name, split="train", seed=args.seed, **({"n": args.n_train} if args.n_train else {}))
    feats = extract_features(loaded, test, progress=False).features
    labels = np.asarray(test.targets)
    k = len(test.classnames)
    maps = {g: subsample_classes(k, g) for g in ("all", "base", "new")}
    masks = {g: np.isin(labels, list(m)) for g, m in maps.items()}
    ys = {g: np.array([maps[g][int(t)] for t in labels[masks[g]]]) for g in maps}
    names = {g: tuple(test.classnames[i] for i in m) for g, m in maps.items()}
    row = {"dataset": name, "domain": test.domain, "classes": k, "base": len(names["base"]),
           "template": test.template, "n_test": len(test)}
    for g in maps:
        zs = build_method("zeroshot", loaded, names[g], templates=test.template)
        row[f"zs_{g}"] = summary(group_logits(zs, feats, masks[g]), ys[g])
    for recipe_name in [m for m in args.methods.split(",") if m]:
        recipe = get_recipe(recipe_name, "embedded", **({"precision": args.precision} if args.precision else {}))
        if args.prompts == "dataset":
            recipe = with_id_prompt(recipe, test.template)
        base_acc, new_acc = [], []
        for seed in seeds:
            train = few_shot_set(pool, args.shots, seed, label_map=maps["base"])
            method, _, _ = train_method(loaded, recipe, train, names["base"], seed, progress=False)
            base_acc.append(summary(group_logits(method, feats, masks["base"]), ys["base"])["accuracy"])
            if not method.class_bound_parameters():
                moved = transfer_to_classes(method, loaded, recipe, names["new"], seed=seed)
                new_acc.append(summary(group_logits(moved, feats, masks["new"]), ys["new"])["accuracy"])
        row[recipe_name] = {"base": float(np.mean(base_acc)), "new": float(np.mean(new_acc)) if new_acc else None}
    return row


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def table(rows, methods, loaded, args, seeds, minutes) -> str:
    """The markdown table of every row and their mean over the suite."""
    import numpy as np

    head = ["dataset", "domain", "K (base)"]
    for g in ("base", "new", "all"):
        head += [f"zs {g} acc", f"{g} ECE", f"{g} conf"]
    for m in methods:
        head += [f"{m} base", "Δ base"] + (["coop new"] if m == "coop" else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(r):
        out = []
        for g in ("base", "new", "all"):
            s = r[f"zs_{g}"]
            out += [pct(s["accuracy"]), pct(s["ece"]), pct(s["confidence"])]
        for m in methods:
            out += [pct(r[m]["base"]), f"{100 * (r[m]['base'] - r['zs_base']['accuracy']):+.1f}"]
            if m == "coop":
                out.append(pct(r[m]["new"]))
        return out

    for r in rows:
        lines.append("| " + " | ".join([r["dataset"], r["domain"], f"{r['classes']} ({r['base']})"] + cells(r)) + " |")
    mean = {f"zs_{g}": {k: float(np.mean([r[f"zs_{g}"][k] for r in rows])) for k in ("accuracy", "ece", "confidence")}
            for g in ("base", "new", "all")}
    for m in methods:
        news = [r[m]["new"] for r in rows if r[m]["new"] is not None]
        mean[m] = {"base": float(np.mean([r[m]["base"] for r in rows])), "new": float(np.mean(news)) if news else None}
    lines.append("| " + " | ".join(["**mean**", "", ""] + cells(mean)) + " |")
    zs_all = [r["zs_all"]["accuracy"] for r in rows]
    lines += ["", f"model {args.model} (logit scale {float(loaded.logit_scale):.2f}); suite seed {args.seed}, training "
              f"seeds {','.join(map(str, seeds))}, {args.shots} shots per base class, "
              f"{' and '.join(methods)} at the embedded scale ({'each dataset' if args.prompts == 'dataset' else 'the photo'}"
              f" prompt for heads and context), precision {args.precision or 'of the recipes'}; "
              f"test n = {args.n_test} per dataset; ECE: 10 bins [lower, upper), in %; zero-shot with each "
              f"dataset's template "
              f"({'; '.join(r['dataset'] + ': ' + repr(r['template']) for r in rows)}). Zero-shot accuracy (all "
              f"classes) spans {100 * min(zs_all):.1f}–{100 * max(zs_all):.1f} "
              f"({100 * (max(zs_all) - min(zs_all)):.1f} points). {minutes:.1f} minutes."]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from clipstudy.data.world_suite import suite_datasets
    from clipstudy.models import load_model

    names = [n for n in args.datasets.split(",") if n] or suite_datasets(args.suite)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]
    t0 = time.time()
    loaded = load_model(args.model, args.pretrained)
    rows = []
    for name in names:
        t = time.time()
        rows.append(measure(loaded, name, args, seeds))
        print(f"{name}: {time.time() - t:.0f} s", file=sys.stderr)
    text = table(rows, methods, loaded, args, seeds, (time.time() - t0) / 60)
    print(text)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
