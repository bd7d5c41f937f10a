"""Wang, Li & Wei, "Understanding and mitigating miscalibration in prompt tuning for vision-language models"
(ICML 2025): the base/new calibration trade-off of prompt tuning and Dynamic Outlier Regularization (DOR).

Protocol (papers.md §0.5, §2.4): CoOp's base-to-new split (labels sorted, the first ``ceil(n/2)`` are base
classes, relabelled; :func:`clipstudy.experiment.subsample_classes`); each method trains on ``K`` shots of
the base classes per seed and is evaluated at its last step on the base test images (closed set over the
base names) and on the new test images (closed set over the new names, the method rebuilt for them with
its learned prompts: :func:`clipstudy.experiment.transfer_to_classes`). For each group the study computes
accuracy, ECE/ACE/MCE (10 bins, the DAC/DOR convention; ECE with 15 bins too), NLL, Brier, confidence minus
accuracy, ECE after temperature scaling fitted on held-out base-class images, reliability-diagram bins
and the feature divergence (FD, Def. 3.1; :func:`clipstudy.calibration.feature_divergence`) of the
learned base and new class text features — also during training, through a ``train_method`` callback.

One result cell per (recipe, shots, seed) — the main methods, the λ sweep and the outlier-vocabulary
ablation of ``sweep_method`` are all such cells (a sweep point equal to a main method is the same cell).
Cells are skipped when present, so an interrupted study resumes; :class:`CalibrationResults` turns them
into tidy DataFrames.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..experiment import (ClassSubset, Recipe, TrainSet, build, cell_spec, checkpoint_path, dataset_from_spec,
                          few_shot_set, get_recipe, method_outputs, subsample_classes, train_method,
                          transfer_to_classes)

DEFAULT_METHODS = ("zeroshot_hc", "coop", "coop_dor", "cocoop", "cocoop_dor", "kgcoop", "kgcoop_dor", "maple",
                   "maple_dor")
SPLITS = ("base2new",)
GROUPS = ("base", "new")
DEFAULT_TEMPLATE = "a photo of a {}."
DATASET_TEMPLATE = "dataset"
"""A recipe parameter with this value is replaced by the study's hand-crafted prompt."""


@dataclass(frozen=True)
class CalibrationStudy:
    """Everything that defines the study; every field that changes numbers is part of each cell's spec.

    ``train`` (the pool the few-shot sets are drawn from), ``test`` and ``val`` (held-out images for
    temperature scaling; ``{}`` skips it) are dataset specs over *all* classes
    (:func:`clipstudy.experiment.dataset_from_spec`); the study splits them into base and new classes.
    ``methods`` are recipe names at ``scale``; ``template`` is the hand-crafted prompt (``""``: the
    dataset's own ``template`` attribute, CoOp's ``CUSTOM_TEMPLATES``, else ``"a photo of a {}."``).
    ``dor`` is merged into every DOR regularizer (e.g. ``{"vocabulary": "world"}``). ``lambdas`` and
    ``outlier_modes`` sweep the DOR weight and the outlier pool of ``sweep_method``. FD uses the ``fd_m``
    nearest other classes under ``fd_metric``. ``precision`` (fp32 | bf16) replaces every recipe's (``""``
    keeps them). Methods the backbone cannot run (MaPLe on a ResNet) are skipped with their reason when
    ``skip_unsupported``.
    """

    model: str = "embedded"
    pretrained: str = ""
    data_root: str = ""
    device: str = "cpu"
    scale: str = "embedded"
    methods: tuple = DEFAULT_METHODS
    shots: tuple = (16,)
    seeds: tuple = (1, 2, 3)
    train: Mapping[str, Any] = field(default_factory=dict)
    test: Mapping[str, Any] = field(default_factory=dict)
    val: Mapping[str, Any] = field(default_factory=dict)
    split: str = "base2new"
    template: str = ""
    dor: Mapping[str, Any] = field(default_factory=dict)
    sweep_method: str = "coop_dor"
    lambdas: tuple = ()
    outlier_modes: tuple = ()
    fd_m: int = 5
    fd_metric: str = "cosine"
    n_bins: int = 10
    recipe_overrides: Mapping[str, Mapping] = field(default_factory=dict)
    precision: str = ""
    skip_unsupported: bool = True

    def __post_init__(self):
        from ..vocabulary import MODES

        if self.split not in SPLITS:
            raise ConfigError(f"unknown base/new split {self.split!r}; valid splits: {', '.join(SPLITS)}")
        if not self.train or not self.test:
            raise ConfigError("the calibration study needs 'train' and 'test' dataset specs")
        for k in self.shots:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ConfigError(f"shots must be positive integers, got {k!r}")
        if not self.methods:
            raise ConfigError("the calibration study needs at least one method")
        bad = [x for x in self.lambdas if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0]
        if bad:
            raise ConfigError(f"DOR weights (lambdas) must be numbers >= 0, got {bad}")
        bad = [m for m in self.outlier_modes if m not in MODES]
        if bad:
            raise ConfigError(f"unknown outlier modes {bad}; valid modes: {', '.join(MODES)}")
        if isinstance(self.fd_m, bool) or not isinstance(self.fd_m, int) or self.fd_m < 1:
            raise ConfigError(f"fd_m must be a positive integer, got {self.fd_m!r}")
        unknown = sorted(set(self.recipe_overrides) - set(self.methods) - {self.sweep_method})
        if unknown:
            raise ConfigError(f"recipe_overrides names {unknown}, which are not among methods {list(self.methods)}")
        for name in self.methods:
            self.recipe(name)  # unknown recipes or settings fail before anything runs
        if self.lambdas or self.outlier_modes:
            if "dor" not in self.recipe(self.sweep_method).kwargs.get("regularizers", {}):
                raise ConfigError(f"sweep_method {self.sweep_method!r} has no DOR regularizer to sweep")
        from ..train import PRECISIONS

        if self.precision and self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)} (or '' for the recipes')")
        if self.dor.get("weight") is not None and self.dor["weight"] < 0:
            raise ConfigError(f"the DOR weight must be >= 0, got {self.dor['weight']!r}")

    def recipe(self, name: str) -> Recipe:
        overrides = {"precision": self.precision} if self.precision else {}
        return get_recipe(name, self.scale, **{**overrides, **dict(self.recipe_overrides.get(name, {}))})


# --------------------------------------------------------------------------- data

@dataclass
class StudyData:
    loaded: Any
    pool: Any
    base_test: Any
    new_test: Any
    val: Any
    base_map: dict
    base_names: tuple
    new_names: tuple
    template: str


def load_study_data(study: CalibrationStudy) -> StudyData:
    """Load the model and the datasets, split into base and new classes (errors before any training)."""
    from ..models import load_model

    loaded = load_model(study.model, study.pretrained, device=study.device)
    root = study.data_root or None
    pool = dataset_from_spec(study.train, root)
    test = dataset_from_spec(study.test, root)
    if tuple(pool.classnames) != tuple(test.classnames):
        raise ConfigError("the training pool and the test set must have the same classes in the same order")
    n = len(test.classnames)
    base_map, new_map = subsample_classes(n, "base"), subsample_classes(n, "new")
    base_test, new_test = ClassSubset(test, base_map, "base"), ClassSubset(test, new_map, "new")
    val = None
    if study.val:
        full_val = dataset_from_spec(study.val, root)
        if tuple(full_val.classnames) != tuple(test.classnames):
            raise ConfigError("the validation set must have the test set's classes in the same order")
        val = ClassSubset(full_val, base_map, "val")
    for name, ds in (("base test", base_test), ("new test", new_test)):
        if len(ds) == 0:
            raise ConfigError(f"the {name} set is empty")
    template = study.template or getattr(pool, "template", None) or DEFAULT_TEMPLATE
    return StudyData(loaded, pool, base_test, new_test, val, base_map, base_test.classnames, new_test.classnames,
                     template)


def prepare_recipe(recipe: Recipe, data: StudyData, seed: int, dor: Mapping[str, Any] | None = None) -> Recipe:
    """The recipe as trained in one cell: ``"dataset"`` placeholders replaced by the hand-crafted prompt,
    the study's DOR settings merged into its DOR regularizer, DOR's sampler seeded with the training seed
    and, for the ``oracle`` pool, the true new-class names supplied."""
    params = recipe.kwargs
    for key in ("templates", "template"):
        if params.get(key) == DATASET_TEMPLATE:
            params[key] = data.template
    regs = dict(params.get("regularizers") or {})
    if "dor" in regs:
        d = {**regs["dor"], **dict(dor or {})}
        d.setdefault("seed", seed)
        if d.get("mode") == "oracle":
            d["new_classes"] = list(data.new_names)
        regs["dor"] = d
        params["regularizers"] = regs
    return recipe.replace(params=params)


def with_dor(recipe: Recipe, **changes) -> Recipe:
    """``recipe`` with its DOR regularizer's settings changed (``weight=``, ``mode=``, ...)."""
    params = recipe.kwargs
    regs = dict(params.get("regularizers") or {})
    if "dor" not in regs:
        raise ConfigError(f"recipe {recipe.label!r} has no DOR regularizer")
    regs["dor"] = {**regs["dor"], **changes}
    return recipe.replace(params={**params, "regularizers": regs})


# --------------------------------------------------------------------------- cells

@dataclass(frozen=True)
class Cell:
    """One trained configuration; ``role``: main, lambda (DOR weight sweep) or mode (outlier pool)."""

    role: str
    recipe: Recipe


def study_cells(study: CalibrationStudy) -> list[Cell]:
    """The main methods, then the λ sweep and the vocabulary ablation of ``sweep_method``."""
    cells = [Cell("main", study.recipe(name)) for name in study.methods]
    if study.lambdas or study.outlier_modes:
        sweep = study.recipe(study.sweep_method)
        cells += [Cell("lambda", with_dor(sweep, weight=float(lam))) for lam in study.lambdas]
        cells += [Cell("mode", with_dor(sweep, mode=mode)) for mode in study.outlier_modes]
    return cells


def unsupported_reason(loaded, recipe: Recipe) -> str | None:
    """Why the backbone cannot run ``recipe``'s method (MaPLe needs a ViT), or ``None``."""
    from ..methods import METHODS, _ensure_registered

    _ensure_registered()
    check = getattr(METHODS.get(recipe.method), "unsupported_reason", None)
    return check(loaded) if check else None


def run_calibration_study(study: CalibrationStudy, store=None, progress: bool = True,
                          data: StudyData | None = None) -> "CalibrationResults":
    """Fill one result cell per (recipe, shots, seed); return the tidy tables (:class:`CalibrationResults`)."""
    from tqdm.auto import tqdm

    from ..results import ResultStore

    store = store or ResultStore()
    data = data or load_study_data(study)
    skipped: dict[str, str] = {}
    todo = []
    for cell in study_cells(study):
        reason = unsupported_reason(data.loaded, cell.recipe)
        if reason:
            if not study.skip_unsupported:
                raise ConfigError(f"{cell.recipe.label}: {reason}")
            skipped[cell.recipe.label] = reason
            continue
        todo += [(cell, k, s) for k in study.shots for s in study.seeds]
    _warm_outlier_pools(study, data, [c.recipe for c, _, _ in todo], progress)
    fd_zeroshot = zeroshot_divergence(data, study.fd_m, study.fd_metric)
    records = []
    for cell, shots, seed in tqdm(todo, desc="calibration study cells", disable=not progress):
        recipe = prepare_recipe(cell.recipe, data, seed, study.dor)
        train = few_shot_set(data.pool, shots, seed, label_map=data.base_map)
        spec = _spec(study, data, recipe, train, seed)
        metrics = store.run(spec, lambda: _run_cell(study, data, recipe, train, seed, spec, store, progress))
        records.append((cell.role, spec, metrics))
    for label, reason in skipped.items():
        print(f"{label} skipped: {reason}")
    return CalibrationResults.from_records(records, store, skipped, fd_zeroshot)


def _warm_outlier_pools(study, data, recipes, progress) -> None:
    """Rank the outlier vocabulary once, with a progress bar, before any cell needs it (cached on disk)."""
    from ..regularizers.dor import outlier_pool

    seen = set()
    for recipe in recipes:
        d = prepare_recipe(recipe, data, 0, study.dor).kwargs.get("regularizers", {}).get("dor")
        if not d or d.get("mode", "near") not in ("near", "far"):
            continue
        key = (d.get("vocabulary", "wordnet"), str(d.get("vocabulary_file")), d.get("template", DEFAULT_TEMPLATE))
        if key in seen:
            continue
        seen.add(key)
        outlier_pool(data.loaded, data.base_names, "near", int(d.get("k", 5000)), d.get("vocabulary", "wordnet"),
                     d.get("vocabulary_file"), None, 0, d.get("template", DEFAULT_TEMPLATE), progress=progress)


def _spec(study: CalibrationStudy, data: StudyData, recipe: Recipe, train: TrainSet, seed: int) -> dict:
    sets = {"base_test": data.base_test.cache_key, "new_test": data.new_test.cache_key,
            "val": data.val.cache_key if data.val is not None else None}
    protocol = {k: v for k, v in asdict(study).items() if k in ("split", "fd_m", "fd_metric", "n_bins")}
    return cell_spec(data.loaded, recipe, train, seed, experiment="calibration", eval_sets=sets,
                     template=data.template, **protocol)


def fd_callback(base_names: Sequence[str], new_names: Sequence[str], m: int, metric: str = "cosine"):
    """A ``train_method`` callback logging the feature divergence of the learned base and new class text
    features (``fd_base``, ``fd_new``); methods whose prompts depend on the image log nothing."""

    def callback(method, step, history) -> dict:
        return text_divergence(method, base_names, new_names, m, metric)

    return callback


def text_divergence(method, base_names, new_names, m: int, metric: str = "cosine") -> dict:
    """``{"fd_base", "fd_new"}``: mean FD (Def. 3.1) of ``method.encode_names`` for each group's names."""
    import torch

    from ..calibration import feature_divergence
    from ..methods.base import Method

    if getattr(method, "instance_conditioned", False) or type(method).encode_names is Method.encode_names:
        return {}  # prompts that depend on the image, or no prompts at all (zero-shot: see zeroshot_divergence)
    with torch.no_grad():
        out = {}
        for key, names in (("fd_base", base_names), ("fd_new", new_names)):
            feats = method.encode_names(list(names)).float().cpu().numpy()
            out[key] = _group_divergence(feats, m, metric)
    return out


def _group_divergence(features, m: int, metric: str) -> float:
    """Mean FD of one class group with ``m`` capped at the group's other classes; NaN for a group of one
    class (no neighbours: FD is undefined, e.g. the single new class of a 3-class dataset)."""
    from ..calibration import feature_divergence

    if len(features) < 2:
        return float("nan")
    return feature_divergence(features, m=min(m, len(features) - 1), metric=metric)["mean"]


def zeroshot_divergence(data: StudyData, m: int, metric: str = "cosine") -> dict:
    """FD of the frozen zero-shot text features of the hand-crafted prompt, per group."""
    from ..prompts import zeroshot_head

    return {g: _group_divergence(zeroshot_head(data.loaded, names, data.template).numpy(), m, metric)
            for g, names in (("base", data.base_names), ("new", data.new_names))}


def _run_cell(study, data, recipe, train, seed, spec, store, progress) -> dict:
    t0 = time.time()
    method = build(data.loaded, recipe, data.base_names)
    fd_init = text_divergence(method, data.base_names, data.new_names, study.fd_m, study.fd_metric)
    cb = fd_callback(data.base_names, data.new_names, study.fd_m, study.fd_metric)
    method, history, _ = train_method(data.loaded, recipe, train, data.base_names, seed, method=method,
                                      checkpoint=checkpoint_path(spec), callbacks=[cb], progress=progress)
    train_seconds = time.time() - t0
    new_method = transfer_to_classes(method, data.loaded, recipe, data.new_names)
    temperature = None
    if data.val is not None:
        from ..calibration import fit_temperature

        val = method_outputs(method, data.loaded, data.val, name="val", progress=progress)
        temperature = fit_temperature(float(method.scale) * val.sims, val.labels)
    groups, arrays = {}, {}
    for group, m, ds in (("base", method, data.base_test), ("new", new_method, data.new_test)):
        out = method_outputs(m, data.loaded, ds, name=group, progress=progress)
        groups[group] = evaluate_group(float(m.scale) * out.sims, out.labels, study.n_bins, temperature)
        arrays[f"{group}/sims"] = out.sims.astype(np.float16)
        arrays[f"{group}/labels"] = out.labels
    fd_final = text_divergence(method, data.base_names, data.new_names, study.fd_m, study.fd_metric)
    store.put_arrays(spec, arrays)
    steps = recipe.train_config(len(train), train.shots, seed).steps if recipe.trains and method.trains else 0
    return {"groups": groups, "history": history, "fd_init": fd_init, "fd_final": fd_final,
            "temperature": temperature, "steps": steps, "n_train": len(train), "scale": float(method.scale),
            "train_seconds": round(train_seconds, 2), "seconds": round(time.time() - t0, 2)}


def evaluate_group(logits, labels, n_bins: int = 10, temperature: float | None = None) -> dict:
    """Calibration of one group's logits (:func:`clipstudy.metrics.calibration_summary`, 10 ``[lower, upper)``
    bins by default), ECE after temperature scaling with ``temperature`` (if given), and the reliability
    bins as sums (``count``, ``confidence_sum``, ``correct_sum`` per bin) so seeds can be pooled."""
    from ..calibration import apply_temperature
    from ..metrics import calibration_summary, ece, reliability_bins

    row = calibration_summary(logits, labels, from_logits=True, n_bins=n_bins)
    if temperature is not None:
        row["ece_ts"] = ece(apply_temperature(logits, temperature), labels, n_bins, from_logits=True, closed="left")
    bins = reliability_bins(logits, labels, n_bins, from_logits=True, closed="left")
    n = bins["counts"]
    row["bins"] = {"edges": bins["edges"].tolist(), "count": n.tolist(),
                   "confidence_sum": np.nan_to_num(bins["confidence"] * n).tolist(),
                   "correct_sum": np.nan_to_num(bins["accuracy"] * n).tolist()}
    return row


# --------------------------------------------------------------------------- results

def recipe_facets(spec_recipe: Mapping[str, Any]) -> dict:
    """``family`` (the method), ``dor`` (attached or not), ``lam`` (its weight) and ``mode`` (its pool) of
    a recipe spec, so figures select cells by what was trained rather than by label."""
    regs = (spec_recipe.get("params") or {}).get("regularizers") or {}
    d = regs.get("dor")
    return {"family": spec_recipe["method"], "dor": d is not None,
            "lam": float(d.get("weight", 1.0)) if d else 0.0, "mode": d.get("mode", "near") if d else ""}


@dataclass
class CalibrationResults:
    """The study's cells as tidy DataFrames.

    ``metrics``: role, method, family, dor, lam, mode, shots, seed, group (base | new), accuracy,
    confidence, gap (confidence − accuracy), ece, ece15, ace, mce, mce_weighted, nll, brier, ece_ts, fd
    (final FD of the group's learned text features), fd_init. ``history``: per logged training step (step,
    epoch, loss, loss_task, loss_<regularizer>, fd_base, fd_new). ``reliability``: per bin (lower, upper,
    count, confidence_sum, correct_sum). ``skipped``: method -> why it did not run; ``fd_zeroshot``: the
    frozen prompt's FD per group.
    """

    metrics: Any
    history: Any
    reliability: Any
    cells: list
    store: Any
    skipped: dict
    fd_zeroshot: dict

    @classmethod
    def from_records(cls, records, store, skipped=None, fd_zeroshot=None) -> "CalibrationResults":
        import pandas as pd

        metrics, history, bins, cells = [], [], [], []
        for role, spec, m in records:
            key = {"role": role, "method": spec["method"], **recipe_facets(spec["recipe"]), "shots": spec["shots"],
                   "seed": spec["seed"]}
            cells.append({**key, "spec": spec})
            for group, row in m["groups"].items():
                values = {k: v for k, v in row.items() if k != "bins"}
                metrics.append({**key, "group": group, **values, "fd": m["fd_final"].get(f"fd_{group}"),
                                "fd_init": m["fd_init"].get(f"fd_{group}"), "temperature": m["temperature"]})
                b = row["bins"]
                bins += [{**key, "group": group, "bin": i, "lower": b["edges"][i], "upper": b["edges"][i + 1],
                          "count": b["count"][i], "confidence_sum": b["confidence_sum"][i],
                          "correct_sum": b["correct_sum"][i]} for i in range(len(b["count"]))]
            history += [{**key, **_history_row(h, m, spec)} for h in m["history"]]
        frame = pd.DataFrame
        return cls(frame(metrics), frame(history), frame(bins), cells, store, dict(skipped or {}),
                   dict(fd_zeroshot or {}))

    def main(self):
        """The main methods' rows of :attr:`metrics`."""
        return self.metrics[self.metrics.role == "main"]

    def summary(self, role: str = "main"):
        """Mean and std over seeds per (method, group) of every metric, plus the harmonic mean of base and
        new accuracy (``hm``, per seed, then averaged) as a third group."""
        from ..metrics import harmonic_mean

        df = self.metrics[self.metrics.role == role]
        keys = ["method", "family", "dor", "lam", "mode", "shots"]
        wide = df.pivot_table(index=keys + ["seed"], columns="group", values="accuracy").reset_index()
        hm = wide.assign(group="hm", accuracy=harmonic_mean(wide["base"], wide["new"]))[keys + ["seed", "group",
                                                                                                 "accuracy"]]
        numeric = [c for c in df.columns if c not in keys + ["role", "seed", "group"] and df[c].dtype.kind in "fi"]
        import pandas as pd

        full = pd.concat([df[keys + ["seed", "group"] + numeric], hm], ignore_index=True)
        return full.groupby(keys + ["group"], dropna=False)[numeric].agg(["mean", "std"])

    def sims(self, method: str, seed: int, shots: int | None = None, role: str = "main") -> dict:
        """The similarity matrices and labels (``base/sims``, ``new/labels``, ...) of one cell."""
        for c in self.cells:
            if (c["role"], c["method"], c["seed"]) == (role, method, seed) and shots in (None, c["shots"]):
                return self.store.get_arrays(c["spec"])
        raise KeyError(f"no {role} cell for method={method!r}, seed={seed}")


def _history_row(h: Mapping[str, Any], m: Mapping[str, Any], spec: Mapping[str, Any]) -> dict:
    batch = spec["recipe"]["batch_size"]
    row = {"step": h["step"], "epoch": h["step"] * min(batch, m["n_train"]) / m["n_train"],
           "loss": h.get("loss"), "fd_base": h.get("fd_base"), "fd_new": h.get("fd_new")}
    skip = {"step", "seconds", "lr", "loss", "fd_base", "fd_new"}
    row.update({f"loss_{k}": v for k, v in h.items() if k not in skip})
    return row


# --------------------------------------------------------------------------- several datasets, key numbers

def dataset_specs(name: str, *, n_train: int = 1200, n_test: int = 1500, n_val: int = 600,
                  max_test_images: int = 0, domain: str = "photo") -> dict:
    """``{"train", "test", "val"}`` dataset specs of one benchmark: the embedded world's ID classes in one
    domain (``n_*`` images rendered per split), or a CoOp dataset read from folders (train / test / val
    splits of ``split_zhou_*.json``; ``max_test_images`` > 0 keeps a seeded subset of the test split; ImageNet's
    val images are its test set, so it gets no validation set)."""
    if name == "world":
        spec = {"dataset": "world", "classes": "id", "domain": domain}
        return {"train": {**spec, "split": "train", "n": n_train}, "test": {**spec, "split": "test", "n": n_test},
                "val": {**spec, "split": "val", "n": n_val} if n_val else {}}
    test = {"dataset": name, "split": "test"}
    if max_test_images:
        test["max_images"] = int(max_test_images)
    # CoOp's ImageNet has no validation split (its val images are the test set): no temperature scaling there
    has_val = n_val and name != "imagenet"
    return {"train": {"dataset": name, "split": "train"}, "test": test,
            "val": {"dataset": name, "split": "val"} if has_val else {}}


def combine(results: Mapping[str, CalibrationResults]) -> CalibrationResults:
    """Several datasets' results as one, averaged over datasets per (cell, seed, group), as the paper
    averages its 11 datasets (papers.md §0.5); reliability bins are summed, training histories averaged
    per logged step (the i-th log of every dataset), zero-shot FD averaged. One dataset is returned as is."""
    import pandas as pd

    if len(results) == 1:
        return next(iter(results.values()))
    keys = ["role", "method", "family", "dor", "lam", "mode", "shots", "seed"]

    def stack(attr):
        return pd.concat([getattr(r, attr).assign(dataset=d) for d, r in results.items()], ignore_index=True)

    metrics = stack("metrics").groupby(keys + ["group"], dropna=False).mean(numeric_only=True).reset_index()
    bins = stack("reliability").groupby(keys + ["group", "bin"], dropna=False).agg(
        lower=("lower", "first"), upper=("upper", "first"), count=("count", "sum"),
        confidence_sum=("confidence_sum", "sum"), correct_sum=("correct_sum", "sum")).reset_index()
    hist = stack("history")
    hist["log"] = hist.groupby(keys + ["dataset"], dropna=False).cumcount()
    history = hist.groupby(keys + ["log"], dropna=False).mean(numeric_only=True).reset_index()
    fd = {g: float(np.mean([r.fd_zeroshot[g] for r in results.values() if g in r.fd_zeroshot])) for g in GROUPS}
    skipped = {k: v for r in results.values() for k, v in r.skipped.items()}
    cells = [c for r in results.values() for c in r.cells]
    return CalibrationResults(metrics, history, bins, cells, None, skipped, fd)


def key_numbers(results: CalibrationResults) -> dict:
    """The numbers the notebook records: per main method and group, mean over seeds of ECE, accuracy,
    confidence − accuracy and final FD (``<group>_<metric>_<method>``), the harmonic mean of base and new
    accuracy (``hm_accuracy_<method>``), zero-shot FD per group and the number of distinct result cells."""
    from ..metrics import harmonic_mean

    df = results.main()
    out = {}
    for (method, group), g in df.groupby(["method", "group"]):
        name = "zeroshot" if method.startswith("zeroshot") else method
        for metric in ("ece", "accuracy", "gap", "fd"):
            v = g[metric].dropna()
            if len(v):
                out[f"{group}_{metric}_{name}"] = float(v.mean())
    for method, g in df.groupby("method"):
        name = "zeroshot" if method.startswith("zeroshot") else method
        w = g.pivot_table(index="seed", columns="group", values="accuracy")
        if {"base", "new"} <= set(w.columns):
            out[f"hm_accuracy_{name}"] = float(np.mean(harmonic_mean(w["base"].to_numpy(), w["new"].to_numpy())))
    for group, v in results.fd_zeroshot.items():
        out[f"{group}_fd_zeroshot"] = float(v)
    from ..results import spec_hash

    out["n_cells"] = len({spec_hash(c["spec"]) for c in results.cells})  # distinct result cells
    return out


def verdicts(n: Mapping[str, float]) -> dict:
    """Each claim of papers.md §2.1 against the numbers of :func:`key_numbers`: one line per claim saying
    what was measured and whether it supports the claim (``""`` when a number is missing)."""
    out = {}

    def have(*keys):
        return all(k in n for k in keys)

    if have("new_gap_coop", "new_ece_coop", "new_ece_zeroshot", "new_fd_coop", "new_fd_zeroshot"):
        over = n["new_gap_coop"] > 0
        worse = n["new_ece_coop"] > n["new_ece_zeroshot"]
        out["coop_new_overconfident"] = (
            f"CoOp on new classes: confidence − accuracy {100 * n['new_gap_coop']:+.1f} pp, ECE "
            f"{100 * n['new_ece_coop']:.1f}% vs zero-shot {100 * n['new_ece_zeroshot']:.1f}%, FD "
            f"{n['new_fd_zeroshot']:.3f} -> {n['new_fd_coop']:.3f}: "
            + ("supports" if over and worse else "partly supports" if over or worse else "does not support")
            + " 'CoOp makes new classes overconfident'")
    if have("base_gap_kgcoop", "base_ece_kgcoop", "base_ece_zeroshot", "base_accuracy_kgcoop", "base_accuracy_zeroshot"):
        under = n["base_gap_kgcoop"] < 0
        worse = n["base_ece_kgcoop"] > n["base_ece_zeroshot"]
        out["kgcoop_base_underconfident"] = (
            f"KgCoOp on base classes: confidence − accuracy {100 * n['base_gap_kgcoop']:+.1f} pp, ECE "
            f"{100 * n['base_ece_kgcoop']:.1f}% vs zero-shot {100 * n['base_ece_zeroshot']:.1f}%, accuracy "
            f"{100 * n['base_accuracy_zeroshot']:.1f}% -> {100 * n['base_accuracy_kgcoop']:.1f}%: "
            + ("supports" if under and worse else "partly supports" if under or worse else "does not support")
            + " 'KgCoOp makes base classes underconfident'")
    if have("new_ece_coop", "new_ece_coop_dor", "new_fd_coop", "new_fd_coop_dor"):
        fd = n["new_fd_coop_dor"] < n["new_fd_coop"]
        ece = n["new_ece_coop_dor"] < n["new_ece_coop"]
        out["dor_new"] = (
            f"CoOp+DOR vs CoOp on new classes: FD {n['new_fd_coop']:.3f} -> {n['new_fd_coop_dor']:.3f}, ECE "
            f"{100 * n['new_ece_coop']:.1f}% -> {100 * n['new_ece_coop_dor']:.1f}%: "
            + ("supports" if fd and ece else "partly supports" if fd or ece else "does not support")
            + " 'DOR keeps new-class text features from diverging and lowers new-class ECE'")
    if have("hm_accuracy_coop", "hm_accuracy_coop_dor"):
        out["dor_accuracy"] = (
            f"harmonic mean of base and new accuracy: CoOp {100 * n['hm_accuracy_coop']:.1f}%, CoOp+DOR "
            f"{100 * n['hm_accuracy_coop_dor']:.1f}%: "
            + ("supports" if n["hm_accuracy_coop_dor"] >= n["hm_accuracy_coop"] else "does not support")
            + " 'DOR does not cost accuracy'")
    return out
