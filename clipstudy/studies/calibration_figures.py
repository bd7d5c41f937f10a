"""Figures of the calibration study (notebook 02), each drawn from :class:`~clipstudy.studies.calibration.CalibrationResults`.

Every function returns a matplotlib figure; values are shown in percent (ECE, accuracy, confidence gap)
and error bars are one standard deviation over seeds. Results of a suite (several datasets averaged,
:func:`clipstudy.studies.calibration.combine`) are drawn as the paper's tables are written: each value is the
mean over the datasets (reliability bins pooled over them), and the titles say over how many;
:func:`plot_per_dataset` shows each dataset.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

FAMILY_NAMES = {"zeroshot": "Zero-shot", "coop": "CoOp", "cocoop": "CoCoOp", "kgcoop": "KgCoOp", "maple": "MaPLe",
                "deep_text_prompt": "Deep text\nprompts*"}
FAMILY_ORDER = tuple(FAMILY_NAMES)
DOR_COLORS = {False: "#8c8c8c", True: "#0173b2"}
MODE_ORDER = ("near", "far", "random", "oracle")


def _finish(fig, title: str, caption: str | None = None, top: float = 0.9) -> None:
    """Title and caption (:func:`clipstudy.plotting.title_figure`) above a tight layout that leaves them room."""
    from ..plotting import title_figure

    fig.tight_layout(rect=(0, 0, 1, top))
    title_figure(fig, title, caption)


def _over(results) -> str:
    """``" (mean over 7 datasets)"`` for a suite's averaged results, ``""`` for one dataset."""
    k = getattr(results, "n_datasets", 1)
    return f" (mean over {k} datasets)" if k > 1 else ""


def _sweeps(results):
    """``(results of the sweeps, title suffix)``: a suite that ran the λ and outlier-pool sweeps on some of its
    datasets keeps them in ``results.ablation`` (:attr:`~clipstudy.studies.calibration.CalibrationResults.sweeps`),
    with those datasets' own main cells as references."""
    sw = getattr(results, "sweeps", results)
    if sw is results:
        return results, _over(results)
    return sw, f" ({', '.join(sw.datasets)}{'; mean' if sw.n_datasets > 1 else ''})"


def method_name(family: str, dor: bool) -> str:
    """Display name: ``"CoOp"``, ``"CoOp+DOR"``, ..."""
    return FAMILY_NAMES.get(family, family).replace("\n", " ") + ("+DOR" if dor else "")


def _families(df) -> list[str]:
    present = list(dict.fromkeys(df["family"]))
    return [f for f in FAMILY_ORDER if f in present] + [f for f in present if f not in FAMILY_ORDER]


def _seed_table(results, metric: str):
    """Per (family, dor, seed): the metric for base and new, their mean (``avg``) and, for accuracy, the
    harmonic mean (``hm``)."""
    from ..metrics import harmonic_mean

    df = results.main()
    wide = df.pivot_table(index=["family", "dor", "seed"], columns="group", values=metric).reset_index()
    wide["avg"] = (wide["base"] + wide["new"]) / 2
    wide["hm"] = harmonic_mean(wide["base"].to_numpy(), wide["new"].to_numpy())
    return wide


def _grouped_bars(ax, wide, column: str, families: Sequence[str], scale: float = 100.0) -> None:
    width = 0.38
    for j, dor in enumerate((False, True)):
        sub = wide[wide.dor == dor]
        for i, fam in enumerate(families):
            vals = sub.loc[sub.family == fam, column].to_numpy() * scale
            if len(vals) == 0:
                continue
            x = i + (j - 0.5) * width
            ax.bar(x, vals.mean(), width, yerr=vals.std(ddof=1) if len(vals) > 1 else None, capsize=2,
                   color=DOR_COLORS[dor], label=("with DOR" if dor else "without DOR"))
            ax.text(x, vals.mean(), f"{vals.mean():.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(families)), [FAMILY_NAMES.get(f, f) for f in families], fontsize=8)


def plot_base_new(results, title: str = "Base vs new classes: calibration and accuracy"):
    """Figure 1: ECE (base, new, their average) and accuracy (base, new, harmonic mean) per method,
    with and without DOR (mean ± std over seeds)."""
    import matplotlib.pyplot as plt


    ece, acc = _seed_table(results, "ece"), _seed_table(results, "accuracy")
    families = _families(results.main())
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.4), sharey="row")
    for ax, col, label in zip(axes[0], ("base", "new", "avg"), ("base", "new", "average of base and new")):
        _grouped_bars(ax, ece, col, families)
        ax.set_title(f"ECE, {label}")
    for ax, col, label in zip(axes[1], ("base", "new", "hm"), ("base", "new", "harmonic mean")):
        _grouped_bars(ax, acc, col, families)
        ax.set_title(f"accuracy, {label}")
        ax.set_ylim(max(0, np.nanmin(acc[["base", "new", "hm"]].to_numpy()) * 100 - 10), 100)
    axes[0, 0].set_ylabel("ECE (%, 10 bins)")
    axes[1, 0].set_ylabel("top-1 (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.legend(uniq.values(), uniq.keys(), loc="upper right", ncol=2, bbox_to_anchor=(1, 0.97))
    _finish(fig, title + _over(results), "bars: mean over seeds, whiskers: std; *deep text prompts = MaPLe's "
                                         "language branch alone (not MaPLe)" if "deep_text_prompt" in families else
                 "bars: mean over seeds, whiskers: std")
    return fig


def pooled_bins(results, family: str, dor: bool, group: str):
    """Reliability bins of one method and group, pooled over seeds: ``(lower, upper, count, confidence,
    accuracy)`` arrays (NaN means in empty bins)."""
    r = results.reliability
    sub = r[(r.role == "main") & (r.family == family) & (r.dor == dor) & (r.group == group)]
    g = sub.groupby("bin").agg(lower=("lower", "first"), upper=("upper", "first"), count=("count", "sum"),
                               conf=("confidence_sum", "sum"), corr=("correct_sum", "sum"))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (g["lower"].to_numpy(), g["upper"].to_numpy(), g["count"].to_numpy(),
                (g["conf"] / g["count"]).to_numpy(), (g["corr"] / g["count"]).to_numpy())


def plot_reliability(results, methods: Sequence[tuple[str, bool]] = (("coop", False), ("kgcoop", False),
                                                                     ("coop", True)),
                     title: str = "Reliability diagrams (all seeds pooled)"):
    """Figure 2: accuracy (bars) and mean confidence (orange ticks) per confidence bin for base (top) and
    new (bottom) classes; bars above their tick are underconfident bins, below it overconfident. Grey
    bars at the bottom: the share of images per bin (scaled)."""
    import matplotlib.pyplot as plt


    fig, axes = plt.subplots(2, len(methods), figsize=(3.3 * len(methods), 6.4), sharex=True, sharey=True,
                             squeeze=False)
    for j, (family, dor) in enumerate(methods):
        for i, group in enumerate(("base", "new")):
            ax = axes[i, j]
            lo, hi, n, conf, acc = pooled_bins(results, family, dor, group)
            ok = n > 0
            ax.bar(lo[ok], acc[ok], hi[ok] - lo[ok], align="edge", color=DOR_COLORS[dor], alpha=0.85,
                   edgecolor="white", label="accuracy")
            ax.hlines(conf[ok], lo[ok], hi[ok], color="#d55e00", lw=2, label="mean confidence")
            ax.bar(lo[ok], 0.15 * n[ok] / n.max(), hi[ok] - lo[ok], align="edge", color="0.75", edgecolor="white",
                   label="share of images")
            ax.plot([0, 1], [0, 1], "k--", lw=1)
            e = np.nansum(n[ok] / n.sum() * np.abs(acc[ok] - conf[ok])) * 100
            gap = np.nansum(n[ok] * (conf[ok] - acc[ok])) / n.sum() * 100
            ax.text(0.04, 0.93, f"ECE {e:.1f}%\nconf−acc {gap:+.1f}%", transform=ax.transAxes, va="top", fontsize=8)
            ax.set_title(f"{method_name(family, dor)}, {group}")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            if j == 0:
                ax.set_ylabel("accuracy")
            if i == 1:
                ax.set_xlabel("confidence")
    axes[0, -1].legend(loc="lower right", fontsize=7)
    k = getattr(results, "n_datasets", 1)
    if k > 1 and title.endswith("(all seeds pooled)"):
        title = title.replace("(all seeds pooled)", f"(all seeds and the {k} datasets pooled)")
    _finish(fig, title, "10 equal-width [lower, upper) bins; ECE and confidence − accuracy of the pooled bins")
    return fig


def plot_fd_training(results, methods: Sequence[tuple[str, bool]] = (("coop", False), ("kgcoop", False),
                                                                     ("coop", True)),
                     title: str = "Feature divergence of the class text features during training"):
    """Figure 3: FD (Def. 3.1) of the learned new-class (left) and base-class (right) text features over
    training epochs, mean ± std over seeds; dashed: the frozen hand-crafted prompt's FD."""
    import matplotlib.pyplot as plt


    h = results.history
    # datasets of a suite have different training-set sizes (shots x base classes), so their epochs differ;
    # their histories are averaged per logged step (the recipes' step budgets are the same), drawn against it
    x = "step" if getattr(results, "n_datasets", 1) > 1 and "step" in h else "epoch"
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, group in zip(axes, ("new", "base")):
        col = f"fd_{group}"
        for k, (family, dor) in enumerate(methods):
            sub = h[(h.role == "main") & (h.family == family) & (h.dor == dor)]
            if sub.empty or sub[col].isna().all():
                continue
            init = results.metrics
            init = init[(init.role == "main") & (init.family == family) & (init.dor == dor) & (init.group == group)]
            start = init[["seed", "fd_init"]].rename(columns={"fd_init": col}).assign(**{x: 0.0})
            full = _with_start(sub, start, col, x)
            stats = full.groupby(x)[col].agg(["mean", "std"]).reset_index()
            c = colors[k % len(colors)]
            ax.plot(stats[x], stats["mean"], color=c, label=method_name(family, dor))
            ax.fill_between(stats[x], stats["mean"] - stats["std"].fillna(0),
                            stats["mean"] + stats["std"].fillna(0), color=c, alpha=0.2)
        if group in results.fd_zeroshot:
            ax.axhline(results.fd_zeroshot[group], color="k", ls="--", lw=1, label="zero-shot prompt")
        ax.set_title(f"{group} classes")
        ax.set_xlabel(x)
    axes[0].set_ylabel("FD (mean distance to nearest classes)")
    axes[0].legend(fontsize=8)
    _finish(fig, title + _over(results), "FD = mean cosine distance of each class text feature to its M nearest "
                                         f"other class text features; {x} 0 = before training")
    return fig


def _with_start(sub, start, col, x: str = "epoch"):
    import pandas as pd

    return pd.concat([start[["seed", x, col]], sub[["seed", x, col]]], ignore_index=True)


def plot_lambda(results, family: str = "coop", title: str = "DOR weight λ"):
    """Figure 4: new-class ECE and accuracy of ``family``+DOR against λ (λ = 0: the method without DOR);
    base-class values dashed, zero-shot as a grey line."""
    import matplotlib.pyplot as plt

    results, where = _sweeps(results)
    m = results.metrics
    sweep = m[(m.family == family) & ((m.role == "lambda") | ((m.role == "main") & ~m.dor))]
    sweep = sweep.assign(lam=np.where(sweep.dor, sweep.lam, 0.0)).drop_duplicates(["lam", "seed", "group"])
    zs = m[(m.role == "main") & (m.family == "zeroshot")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric, label in zip(axes, ("ece", "accuracy"), ("ECE (%)", "top-1 (%)")):
        for group, ls in (("new", "-"), ("base", "--")):
            s = sweep[sweep.group == group].groupby("lam")[metric].agg(["mean", "std"]).reset_index()
            ax.errorbar(s["lam"], s["mean"] * 100, yerr=s["std"].fillna(0) * 100, ls=ls, marker="o", capsize=2,
                        color=DOR_COLORS[True], label=f"{group} classes")
            z = zs[zs.group == group][metric]
            if len(z):
                ax.axhline(z.mean() * 100, color="0.5", ls=ls, lw=1, label=f"zero-shot, {group}")
        ax.set_xscale("symlog", linthresh=0.4, linscale=0.5)
        ticks = sorted(set(sweep["lam"]))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlim(-0.1, max(ticks) * 1.3)
        ax.set_xlabel("λ (0 = without DOR)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    _finish(fig, f"{title}: {method_name(family, True)}{where}", "mean ± std over seeds")
    return fig


def plot_vocabulary(results, family: str = "coop", title: str = "Outlier vocabulary"):
    """Figure 5: new/base ECE and new accuracy of ``family``+DOR per outlier pool (near, far, random,
    oracle = the true new-class names); dashed: the method without DOR."""
    import matplotlib.pyplot as plt

    results, where = _sweeps(results)
    m = results.metrics
    abl = m[(m.family == family) & (m.role == "mode")]
    ref = m[(m.family == family) & (m.role == "main") & ~m.dor]
    modes = [x for x in MODE_ORDER if x in set(abl["mode"])]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (group, metric) in zip(axes, (("new", "ece"), ("new", "accuracy"), ("base", "ece"))):
        vals = [abl[(abl["mode"] == mo) & (abl.group == group)][metric].to_numpy() * 100 for mo in modes]
        ax.bar(range(len(modes)), [v.mean() for v in vals], yerr=[v.std(ddof=1) if len(v) > 1 else 0 for v in vals],
               color=DOR_COLORS[True], capsize=2)
        for i, v in enumerate(vals):
            ax.text(i, v.mean(), f"{v.mean():.1f}", ha="center", va="bottom", fontsize=8)
        r = ref[ref.group == group][metric]
        if len(r):
            ax.axhline(r.mean() * 100, color="k", ls="--", lw=1, label=method_name(family, False))
        ax.set_xticks(range(len(modes)), modes)
        ax.set_title(f"{group} {'ECE' if metric == 'ece' else 'accuracy'} (%)")
        if metric == "accuracy" and vals:
            low = min(v.min() for v in vals if len(v))
            ax.set_ylim(max(0, min(low, r.mean() * 100 if len(r) else low) - 5), 100)
    axes[0].legend(fontsize=8)
    _finish(fig, f"{title}: {method_name(family, True)} with different outlier pools{where}",
            "mean ± std over seeds")
    return fig


def plot_confidence_gap(results, title: str = "Confidence minus accuracy"):
    """Figure 6: mean confidence minus accuracy per method and class group (> 0 overconfident, < 0
    underconfident), mean ± std over seeds."""
    import matplotlib.pyplot as plt


    df = results.main()
    keys = [(f, d) for f in _families(df) for d in (False, True) if len(df[(df.family == f) & (df.dor == d)])]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(keys) + 1.5))
    for j, (group, color) in enumerate((("base", "#029e73"), ("new", "#d55e00"))):
        for i, (fam, dor) in enumerate(keys):
            v = df[(df.family == fam) & (df.dor == dor) & (df.group == group)]["gap"].to_numpy() * 100
            y = i + (j - 0.5) * 0.38
            ax.barh(y, v.mean(), 0.38, xerr=v.std(ddof=1) if len(v) > 1 else None, color=color, capsize=2,
                    label=f"{group} classes" if i == 0 else None)
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(range(len(keys)), [method_name(f, d) for f, d in keys])
    ax.invert_yaxis()
    ax.set_xlabel("confidence − accuracy (percentage points)")
    ax.legend(fontsize=8, loc="lower right")
    _finish(fig, title + _over(results), "> 0: overconfident, < 0: underconfident; mean ± std over seeds")
    return fig


PER_DATASET_METRICS = {"ece": ("ECE (%)", "Reds", False), "gap": ("confidence − accuracy (pp)", "RdBu_r", True),
                       "accuracy": ("top-1 (%)", "Greens", False)}
"""Per metric of :func:`plot_per_dataset`: the colour-bar label, the colour map and whether it is centred on 0."""


def plot_per_dataset(results, metrics: Sequence[str] = ("ece", "gap", "accuracy"),
                     title: str = "Per dataset: base and new classes"):
    """Figure 7: one heat map per metric (rows) and class group (columns: base, new): datasets (rows, then
    their mean, the suite average of Figures 1-6) against main methods (columns), each cell the mean over
    seeds (:func:`clipstudy.studies.calibration.dataset_table`), annotated. ``gap`` (confidence − accuracy)
    is coloured around 0: red overconfident, blue underconfident."""
    import matplotlib.pyplot as plt

    from .calibration import dataset_table, main_methods

    df = results.main()
    methods = main_methods(results)
    facet = df.drop_duplicates("method").set_index("method")
    names = [method_name(facet.loc[m, "family"], bool(facet.loc[m, "dor"])) for m in methods]
    tables = {(m, g): dataset_table(results, m, g).reindex(columns=methods) for m in metrics for g in ("base", "new")}
    n_rows = len(next(iter(tables.values())))
    size = (2.2 + 1.5 * len(methods), 0.9 + 0.42 * n_rows * len(metrics))
    fig, axes = plt.subplots(len(metrics), 2, figsize=size, squeeze=False)
    for i, metric in enumerate(metrics):
        label, cmap, centred = PER_DATASET_METRICS.get(metric, (metric, "viridis", False))
        vals = np.concatenate([tables[metric, g].to_numpy(dtype=float).ravel() for g in ("base", "new")])
        vals = vals[np.isfinite(vals)]
        if centred:
            lim = max(1e-9, float(np.abs(vals).max()) if len(vals) else 1.0)
            vmin, vmax = -lim, lim
        else:
            vmin, vmax = (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)
        for j, group in enumerate(("base", "new")):
            ax, t = axes[i, j], tables[metric, group]
            a = t.to_numpy(dtype=float)
            im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            for r in range(a.shape[0]):
                for c in range(a.shape[1]):
                    if np.isfinite(a[r, c]):
                        red, green, blue, _ = im.cmap(im.norm(a[r, c]))
                        ink = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"
                        ax.text(c, r, f"{a[r, c]:+.1f}" if centred else f"{a[r, c]:.1f}", ha="center", va="center",
                                fontsize=7, color=ink)
            ax.set_xticks(range(len(methods)), names, rotation=35, ha="right", fontsize=7)
            ax.set_yticks(range(len(t.index)), list(t.index), fontsize=7)
            if "mean" in t.index:
                ax.axhline(len(t.index) - 1.5, color="k", lw=1)
            ax.set_title(f"{label}, {group} classes", fontsize=9)
            if j == 1:
                fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    _finish(fig, title, "each cell: mean over seeds; last row: the mean over the datasets (the suite average of "
                        "the other figures)", top=0.94)
    return fig
