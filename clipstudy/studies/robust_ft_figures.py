"""Figures of the robust fine-tuning study (notebook 03), each a function of
:class:`~clipstudy.studies.robust_ft.RobustFTResults`.

Figures read the tidy tables only (seed means unless a figure shows seeds); nothing here trains or
encodes. "Shift" is the mean over the shifted domains; "reference" the domain fine-tuned on.
"""
from __future__ import annotations

import numpy as np

from ..plotting import method_palette, title_figure

DISPLAY = {"zeroshot_ensemble": "Zero-shot", "lp": "Linear probe", "ft": "FT", "lp_ft": "LP-FT", "flyp": "FLYP", "l2sp": "L2-SP",
           "kd": "KD", "car_ft": "CAR-FT", "lipsum_ft": "Lipsum-FT", "ft+wise": "WiSE-FT",
           "lipsum_ft+wise": "Lipsum-FT + WiSE"}
ORDER = ("zeroshot_ensemble", "lp", "ft", "lp_ft", "flyp", "l2sp", "kd", "car_ft", "lipsum_ft")
_PALETTE_KEYS = {"zeroshot_ensemble": "zeroshot", "lp": "linear_probe", "ft": "finetune", "ft+wise": "wise_ft"}


def name(key) -> str:
    """Display name; weight-sweep variants ``"<recipe>@<w>"`` read ``"<Recipe> λ=<w>"``."""
    key = str(key)
    if "@" in key:
        base, weight = key.split("@", 1)
        return f"{DISPLAY.get(base, base)} λ={weight}"
    return DISPLAY.get(key, key)


def ordered(values) -> list:
    """Known methods in :data:`ORDER`, each followed by its weight-sweep variants; then the rest."""
    values = list(dict.fromkeys(values))
    out = []
    for v in ORDER:
        if v in values:
            out.append(v)
        out += sorted((x for x in values if x.startswith(f"{v}@")), key=lambda x: float(x.split("@", 1)[1]))
    return out + [v for v in values if v not in out]


def colors(keys) -> dict:
    """A colour per method; a weight-sweep variant ``"<recipe>@<w>"`` gets its recipe's colour, lighter for a
    weight below the recipe's own and darker above it."""
    keys = list(dict.fromkeys(keys))
    bases = [str(k).split("@", 1)[0] for k in keys]
    pal = method_palette([_PALETTE_KEYS.get(b, b) for b in bases])
    out = {}
    for k, b in zip(keys, bases):
        c = np.asarray(pal[_PALETTE_KEYS.get(b, b)][:3], float)
        if "@" in str(k):
            toward = 1.0 if float(str(k).split("@", 1)[1]) < 1.0 else 0.0
            c = 0.55 * c + 0.45 * toward
        out[k] = tuple(c)
    return out


def correlation(x, y) -> dict:
    """Pearson r and Spearman rho of two sequences (NaN pairs dropped), and the number of points."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "n": int(ok.sum())}
    return {"pearson": float(stats.pearsonr(x[ok], y[ok])[0]), "spearman": float(stats.spearmanr(x[ok], y[ok])[0]),
            "n": int(ok.sum())}


def final_models(res):
    """The trained methods themselves (no WiSE interpolations): one row per (method, domain), mean over seeds."""
    df = res.metrics[res.metrics.variant == res.metrics.method]
    return df.groupby(["method", "domain", "reference"], sort=False).mean(numeric_only=True).reset_index()


def accuracy_table(res):
    """Figure 1: heatmaps of accuracy and NLL per method x domain (reference first, then the shifts and
    their mean), and bars of reference vs shift-average accuracy per method; seed means."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = final_models(res)
    methods = ordered(df.method)
    domains = res.domains
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.42 * len(methods) + 2.2),
                             gridspec_kw={"width_ratios": [len(domains) + 1, len(domains) + 1, 3.2]})
    for ax, metric, cmap, fmt in ((axes[0], "accuracy", "viridis", ".1%"), (axes[1], "nll", "magma_r", ".2f")):
        grid = df.pivot(index="method", columns="domain", values=metric).reindex(index=methods, columns=domains)
        grid["shift mean"] = grid[domains[1:]].mean(axis=1)
        sns.heatmap(grid.rename(index=name), ax=ax, cmap=cmap, annot=True, fmt=fmt, cbar=False,
                    annot_kws={"fontsize": 8})
        ax.set_title(f"{metric.upper() if metric == 'nll' else metric} (reference: {res.reference})")
        ax.set(xlabel="", ylabel="")
    s = res.summary()
    s = s[s.variant == s.method].set_index("method").reindex(methods)
    y = np.arange(len(methods))
    axes[2].barh(y - 0.2, s.ref_accuracy, height=0.4, label="reference", color="0.88", edgecolor="0.35")
    axes[2].barh(y + 0.2, s.shift_accuracy, height=0.4, label="shift mean", color=[colors(methods)[m] for m in methods])
    axes[2].set(yticks=y, yticklabels=[name(m) for m in methods], xlabel="accuracy", xlim=(0, 1))
    axes[2].invert_yaxis()
    axes[2].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=9)
    title_figure(fig, "Accuracy and NLL per method and domain",
                 f"fine-tuned on {res.reference}; mean over {res.metrics.seed.nunique()} seed(s)")
    fig.tight_layout()
    return fig


def checkpoints(res):
    """Every evaluated model of every seed (trained methods and WiSE interpolations): reference/shift
    accuracy, energy gaps and distortion (shift = mean over shifted domains)."""
    s = res.summary(by_seed=True)
    s["kind"] = np.where(s.variant.str.endswith("+wise"), "WiSE", "final")
    return s


def scatter_vs_shift(res, x: str = "shift_energy_gap", xlabel: str = "energy gap (shifted domains)",
                     title: str = "Energy gap vs shifted-domain accuracy", log: bool = True):
    """Figures 2 and 3: ``x`` (energy gap or feature distortion, on the shifted domains) against shift
    accuracy for every evaluated model (methods x seeds; WiSE interpolations as small dots), with Pearson r
    (of the raw values, whatever the axis) and Spearman rho over all of them (FLYP's gap is measured with its
    own fine-tuned text tower, :func:`clipstudy.studies.robust_ft.evaluate_variant`)."""
    import matplotlib.pyplot as plt

    pts = checkpoints(res)
    pts["_x"] = _pos(pts[x], log)
    pal = colors(ordered(pts.method))
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for kind in ("WiSE", "final"):  # interpolations below, trained methods on top
        for method in ordered(pts.method):
            h = pts[(pts.method == method) & (pts.kind == kind)]
            if h.empty:
                continue
            size, alpha = (60, 0.9) if kind == "final" else (16, 0.5)
            ax.scatter(h._x, h.shift_accuracy, s=size, alpha=alpha, label=name(method) if kind == "final" else None,
                       facecolors=pal[method], edgecolors=pal[method], linewidths=1.2)
    r = correlation(pts[x], pts.shift_accuracy)
    if log:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel + (" (log; 0 drawn at the smallest positive value / 3)" if log else ""),
           ylabel="shift accuracy (mean over shifted domains)")
    ax.legend(fontsize=8, ncol=2, loc="best")
    title_figure(fig, title, f"Pearson r = {r['pearson']:.2f}, Spearman rho = {r['spearman']:.2f} over {r['n']} "
                             "models (methods x seeds, WiSE points small)")
    fig.tight_layout()
    return fig, r


def _pos(values, log: bool):
    """Values for a log axis: zeros (the zero-shot tower itself) drawn at a third of the smallest positive."""
    v = np.asarray(values, float)
    if not log or not (v > 0).any():
        return v
    return np.where(v > 0, v, v[v > 0].min() / 3)


def wise_curves(res, methods=("ft", "lipsum_ft")):
    """Figure 4: reference vs shift accuracy along the WiSE-FT path alpha = 0 ... 1 (mean over seeds) of each
    method in ``methods``; alpha = 0 is the zero-shot model, alpha = 1 the fine-tuned one."""
    import matplotlib.pyplot as plt

    s = res.summary()
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    pal = colors(list(methods))
    for m in methods:
        path = s[(s.method == m) & (s.variant == f"{m}+wise")].sort_values("alpha")
        if path.empty:
            continue
        ax.plot(path.ref_accuracy, path.shift_accuracy, "-o", color=pal[m], label=f"{name(m)} + WiSE", ms=4)
        for _, row in path.iterrows():
            ax.annotate(f"{row.alpha:g}", (row.ref_accuracy, row.shift_accuracy), fontsize=7, xytext=(3, 3),
                        textcoords="offset points", color=pal[m])
    others = s[(s.variant == s.method) & ~s.method.isin(methods)]
    for _, row in others.iterrows():
        ax.scatter(row.ref_accuracy, row.shift_accuracy, marker="x", color="0.4", s=25)
        ax.annotate(name(row.method), (row.ref_accuracy, row.shift_accuracy), fontsize=7, color="0.4",
                    xytext=(3, -8), textcoords="offset points")
    ax.set(xlabel=f"reference accuracy ({res.reference})", ylabel="shift accuracy (mean)")
    ax.legend(loc="best")
    title_figure(fig, "WiSE-FT: weight interpolation with the zero-shot model",
                 "numbers: mixing weight alpha (0 = zero-shot, 1 = fine-tuned); crosses: the other methods; seed means")
    fig.tight_layout()
    return fig


def training_dynamics(res, methods=("ft", "lipsum_ft")):
    """Figure 5: reference accuracy, shift accuracy and energy gap (reference and shifted domains) over the
    training steps of ``methods`` (the runs that recorded them; step 0 = the zero-shot model)."""
    import matplotlib.pyplot as plt

    h = res.history
    if h.empty or "ref_accuracy" not in h:
        raise ValueError("no training run recorded its dynamics (RobustFTStudy.dynamics / dynamics_runs)")
    h = h.dropna(subset=["ref_accuracy"])
    h = h[h.method.isin(methods)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    pal = colors(list(methods))
    panels = (("ref_accuracy", "reference accuracy"), ("shift_accuracy", "shift accuracy (mean)"),
              ("shift_energy_gap", "energy gap"))
    for ax, (col, label) in zip(axes, panels):
        for m, g in h.groupby("method", sort=False):
            g = g.groupby("step", as_index=False)[[col, "ref_energy_gap"]].mean()
            ax.plot(g.step, g[col], "-o", ms=3, color=pal[m], label=name(m))
            if col == "shift_energy_gap":
                ax.plot(g.step, g.ref_energy_gap, "--", color=pal[m], alpha=0.6, label=f"{name(m)} (reference)")
        ax.set(xlabel="training step", ylabel=label)
    axes[2].legend(fontsize=8)
    seeds = sorted(int(s) for s in h.seed.unique())
    title_figure(fig, "Training dynamics: FT vs Lipsum-FT",
                 f"seed(s) {seeds}; probe sets of a few images per domain; dashed: energy gap on the reference domain")
    fig.tight_layout()
    return fig
