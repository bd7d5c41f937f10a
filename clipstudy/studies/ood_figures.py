"""Figures of the OOD study (notebook 01), each a function of :class:`~clipstudy.studies.ood.OODResults`.

Every figure averages over seeds (and, where it says so, over OOD sets) from the tidy tables; nothing
here computes a score or trains a model.
"""
from __future__ import annotations

import numpy as np

from ..plotting import method_palette, title_figure

DISPLAY = {
    "zeroshot": "Zero-shot", "zeroshot_ensemble": "Zero-shot (ensemble)", "linear_probe": "Linear probe",
    "coop": "CoOp", "cocoop": "CoCoOp", "clip_adapter": "CLIP-Adapter", "finetune": "Full FT", "wise_ft": "WiSE-FT",
    "mcm": "MCM", "msp": "MSP", "max_logit": "max-logit", "energy": "energy", "energy_cos": "energy (cos, T=1)",
    "entropy": "entropy", "entropy_cos": "entropy (cos, T=1)", "variance": "variance",
    "variance_cos": "variance (cos, T=1)", "mahalanobis": "Mahalanobis", "knn": "KNN", "gl_mcm": "GL-MCM",
    "near_ood": "near-OOD", "far_ood": "far-OOD", "texture": "texture-only",
}
VARIANT_ORDER = ("zeroshot", "zeroshot_ensemble", "linear_probe", "coop", "cocoop", "clip_adapter", "finetune",
                 "wise_ft")


def name(key) -> str:
    return DISPLAY.get(key, str(key))


def _order(values, order=VARIANT_ORDER):
    values = list(dict.fromkeys(values))
    return [v for v in order if v in values] + [v for v in values if v not in order]


def max_shots(res) -> int:
    return int(res.accuracy["shots"].max())


def mean_table(res, shots: int | None = None, metric: str = "auroc", group: str = "ood"):
    """variant x scorer x set table of ``metric`` at ``shots`` (default: the largest), mean over seeds."""
    df = res.ood[(res.ood["group"] == group) & (res.ood["shots"] == (shots or max_shots(res)))]
    return df.groupby(["variant", "set", "scorer"])[metric].mean().reset_index()


def heatmaps(res, shots: int | None = None):
    """Figure 1: methods x scores, AUROC (top) and FPR95 (bottom), one panel per OOD set, their mean and
    each covariate-shift set; mean over seeds at ``shots`` shots."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    shots = shots or max_shots(res)
    ood_sets = _order(res.ood.loc[res.ood.group == "ood", "set"], ("near_ood", "far_ood", "texture"))
    shift_sets = _order(res.ood.loc[res.ood.group == "shift", "set"], ())
    panels = [(s, "ood") for s in ood_sets] + [("OOD mean", "ood")] + [(s, "shift") for s in shift_sets]
    width = max(3.3, 0.37 * res.ood["scorer"].nunique())  # room for each scorer's annotated column
    fig, axes = plt.subplots(2, len(panels), figsize=(width * len(panels) + 1, 7.2), squeeze=False)
    for row, (metric, cmap, vmin, vmax) in enumerate((("auroc", "viridis", 0.5, 1.0), ("fpr95", "magma_r", 0, 1))):
        for col, (panel, group) in enumerate(panels):
            t = mean_table(res, shots, metric, group)
            t = t if panel == "OOD mean" else t[t["set"] == panel]
            grid = t.groupby(["variant", "scorer"])[metric].mean().unstack("scorer")
            grid = grid.reindex(index=_order(grid.index), columns=_order(grid.columns, tuple(DISPLAY)))
            ax = axes[row, col]
            sns.heatmap(grid.rename(index=name, columns=name), ax=ax, cmap=cmap, vmin=vmin, vmax=vmax, annot=True,
                        fmt=".2f", annot_kws={"fontsize": 6.5}, cbar=col == len(panels) - 1, linewidths=0.3)
            label = name(panel) + (" (shift: ideal AUROC 0.5)" if group == "shift" else "")
            ax.set_title(f"{metric.upper()} · {label}", fontsize=9)
            ax.set_xlabel("")
            ax.set_ylabel("" if col else "method")
            if col:
                ax.set_yticklabels([])
    title_figure(fig, f"OOD detection per method and score ({shots} shots, mean over seeds)",
                 "higher AUROC and lower FPR95 are better on OOD sets; a covariate-shift set should not be flagged "
                 "(AUROC near 0.5)")
    fig.tight_layout()
    return fig


def shots_curves(res, scorers=("mcm", "msp"), variants=None):
    """Figure 2: AUROC (mean over OOD sets) vs shots for the main methods, mean ± std over seeds; zero-shot
    methods are flat by construction and drawn dashed."""
    import matplotlib.pyplot as plt

    df = res.ood[(res.ood.group == "ood") & res.ood.scorer.isin(scorers)]
    per_seed = df.groupby(["variant", "scorer", "shots", "seed"])["auroc"].mean().reset_index()
    variants = _order(variants or per_seed["variant"].unique())
    colors = method_palette(variants)
    fig, axes = plt.subplots(1, len(scorers), figsize=(4.6 * len(scorers), 3.6), sharey=True, squeeze=False)
    for ax, scorer in zip(axes[0], scorers):
        for v in variants:
            g = per_seed[(per_seed.variant == v) & (per_seed.scorer == scorer)].groupby("shots")["auroc"]
            m, s = g.mean(), g.std().fillna(0)
            style = "--" if v.startswith("zeroshot") else "-"
            ax.plot(m.index, m.values, style, marker="o", ms=3.5, color=colors[v], label=name(v))
            ax.fill_between(m.index, m - s, m + s, color=colors[v], alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(per_seed.shots.unique()), [str(k) for k in sorted(per_seed.shots.unique())])
        ax.set_xlabel("shots per class (K)")
        ax.set_title(name(scorer))
    axes[0, 0].set_ylabel("AUROC (mean over OOD sets)")
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    title_figure(fig, "OOD AUROC vs number of shots", "mean ± std over seeds; dashed: zero-shot (no training)")
    fig.tight_layout()
    return fig


def temperature_sweep(res, variants=("zeroshot", "coop", "finetune"), shots: int | None = None,
                      msp_temperature: float | None = None):
    """Figure 3: MCM AUROC (mean over OOD sets and seeds) against its temperature T, log scale; the best T
    of each method is marked. Returns ``(fig, best)`` with ``best[variant] = (T, auroc)``."""
    import matplotlib.pyplot as plt

    shots = shots or max_shots(res)
    sw = res.sweep[(res.sweep.shots == shots) & res.sweep.variant.isin(variants)]
    sw = sw[~sw.set.isin(res.ood.loc[res.ood.group == "shift", "set"].unique())]
    curves = sw.groupby(["variant", "T"])["auroc"].mean().reset_index()
    colors = method_palette(_order(variants))
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    best = {}
    for v in _order(curves.variant.unique()):
        c = curves[curves.variant == v]
        ax.plot(c["T"], c["auroc"], marker="o", ms=3, color=colors[v], label=name(v))
        i = int(c["auroc"].values.argmax())
        best[v] = (float(c["T"].values[i]), float(c["auroc"].values[i]))
        ax.plot(*best[v], marker="*", ms=13, color=colors[v], mec="k", mew=0.6)
    ax.axvline(1.0, ls=":", c="0.4", lw=1)
    ax.text(1.0, ax.get_ylim()[0], " T = 1 (MCM default)", fontsize=7.5, va="bottom", color="0.3")
    if msp_temperature:
        ax.axvline(msp_temperature, ls="--", c="0.4", lw=1)
        ax.text(msp_temperature, ax.get_ylim()[0], f" T = 1/scale (MSP)", fontsize=7.5, va="bottom", color="0.3",
                rotation=90)
    ax.set_xscale("log")
    ax.set_xlabel("MCM temperature T")
    ax.set_ylabel("AUROC (mean over OOD sets)")
    ax.legend()
    title_figure(fig, f"MCM temperature sweep ({shots} shots)", "stars: best T per method; mean over seeds")
    fig.tight_layout()
    return fig, best


def accuracy_vs_auroc(res, scorer: str = "mcm"):
    """Figure 4: ID accuracy vs OOD AUROC (mean over OOD sets) for every method and shot count (one point
    per method x shots, mean over seeds; marker size grows with the shots)."""
    import matplotlib.pyplot as plt

    o = res.ood[(res.ood.group == "ood") & (res.ood.scorer == scorer)]
    auroc = o.groupby(["variant", "shots", "seed"])["auroc"].mean()
    acc = res.accuracy.set_index(["variant", "shots", "seed"])["id_accuracy"]
    df = auroc.to_frame().join(acc).groupby(["variant", "shots"]).mean().reset_index()
    variants = _order(df.variant.unique())
    colors = method_palette(variants)
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    for v in variants:
        d = df[df.variant == v].sort_values("shots")
        ax.plot(d["id_accuracy"], d["auroc"], "-", color=colors[v], lw=0.8, alpha=0.6)
        ax.scatter(d["id_accuracy"], d["auroc"], s=12 + 9 * np.log2(d["shots"] + 1) ** 2, color=colors[v],
                   edgecolor="k", linewidth=0.4, label=name(v), zorder=3)
    r = np.corrcoef(df["id_accuracy"], df["auroc"])[0, 1] if len(df) > 2 else float("nan")
    ax.set_xlabel("ID accuracy")
    ax.set_ylabel(f"OOD AUROC ({name(scorer)}, mean over OOD sets)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    title_figure(fig, f"ID accuracy vs OOD detection ({name(scorer)})",
                 f"one point per method and shot count (larger = more shots), mean over seeds; Pearson r = {r:.2f}")
    fig.tight_layout()
    return fig


def score_histograms(res, variants=("zeroshot", "coop"), scorers=("mcm", "msp"), shots: int | None = None,
                     seed: int | None = None, logit_scale: float = 100.0):
    """Figure 5: distributions of ID and OOD scores (one cell: ``shots``, ``seed``) for each variant and
    similarity scorer, recomputed from the cell's stored similarities with the study's scorer definitions
    (scorers registered with ``needs_scale`` get ``logit_scale``, the model's)."""
    import matplotlib.pyplot as plt

    from ..scores import SCORERS, score

    shots = shots or max_shots(res)
    seed = seed if seed is not None else int(res.accuracy["seed"].min())
    for scorer in scorers:
        if SCORERS.meta(scorer)["needs"] != "similarities":
            raise ValueError(f"score_histograms recomputes scores from similarities; {scorer!r} needs "
                             f"{SCORERS.meta(scorer)['needs']}")
    fig, axes = plt.subplots(len(scorers), len(variants), figsize=(4.2 * len(variants), 3.0 * len(scorers)),
                             squeeze=False)
    ood_sets = _order(res.ood.loc[res.ood.group == "ood", "set"], ("near_ood", "far_ood", "texture"))
    colors = dict(zip(["id"] + ood_sets, ["0.25", "#d55e00", "#0072b2", "#cc79a7", "#009e73"]))
    for j, v in enumerate(variants):
        arrays = res.sims(v, shots, seed)
        for i, scorer in enumerate(scorers):
            ax = axes[i, j]
            vals = {k: score(scorer, sims=arrays[f"{k}/sims"].astype(np.float64), logit_scale=logit_scale)
                    for k in ["id"] + ood_sets}
            lo, hi = min(x.min() for x in vals.values()), max(x.max() for x in vals.values())
            bins = np.linspace(lo, hi, 40)
            for k, x in vals.items():
                ax.hist(x, bins=bins, density=True, histtype="step" if k != "id" else "stepfilled",
                        alpha=0.35 if k == "id" else 1.0, color=colors[k], lw=1.3, label="ID" if k == "id" else name(k))
            ax.set_title(f"{name(v)} · {name(scorer)}", fontsize=10)
            ax.set_yticks([])
            ax.set_xlabel(f"{name(scorer)} score (higher = more ID)")
    axes[0, -1].legend(loc="upper left", fontsize=8)
    title_figure(fig, f"ID vs OOD score distributions ({shots} shots, seed {seed})")
    fig.tight_layout()
    return fig
