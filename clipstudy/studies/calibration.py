"""Wang, Li & Wei, "Understanding and mitigating miscalibration in prompt tuning for vision-language models"
(ICML 2025): the base/new calibration trade-off of prompt tuning and Dynamic Outlier Regularization (DOR).

Protocol (docs/protocols.md §0.5, §2.4): CoOp's base-to-new split (labels sorted, the first ``ceil(n/2)`` are base
classes, relabelled; :func:`clipstudy.experiment.subsample_classes`); each method trains on ``K`` shots of
the base classes per seed and is evaluated at its last step on the base test images (closed set over the
base names) and on the new test images (closed set over the new names, the method rebuilt for them with
its learned prompts: :func:`clipstudy.experiment.transfer_to_classes`). For each group the study computes
accuracy, ECE/ACE/MCE (10 bins, the DAC/DOR convention; ECE with 15 bins too), NLL, Brier, confidence minus
accuracy, ECE after temperature scaling fitted on held-out base-class images, reliability-diagram bins
and the feature divergence (FD, Def. 3.1; :func:`clipstudy.analysis.divergence.feature_divergence`) of the
learned base and new class text features — also during training, through a ``train_method`` callback.

One result cell per (recipe, shots, seed) — the main methods, the λ sweep and the outlier-vocabulary
ablation of ``sweep_method`` are all such cells (a sweep point equal to a main method is the same cell).
Cells are skipped when present, so an interrupted study resumes; :class:`CalibrationResults` turns them
into tidy DataFrames.

Like the paper (its tables average CoOp's 11 datasets, docs/protocols.md §0.5), a study usually runs on a
suite: :func:`make_study` with a suite name (``"world-suite"``, the embedded world's seven downstream datasets,
:mod:`clipstudy.data.world_suite`) or a list of benchmarks gives a :class:`CalibrationSuite`, one study per
dataset, whose tables are the mean over datasets (:func:`combine`) with each dataset's rows kept
(:attr:`CalibrationResults.per_dataset`, :func:`dataset_table`). Each dataset's hand-crafted prompt (its
``template``) is the zero-shot prompt and KgCoOp's anchor.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.spread import ONE_SEED_NOTE, STATUS, compare, pm, seeds_phrase
from ..analysis.spread import all_sign as _all_sign, direction as _direction, one_seed as _one_seed
from ..errors import ConfigError
from ..data.specs import ClassSubset, dataset_from_spec, unwrap
from ..data.world_suite import DEFAULT_N as WORLD_SUITE_N
from ..experiment import (Recipe, TrainSet, build, cell_spec, checkpoint_path, few_shot_set, get_recipe,
                          method_outputs, subsample_classes, train_method, transfer_to_classes)
from ..registry import Registry, UnknownNameError
from ..study import (RecipeStudyConfig, Study, call_with, check_shots, max_steps_overrides, run as run_study,
                     split_params)

DEFAULT_METHODS = ("zeroshot_hc", "coop", "coop_dor", "cocoop", "cocoop_dor", "kgcoop", "kgcoop_dor", "maple",
                   "maple_dor")
SPLITS = ("base2new",)
GROUPS = ("base", "new")
DEFAULT_TEMPLATE = "a photo of a {}."
DATASET_TEMPLATE = "dataset"
"""A recipe parameter with this value is replaced by the study's hand-crafted prompt."""


@dataclass(frozen=True)
class CalibrationStudy(RecipeStudyConfig):
    """Everything that defines the study; every field that changes numbers is part of each cell's spec (the
    shared fields: :class:`clipstudy.study.RecipeStudyConfig`).

    ``train`` (the pool the few-shot sets are drawn from), ``test`` and ``val`` (held-out images for
    temperature scaling; ``{}`` skips it) are dataset specs over *all* classes
    (:func:`clipstudy.data.specs.dataset_from_spec`); the study splits them into base and new classes.
    ``methods`` are recipe names at ``scale``; ``template`` is the hand-crafted prompt (``""``: the
    dataset's own ``template`` attribute, CoOp's ``CUSTOM_TEMPLATES``, else ``"a photo of a {}."``).
    ``dor`` is merged into every DOR regularizer (e.g. ``{"vocabulary": "world"}``). ``lambdas`` and
    ``outlier_modes`` sweep the DOR weight and the outlier pool of ``sweep_method``. FD uses the ``fd_m``
    nearest other classes under ``fd_metric``. ``precision`` (fp32 | bf16) replaces every recipe's (``""``
    keeps them). Methods the backbone cannot run (MaPLe on a ResNet) are skipped with their reason when
    ``skip_unsupported``.
    """

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
    precision: str = ""
    skip_unsupported: bool = True

    desc = "calibration study cells"

    def __post_init__(self):
        from ..vocabulary import MODES

        self.check_fields()
        if self.split not in SPLITS:
            raise ConfigError(f"unknown base/new split {self.split!r}; valid splits: {', '.join(SPLITS)}")
        if not self.train or not self.test:
            raise ConfigError("the calibration study needs 'train' and 'test' dataset specs")
        check_shots(self.shots)
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
        self.check_recipes(also=(self.sweep_method,))  # unknown recipes or settings fail before anything runs
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

    # ---- the study contract (clipstudy.study.Study)
    def load_data(self, progress: bool = True) -> "StudyData":
        return load_study_data(self)

    def cells(self, data) -> list[tuple]:
        """``(Cell, shots, seed)`` of every cell of :func:`study_cells` the backbone can run (the others are
        kept in ``data.skipped`` with their reason, or fail unless ``skip_unsupported``)."""
        todo = []
        for cell in study_cells(self):
            reason = unsupported_reason(data.loaded, cell.recipe)
            if reason:
                if not self.skip_unsupported:
                    raise ConfigError(f"{cell.recipe.label}: {reason}")
                data.skipped[cell.recipe.label] = reason
                continue
            todo += [(cell, k, s) for k in self.shots for s in self.seeds]
        return todo

    def before(self, data, cells, progress: bool = True) -> None:
        _warm_outlier_pools(self, data, [c.recipe for c, _, _ in cells], progress)
        data.fd_zeroshot = zeroshot_divergence(data, self.fd_m, self.fd_metric)

    def prepare(self, data, cell) -> "CalibrationCell":
        cell, shots, seed = cell
        recipe = prepare_recipe(cell.recipe, data, seed, self.dor)
        return CalibrationCell(cell.role, recipe, few_shot_set(data.pool, shots, seed, label_map=data.base_map), seed)

    def spec(self, data, cell: "CalibrationCell") -> dict:
        return _spec(self, data, cell.recipe, cell.train, cell.seed)

    def run_cell(self, data, cell: "CalibrationCell", spec, store, progress: bool = True) -> dict:
        return _run_cell(self, data, cell.recipe, cell.train, cell.seed, spec, store, progress)

    def tables(self, records, data, store) -> "CalibrationResults":
        for label, reason in data.skipped.items():
            print(f"{label} skipped: {reason}")
        return CalibrationResults.from_records([(r.cell.role, r.spec, r.metrics) for r in records], store,
                                               data.skipped, data.fd_zeroshot, dataset=data.name)


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
    skipped: dict = field(default_factory=dict)
    fd_zeroshot: dict = field(default_factory=dict)
    name: str = ""


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
    template = study.template or dataset_template(pool) or DEFAULT_TEMPLATE
    return StudyData(loaded, pool, base_test, new_test, val, base_map, base_test.classnames, new_test.classnames,
                     template, name=str(getattr(unwrap(pool)[0], "name", "") or ""))


def dataset_template(ds) -> str | None:
    """The hand-crafted prompt a dataset carries (``template``: CoOp's ``CUSTOM_TEMPLATES`` for CoOp's datasets,
    the world suite's own prompts), read through subset and in-memory wrappers
    (:func:`clipstudy.data.specs.unwrap`), which do not copy it; ``None`` if it has none."""
    return getattr(ds, "template", None) or getattr(unwrap(ds)[0], "template", None)


def prepare_recipe(recipe: Recipe, data: StudyData, seed: int, dor: Mapping[str, Any] | None = None) -> Recipe:
    """The recipe as trained in one cell: ``"dataset"`` placeholders replaced by the hand-crafted prompt,
    the study's DOR settings merged into its DOR regularizer and, for the ``oracle`` pool, the true new-class
    names supplied (DOR's sampler, like every random draw of the cell, is seeded with the training seed by
    :func:`clipstudy.experiment.build`)."""
    params = recipe.kwargs
    for key in ("templates", "template"):
        if params.get(key) == DATASET_TEMPLATE:
            params[key] = data.template
    regs = dict(params.get("regularizers") or {})
    if "dor" in regs:
        d = {**regs["dor"], **dict(dor or {})}
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


@dataclass(frozen=True)
class CalibrationCell:
    """One cell as it runs: its role, the recipe as trained (:func:`prepare_recipe`), the few-shot training
    set of the base classes drawn for the seed, the seed."""

    role: str
    recipe: Recipe
    train: TrainSet
    seed: int


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


def run(study, store=None, progress: bool = True, data: StudyData | None = None) -> "CalibrationResults":
    """Fill one result cell per (recipe, shots, seed) (:func:`clipstudy.study.run`); return the tidy tables
    (:class:`CalibrationResults`). A :class:`CalibrationSuite` runs each of its datasets and averages them
    (:func:`combine`)."""
    return run_study(study, store, progress, data)


run_calibration_study = run
"""The former name of :func:`run` (kept for existing notebooks and scripts)."""


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

    from ..analysis.divergence import feature_divergence
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
    from ..analysis.divergence import feature_divergence

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
    method = build(data.loaded, recipe, data.base_names, seed=seed)
    fd_init = text_divergence(method, data.base_names, data.new_names, study.fd_m, study.fd_metric)
    cb = fd_callback(data.base_names, data.new_names, study.fd_m, study.fd_metric)
    method, history, _ = train_method(data.loaded, recipe, train, data.base_names, seed, method=method,
                                      checkpoint=checkpoint_path(spec), callbacks=[cb], progress=progress)
    train_seconds = time.time() - t0
    new_method = transfer_to_classes(method, data.loaded, recipe, data.new_names, seed=seed)
    temperature, at_bound = None, None
    if data.val is not None:
        from ..temperature import fit_temperature, warn_if_at_bound

        val = method_outputs(method, data.loaded, data.val, name="val", progress=progress)
        temperature = fit_temperature(float(method.scale) * val.sims, val.labels)
        at_bound = warn_if_at_bound(temperature, f"{recipe.label}, seed {seed}")
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
            "temperature": temperature, "ts_at_bound": at_bound, "steps": steps, "n_train": len(train), "scale": float(method.scale),
            "train_seconds": round(train_seconds, 2), "seconds": round(time.time() - t0, 2)}


def evaluate_group(logits, labels, n_bins: int = 10, temperature: float | None = None) -> dict:
    """Calibration of one group's logits (:func:`clipstudy.metrics.calibration_summary`, 10 ``[lower, upper)``
    bins by default), ECE after temperature scaling with ``temperature`` (if given), and the reliability
    bins as sums (``count``, ``confidence_sum``, ``correct_sum`` per bin) so seeds can be pooled."""
    from ..temperature import apply_temperature
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
    frozen prompt's FD per group. ``per_dataset``: the rows of :attr:`metrics` of every dataset with a
    ``dataset`` column (one dataset: :attr:`metrics` itself; a suite's average, :func:`combine`: each dataset's
    rows, while :attr:`metrics` holds their mean); ``None`` where unknown. ``ablation``: the results of the
    datasets that ran the sweeps when only some of a suite's did (:attr:`sweeps`; their sweep rows are not in
    :attr:`metrics`).
    """

    metrics: Any
    history: Any
    reliability: Any
    cells: list
    store: Any
    skipped: dict
    fd_zeroshot: dict
    per_dataset: Any = None
    ablation: Any = None

    @property
    def sweeps(self) -> "CalibrationResults":
        """The results the λ sweep and the outlier-pool ablation are read from: :attr:`ablation` (a suite
        that ran them on some of its datasets: those datasets' average, with their own main cells), else
        these results."""
        return self.ablation if self.ablation is not None else self

    @property
    def datasets(self) -> list[str]:
        """The datasets these results hold (in run order), ``[]`` where unknown."""
        if self.per_dataset is None or "dataset" not in self.per_dataset:
            return []
        return list(dict.fromkeys(self.per_dataset["dataset"]))

    @property
    def n_datasets(self) -> int:
        """How many datasets :attr:`metrics` averages (1 where unknown)."""
        return max(1, len(self.datasets))

    @classmethod
    def from_records(cls, records, store, skipped=None, fd_zeroshot=None, dataset: str = "") -> "CalibrationResults":
        """The tables of one dataset's cells; ``dataset`` names it in :attr:`per_dataset`."""
        import pandas as pd

        metrics, history, bins, cells = [], [], [], []
        for role, spec, m in records:
            key = {"role": role, "method": spec["method"], **recipe_facets(spec["recipe"]), "shots": spec["shots"],
                   "seed": spec["seed"]}
            cells.append({**key, "spec": spec})
            for group, row in m["groups"].items():
                values = {k: v for k, v in row.items() if k != "bins"}
                metrics.append({**key, "group": group, **values, "fd": m["fd_final"].get(f"fd_{group}"),
                                "fd_init": m["fd_init"].get(f"fd_{group}"), "temperature": m["temperature"],
                                "ts_at_bound": m.get("ts_at_bound")})
                b = row["bins"]
                bins += [{**key, "group": group, "bin": i, "lower": b["edges"][i], "upper": b["edges"][i + 1],
                          "count": b["count"][i], "confidence_sum": b["confidence_sum"][i],
                          "correct_sum": b["correct_sum"][i]} for i in range(len(b["count"]))]
            history += [{**key, **_history_row(h, m, spec)} for h in m["history"]]
        frame = pd.DataFrame
        metrics = frame(metrics)
        return cls(metrics, frame(history), frame(bins), cells, store, dict(skipped or {}), dict(fd_zeroshot or {}),
                   metrics.assign(dataset=dataset) if dataset else None)

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

BENCHMARKS = Registry("calibration benchmark")
"""Named benchmarks: the embedded ``world``, the world suite's seven datasets
(:data:`clipstudy.data.world_suite.SUITES`, docs/world_suite.md) and CoOp's eleven datasets
(:data:`clipstudy.data.coop_datasets.COOP_DATASETS`); each returns ``{"train", "test", "val"}`` dataset specs."""

BENCHMARK_SUITES: dict[str, tuple[str, ...]] = {}
"""Suite name -> its benchmarks: ``make_study("world-suite")`` (or a list naming it) runs every dataset of the
suite and averages them (:class:`CalibrationSuite`), as the paper averages CoOp's 11 datasets."""


def dataset_specs(name: str, **options) -> dict:
    """``{"train", "test", "val"}`` dataset specs of benchmark ``name`` (:data:`BENCHMARKS`; unknown names
    list the valid ones)."""
    return BENCHMARKS.get(name)(**options)


@BENCHMARKS.register("world")
def world_specs(*, n_train: int = 1200, n_test: int = 1500, n_val: int = 600, max_test_images: int = 0,
                domain: str = "photo") -> dict:
    """The embedded world's ID classes in one domain (``n_*`` images rendered per split; ``n_val`` = 0: no
    temperature scaling)."""
    spec = {"dataset": "world", "classes": "id", "domain": domain}
    return {"train": {**spec, "split": "train", "n": n_train}, "test": {**spec, "split": "test", "n": n_test},
            "val": {**spec, "split": "val", "n": n_val} if n_val else {}}


def coop_specs(name: str, *, n_train: int = 1200, n_test: int = 1500, n_val: int = 600, max_test_images: int = 0,
               domain: str = "photo") -> dict:
    """A CoOp dataset read from folders (train / test / val splits of ``split_zhou_*.json``; docs/protocols.md
    §0.5): ``max_test_images`` > 0 keeps a seeded subset of the test split; ImageNet's val images are its test
    set, so it gets no validation set; ``n_val`` = 0 skips temperature scaling. ``n_train``, ``n_test`` and
    ``domain`` only apply to the world."""
    test = {"dataset": name, "split": "test"}
    if max_test_images:
        test["max_images"] = int(max_test_images)
    # CoOp's ImageNet has no validation split (its val images are the test set): no temperature scaling there
    has_val = n_val and name != "imagenet"
    return {"train": {"dataset": name, "split": "train"}, "test": test,
            "val": {"dataset": name, "split": "val"} if has_val else {}}


def suite_specs(name: str, *, n_train: int = WORLD_SUITE_N["train"], n_test: int = WORLD_SUITE_N["test"],
                n_val: int = WORLD_SUITE_N["val"]) -> dict:
    """A world-suite dataset (:mod:`clipstudy.data.world_suite`; docs/world_suite.md): its ``train`` (the pool
    the few-shot sets are drawn from), ``test`` and ``val`` splits of ``n_train`` / ``n_test`` / ``n_val``
    images over all its classes (shares as equal as possible); ``n_val`` = 0 skips temperature scaling. The
    dataset carries its own prompt (``template``), which zero-shot and KgCoOp's anchor use."""
    spec = {"dataset": name}
    return {"train": {**spec, "split": "train", "n": n_train}, "test": {**spec, "split": "test", "n": n_test},
            "val": {**spec, "split": "val", "n": n_val} if n_val else {}}


def _register_suites() -> None:
    from ..data.world_suite import SUITES

    def builder(name):
        def specs(*, n_train: int = WORLD_SUITE_N["train"], n_test: int = WORLD_SUITE_N["test"],
                  n_val: int = WORLD_SUITE_N["val"]) -> dict:
            return suite_specs(name, n_train=n_train, n_test=n_test, n_val=n_val)

        specs.__name__ = specs.__qualname__ = f"{name.replace('-', '_')}_specs"
        specs.__doc__ = f"The world suite's {name} (:func:`suite_specs`)."
        return specs

    for suite, names in SUITES.items():
        for name in names:
            BENCHMARKS.register(name, obj=builder(name), suite=suite)
        BENCHMARK_SUITES[suite] = tuple(names)


def _register_coop() -> None:
    from ..data.coop_datasets import COOP_DATASETS

    def builder(name):
        def specs(**options) -> dict:
            return coop_specs(name, **options)

        specs.__name__ = specs.__qualname__ = f"{name}_specs"
        specs.__doc__ = f"CoOp's {name} (:func:`coop_specs`)."
        return specs

    for name in COOP_DATASETS:
        BENCHMARKS.register(name, obj=builder(name))


_register_suites()
_register_coop()


def expand_benchmarks(benchmark) -> list[str]:
    """The benchmark names of ``benchmark`` (one name or a list), each suite name (:data:`BENCHMARK_SUITES`)
    replaced by its datasets, duplicates dropped; an unknown name is an
    :class:`~clipstudy.registry.UnknownNameError` (as for any registry) listing the valid benchmarks and suites."""
    names = [benchmark] if isinstance(benchmark, str) else list(benchmark)
    out = []
    for name in names:
        if not isinstance(name, str):
            raise ConfigError(f"a benchmark is a name such as 'world-suite', got {name!r}")
        if name not in BENCHMARK_SUITES and name not in BENCHMARKS:
            raise UnknownNameError(f"unknown calibration benchmark {name!r}; valid suites: "
                                   f"{', '.join(BENCHMARK_SUITES)}; valid benchmarks: {', '.join(BENCHMARKS.list())}")
        out += list(BENCHMARK_SUITES.get(name, (name,)))
    return list(dict.fromkeys(out))


def make_study(benchmark="world", *, max_steps: int = 0, sweep_benchmarks=(), **params):
    """The study of a notebook's parameters: the dataset specs of ``benchmark`` (:data:`BENCHMARKS`; its
    options ``n_train``, ``n_test``, ``n_val``, ``max_test_images``, ``domain`` go to its builder, each builder
    taking those it has) and every :class:`CalibrationStudy` field (lists become tuples; ``shots`` may be one
    number). ``max_steps`` > 0 caps every method's steps and the sweep method's, merged under
    ``recipe_overrides``. A suite name (``"world-suite"``, :data:`BENCHMARK_SUITES`) or a list of benchmarks
    (which may name suites) gives a :class:`CalibrationSuite`, one study per dataset, averaged as the paper
    averages its datasets. ``sweep_benchmarks`` (names or suites among those, empty: all) restricts the λ
    sweep and the outlier-pool ablation (``lambdas``, ``outlier_modes``) to those datasets
    (:attr:`CalibrationSuite.sweep_datasets`)."""
    sweeps = expand_benchmarks(sweep_benchmarks) if sweep_benchmarks else []
    if not isinstance(benchmark, str) or benchmark in BENCHMARK_SUITES:
        names = expand_benchmarks(benchmark)
        if not names:
            raise ConfigError("make_study needs at least one benchmark")
        outside = [n for n in sweeps if n not in names]
        if outside:
            raise ConfigError(f"sweep_benchmarks {outside} are not among the study's datasets; valid: "
                              f"{', '.join(names)} (or none: the sweeps run on every dataset)")
        none = {"lambdas": (), "outlier_modes": ()}
        return CalibrationSuite({n: make_study(n, max_steps=max_steps, **{**params, **(
            none if sweeps and n not in sweeps else {})}) for n in names},
                                sweep_datasets=tuple(sweeps) if set(sweeps) != set(names) else ())
    expand_benchmarks(benchmark)  # an unknown name lists the benchmarks and the suites
    if sweeps and sweeps != [benchmark]:
        raise ConfigError(f"sweep_benchmarks {sweeps} are not the study's dataset; valid: {benchmark} (or none)")
    builder = BENCHMARKS.get(benchmark)
    options, fields = split_params(CalibrationStudy, BENCHMARKS, params)
    if isinstance(fields.get("shots"), int):
        fields["shots"] = (fields["shots"],)
    methods = tuple(fields.get("methods", DEFAULT_METHODS))
    sweep = fields.get("sweep_method", CalibrationStudy.sweep_method)
    capped = methods + ((sweep,) if max_steps and sweep not in methods else ())
    overrides = max_steps_overrides(capped, max_steps, fields.pop("recipe_overrides", {}))
    return CalibrationStudy(**fields, recipe_overrides=overrides, **call_with(builder, options))


@dataclass(frozen=True)
class CalibrationSuite(Study):
    """Several datasets' studies run as one: each fills its own cells, and their tables are averaged over
    datasets (:func:`combine`, docs/protocols.md §0.5). ``recipe`` and the claims are those of the studies.

    ``sweep_datasets`` (empty: all): the datasets whose studies run the λ sweep and the outlier-pool
    ablation. When it is some of them, the results' sweep rows are those datasets' average, kept apart in
    :attr:`CalibrationResults.ablation` with those datasets' own main cells (CoOp, the λ = 0 point, and the
    other references of Figures 4–5 come from the same datasets as the sweep)."""

    studies: Mapping[str, CalibrationStudy] = field(default_factory=dict)
    sweep_datasets: tuple = ()

    def __post_init__(self):
        if not self.studies:
            raise ConfigError("a calibration suite needs at least one study")
        outside = [d for d in self.sweep_datasets if d not in self.studies]
        if outside:
            raise ConfigError(f"sweep_datasets {outside} are not datasets of the suite; valid: "
                              f"{', '.join(self.studies)}")

    @property
    def first(self) -> CalibrationStudy:
        return next(iter(self.studies.values()))

    @property
    def datasets(self) -> list[str]:
        """The benchmark names of the suite's studies, in run order."""
        return list(self.studies)

    def recipe(self, name: str) -> Recipe:
        return self.first.recipe(name)

    def run(self, store=None, progress: bool = True, data=None) -> "CalibrationResults":
        import dataclasses

        if data is not None:
            raise ConfigError("a calibration suite loads each dataset's data itself (data=None)")
        results = {name: s.run(store, progress) for name, s in self.studies.items()}
        if not self.sweep_datasets:
            return combine(results)
        ablation = combine({d: results[d] for d in self.sweep_datasets})
        main = combine(results)

        def mains(df):
            return df if df is None or "role" not in df else df[df.role == "main"].reset_index(drop=True)

        return dataclasses.replace(main, metrics=mains(main.metrics), history=mains(main.history),
                                   reliability=mains(main.reliability), per_dataset=mains(main.per_dataset),
                                   ablation=ablation)


def combine(results: Mapping[str, CalibrationResults]) -> CalibrationResults:
    """Several datasets' results as one, averaged over datasets per (cell, seed, group), as the paper
    averages its 11 datasets (docs/protocols.md §0.5); reliability bins are summed, training histories averaged
    per logged step (the i-th log of every dataset), zero-shot FD averaged. Each dataset's own rows are kept in
    :attr:`CalibrationResults.per_dataset` (``dataset`` = its key in ``results``). One dataset is returned as
    is, with its rows named by its key."""
    import dataclasses

    import pandas as pd

    if not results:
        raise ConfigError("combine needs the results of at least one dataset")
    per_dataset = pd.concat([r.metrics.assign(dataset=d) for d, r in results.items()], ignore_index=True)
    if len(results) == 1:
        return dataclasses.replace(next(iter(results.values())), per_dataset=per_dataset)
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
    return CalibrationResults(metrics, history, bins, cells, None, skipped, fd, per_dataset)


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
    out["n_datasets"] = results.n_datasets
    return out


TABLE_METRICS = ("accuracy", "ece", "ace", "mce", "nll", "confidence", "fd")
"""The columns of the paper's tables (Wang, Li & Wei, Tables 1-2: accuracy, ECE, ACE, MCE on base and new
classes) plus NLL, mean confidence and the feature divergence."""
PERCENT_METRICS = ("accuracy", "ece", "ece15", "ace", "mce", "mce_weighted", "confidence", "gap", "ece_ts", "brier")
"""Metrics that are fractions (shown in percent by :func:`paper_table` and :func:`dataset_table`)."""


def paper_table(results: CalibrationResults, metrics: Sequence[str] = TABLE_METRICS, percent: bool = True,
                label: Mapping[str, str] | None = None):
    """The paper's table of this run: one row per main method (display names, in :func:`main_methods`' order), columns
    ``(metric, group)`` for base and new classes (accuracy also ``hm``, the harmonic mean of base and new), each
    the mean over seeds of the suite's average over datasets (:func:`combine`; one dataset: its own numbers).
    ``percent``: fractions (:data:`PERCENT_METRICS`) in percent."""
    import pandas as pd

    summary = results.summary()
    name = {**_label_of(results), **dict(label or {})}
    methods = main_methods(results)
    cols = {}
    for metric in metrics:
        for group in GROUPS + (("hm",) if metric == "accuracy" else ()):
            if (metric, "mean") not in summary.columns:
                continue
            t = summary[(metric, "mean")].xs(group, level="group")
            t = t.groupby(level="method").mean()
            cols[(metric, group)] = t.reindex(methods) * (100 if percent and metric in PERCENT_METRICS else 1)
    out = pd.DataFrame(cols)
    out.index = [name.get(m, m) for m in out.index]
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["metric", "group"])
    return out


def dataset_table(results: CalibrationResults, metric: str = "ece", group: str = "new", role: str = "main",
                  percent: bool = True, mean_row: bool = True):
    """Per dataset (rows, in run order; ``mean_row`` adds ``"mean"``, the suite average) and method (columns,
    method labels in :func:`main_methods`' order): the mean over seeds of ``metric`` on ``group`` (``base``,
    ``new``, or ``hm`` with ``accuracy``: the harmonic mean of base and new accuracy per seed). ``percent``: fractions in percent.
    Results without per-dataset rows give one row, named ``"all"``."""
    import pandas as pd

    from ..metrics import harmonic_mean

    df = results.per_dataset if results.per_dataset is not None else results.metrics.assign(dataset="all")
    df = df[df.role == role]
    datasets = list(dict.fromkeys(df["dataset"]))
    methods = main_methods(results) if role == "main" else list(dict.fromkeys(df["method"]))
    if group == "hm":
        w = df.pivot_table(index=["dataset", "method", "seed"], columns="group", values="accuracy").reset_index()
        w["value"] = harmonic_mean(w["base"].to_numpy(), w["new"].to_numpy())
    else:
        w = df[df.group == group].rename(columns={metric: "value"})
    t = w.groupby(["dataset", "method"])["value"].mean().unstack("method")
    t = t.reindex(index=datasets, columns=[m for m in methods if m in t.columns])
    if mean_row and len(t) > 1:
        t = pd.concat([t, t.mean().to_frame("mean").T])
    return t * (100 if percent and (metric in PERCENT_METRICS or group == "hm") else 1)


def main_methods(results: CalibrationResults) -> list[str]:
    """The main methods' labels in the order of the paper's tables: zero-shot, then each family (CoOp, CoCoOp,
    KgCoOp, MaPLe, deep text prompts, then any other) without and with DOR."""
    m = results.main().drop_duplicates("method")
    order = {f: i for i, f in enumerate(_FAMILY_NAMES)}
    rows = sorted(enumerate(m.itertuples()), key=lambda t: (order.get(t[1].family, len(order)), bool(t[1].dor), t[0]))
    return [r.method for _, r in rows]


def dataset_results(results: CalibrationResults, dataset: str) -> CalibrationResults:
    """The metrics of one dataset of a suite's results (:attr:`CalibrationResults.per_dataset`) as results of
    their own, for :func:`seed_spread` and the verdicts (histories, bins and cells are not kept per dataset)."""
    import pandas as pd

    if dataset not in results.datasets:
        raise ConfigError(f"no dataset {dataset!r} in these results; valid: {', '.join(results.datasets)}")
    m = results.per_dataset[results.per_dataset.dataset == dataset].drop(columns="dataset").reset_index(drop=True)
    return CalibrationResults(m, pd.DataFrame(), pd.DataFrame(), [], None, dict(results.skipped), {},
                              m.assign(dataset=dataset))


def seed_spread(results: CalibrationResults, metric: str, group: str, role: str = "main", by: str = "method"):
    """Per ``by`` (the method label; ``lam`` or ``mode`` for the sweeps): mean, standard deviation over seeds
    (ddof = 1; 0 with one seed) and number of seeds of ``metric`` on ``group`` (``base``, ``new``, or ``hm``:
    the harmonic mean of base and new accuracy, per seed) of the ``role``'s cells. Zero-shot does not train:
    its spread is 0."""
    import pandas as pd

    from ..metrics import harmonic_mean

    df = results.metrics[results.metrics.role == role]
    if group == "hm":
        w = df.pivot_table(index=[by, "seed"], columns="group", values="accuracy", sort=False)
        w = w.dropna(subset=[g for g in GROUPS if g in w.columns]) if set(GROUPS) <= set(w.columns) else w.iloc[:0]
        vals = pd.Series(harmonic_mean(w["base"].to_numpy(), w["new"].to_numpy()) if len(w) else [], index=w.index,
                         dtype=float)
    else:
        vals = df[df.group == group].set_index([by, "seed"])[metric].astype(float)
    vals = vals.dropna()
    out = vals.groupby(level=0, sort=False).agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    return out


def _zeroshot_label(results: CalibrationResults) -> str | None:
    return next((m for m in dict.fromkeys(results.main().method) if str(m).startswith("zeroshot")), None)


def _st(table, key) -> tuple[float, float]:
    return float(table.loc[key, "mean"]), float(table.loc[key, "std"])


def _pct(st) -> str:
    return pm(*st, ".1%")


def _pp(st) -> str:
    return f"{100 * st[0]:+.1f} ± {100 * st[1]:.1f} pp"


def _fd(st) -> str:
    return pm(*st, ".3f")


def _vs_zero(st) -> int:
    """+1 above 0 beyond the seed spread, -1 below, 0 within it."""
    return compare(st[0], st[1], 0.0, 0.0)


def _side(sign: int) -> str:
    return {1: "overconfident beyond the seed spread", -1: "underconfident beyond the seed spread",
            0: "within the seed spread of 0"}[sign]


def _label_of(results: CalibrationResults):
    """``{method label: display name}`` of the main methods (``CoOp``, ``CoOp+DOR``, ...)."""
    m = results.main().drop_duplicates("method")
    return {r.method: _FAMILY_NAMES.get(r.family, r.family) + ("+DOR" if r.dor else "") for r in m.itertuples()}


_FAMILY_NAMES = {"zeroshot": "Zero-shot", "coop": "CoOp", "cocoop": "CoCoOp", "kgcoop": "KgCoOp", "maple": "MaPLe",
                 "deep_text_prompt": "Deep text prompts*"}


def _sweep_family(results: CalibrationResults, role: str) -> str:
    """Display name of the family the ``role`` sweep trains (``CoOp``)."""
    m = results.metrics[results.metrics.role == role]
    return _FAMILY_NAMES.get(m["family"].iloc[0], m["family"].iloc[0]) if len(m) else "CoOp"


def lambda_sweep(results: CalibrationResults, metric: str, group: str = "new"):
    """The λ sweep of Figure 4 as a :func:`seed_spread` table indexed by λ: 0 = the sweep method's family
    without DOR (a main cell), then every λ of the sweep."""
    import pandas as pd

    m = results.metrics
    lam = m[m.role == "lambda"]
    if lam.empty:
        return None
    family = lam["family"].iloc[0]
    base = m[(m.role == "main") & (m.family == family) & ~m.dor.astype(bool)]
    parts = []
    t0 = seed_spread(results, metric, group)
    if len(base) and base["method"].iloc[0] in t0.index:
        parts.append(t0.loc[[base["method"].iloc[0]]].set_axis([0.0]))
    parts.append(seed_spread(results, metric, group, role="lambda", by="lam"))
    out = pd.concat(parts)
    return out[~out.index.duplicated()].sort_index()


def _trend(table) -> tuple[str, list[int]]:
    """How a λ-indexed :func:`seed_spread` table moves from each λ to the next: ``(word, signs)``, the word
    one of "rises monotonically", "falls monotonically" (no step the other way beyond the seed spread),
    "is flat" (every step within it) or "is not monotone"; steps within the seed spread count as ties."""
    keys = list(table.index)
    signs = [compare(*_st(table, b), *_st(table, a)) for a, b in zip(keys, keys[1:])]
    ups, downs = signs.count(1), signs.count(-1)
    word = ("is not monotone" if ups and downs else "rises monotonically" if ups else "falls monotonically"
            if downs else "is flat")
    return word, signs


def verdicts(results: CalibrationResults, label: Mapping[str, str] | None = None) -> dict:
    """Each claim of Wang, Li & Wei (ICML 2025) against this run: one sentence per claim saying what was
    measured (mean ± std over seeds of the per-seed values, :func:`seed_spread`) and whether it supports the
    claim. Every comparison of two methods (or of a method with 0, or of two DOR weights) counts a
    difference smaller than the seed spread (:func:`clipstudy.analysis.spread.compare`) as a tie and says
    so. ``label`` maps method labels to display names (default: the method's family, ``+DOR``). Claims whose
    methods did not run are left out."""
    out: dict[str, str] = {}
    if results.metrics.empty:
        return out
    name = {**_label_of(results), **dict(label or {})}
    zs = _zeroshot_label(results)
    n_seeds = int(results.main()["seed"].nunique())
    seeds = seeds_phrase(n_seeds) + _scope(results)
    t = {(metric, group): seed_spread(results, metric, group) for metric in ("gap", "ece", "fd", "accuracy")
         for group in GROUPS}
    hm = seed_spread(results, "accuracy", "hm")
    fd0 = results.fd_zeroshot

    def have(metric, group, *methods):
        return all(m is not None and m in t[(metric, group)].index for m in methods)

    if have("gap", "new", "coop") and have("ece", "new", "coop", zs):
        over = _vs_zero(_st(t["gap", "new"], "coop"))
        worse = compare(*_st(t["ece", "new"], "coop"), *_st(t["ece", "new"], zs))
        fd = (f"; FD {fd0['new']:.3f} (zero-shot prompt) -> {_fd(_st(t['fd', 'new'], 'coop'))}"
              if "new" in fd0 and have("fd", "new", "coop") else "")
        out["coop_new_overconfident"] = (
            f"{STATUS[_all_sign([over, worse])]}: on new classes CoOp's confidence − accuracy is "
            f"{_pp(_st(t['gap', 'new'], 'coop'))} ({_side(over)}) and its ECE {_pct(_st(t['ece', 'new'], 'coop'))} "
            f"against zero-shot's {_pct(_st(t['ece', 'new'], zs))} ({_direction(worse)}){fd} (mean ± std over "
            f"{seeds}); the claim: CoOp makes new classes overconfident, raising their ECE.")
    if have("gap", "base", "kgcoop") and have("ece", "base", "kgcoop", zs) and have("accuracy", "base", "kgcoop", zs):
        under = -_vs_zero(_st(t["gap", "base"], "kgcoop"))
        worse = compare(*_st(t["ece", "base"], "kgcoop"), *_st(t["ece", "base"], zs))
        acc = compare(*_st(t["accuracy", "base"], "kgcoop"), *_st(t["accuracy", "base"], zs))
        out["kgcoop_base_underconfident"] = (
            f"{STATUS[_all_sign([under, worse])]}: on base classes KgCoOp's confidence − accuracy is "
            f"{_pp(_st(t['gap', 'base'], 'kgcoop'))} ({_side(-under)}) and its ECE "
            f"{_pct(_st(t['ece', 'base'], 'kgcoop'))} against zero-shot's {_pct(_st(t['ece', 'base'], zs))} "
            f"({_direction(worse)}); base accuracy {_pct(_st(t['accuracy', 'base'], zs))} (zero-shot) -> "
            f"{_pct(_st(t['accuracy', 'base'], 'kgcoop'))} ({_direction(acc)}) (mean ± std over {seeds}); the "
            f"claim: KgCoOp makes base classes underconfident, raising their ECE.")
    if have("fd", "new", "coop", "coop_dor") and have("ece", "new", "coop", "coop_dor"):
        fd = compare(*_st(t["fd", "new"], "coop"), *_st(t["fd", "new"], "coop_dor"))
        ece = compare(*_st(t["ece", "new"], "coop"), *_st(t["ece", "new"], "coop_dor"))
        out["dor_new"] = (
            f"{STATUS[_all_sign([fd, ece])]}: CoOp -> CoOp+DOR on new classes: FD "
            f"{_fd(_st(t['fd', 'new'], 'coop'))} -> {_fd(_st(t['fd', 'new'], 'coop_dor'))} "
            f"({_direction(-fd)}), ECE {_pct(_st(t['ece', 'new'], 'coop'))} -> "
            f"{_pct(_st(t['ece', 'new'], 'coop_dor'))} ({_direction(-ece)}) (mean ± std over {seeds}); the claim: "
            f"DOR keeps new-class text features from diverging and lowers new-class ECE.")
    pairs = [(m, f"{m}_dor") for m in t["ece", "new"].index if f"{m}_dor" in t["ece", "new"].index]
    if len(pairs) > 1:
        ss = [compare(*_st(t["ece", "new"], a), *_st(t["ece", "new"], b)) for a, b in pairs]
        lines = [f"{name.get(a, a)} {_pct(_st(t['ece', 'new'], a))} -> {_pct(_st(t['ece', 'new'], b))}"
                 for a, b in pairs]
        sign = 1 if all(x > 0 for x in ss) else (-1 if any(x < 0 for x in ss) else 0)
        out["dor_every_method"] = (
            f"{STATUS[sign]}: DOR lowers new-class ECE beyond the seed spread for {ss.count(1)}, ties for "
            f"{ss.count(0)} and raises it for {ss.count(-1)} of {len(pairs)} methods ({'; '.join(lines)}); the "
            f"claim: DOR lowers new-class ECE for every method.")
    if {"coop", "coop_dor"} <= set(hm.index):
        sign = compare(*_st(hm, "coop_dor"), *_st(hm, "coop"))
        status = {1: STATUS[1], 0: "Supported (a tie within the seed spread: no cost)", -1: STATUS[-1]}[sign]
        out["dor_accuracy"] = (
            f"{status}: the harmonic mean of base and new accuracy is {_pct(_st(hm, 'coop'))} for CoOp and "
            f"{_pct(_st(hm, 'coop_dor'))} for CoOp+DOR ({_direction(sign)}; mean ± std over {seeds}); the claim: "
            f"DOR does not cost accuracy.")
    if "new" in fd0 and have("fd", "new", "coop"):
        parts, signs = [], []
        up = compare(*_st(t["fd", "new"], "coop"), fd0["new"], 0.0)
        signs.append(up)
        parts.append(f"CoOp's new-class FD {_fd(_st(t['fd', 'new'], 'coop'))} against the zero-shot prompt's "
                     f"{fd0['new']:.3f} ({_direction(up)})")
        for other in ("coop_dor", "kgcoop"):
            if have("fd", "new", other):
                s = compare(*_st(t["fd", "new"], "coop"), *_st(t["fd", "new"], other))
                signs.append(s)
                parts.append(f"{name.get(other, other)}'s {_fd(_st(t['fd', 'new'], other))} "
                             f"({_direction(-s)} than CoOp's)")
        out["fd_divergence"] = (
            f"{STATUS[_all_sign(signs)]}: {'; '.join(parts)} (final FD, mean ± std over {seeds}); the claim: "
            f"cross-entropy training raises the FD of the new classes, which it never sees, and DOR (like "
            f"KgCoOp) keeps it lower.")
    sw = results.sweeps  # the sweeps' own datasets, with their own λ = 0 and near references
    sw_seeds = seeds_phrase(int(sw.main()["seed"].nunique()) if len(sw.main()) else n_seeds) + _scope(sw) + (
        f", on {', '.join(sw.datasets)} only" if sw is not results else "")
    ece = lambda_sweep(sw, "ece", "new")
    if ece is not None and 0.0 in ece.index and len(ece) > 1:
        ss = [compare(*_st(ece, 0.0), *_st(ece, lam)) for lam in ece.index if lam != 0.0]
        wins, ties, losses = ss.count(1), ss.count(0), ss.count(-1)
        sign = 1 if losses == 0 and wins > 0 else (-1 if losses else 0)
        trends = []
        for metric, group, what in (("fd", "new", "new-class FD"), ("gap", "new", "new-class confidence − accuracy"),
                                    ("accuracy", "new", "new accuracy"), ("ece", "new", "new ECE"),
                                    ("accuracy", "base", "base accuracy")):
            tab = lambda_sweep(sw, metric, group)
            if tab is None or len(tab) < 2:
                continue
            word, steps = _trend(tab)
            fmt = _pp if metric == "gap" else _fd if metric == "fd" else _pct
            trends.append(f"{what} {word} ({fmt(_st(tab, tab.index[0]))} at λ = {tab.index[0]:g} to "
                          f"{fmt(_st(tab, tab.index[-1]))} at λ = {tab.index[-1]:g}; {steps.count(0)} of "
                          f"{len(steps)} steps within the seed spread)")
        fam = _sweep_family(sw, "lambda")
        out["dor_lambda"] = (
            f"{STATUS[sign]}: {fam}+DOR's new-class ECE is below {fam}'s (λ = 0, {_pct(_st(ece, 0.0))}) "
            f"beyond the seed "
            f"spread at {wins}, tied at {ties} and above at {losses} of {len(ss)} DOR weights λ > 0. Along λ: "
            + "; ".join(trends) + f" (mean ± std over {sw_seeds}). The claim: DOR's benefit holds over a range of λ.")
    modes = seed_spread(sw, "ece", "new", role="mode", by="mode")
    if "near" in modes.index and len(modes) > 1:
        near = _st(modes, "near")
        others = [o for o in ("oracle", "far", "random") if o in modes.index]
        signs = {o: compare(*_st(modes, o), *near) for o in others}  # > 0: near's ECE is lower
        parts = [f"{o} {_pct(_st(modes, o))} ({_direction(-signs[o], 'near higher', 'near lower')})" for o in others]
        better = [signs[o] for o in others if o != "oracle"]
        sign = -1 if any(x < 0 for x in signs.values()) else (1 if all(x > 0 for x in better) else 0)
        out["dor_vocabulary"] = (
            f"{STATUS[sign]}: new-class ECE of {_sweep_family(sw, 'mode')}+DOR with near outliers {_pct(near)} "
            f"against "
            f"{'; '.join(parts)} (mean ± std over {sw_seeds}); the claim: near-OOD names work as well as the true "
            f"new-class names (oracle; a tie counts as as well) and better than far or random words.")
    return _one_seed(out, n_seeds)


def captions(results: CalibrationResults, claims: Mapping[str, str], label: Mapping[str, str] | None = None) -> dict:
    """The Markdown caption of each figure of notebook 02, written from this run's numbers and verdicts
    (:func:`verdicts`): every number a caption quotes is computed here. Keys: ``base_new`` (Figure 1),
    ``reliability`` (2), ``fd`` (3), ``lambda`` (4), ``vocabulary`` (5), ``confidence`` (6) and, for a
    suite's averaged results, ``per_dataset`` (7: on how many datasets each comparison holds). A suite's
    captions say over how many datasets their numbers are averaged. Explanations of a failed claim are
    printed only when its verdict is "Not supported"."""
    out: dict[str, str] = {}
    if results.metrics.empty:
        return out
    name = {**_label_of(results), **dict(label or {})}
    zs = _zeroshot_label(results)
    n_seeds = int(results.main()["seed"].nunique())
    k = results.n_datasets
    head = (f"**This run** ({seeds_phrase(n_seeds)}; mean ± std over seeds):" if k == 1 else
            f"**This run** ({seeds_phrase(n_seeds)}, {k} datasets; each number is the mean over the {k} datasets, "
            f"then mean ± std over seeds):")
    t = {(metric, group): seed_spread(results, metric, group) for metric in ("gap", "ece", "fd", "accuracy")
         for group in GROUPS}
    pick = lambda *keys: [claims[k] for k in keys if k in claims]  # noqa: E731

    text = [head]
    if zs and zs in t["gap", "base"].index and zs in t["gap", "new"].index:
        temp = results.main()
        # a combined multi-dataset result has no single temperature column (each dataset fits its own)
        temp = temp[temp.method == zs]["temperature"].dropna() if "temperature" in temp else []
        ts = (f"; temperature fitted on held-out base images {temp.mean():.2f}"
              + (f" (mean over the {k} datasets)" if k > 1 else "") if len(temp) else "")
        sb, sn = (_side(_vs_zero(_st(t["gap", g], zs))) for g in GROUPS)
        text.append(f"Zero-shot starts with confidence − accuracy {_pp(_st(t['gap', 'base'], zs))} on base and "
                    f"{_pp(_st(t['gap', 'new'], zs))} on new classes "
                    f"({'both ' + sb if sb == sn else sb + ' and ' + sn})"
                    f"{ts}.")
    text += pick("coop_new_overconfident", "dor_new", "dor_every_method", "dor_accuracy")
    if claims.get("coop_new_overconfident", "").startswith("Not supported") and zs:
        g0 = _st(t["gap", "new"], zs)
        if _vs_zero(g0) < 0 and "coop" in t["gap", "new"].index and t["gap", "new"].loc["coop", "mean"] > g0[0]:
            text.append(f"A likely reason: zero-shot starts underconfident on new classes ({_pp(g0)}), so a rise "
                        f"in confidence first brings it closer to the accuracy, which lowers ECE instead of raising "
                        f"it.")
    acc = t["accuracy", "base"]
    if zs in acc.index and len(acc) > 1:
        above = [m for m in acc.index if m != zs and compare(*_st(acc, m), *_st(acc, zs)) > 0]
        text.append(f"Base accuracy of zero-shot: {_pct(_st(acc, zs))}; "
                    + ("above it beyond the seed spread: "
                       + ", ".join(f"{name.get(m, m)} {_pct(_st(acc, m))}" for m in above) + "."
                       if above else f"none of the {len(acc) - 1} trained methods is above it beyond the seed spread."))
    out["base_new"] = " ".join(text)

    text = [head] + pick("kgcoop_base_underconfident")
    for m, g in (("coop", "new"), ("kgcoop", "base"), ("coop_dor", "new")):
        if m in t["gap", g].index:
            st = _st(t["gap", g], m)
            text.append(f"{name.get(m, m)}, {g} classes: confidence − accuracy {_pp(st)} ({_side(_vs_zero(st))}).")
    if claims.get("kgcoop_base_underconfident", "").startswith("Not supported") and zs in acc.index \
            and "kgcoop" in acc.index:
        s = compare(*_st(acc, "kgcoop"), *_st(acc, zs))
        if s <= 0:
            text.append(f"A likely reason: the paper's account needs base accuracy to rise while confidence stays "
                        f"near zero-shot's; here KgCoOp's base accuracy {_pct(_st(acc, 'kgcoop'))} is "
                        f"{_direction(s)} against zero-shot's {_pct(_st(acc, zs))}.")
    out["reliability"] = " ".join(text)

    text = [head] + pick("fd_divergence")
    for g in GROUPS:
        fd = t["fd", g]
        if len(fd):
            z = f"zero-shot prompt {results.fd_zeroshot[g]:.3f}; " if g in results.fd_zeroshot else ""
            text.append(f"Final FD, {g} classes: {z}"
                        + ", ".join(f"{name.get(m, m)} {_fd(_st(fd, m))}" for m in fd.index) + ".")
    out["fd"] = " ".join(text)

    sw = results.sweeps  # Figures 4-5 read the datasets that ran the sweeps, with their own references
    sw_head = head
    if sw is not results:
        sw_seeds = seeds_phrase(int(sw.main()["seed"].nunique()))
        sw_head = (f"**This run** ({sw_seeds}; the sweeps ran on {', '.join(sw.datasets)} only"
                   + (f", averaged over those {sw.n_datasets} datasets" if sw.n_datasets > 1 else "")
                   + "; mean ± std over seeds):")
    tw = {(metric, g): seed_spread(sw, metric, g) for metric in ("ece", "fd", "accuracy") for g in ("new",)}
    text = [sw_head] + pick("dor_lambda")
    zs_new = [f"{w} {_pct(_st(tw[k, 'new'], zs))}" for k, w in (("accuracy", "accuracy"), ("ece", "ECE"))
              if zs in tw[k, "new"].index]
    if zs_new and "dor_lambda" in claims:
        text.append("Zero-shot on new classes: " + ", ".join(zs_new) + ".")
    out["lambda"] = " ".join(text)

    text = [sw_head] + pick("dor_vocabulary")
    rows = []
    for mode in ("near", "far", "random", "oracle"):
        st = {(k, g): seed_spread(sw, k, g, role="mode", by="mode") for k, g in
              (("accuracy", "new"), ("fd", "new"), ("gap", "new"))}
        if all(mode in v.index for v in st.values()):
            rows.append(f"{mode}: new accuracy {_pct(_st(st['accuracy', 'new'], mode))}, FD "
                        f"{_fd(_st(st['fd', 'new'], mode))}, confidence − accuracy "
                        f"{_pp(_st(st['gap', 'new'], mode))}")
    if rows:
        ref = [f"{w} {f(_st(tw[k, 'new'], 'coop'))}" for k, w, f in (("accuracy", "new accuracy", _pct),
                                                                    ("fd", "FD", _fd)) if "coop" in tw[k, "new"].index]
        text.append("; ".join(rows) + (f" (CoOp without DOR: {', '.join(ref)})" if ref else "") + ".")
    if claims.get("dor_vocabulary", "").startswith("Not supported"):
        text.append("A possible reason: when the text tower has not learned most of the vocabulary's words (the "
                    "embedded tower was trained on the world's captions only), the near, far and random pools are "
                    "alike to it, and only the oracle names are words it knows.")
    out["vocabulary"] = " ".join(text)

    text = [head]
    for g in GROUPS:
        gap = t["gap", g]
        if not len(gap):
            continue
        sides = {1: [], -1: [], 0: []}
        for m in gap.index:
            sides[_vs_zero(_st(gap, m))].append(f"{name.get(m, m)} {_pp(_st(gap, m))}")
        words = {1: "overconfident beyond the seed spread", -1: "underconfident beyond the seed spread",
                 0: "within the seed spread of 0"}
        text.append(f"{g.capitalize()} classes: "
                    + "; ".join(f"{words[k]}: {', '.join(v)}" for k, v in sides.items() if v)
                    + ".")
        pairs = [(m, f"{m}_dor") for m in gap.index if f"{m}_dor" in gap.index]
        if pairs:
            ss = [compare(*_st(gap, b), *_st(gap, a)) for a, b in pairs]
            text.append(f"With DOR the {g}-class confidence − accuracy is lower beyond the seed spread for "
                        f"{ss.count(-1)}, tied for {ss.count(0)} and higher for {ss.count(1)} of {len(pairs)} methods.")
        largest = max(gap.index, key=lambda m: abs(gap.loc[m, "mean"]))
        text.append(f"Largest |confidence − accuracy| on {g} classes: {name.get(largest, largest)} "
                    f"{_pp(_st(gap, largest))}.")
    out["confidence"] = " ".join(text)
    if k > 1:
        out["per_dataset"] = _per_dataset_caption(results, n_seeds, name, zs)
    return _one_seed(out, n_seeds)


def _scope(results: CalibrationResults) -> str:
    """``" of the 7-dataset average"`` for a suite's averaged results, ``""`` for one dataset."""
    k = results.n_datasets
    return f" of the {k}-dataset average" if k > 1 else ""


def _count(signs: Mapping[str, int], what: str, up: str, down: str) -> str:
    """'{what} {up} beyond the seed spread on 3 of 7 datasets (a, b, c), tied on 2 and {down} on 2 (d, e)'."""
    def part(s):
        names = [d for d, x in signs.items() if x == s]
        return f"{len(names)}" + (f" ({', '.join(names)})" if names and s else "")

    return (f"{what} {up} beyond the seed spread on {part(1)} of {len(signs)} datasets, tied on {part(0)} and "
            f"{down} on {part(-1)}")


def _per_dataset_caption(results: CalibrationResults, n_seeds: int, name: Mapping[str, str], zs: str | None) -> str:
    """The caption of the per-dataset figure: on how many datasets each main claim's comparison holds (each
    dataset's mean ± std over seeds, :func:`clipstudy.analysis.spread.compare`), and the range of zero-shot's
    ECE and confidence − accuracy over the datasets."""
    sub = {d: dataset_results(results, d) for d in results.datasets}
    tabs = {d: {(m, g): seed_spread(r, m, g) for m in ("ece", "gap") for g in GROUPS} for d, r in sub.items()}
    text = [f"**This run** ({seeds_phrase(n_seeds)}, {len(sub)} datasets; each dataset's mean ± std over seeds):"]
    if zs:
        for g in GROUPS:
            vals = {d: t["ece", g].loc[zs, "mean"] for d, t in tabs.items() if zs in t["ece", g].index}
            gaps = {d: t["gap", g].loc[zs, "mean"] for d, t in tabs.items() if zs in t["gap", g].index}
            if vals:
                lo, hi = min(vals, key=vals.get), max(vals, key=vals.get)
                glo, ghi = min(gaps, key=gaps.get), max(gaps, key=gaps.get)
                text.append(f"Zero-shot {g}-class ECE ranges from {vals[lo]:.1%} ({lo}) to {vals[hi]:.1%} ({hi}), "
                            f"its confidence − accuracy from {100 * gaps[glo]:+.1f} pp ({glo}) to "
                            f"{100 * gaps[ghi]:+.1f} pp ({ghi}).")

    def signs(a, b, metric, group):
        out = {}
        for d, t in tabs.items():
            tab = t[metric, group]
            if a in tab.index and b in tab.index:
                out[d] = compare(*_st(tab, a), *_st(tab, b))
        return out

    parts = []
    if zs:
        s = signs("coop", zs, "ece", "new")
        if s:
            parts.append(_count(s, f"{name.get('coop', 'CoOp')}'s new-class ECE is", "above zero-shot's", "below"))
    for m in [m for m in dict.fromkeys(results.main().method) if f"{m}_dor" in set(results.main().method)]:
        s = signs(m, f"{m}_dor", "ece", "new")
        if s:
            parts.append(_count(s, f"DOR's new-class ECE against {name.get(m, m)}'s is", "lower", "higher"))
    kg = {d: _vs_zero(_st(t["gap", "base"], "kgcoop")) for d, t in tabs.items() if "kgcoop" in t["gap", "base"].index}
    if kg:
        parts.append(_count({d: -x for d, x in kg.items()}, "KgCoOp's base-class confidence − accuracy is",
                            "below 0 (underconfident)", "above 0"))
    if parts:
        text.append("; ".join(parts) + ".")
    return " ".join(text)
