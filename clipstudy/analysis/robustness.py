"""The evaluation axes of Tu, Deng & Gedeon, "Toward a holistic evaluation of robustness in CLIP models"
(TPAMI 2025; docs/protocols.md §3.2), as pure functions of one model's cached outputs (similarities, labels,
features) and of a zoo's summary table.

Axis -> function (docs/protocols.md §3.2 numbering in brackets):

* visual-factor robustness [1]: :func:`factor_accuracy` (accuracy per factor value) and
  :func:`factor_effective_robustness` (factor accuracy minus a line fitted on logit axes across a baseline
  family only, as Taori et al. 2020 fit it on standard ImageNet models: :func:`baseline_lines`,
  :func:`apply_lines`);
* shape bias [1b]: :func:`shape_bias_axis`;
* OOD detection [2]: :func:`ood_axis` (MCM and MSP for every model; the paper's pairing, MCM for zero-shot
  and MSP for fine-tuned models, is :func:`paper_scorer`);
* calibration [3]: :func:`calibration_axis` (ECE-15 and NLL before/after ID temperature scaling);
* image-text bridging [4]: :func:`retrieval_axis` (recall@K both ways);
* corruptions [5b]: :func:`corruption_summary` (common vs geometric, the 3D-corruption analogue);
* LMM interaction [6]: :func:`lmm_axis`, a hook for a user-supplied multimodal model;
* all factors against all axes: :func:`factor_effects` (the summary heatmap's table).

Nothing here trains, encodes or reads files; torch is not imported.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..metrics import as_numpy, effective_robustness, ece, nll, ood_metrics, shape_bias

__all__ = ["factor_accuracy", "factor_effective_robustness", "baseline_lines", "apply_lines", "line_prediction",
           "shape_bias_axis", "ood_axis", "OOD_SCORERS", "paper_scorer", "calibration_axis",
           "retrieval_axis", "corruption_summary", "factor_effects", "lmm_axis", "LMMAxisUnavailable"]


def _factor_values(table: Sequence[Mapping], factor: str) -> list:
    return [row.get(factor) for row in table]


def _is_binary(values) -> bool:
    present = {v for v in values if v is not None}
    return bool(present) and present <= {0, 1, True, False}


def factor_accuracy(correct, factor_table: Sequence[Mapping], factors: Sequence[str]) -> list[dict]:
    """Accuracy per value of each nuisance factor (Tu et al. axis 1; docs/protocols.md §3.2).

    ``correct`` [N] says whether each image was classified right; ``factor_table`` holds one dict per
    image. A factor with string values (the world's ``rotation``: upright, tilted, ...) gives one row per
    value; a binary 0/1 factor (ImageNet-X's ``pose``, ``background``, ...) gives one row, value ``"1"``,
    over the images annotated with it (None = not annotated, skipped). Returns rows
    ``{factor, value, accuracy, n}``; factors missing from the table are skipped.
    """
    ok = as_numpy(correct, "correct", ndim=1, dtype=None).astype(bool)
    if len(factor_table) != len(ok):
        raise ValueError(f"factor_table has {len(factor_table)} rows for {len(ok)} predictions")
    rows = []
    for factor in factors:
        values = _factor_values(factor_table, factor)
        if all(v is None for v in values):
            continue
        groups = [1] if _is_binary(values) else list(dict.fromkeys(v for v in values if v is not None))
        for value in groups:
            mask = np.array([v is not None and v == value for v in values])
            if mask.any():
                rows.append({"factor": factor, "value": str(value), "accuracy": float(ok[mask].mean()),
                             "n": int(mask.sum())})
    return rows


def _valid_points(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points a logit/probit line can be fitted on: finite accuracies strictly inside (0, 1) (at 0 or 1 the
    transformed accuracy is infinite)."""
    return np.isfinite(x) & np.isfinite(y) & (x > 0) & (x < 1) & (y > 0) & (y < 1)


def baseline_lines(baseline, overall: str = "overall", accuracy: str = "accuracy",
                   by: Sequence[str] = ("factor", "value"), transform: str = "logit", min_points: int = 2):
    """The effective-robustness lines of Taori et al. 2020 (a linear trend fitted to the logit-transformed
    accuracies of standard ImageNet-trained models; Tu et al. axis 1 follow them), fitted on a
    **baseline family only**: within each ``by`` group of ``baseline`` (a DataFrame with one row per baseline
    model and group), least squares of ``f(accuracy)`` on ``f(overall)`` with ``f`` = ``transform`` (logit
    by default; :func:`clipstudy.metrics.effective_robustness`).

    Only points with both accuracies strictly inside (0, 1) count (:func:`_valid_points`). Returns a
    DataFrame with the ``by`` columns, ``slope``, ``intercept``, ``n_points`` (valid baseline points),
    ``transform`` and ``note``; ``slope`` and ``intercept`` are NaN (and ``note`` says why) where fewer than
    ``min_points`` valid points with two distinct overall accuracies remain, so no line can be fitted."""
    import pandas as pd

    rows = []
    if baseline is None or not len(baseline):
        return pd.DataFrame(columns=[*by, "slope", "intercept", "n_points", "transform", "note"])
    for key, g in baseline.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        x, y = g[overall].to_numpy(float), g[accuracy].to_numpy(float)
        ok = _valid_points(x, y)
        row = dict(zip(by, key), slope=np.nan, intercept=np.nan, n_points=int(ok.sum()), transform=transform,
                   note="")
        if ok.sum() < max(2, min_points) or len(np.unique(x[ok])) < 2:
            row["note"] = (f"no line: {int(ok.sum())} valid baseline point(s) (accuracies strictly inside (0, 1)) "
                           f"with {len(np.unique(x[ok]))} distinct {overall} accuracies; need {max(2, min_points)}")
        else:
            fit = effective_robustness(x[ok], y[ok], transform=transform)
            row["slope"], row["intercept"] = fit["slope"], fit["intercept"]
        rows.append(row)
    return pd.DataFrame(rows)


def line_prediction(x, slope: float, intercept: float, transform: str = "logit", clip: float = 1e-6) -> np.ndarray:
    """Accuracy the line predicts at overall accuracy ``x``: ``f^{-1}(slope f(x) + intercept)`` (``f`` clipped
    at ``clip`` as :func:`clipstudy.metrics.effective_robustness` does); NaN where the line is undefined."""
    from ..metrics import _axis_forward, _axis_inverse

    x = np.asarray(x, float)
    if not (np.isfinite(slope) and np.isfinite(intercept)):
        return np.full(x.shape, np.nan)
    return _axis_inverse(slope * _axis_forward(x, transform, clip) + intercept, transform)


def apply_lines(table, lines, overall: str = "overall", accuracy: str = "accuracy",
                by: Sequence[str] = ("factor", "value")):
    """Effective robustness against fitted lines: a copy of ``table`` with ``predicted`` (the line of the
    row's ``by`` group at its ``overall`` accuracy, :func:`line_prediction`) and ``effective_robustness`` =
    ``accuracy - predicted`` (effective robustness, Taori et al. 2020), NaN where the group has no line."""
    out = table.copy()
    out["predicted"] = np.nan
    out["effective_robustness"] = np.nan
    if not len(out) or lines is None or not len(lines):
        return out
    fitted = {tuple(r[b] for b in by): r for r in lines.to_dict("records")}
    for key, g in out.groupby(list(by), sort=False):
        line = fitted.get(key if isinstance(key, tuple) else (key,))
        if line is None:
            continue
        pred = line_prediction(g[overall].to_numpy(float), line["slope"], line["intercept"], line["transform"])
        out.loc[g.index, "predicted"] = pred
        out.loc[g.index, "effective_robustness"] = g[accuracy].to_numpy(float) - pred
    return out


def factor_effective_robustness(table, baseline, overall: str = "overall", accuracy: str = "accuracy",
                                by: Sequence[str] = ("factor", "value"), transform: str = "logit"):
    """Effective robustness of each model on each factor value (Tu et al. axis 1, after Taori et al. 2020):
    ``accuracy`` minus the line fitted on the **baseline family** ``baseline`` only (:func:`baseline_lines`,
    logit axes), so a model on the baseline trend scores 0 and the zoo's mean need not be 0.

    ``table`` and ``baseline`` are DataFrames with one row per (model, factor, value). Returns
    ``(table with predicted and effective_robustness, lines)``; NaN where a group's line could not be fitted
    (fewer than two valid baseline points)."""
    lines = baseline_lines(baseline, overall=overall, accuracy=accuracy, by=by, transform=transform)
    return apply_lines(table, lines, overall=overall, accuracy=accuracy, by=by), lines


def shape_bias_axis(predictions, shape_labels, texture_labels) -> dict:
    """Shape bias on cue-conflict images (Geirhos et al. 2019; Tu et al. §IV-B, docs/protocols.md §3.2 axis 1b):
    ``shape decisions / (shape + texture decisions)`` over images whose shape and texture classes differ,
    plus the two fractions of all such images."""
    pred = as_numpy(predictions, "predictions", ndim=1, dtype=None).astype(np.int64)
    s = as_numpy(shape_labels, "shape_labels", ndim=1, dtype=None).astype(np.int64)
    t = as_numpy(texture_labels, "texture_labels", ndim=1, dtype=None).astype(np.int64)
    keep = s != t
    return {"shape_bias": shape_bias(pred, s, t), "shape_decisions": float(np.mean(pred[keep] == s[keep])),
            "texture_decisions": float(np.mean(pred[keep] == t[keep])), "n": int(keep.sum())}


OOD_SCORERS = ("mcm", "msp")
"""Every model is scored with both (so a factor's effect on OOD detection is measured within one scorer)."""


def paper_scorer(zero_shot: bool) -> str:
    """Tu et al.'s pairing (axis 2, OOD detection): MCM for zero-shot models, MSP for fine-tuned ones. A
    labelled view only: comparing models across the two mixes the scorer's effect into the model's."""
    return "mcm" if zero_shot else "msp"


def ood_axis(id_sims, ood_sims: Mapping[str, object], scorers=OOD_SCORERS, logit_scale: float = 100.0) -> list[dict]:
    """OOD detection of one model (Tu et al. axis 2) with each of ``scorers``: ``"mcm"``
    (MCM at T = 1 on raw cosine similarities, Ming et al. 2022) and ``"msp"`` (max softmax of
    ``logit_scale * sims``, the model's own logit scale; Hendrycks & Gimpel 2017); ID positive, higher =
    more ID (``get_measures`` of the MCM repository, deeplearning-wustl/MCM). ``scorers`` is a name or a
    sequence of names; any registered scorer on similarities works (through :func:`clipstudy.scores.score`,
    which passes ``logit_scale`` to the scorers that declare ``needs_scale``). Returns one row per (scorer,
    OOD set): ``{set, scorer, auroc, fpr95, aupr_in}``."""
    from ..scores import SCORERS, score

    scorers = (scorers,) if isinstance(scorers, str) else tuple(scorers)
    valid = [n for n in SCORERS.list() if SCORERS.meta(n).get("needs") == "similarities"]
    bad = [s for s in scorers if s not in valid]
    if bad or not scorers:
        raise ValueError(f"the holistic OOD axis scores similarities: 'mcm' (MCM, T = 1) and 'msp' (MSP at the "
                         f"model's logit scale) by default, or another of {', '.join(valid)}; got {bad or scorers!r}")
    rows = []
    for scorer in scorers:
        id_scores = score(scorer, sims=id_sims, logit_scale=logit_scale)
        for name, sims in ood_sims.items():
            m = ood_metrics(id_scores, score(scorer, sims=sims, logit_scale=logit_scale))
            rows.append({"set": name, "scorer": scorer, "auroc": m["auroc"], "fpr95": m["fpr95"],
                         "aupr_in": m["aupr_in"]})
    return rows


def calibration_axis(val_logits, val_labels, sets: Mapping[str, tuple], n_bins: int = 15,
                     bounds: tuple = (0.01, 10.0)) -> tuple[float, list[dict]]:
    """Calibration of one model before and after temperature scaling (Tu et al. axis 3; docs/protocols.md §3.2, §3.4).

    The temperature ``T`` is fitted on the ID held-out ``(val_logits, val_labels)`` with the bisection of
    ``Klaus-Tu/VLM_calibrate`` ``tune_temp`` within ``bounds`` (:func:`clipstudy.temperature.fit_temperature`,
    docs/protocols.md §0.4) and applied unchanged to every test set of ``sets`` (``name -> (logits, labels)``,
    logits = ``logit_scale * cosine``). Returns ``(T, rows)`` with one row per set and ``scaled`` in
    {False, True}: ``{set, scaled, accuracy, ece, nll}``; ECE with ``n_bins`` (15) ``(lower, upper]`` bins.
    """
    from ..temperature import apply_temperature, fit_temperature

    T = fit_temperature(val_logits, val_labels, lower=bounds[0], upper=bounds[1])
    rows = []
    for name, (logits, labels) in sets.items():
        z = as_numpy(logits, f"{name} logits", ndim=2)
        for scaled, zz in ((False, z), (True, apply_temperature(z, T))):
            rows.append({"set": name, "scaled": scaled, "accuracy": float(np.mean(zz.argmax(1) == np.asarray(labels))),
                         "ece": ece(zz, labels, n_bins, from_logits=True), "nll": nll(zz, labels, from_logits=True)})
    return float(T), rows


def retrieval_axis(image_features, text_features, text_to_image, ks: Sequence[int] = (1, 5)) -> dict:
    """Zero-shot image-text retrieval (Tu et al. axis 4; docs/protocols.md §3.2): recall@K image->text and
    text->image on unit features (:func:`clipstudy.metrics.recall_at_k`), plus their means ``mean@K``."""
    from ..metrics import recall_at_k

    r = recall_at_k(image_features, text_features, text_to_image, k=tuple(ks))
    r.update({f"mean@{k}": 0.5 * (r[f"i2t@{k}"] + r[f"t2i@{k}"]) for k in ks})
    return r


def corruption_summary(rows, clean_accuracy: float, geometric: Sequence[str]) -> dict:
    """Mean accuracy under common and geometric corruptions (the ImageNet-C and ImageNet-3DCC analogues,
    Tu et al. axis 5b; docs/protocols.md §3.2), overall and at the two highest severities, and the relative
    robustness ``corrupted / clean`` accuracy. ``rows``: ``{corruption, severity, accuracy}`` dicts."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    df["kind"] = np.where(df["corruption"].isin(list(geometric)), "geometric", "common")
    high = df["severity"] >= df["severity"].max() - 1
    out = {}
    for kind, g in df.groupby("kind"):
        out[f"{kind}_accuracy"] = float(g["accuracy"].mean())
        out[f"{kind}_accuracy_high"] = float(g.loc[high[g.index], "accuracy"].mean())
        out[f"{kind}_relative"] = float(g["accuracy"].mean() / clean_accuracy) if clean_accuracy > 0 else float("nan")
    return out


def factor_effects(summary, contrasts: Sequence[Mapping], metrics: Sequence[str], key: str = "entry"):
    """The direction and size of each factor's effect on each axis metric (the summary heatmap, Tu et al.'s
    six factors against every axis): for each contrast ``{"row": label, "variant": [entries], "reference":
    [entries]}``, the mean of each metric over the variant entries minus its mean over the paired
    reference entries (paired by position, so a prompts contrast averages over several models). Returns a
    DataFrame indexed by contrast label with one column per metric."""
    import pandas as pd

    s = summary.set_index(key)
    table = {}
    for c in contrasts:
        v, r = list(c["variant"]), list(c["reference"])
        if len(v) != len(r) or not v:
            raise ValueError(f"contrast {c.get('row')!r} needs as many variant as reference entries")
        table[c["row"]] = {m: float(np.mean(s.loc[v, m].to_numpy(float) - s.loc[r, m].to_numpy(float)))
                           for m in metrics}
    return pd.DataFrame.from_dict(table, orient="index")[list(metrics)]


class LMMAxisUnavailable(RuntimeError):
    """The LMM axis needs a large multimodal model (e.g. LLaVA) that the caller must supply."""


def lmm_axis(model_fn: Callable | None = None, questions: Sequence[Mapping] = ()) -> dict:
    """Tu et al.'s vision-language interaction axis (docs/protocols.md §3.2 axis 6): accuracy of a large multimodal
    model (LLaVA with a CLIP vision tower) on multiple-choice questions about hard images (ImageNet-D).

    Out of scope offline: no such model can be had here, so ``model_fn`` must be supplied by the user.
    ``model_fn(image, question, options) -> index of the chosen option``; ``questions`` are dicts with
    ``image``, ``question``, ``options`` (list of str) and ``answer`` (index). Returns ``{accuracy, n}``.
    Raises :class:`LMMAxisUnavailable` without a ``model_fn``.
    """
    if model_fn is None:
        raise LMMAxisUnavailable(
            "the LMM axis needs a large multimodal model (e.g. LLaVA with a CLIP vision tower), which cannot be "
            "obtained offline; pass model_fn(image, question, options) -> option index to evaluate one")
    if not questions:
        raise ValueError("lmm_axis needs at least one question dict (image, question, options, answer)")
    hits = [int(model_fn(q["image"], q["question"], list(q["options"])) == int(q["answer"])) for q in questions]
    return {"accuracy": float(np.mean(hits)), "n": len(hits)}
