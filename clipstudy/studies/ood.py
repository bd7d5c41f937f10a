"""Ming & Li, "How does fine-tuning impact out-of-distribution detection for vision-language models?"
(IJCV 2023): OOD scores before and after few-shot fine-tuning.

Protocol (papers.md §1.3, reconstructed where the paper's is not known): a method is trained on ``K``
shots per ID class (CoOp sampling, several seeds), then every registered OOD scorer (higher = more ID,
:mod:`clipstudy.scores`) is computed from the method's class similarities on the ID test set and on each
OOD set, and AUROC / FPR95 / AUPR-In / AUPR-Out are computed with ID as the positive class (MCM's
``get_measures``, :func:`clipstudy.metrics.ood_metrics`). Covariate-shift sets (ID classes in another
domain) are scored the same way but reported separately: they should *not* be flagged as OOD.

One result cell per (method, shots, seed) holds the metrics of the trained method (and of its WiSE-FT
interpolations), the MCM temperature sweep and the ID accuracy; its similarity matrices are kept next to
it (``.npz``) for score histograms. Cells are skipped when present, so an interrupted study resumes.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from ..registry import Registry
from ..experiment import (Outputs, TrainSet, cell_spec, checkpoint_path, dataset_from_spec, few_shot_set,
                          get_recipe, local_similarities, method_outputs, train_method, wise_variants)

DEFAULT_SCORERS = ("mcm", "msp", "max_logit", "energy", "entropy", "variance", "mahalanobis", "knn", "gl_mcm")
DEFAULT_TEMPERATURES = tuple(float(t) for t in np.round(np.logspace(-2, 1, 13), 6))
HIST_SCORERS = ("mcm", "msp")


@dataclass(frozen=True)
class OODStudy:
    """Everything that defines the study; every field is part of each cell's spec.

    ``train``, ``id_test`` and each entry of ``ood`` / ``shift`` are dataset specs for
    :func:`clipstudy.experiment.dataset_from_spec`; ``methods`` are recipe names
    (``data/resources/recipes.json``) trained at ``scale``; ``recipe_overrides`` maps a recipe name to
    settings that replace its defaults (e.g. ``{"coop": {"max_steps": 100}}``). ``scorer_params`` maps a
    scorer to its parameters (MSP's logit scale is always the model's own).
    """

    model: str = "embedded"
    pretrained: str = ""
    data_root: str = ""
    device: str = "cpu"
    scale: str = "embedded"
    methods: tuple = ("zeroshot", "coop")
    shots: tuple = (1, 2, 4, 8, 16)
    seeds: tuple = (1, 2, 3)
    scorers: tuple = DEFAULT_SCORERS
    scorer_params: Mapping[str, Mapping] = field(default_factory=dict)
    temperatures: tuple = DEFAULT_TEMPERATURES
    train: Mapping[str, Any] = field(default_factory=dict)
    id_test: Mapping[str, Any] = field(default_factory=dict)
    ood: Mapping[str, Mapping] = field(default_factory=dict)
    shift: Mapping[str, Mapping] = field(default_factory=dict)
    recipe_overrides: Mapping[str, Mapping] = field(default_factory=dict)

    def __post_init__(self):
        from ..scores import SCORERS

        for name in self.scorers:
            SCORERS.get(name)  # unknown scorers list the valid ones
        if not self.ood:
            raise ConfigError("the OOD study needs at least one OOD set (ood={name: dataset spec})")
        for k in self.shots:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ConfigError(f"shots must be positive integers, got {k!r}")
        unknown = sorted(set(self.recipe_overrides) - set(self.methods))
        if unknown:
            raise ConfigError(f"recipe_overrides names {unknown}, which are not among methods {list(self.methods)}")
        for name in self.methods:
            self.recipe(name)  # unknown recipes or settings fail before anything runs

    def recipe(self, name: str):
        return get_recipe(name, self.scale, **dict(self.recipe_overrides.get(name, {})))


@dataclass
class StudyData:
    loaded: Any
    pool: Any
    id_test: Any
    ood: dict
    shift: dict
    classnames: tuple


def load_study_data(study: OODStudy, progress: bool = True) -> StudyData:
    """Load the model and build every dataset (errors name what is missing before any training)."""
    from ..models import load_model

    loaded = load_model(study.model, study.pretrained, device=study.device)
    root = study.data_root or None
    pool = dataset_from_spec(study.train, root)
    id_test = dataset_from_spec(study.id_test, root)
    if tuple(pool.classnames) != tuple(id_test.classnames):
        raise ConfigError("the training pool and the ID test set must have the same classes in the same order")
    ood = {name: dataset_from_spec(spec, root) for name, spec in study.ood.items()}
    shift = {name: dataset_from_spec(spec, root) for name, spec in study.shift.items()}
    for name, ds in {**ood, **shift}.items():
        if len(ds) == 0:
            raise ConfigError(f"evaluation set {name!r} is empty")
    for name, ds in shift.items():
        if tuple(ds.classnames) != tuple(id_test.classnames):
            raise ConfigError(f"covariate-shift set {name!r} must have the ID classes in the ID order "
                              f"({len(ds.classnames)} classes vs {len(id_test.classnames)})")
    return StudyData(loaded, pool, id_test, ood, shift, tuple(id_test.classnames))


def run_ood_study(study: OODStudy, store=None, progress: bool = True, data: StudyData | None = None):
    """Fill one result cell per (method, shots, seed); return the tidy tables (:class:`OODResults`)."""
    from tqdm.auto import tqdm

    from ..results import ResultStore

    store = store or ResultStore()
    data = data or load_study_data(study, progress)
    local_reason = _local_reason(study, data)
    cells = [(m, k, s) for m in study.methods for k in study.shots for s in study.seeds]
    records = []
    for name, shots, seed in tqdm(cells, desc="OOD study cells", disable=not progress):
        recipe = study.recipe(name)
        train = few_shot_set(data.pool, shots, seed)
        spec = _spec(study, data, recipe, train, seed)
        metrics = store.run(spec, lambda: _run_cell(study, data, recipe, train, seed, spec, store, local_reason,
                                                    progress))
        records.append((spec, metrics))
    if local_reason:
        print(f"gl_mcm skipped: {local_reason}")
    return OODResults.from_records(records, store, logit_scale=data.loaded.logit_scale)


def _local_reason(study: OODStudy, data: StudyData) -> str | None:
    from ..local_features import local_support

    if "gl_mcm" not in study.scorers:
        return None
    return local_support(data.loaded.model.visual)


def _spec(study: OODStudy, data: StudyData, recipe, train: TrainSet, seed: int) -> dict:
    sets = {"id_test": data.id_test.cache_key, **{f"ood:{k}": v.cache_key for k, v in data.ood.items()},
            **{f"shift:{k}": v.cache_key for k, v in data.shift.items()}}
    protocol = {k: v for k, v in asdict(study).items() if k in ("scorers", "scorer_params", "temperatures")}
    return cell_spec(data.loaded, recipe, train, seed, experiment="ood", eval_sets=sets, **protocol)


def _run_cell(study, data, recipe, train, seed, spec, store, local_reason, progress) -> dict:
    t0 = time.time()
    method, history, theta0 = train_method(data.loaded, recipe, train, data.classnames, seed,
                                           checkpoint=checkpoint_path(spec), progress=progress)
    train_seconds = time.time() - t0
    variants, arrays = [], {}
    todo = [(recipe.label, 1.0, method)]
    if recipe.wise_alphas:
        todo += [("wise_ft" if recipe.method == "finetune" else f"{recipe.label}_wise", a, m)
                 for a, m in wise_variants(method, theta0, recipe.wise_alphas)]
    for i, (label, alpha, m) in enumerate(todo):
        row, sims = evaluate_variant(study, data, m, train, local_reason is None and "gl_mcm" in study.scorers,
                                     progress)
        variants.append({"variant": label, "alpha": alpha, **row})
        arrays.update({f"v{i}/{k}": v for k, v in sims.items()})
    store.put_arrays(spec, arrays)
    return {"variants": variants, "history": history, "train_seconds": round(train_seconds, 2),
            "seconds": round(time.time() - t0, 2)}


def evaluate_variant(study: OODStudy, data: StudyData, method, train: TrainSet, local: bool, progress: bool):
    """Accuracy, OOD metrics of every scorer on every OOD/shift set and the MCM temperature sweep of one
    trained method; also the similarity matrices (float16) kept for figures."""
    loaded = data.loaded
    out_id = method_outputs(method, loaded, data.id_test, name="id", local=local, progress=progress)
    others = {name: method_outputs(method, loaded, ds, name=name, local=local, progress=progress)
              for name, ds in {**data.ood, **data.shift}.items()}
    fitted = fit_feature_scorers(study, train.features(loaded, encoder=method.encoder, progress=progress).numpy(),
                                 train.labels)
    scores = {name: score_all(study, method, o, fitted) for name, o in {"id": out_id, **others}.items()}
    rows = []
    for name in others:
        group = "ood" if name in data.ood else "shift"
        rows += [{"set": name, "group": group, "scorer": s, **_metrics(scores["id"][s], scores[name][s])}
                 for s in scores["id"]]
    sweep = [{"set": name, "T": t, **_metrics(_mcm(out_id.sims, t), _mcm(o.sims, t))}
             for name, o in others.items() for t in study.temperatures]
    row = {"id_accuracy": out_id.accuracy, "ood": rows, "temperature_sweep": sweep,
           "shift_accuracy": {n: others[n].accuracy for n in data.shift}}
    sims = {f"{n}/sims": o.sims.astype(np.float16) for n, o in {"id": out_id, **others}.items()}
    sims["id/labels"] = out_id.labels
    sims.update({f"{n}/labels": others[n].labels for n in data.shift})
    return row, sims


def fit_feature_scorers(study: OODStudy, fit_features, fit_labels) -> dict:
    """The study's feature-based scorers (Mahalanobis, KNN) fitted once on the training features."""
    from ..scores import SCORERS

    return {name: SCORERS.get(name)(**dict(study.scorer_params.get(name, {}))).fit(fit_features, fit_labels)
            for name in study.scorers if SCORERS.meta(name)["needs"] == "features"}


def score_all(study: OODStudy, method, outputs: Outputs, fitted: dict) -> dict[str, np.ndarray]:
    """Every scorer of the study on one set's outputs (higher = more ID); ``fitted`` holds the feature
    scorers from :func:`fit_feature_scorers`. Local scorers (GL-MCM) run in chunks of images."""
    from ..scores import SCORERS, score

    out = {}
    for name in study.scorers:
        params = dict(study.scorer_params.get(name, {}))
        needs = SCORERS.meta(name)["needs"]
        if name == "msp":
            params["logit_scale"] = float(method.scale)
        if needs == "similarities":
            out[name] = score(name, sims=outputs.sims, **params)
        elif needs == "features":
            out[name] = fitted[name](outputs.features.numpy())
        elif outputs.local is not None:
            out[name] = np.concatenate([score(name, sims=outputs.sims[rows], local_sims=loc, **params)
                                        for rows, loc in local_similarities(method, outputs)])
    return out


def _mcm(sims, T):
    from ..scores import mcm

    return mcm(sims, T=T)


def _metrics(id_scores, ood_scores) -> dict:
    from ..metrics import ood_metrics

    return {k: float(v) for k, v in ood_metrics(id_scores, ood_scores).items()}


@dataclass
class OODResults:
    """The study's cells as tidy DataFrames.

    ``ood``: method, variant, alpha, shots, seed, set, group (ood | shift), scorer, auroc, fpr95,
    aupr_in, aupr_out. ``accuracy``: method, variant, alpha, shots, seed, id_accuracy and one
    ``shift_accuracy.<set>`` column per shift set. ``sweep``: the MCM temperature sweep (T, auroc, fpr95,
    ...). :meth:`sims` reads a cell's similarity matrices back.
    """

    ood: Any
    accuracy: Any
    sweep: Any
    cells: list
    store: Any
    logit_scale: float = 100.0

    @property
    def msp_temperature(self) -> float:
        """MSP is MCM at this temperature: one over the model's logit scale."""
        return 1.0 / self.logit_scale

    @classmethod
    def from_records(cls, records, store, logit_scale: float = 100.0) -> "OODResults":
        import pandas as pd

        ood, acc, sweep, cells = [], [], [], []
        for spec, metrics in records:
            for i, v in enumerate(metrics["variants"]):
                key = {"method": spec["method"], "variant": v["variant"], "alpha": v["alpha"],
                       "shots": spec["shots"], "seed": spec["seed"]}
                cells.append({**key, "spec": spec, "index": i})
                acc.append({**key, "id_accuracy": v["id_accuracy"],
                            **{f"shift_accuracy.{k}": a for k, a in v["shift_accuracy"].items()}})
                ood += [{**key, **r} for r in v["ood"]]
                sweep += [{**key, **r} for r in v["temperature_sweep"]]
        return cls(pd.DataFrame(ood), pd.DataFrame(acc), pd.DataFrame(sweep), cells, store, float(logit_scale))

    def sims(self, variant: str, shots: int, seed: int) -> dict[str, np.ndarray]:
        """The similarity matrices (``<set>/sims``) and labels of one variant's cell."""
        for c in self.cells:
            if (c["variant"], c["shots"], c["seed"]) == (variant, shots, seed):
                arrays = self.store.get_arrays(c["spec"])
                prefix = f"v{c['index']}/"
                return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        raise KeyError(f"no cell for variant={variant!r}, shots={shots}, seed={seed}")


# --------------------------------------------------------------------------- benchmarks

BENCHMARKS = Registry("OOD benchmark")
"""Named benchmarks: each builds the study's dataset specs (``train``, ``id_test``, ``ood``, ``shift``)."""


def ood_benchmark(name: str, **sizes) -> dict:
    """Dataset specs ``{"train", "id_test", "ood", "shift"}`` of a named benchmark (``world`` or
    ``imagenet``); unknown names list the valid ones. ``sizes`` go to the benchmark's builder."""
    return BENCHMARKS.get(name)(**sizes)


@BENCHMARKS.register("world")
def world_benchmark(n_train: int = 1200, n_test: int = 900, n_ood: int = 450, shift_domains=("painting",),
                    id_domain: str = "photo", seed: int = 0) -> dict:
    """The embedded analogue of ImageNet vs MCM's OOD sets.

    ID = the world's 30 ID classes in ``id_domain`` (training pool: ``n_train`` images of the train split,
    so every class has well over 16 shots; test: ``n_test`` images). OOD sets: ``near_ood`` (8 sibling
    shapes of ID classes, e.g. heptagon next to hexagon), ``far_ood`` (8 object icons), ``texture`` (no
    object, only a pattern or background: the Textures analogue). Shift sets: the ID classes in each of
    ``shift_domains`` (covariate shift, reported separately). Each set draws from its own seed.
    """
    def world(split, n, s, **kw):
        return {"dataset": "world", "split": split, "n": int(n), "seed": seed + s, **kw}

    return {
        "train": world("train", n_train, 0, classes="id", domain=id_domain),
        "id_test": world("test", n_test, 0, classes="id", domain=id_domain),
        "ood": {"near_ood": world("test", n_ood, 1, classes="near_ood", domain=id_domain),
                "far_ood": world("test", n_ood, 2, classes="far_ood", domain=id_domain),
                "texture": world("test", n_ood, 3, kind="texture_only")},
        "shift": {d: world("test", n_ood, 10 + i, classes="id", domain=d) for i, d in enumerate(shift_domains)},
    }


@BENCHMARKS.register("imagenet")
def imagenet_benchmark(n_test: int | None = None, n_ood: int | None = None, shift_domains=("imagenet_sketch",),
                       seed: int = 0, **_ignored) -> dict:
    """MCM's ImageNet protocol (papers.md §1.3): few shots from ImageNet train, ID test = ImageNet val,
    OOD = the iNaturalist / SUN / Places / Textures subsets of MOS (folders under ``data_root``), shift =
    ImageNet variants with the same classes (e.g. ``imagenet_sketch``, ``imagenet_v2``). ``n_test`` /
    ``n_ood`` keep seeded subsets (``None``: every image)."""
    def cap(spec, n):
        return {**spec, "max_images": int(n), "subset_seed": seed} if n else spec

    return {
        "train": {"dataset": "imagenet", "split": "train"},
        "id_test": cap({"dataset": "imagenet", "split": "val"}, n_test),
        "ood": {name: cap({"dataset": name}, n_ood) for name in ("inaturalist", "sun", "places", "textures")},
        "shift": {d: cap({"dataset": d}, n_ood) for d in shift_domains},
    }


# --------------------------------------------------------------------------- key numbers and claims

def key_numbers(res: "OODResults") -> dict:
    """The numbers the notebook records and its verdicts read, at the largest shot count (mean over seeds;
    AUROC also averaged over OOD sets). Keys: ``<variant>_id_accuracy``, ``auroc_<scorer>_<variant>``,
    ``shift_auroc_mcm_<variant>``, ``scorer_spread_<variant>`` (best minus worst scorer's AUROC),
    ``mcm_rank_<variant>`` (MCM's rank among the scorers, 1 = best), ``msp_temperature``."""
    shots = int(res.accuracy["shots"].max())
    acc = res.accuracy[res.accuracy.shots == shots].groupby("variant")["id_accuracy"].mean()
    o = res.ood[res.ood.shots == shots]
    ood = o[o.group == "ood"].groupby(["variant", "scorer"])["auroc"].mean()
    out = {"shots": shots, "msp_temperature": res.msp_temperature}
    out.update({f"{v}_id_accuracy": float(a) for v, a in acc.items()})
    out.update({f"auroc_{s}_{v}": float(a) for (v, s), a in ood.items()})
    for v, g in ood.groupby(level="variant"):
        g = g.droplevel("variant")
        out[f"scorer_spread_{v}"] = float(g.max() - g.min())
        if "mcm" in g:
            out[f"mcm_rank_{v}"] = int((g > g["mcm"]).sum()) + 1
    shift = o[(o.group == "shift") & (o.scorer == "mcm")].groupby("variant")["auroc"].mean()
    out.update({f"shift_auroc_mcm_{v}": float(a) for v, a in shift.items()})
    return out


def verdicts(numbers: dict, best_t: dict | None = None) -> dict[str, str]:
    """One sentence per claim of Ming & Li (papers.md §1.1), saying whether these numbers support it."""
    n, out = numbers, {}
    variants = sorted({k.split("_id_accuracy")[0] for k in n if k.endswith("_id_accuracy")})
    spreads = {v: n[f"scorer_spread_{v}"] for v in variants if f"scorer_spread_{v}" in n}
    if spreads:
        v = max(spreads, key=spreads.get)
        out["score_choice"] = (f"{'Supported' if spreads[v] >= 0.05 else 'Not supported'}: the AUROC gap between "
                               f"the best and worst score reaches {spreads[v]:.3f} ({v}); the score choice "
                               f"{'matters' if spreads[v] >= 0.05 else 'barely matters'} after fine-tuning.")
    ranks = {v: n[f"mcm_rank_{v}"] for v in variants if f"mcm_rank_{v}" in n}
    if ranks:
        top = [v for v, r in ranks.items() if r <= 3]
        out["mcm_promising"] = (f"{'Supported' if len(top) >= len(ranks) / 2 else 'Not supported'}: MCM (T = 1) "
                                f"ranks in the top 3 scores for {len(top)} of {len(ranks)} methods "
                                f"(ranks: {', '.join(f'{v} {r}' for v, r in sorted(ranks.items()))}).")
    if "auroc_mcm_coop" in n and "auroc_mcm_zeroshot" in n:
        d = n["auroc_mcm_coop"] - n["auroc_mcm_zeroshot"]
        dm = n.get("auroc_msp_coop", np.nan) - n.get("auroc_msp_zeroshot", np.nan)
        out["prompt_learning"] = (f"{'Supported' if d > 0 else 'Not supported'}: CoOp changes the mean OOD AUROC "
                                  f"by {d:+.3f} with MCM and {dm:+.3f} with MSP relative to zero-shot "
                                  f"({n['shots']} shots).")
    if best_t:
        txt = ", ".join(f"{v} T* = {t:g}" for v, (t, _) in best_t.items())
        moved = len({t for t, _ in best_t.values()}) > 1
        out["temperature"] = (f"The best MCM temperature {'moves' if moved else 'does not move'} after "
                              f"fine-tuning ({txt}).")
    return out
