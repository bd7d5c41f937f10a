"""Figures of the holistic robustness study (notebook 04), each a function of
:class:`~clipstudy.studies.holistic.HolisticResults`.

As in Tu et al.'s figures, each axis is a scatter of the axis metric against ID accuracy with one point per
model: the colour says which factor the model varies (black: the base model, grey: reference models),
the marker tells models of one factor apart, and hollow markers are zero-shot models evaluated with the
prompt ensemble instead of the single prompt; grey crosses are the baseline family (supervised, photos only)
that the effective-robustness lines are fitted on. Nothing here computes a metric or trains a model.
"""
from __future__ import annotations

import numpy as np

from ..plotting import title_figure

FACTOR_COLORS = {"base": "#000000", "architecture": "#0072b2", "training_distribution": "#e69f00",
                 "training_set_size": "#009e73", "fine_tuning": "#d55e00", "contrastive_loss": "#cc79a7",
                 "test_time_prompts": "#56b4e9", "reference": "#8c8c8c"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
METRIC_LABELS = {
    "id_accuracy": "ID accuracy ↑", "shift_accuracy": "domain-shift accuracy ↑", "factor_er": "factor eff. robustness ↑",
    "shift_er": "shift eff. robustness ↑", "shape_bias": "shape bias", "ood_auroc_mcm": "OOD AUROC, MCM ↑",
    "ood_auroc_msp": "OOD AUROC, MSP ↑", "ood_fpr95_mcm": "OOD FPR95, MCM ↓", "ood_fpr95_msp": "OOD FPR95, MSP ↓",
    "ece_id": "ID ECE ↓",
    "ece_shift_ts": "shift ECE after TS ↓", "nll_shift_ts": "shift NLL after TS ↓", "retrieval_r1": "retrieval R@1 ↑",
    "common_relative": "common corr. (rel.) ↑", "geometric_relative": "geometric corr. (rel.) ↑",
}
LOWER_IS_BETTER = ("ood_fpr95_mcm", "ood_fpr95_msp", "ece_id", "ece_id_ts", "ece_shift", "ece_shift_ts", "nll_shift_ts", "nll_id")


def entry_styles(res) -> dict[str, dict]:
    """Colour, marker, fill and label of every entry (a model under one prompt set)."""
    by_factor: dict[str, list] = {}
    styles = {}
    for row in res.models.itertuples():
        models = by_factor.setdefault(row.factor, [])
        if row.model not in models:
            models.append(row.model)
        color = FACTOR_COLORS.get(row.factor, "#444444")
        hollow = row.prompts not in (res.default_prompts, "fine-tuned")
        label = row.model if row.factor in ("base", "reference") else f"{row.model} ({row.factor.replace('_', ' ')})"
        styles[row.entry] = {"color": color, "marker": MARKERS[models.index(row.model) % len(MARKERS)],
                             "hollow": hollow, "label": label, "model": row.model}
    return styles


def _scatter(ax, res, x: dict, y: dict, styles: dict, size: float = 42, alpha: float = 1.0):
    for entry, st in styles.items():
        if entry not in x or entry not in y or not (np.isfinite(x[entry]) and np.isfinite(y[entry])):
            continue
        ax.scatter(x[entry], y[entry], s=size, marker=st["marker"], alpha=alpha, linewidths=1.2, zorder=3,
                   facecolors="none" if st["hollow"] else st["color"], edgecolors=st["color"])


def _legend(fig, res, styles: dict, ncol: int = 5, extra=()) -> None:
    from matplotlib.lines import Line2D

    seen, handles = set(), []
    for st in styles.values():
        if st["model"] in seen:
            continue
        seen.add(st["model"])
        handles.append(Line2D([], [], ls="", marker=st["marker"], color=st["color"], label=st["label"], ms=7))
    handles.append(Line2D([], [], ls="", marker="o", mfc="none", color="0.3", label="hollow: prompt ensemble", ms=7))
    handles += list(extra)
    # below the figure's one-line caption (title_figure writes it at y = -0.02, top-aligned)
    fig.legend(handles=handles, loc="upper center", ncol=ncol, bbox_to_anchor=(0.5, -0.07), fontsize=8.5)


def _col(df, value: str, index: str = "entry") -> dict:
    return df.set_index(index)[value].to_dict()


BASELINE_STYLE = {"marker": "x", "color": "#7f7f7f", "s": 38, "linewidths": 1.4, "zorder": 2}


def factor_robustness(res, n_cols: int = 4):
    """Axis 1: per visual factor, accuracy on its hardest value (lowest mean over zoo models) against the
    factor set's overall accuracy, with the baseline family (grey crosses: supervised, photos only) and the
    line fitted on it alone on logit axes, from which effective robustness is measured (Taori et al. 2020);
    last panel: each model's mean effective robustness over every factor value."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from ..analysis.robustness import line_prediction

    f, bf = res.factors, res.baseline_factors
    lines = res.factor_lines if res.factor_lines is not None and len(res.factor_lines) else None
    factors = list(dict.fromkeys(f.factor))
    n = len(factors) + 1
    rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(rows, n_cols, figsize=(3.3 * n_cols, 3.0 * rows + 0.8), squeeze=False)
    styles = entry_styles(res)
    for ax, factor in zip(axes.flat, factors):
        g = f[f.factor == factor]
        value = g.groupby("value")["accuracy"].mean().idxmin()
        h = g[g.value == value]
        _scatter(ax, res, _col(h, "overall"), _col(h, "accuracy"), styles)
        xs, ys = list(h["overall"]), list(h["accuracy"])
        if bf is not None and len(bf):
            b = bf[(bf.factor == factor) & (bf.value == value)]
            ax.scatter(b["overall"], b["accuracy"], **BASELINE_STYLE)
            xs, ys = xs + list(b["overall"]), ys + list(b["accuracy"])
        line = None if lines is None else lines[(lines.factor == factor) & (lines.value == value)]
        if line is not None and len(line) and np.isfinite(line["slope"].iloc[0]):
            grid = np.linspace(max(1e-3, min(xs) - 0.02), min(1 - 1e-3, max(xs) + 0.02), 100)
            ax.plot(grid, line_prediction(grid, line["slope"].iloc[0], line["intercept"].iloc[0],
                                          line["transform"].iloc[0]), color="0.4", lw=1, ls="--", zorder=1)
        else:
            ax.text(0.03, 0.95, "no baseline line", transform=ax.transAxes, fontsize=7.5, va="top", color="0.4")
        ax.plot([0, 1], [0, 1], color="0.85", lw=0.8, zorder=0)
        ax.set_title(f"{factor} = {value}", fontsize=10)
        _limits(ax, xs, ys)
    ax = axes.flat[len(factors)]
    er = res.summary.set_index("entry")
    _scatter(ax, res, er["id_accuracy"].to_dict(), er["factor_er"].to_dict(), styles)
    if bf is not None and len(bf) and res.baseline_models is not None and len(res.baseline_models):
        mean_er = bf.groupby("entry")["effective_robustness"].mean()
        acc = res.baseline_models.set_index("entry")["id_accuracy"]
        ax.scatter(acc.reindex(mean_er.index), mean_er, **BASELINE_STYLE)
    ax.axhline(0, color="0.4", lw=1, ls="--")
    ax.set_title("mean effective robustness", fontsize=10)
    for a in axes.flat[n:]:
        a.axis("off")
    for a in axes[:, 0]:
        a.set_ylabel("accuracy on the factor value")
    for a in axes[-1]:
        a.set_xlabel("overall accuracy")
    ax.set_xlabel("ID accuracy")
    ax.set_ylabel("effective robustness (mean over values)")
    _legend(fig, res, styles, extra=[Line2D([], [], ls="", marker="x", color=BASELINE_STYLE["color"], ms=7,
                                            label="baseline: supervised, photos only")])
    title_figure(fig, "Visual-factor robustness: accuracy on each factor's hardest value vs overall accuracy",
                 "dashed: line fitted on the baseline family only (grey crosses), logit axes; effective robustness = "
                 "distance above it (Taori et al. 2020; Tu et al. axis 1)")
    fig.tight_layout()
    return fig


def _limits(ax, x, y, pad: float = 0.05):
    v = np.concatenate([np.asarray(x, float), np.asarray(y, float)])
    v = v[np.isfinite(v)]
    if not len(v):
        return
    lo = max(0.0, v.min() - pad)
    hi = min(1.0, v.max() + pad)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)


def axis_scatter(res, panels, title: str, caption: str = "", x: str = "id_accuracy", ref: float | None = None):
    """A row of scatters of summary/tidy metrics against ID accuracy: ``panels`` is a list of
    ``(panel title, {entry: value}, y label)``."""
    import matplotlib.pyplot as plt

    styles = entry_styles(res)
    xs = _col(res.summary, x)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.5), squeeze=False)
    for ax, (name, ys, ylabel) in zip(axes[0], panels):
        _scatter(ax, res, xs, ys, styles)
        if ref is not None:
            ax.axhline(ref, color="0.6", lw=1, ls=":")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("ID accuracy")
        ax.set_ylabel(ylabel)
    _legend(fig, res, styles)
    title_figure(fig, title, caption)
    fig.tight_layout()
    return fig


def shape_bias(res):
    """Axis 1b: shape bias on cue-conflict images vs ID accuracy (0.5 = no preference)."""
    s = res.shape.set_index("entry")
    panels = [("shape bias", s["shape_bias"].to_dict(), "shape / (shape + texture decisions)"),
              ("decisions", (s["shape_decisions"] - s["texture_decisions"]).to_dict(),
               "shape minus texture decisions")]
    return axis_scatter(res, panels, "Shape bias on cue-conflict images",
                        "dotted: no preference; the world's cue-conflict images have the shape of one ID class and "
                        "the typical texture of another (Geirhos et al. 2019; Tu et al. §IV-B)", ref=0.5)


SCORER_NAMES = {"mcm": "MCM (T = 1)", "msp": "MSP (model's logit scale)"}


def ood_detection(res, metric: str = "auroc"):
    """Axis 2: OOD detection per OOD set and on average, one row per scorer (every model is scored with
    both MCM and MSP, so a row compares like with like); the last column is the paper's pairing (MCM for
    zero-shot, MSP for fine-tuned models), labelled as such: comparing across it mixes scorer and model."""
    import matplotlib.pyplot as plt

    o = res.ood
    scorers = list(dict.fromkeys(o.scorer))
    sets = list(dict.fromkeys(o.set))
    styles = entry_styles(res)
    xs = _col(res.summary, "id_accuracy")
    ncol = len(sets) + 2
    fig = plt.figure(figsize=(3.3 * ncol, 3.1 * len(scorers) + 0.6))
    grid = fig.add_gridspec(len(scorers), ncol)
    ref = 0.5 if metric == "auroc" else None
    for i, scorer in enumerate(scorers):
        g = o[o.scorer == scorer]
        panels = [(s, _col(g[g.set == s], metric)) for s in sets]
        panels.append(("mean over OOD sets", g.groupby("entry")[metric].mean().to_dict()))
        for j, (name, ys) in enumerate(panels):
            ax = fig.add_subplot(grid[i, j])
            _scatter(ax, res, xs, ys, styles)
            if ref is not None:
                ax.axhline(ref, color="0.6", lw=1, ls=":")
            ax.set_title(f"{name}", fontsize=10)
            ax.set_ylabel(f"{metric.upper()}, {SCORER_NAMES.get(scorer, scorer)}", fontsize=8.5)
            if i == len(scorers) - 1:
                ax.set_xlabel("ID accuracy")
    ax = fig.add_subplot(grid[:, -1])
    paper = o[o.paper_scorer] if "paper_scorer" in o else o.iloc[0:0]
    _scatter(ax, res, xs, paper.groupby("entry")[metric].mean().to_dict(), styles)
    if ref is not None:
        ax.axhline(ref, color="0.6", lw=1, ls=":")
    ax.set_title("paper's pairing (mean over sets):\nMCM zero-shot, MSP fine-tuned", fontsize=9.5)
    ax.set_xlabel("ID accuracy")
    ax.set_ylabel(f"{metric.upper()}, scorer differs by model")
    _legend(fig, res, styles)
    title_figure(fig, f"OOD detection ({metric.upper()}) vs ID accuracy, every model with both scorers",
                 "rows: MCM and MSP for every model (compare within a row); last column: Tu et al.'s pairing, "
                 "which mixes the scorer's effect into fine-tuning's; ID positive (MCM get_measures)")
    fig.tight_layout()
    return fig


def calibration(res, metrics=("ece", "nll")):
    """Axis 3: ECE-15 and NLL on ID test data, under domain shift and under corruptions (means over sets),
    before (small faded markers) and after (full markers) temperature scaling fitted on ID validation data."""
    import matplotlib.pyplot as plt

    c = res.calibration
    groups = [g for g in ("id", "shift", "corruption") if g in set(c.group)]
    styles = entry_styles(res)
    xs = _col(res.summary, "id_accuracy")
    fig, axes = plt.subplots(len(metrics), len(groups), figsize=(3.6 * len(groups), 3.2 * len(metrics)),
                             squeeze=False)
    for i, metric in enumerate(metrics):
        for j, group in enumerate(groups):
            ax, g = axes[i, j], c[c.group == group]
            before = g[~g.scaled].groupby("entry")[metric].mean().to_dict()
            after = g[g.scaled].groupby("entry")[metric].mean().to_dict()
            _scatter(ax, res, xs, before, styles, size=18, alpha=0.35)
            _scatter(ax, res, xs, after, styles)
            for e in after:
                if e in before and e in xs:
                    ax.plot([xs[e], xs[e]], [before[e], after[e]], color=styles[e]["color"], lw=0.7, alpha=0.5)
            ax.set_title(f"{group}: {metric.upper()}", fontsize=10)
            ax.set_xlabel("ID accuracy")
    _legend(fig, res, styles)
    title_figure(fig, "Calibration before (faded) and after (full) temperature scaling",
                 "T fitted on ID validation images by Tu et al.'s bisection (tune_temp) and applied unchanged to "
                 "every test set; ECE with 15 bins")
    fig.tight_layout()
    return fig


def retrieval(res, ks=(1, 5)):
    """Axis 4: image->text and text->image recall@K vs ID accuracy (mean over retrieval sets)."""
    r = res.retrieval.groupby("entry").mean(numeric_only=True)
    panels = [(f"{d} R@{k}", r[f"{d}@{k}"].to_dict(), f"recall@{k}") for k in ks for d in ("i2t", "t2i")
              if f"{d}@{k}" in r]
    return axis_scatter(res, panels, "Image-text retrieval vs ID accuracy",
                        "one caption per image (world: descriptive captions naming factors); zero-shot retrieval with "
                        "each model's own towers")


def corruptions(res):
    """Axis 5b: accuracy against severity, common (solid) vs geometric (dashed) corruptions, for every model
    under its default head; and relative robustness (corrupted / clean accuracy), geometric vs common."""
    import matplotlib.pyplot as plt

    c = res.corruptions
    c = c[c.entry.isin(res.entries(prompts=res.default_prompts) + res.entries(prompts="fine-tuned"))]
    kinds = [k for k in ("common", "geometric") if k in set(c.kind)]
    styles = entry_styles(res)
    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(4.2 * (len(kinds) + 1), 3.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for entry, g in c[c.kind == kind].groupby("entry"):
            curve = g.groupby("severity")["accuracy"].mean()
            st = styles[entry]
            ax.plot(curve.index, curve.values, ls="-" if kind == "common" else "--", marker=st["marker"],
                    color=st["color"], ms=5)
        ax.set_title(f"{kind} corruptions", fontsize=10)
        ax.set_xlabel("severity")
        ax.set_ylabel("accuracy (mean over corruptions)")
    _relative_panel(axes[0, -1], res, styles, kinds)
    _legend(fig, res, styles)
    title_figure(fig, "Corruption robustness: common (ImageNet-C analogue) and geometric (3D-corruption analogue)",
                 "geometric = rotate, zoom, occlude; relative robustness divides by the model's clean ID accuracy")
    fig.tight_layout()
    return fig


def _relative_panel(ax, res, styles, kinds) -> None:
    s = res.summary.set_index("entry")
    cols = [f"{k}_relative" for k in kinds]
    if len(cols) == 1:  # no geometric corruptions (e.g. ImageNet-C without 3DCC): relative robustness vs ID accuracy
        _scatter(ax, res, s["id_accuracy"].to_dict(), s[cols[0]].to_dict(), styles)
        ax.set_xlabel("ID accuracy")
        ax.set_ylabel(f"{kinds[0]}: corrupted / clean accuracy")
    else:
        _scatter(ax, res, s[cols[0]].to_dict(), s[cols[1]].to_dict(), styles)
        lo, hi = np.nanmin(s[cols].values), np.nanmax(s[cols].values)
        ax.plot([lo, hi], [lo, hi], color="0.7", lw=0.8, ls=":")
        ax.set_xlabel("common: corrupted / clean accuracy")
        ax.set_ylabel("geometric: corrupted / clean accuracy")
    ax.set_title("relative robustness", fontsize=10)


def factor_effects(table, spread=None):
    """The summary heatmap: factors (contrasts) x axes. Colour: the effect in units of the zoo's spread of
    that metric (std over models), signed so that green = more reliable (lower ECE/NLL/FPR count as better;
    shape bias: more shape-biased); text: the raw difference."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sign = np.array([-1.0 if m in LOWER_IS_BETTER else 1.0 for m in table.columns])
    scale = np.array([spread.get(m, 1.0) if spread is not None else 1.0 for m in table.columns])
    color = table.values * sign / np.where(scale > 0, scale, 1.0)
    fig, ax = plt.subplots(figsize=(1.05 * len(table.columns) + 3.5, 0.55 * len(table) + 2.0))
    sns.heatmap(color, ax=ax, cmap="PiYG", center=0, vmin=-2.5, vmax=2.5, annot=table.values, fmt="+.2f",
                annot_kws={"fontsize": 7.5}, cbar_kws={"label": "effect / zoo std (green = more reliable)"},
                xticklabels=[METRIC_LABELS.get(m, m) for m in table.columns], yticklabels=list(table.index),
                linewidths=0.4)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
    title_figure(fig, "Six factors against every axis: direction and size of each factor's effect",
                 "each row: variant minus the base model (prompts: ensemble minus single prompt, mean over zero-shot "
                 "models); numbers are raw differences; OOD AUROC once per scorer (MCM, MSP) for every model; "
                 "effective robustness against the supervised baseline line")
    fig.tight_layout()
    return fig
