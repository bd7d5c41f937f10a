"""Nam, Heo & Lee, "Lipsum-FT: Robust fine-tuning of zero-shot models using random text guidance" (ICLR
2024): fine-tune on a reference domain, evaluate on shifted domains, and relate robustness to the energy
gap and to feature distortion (docs/protocols.md §4).

Protocol: every method of the study (recipes in ``data/resources/recipes_robust_ft.json``: zero-shot,
linear probe, FT, LP-FT, FLYP, L2-SP, KD, CAR-FT, Lipsum-FT) is trained on the reference domain's
training pool through the one loop (:func:`clipstudy.experiment.train_method`), then evaluated on the
reference test set and on every shifted domain: accuracy, NLL, ECE, the energy gap to the zero-shot model
with random texts and with the class prompts (:func:`clipstudy.analysis.energy_gap`), and the feature
distortion (:func:`clipstudy.analysis.feature_distortion`). Recipes with ``wise_alphas`` are also
evaluated as WiSE-FT interpolations with their initial (zero-shot) weights. Chosen recipes record the
training dynamics (reference/shift accuracy and energy gap over steps) through a training callback.

ImageNet-R and ImageNet-A carry ``class_indices`` into the 1000 ImageNet classes: the 1000-way outputs
are masked to their 200 classes before any metric (Hendrycks et al. 2021; Lipsum-FT ``src/data.py``).

One result cell per (method, seed), resumable; tidy DataFrames in :class:`RobustFTResults`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..analysis.spread import STATUS, compare, leaders, pm, rank_sentence, seeds_phrase
from ..errors import ConfigError
from ..data.specs import Subset, dataset_from_spec
from ..experiment import (TrainSet, build, cell_spec, checkpoint_path, few_shot_set, get_recipe, method_outputs,
                          recipe_spec, train_method, wise_variants)
from ..registry import Registry
from ..study import RecipeStudyConfig, check_max_steps, run as run_study

ZERO_SHOT = "zeroshot_ensemble"
"""The zero-shot row of the study: CLIP with a template-ensemble head (the same recipe the OOD study uses)."""
DEFAULT_METHODS = (ZERO_SHOT, "lp", "ft", "lp_ft", "flyp", "l2sp", "kd", "car_ft", "lipsum_ft")
WORLD_SHIFTS = ("painting", "clipart", "sketch", "infograph")
DOMAINNET_SHIFTS = ("painting", "clipart", "infograph", "sketch")
IMAGENET_SHIFTS = ("imagenet_v2", "imagenet_r", "imagenet_a", "imagenet_sketch")


@dataclass(frozen=True)
class RobustFTStudy(RecipeStudyConfig):
    """Everything that defines the study; the fields that change numbers are part of each cell's spec (the
    shared fields: :class:`clipstudy.study.RecipeStudyConfig`).

    ``train`` is the dataset spec of the reference domain's training pool (every image is used:
    ``few_shot_set(shots=None)``); ``domains`` maps evaluation-set names to dataset specs (the
    ``reference`` one and the shifts). ``head_from`` maps a recipe to the recipe whose trained linear probe
    initialises its head (LP-FT). Energy gaps use ``n_random_texts`` random texts of ``text_length``
    tokens drawn with ``text_seed`` and the class prompts of ``templates``. ``dynamics`` lists the recipes
    whose runs on the first ``dynamics_runs`` seeds record reference/shift accuracy and energy gap during
    training, on ``dynamics_images`` images per domain. ``weight_sweeps`` maps a recipe with one regularizer
    to more weights of it (given at CLIP's logit scale, :func:`clipstudy.losses.scaled_weight`): each adds a
    method ``"<recipe>@<weight>"`` (e.g. ``lipsum_ft@3``), trained like the recipe but without WiSE-FT.
    """

    methods: tuple = DEFAULT_METHODS
    seeds: tuple = (0, 1, 2)
    train: Mapping[str, Any] = field(default_factory=dict)
    reference: str = "photo"
    domains: Mapping[str, Mapping] = field(default_factory=dict)
    templates: str = "world"
    head_from: Mapping[str, str] = field(default_factory=lambda: {"lp_ft": "lp"})
    n_random_texts: int = 1000
    text_length: int = 8
    text_seed: int = 2024
    ece_bins: int = 15
    dynamics: tuple = ("ft", "lipsum_ft")
    dynamics_runs: int = 1
    dynamics_images: int = 100
    weight_sweeps: Mapping[str, tuple] = field(default_factory=dict)

    desc = "robust fine-tuning cells"

    def __post_init__(self):
        self.check_fields()
        if not self.train or not self.domains:
            raise ConfigError("the robust fine-tuning study needs a training pool (train=spec) and evaluation "
                              "domains (domains={name: spec})")
        if self.reference not in self.domains:
            raise ConfigError(f"reference {self.reference!r} is not among the evaluation domains "
                              f"{list(self.domains)}")
        for spec in [self.train, *self.domains.values()]:
            check_domain_spec(spec, self.data_root)
        self.check_recipes(names=(), also=self.head_from.values())
        for name, weights in self.weight_sweeps.items():
            bad = [w for w in weights if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0]
            if name not in self.methods or bad or not isinstance(weights, (tuple, list)):
                raise ConfigError(f"weight_sweeps[{name!r}]: needs a recipe among methods {list(self.methods)} "
                                  f"and a list of weights >= 0, got {weights!r}")
        for name in [*self.all_methods, *self.head_from.values()]:
            self.recipe(name)  # unknown recipes or settings fail before anything runs
        if self.n_random_texts < 1 or self.text_length < 1:
            raise ConfigError("n_random_texts and text_length must be >= 1")

    @property
    def all_methods(self) -> tuple:
        """``methods`` followed by the weight-sweep variants (``"<recipe>@<weight>"``)."""
        extra = [sweep_label(name, w) for name, ws in self.weight_sweeps.items() for w in ws]
        return tuple(self.methods) + tuple(e for e in extra if e not in self.methods)

    def recipe(self, name: str):
        if SWEEP_SEP in name:
            base, weight = name.split(SWEEP_SEP, 1)
            return with_regularizer_weight(self.recipe(base), float(weight), name)
        return get_recipe(name, self.scale, **dict(self.recipe_overrides.get(name, {})))

    @property
    def shifts(self) -> list[str]:
        return [d for d in self.domains if d != self.reference]

    # ---- the study contract (clipstudy.study.Study)
    def load_data(self, progress: bool = True) -> "StudyData":
        return load_study_data(self, progress)

    def cells(self, data) -> list[tuple]:
        """``(method, seed)`` for every method (weight-sweep variants included) and seed."""
        return [(m, s) for m in self.all_methods for s in self.seeds]

    def prepare(self, data, cell) -> "RobustFTCell":
        name, seed = cell
        return RobustFTCell(self.recipe(name), few_shot_set(data.pool, None, seed), seed)

    def spec(self, data, cell: "RobustFTCell") -> dict:
        return _spec(self, data, cell.recipe, cell.train, cell.seed)

    def run_cell(self, data, cell: "RobustFTCell", spec, store, progress: bool = True) -> dict:
        return _run_cell(self, data, cell.recipe, cell.train, cell.seed, spec, progress)

    def tables(self, records, data, store) -> "RobustFTResults":
        return RobustFTResults.from_records([(r.spec, r.metrics) for r in records], self.reference,
                                            list(self.domains))


@dataclass(frozen=True)
class RobustFTCell:
    """One cell as it runs: the recipe, the training set (every image of the pool), the seed."""

    recipe: Any
    train: TrainSet
    seed: int


SWEEP_SEP = "@"


def sweep_label(recipe: str, weight: float) -> str:
    """The method name of a weight-sweep variant: ``lipsum_ft@3``."""
    return f"{recipe}{SWEEP_SEP}{float(weight):g}"


def with_regularizer_weight(recipe, weight: float, label: str):
    """``recipe`` with the weight of its one regularizer replaced by ``weight`` (at CLIP's logit scale), no
    WiSE-FT interpolations, named ``label``."""
    params = recipe.kwargs
    regs = dict(params.get("regularizers") or {})
    if len(regs) != 1:
        raise ConfigError(f"a weight sweep needs a recipe with exactly one regularizer; {recipe.label!r} has "
                          f"{sorted(regs) or 'none'}")
    (reg, reg_params), = regs.items()
    params["regularizers"] = {reg: {**reg_params, "weight": float(weight)}}
    return recipe.replace(params=params, label=label, wise_alphas=())


def check_domain_spec(spec: Mapping[str, Any], data_root: str = "") -> None:
    """Raise a clear :class:`ConfigError` if a dataset spec names a domain its dataset does not have
    (before any data is read); unknown datasets list the valid ones."""
    from ..data import dataset_domains

    if not isinstance(spec, Mapping) or "dataset" not in spec:
        raise ConfigError(f"a dataset spec is a dict with a 'dataset' key, got {spec!r}")
    domain = spec.get("domain")
    if domain is None:
        return
    valid = dataset_domains(spec["dataset"], spec.get("root") or data_root or None)
    if domain not in valid:
        raise ConfigError(f"dataset {spec['dataset']!r} has no domain {domain!r}; valid domains: {', '.join(valid)}")


# --------------------------------------------------------------------------- protocols

BENCHMARKS = Registry("benchmark")
"""Named protocols (``world``, ``domainnet``, ``imagenet``): each builds a :class:`RobustFTStudy` from its
sizes and the study's fields."""


@BENCHMARKS.register("world")
def world_study(n_train: int = 1500, n_test: int = 300, classes: str = "id", reference: str = "photo",
                shifts=WORLD_SHIFTS, seed: int = 0, **kw) -> RobustFTStudy:
    """The embedded protocol: train on the world's ``reference`` domain (train split), test on it and on
    the other domains (test split), the DomainNet real → painting/clipart/infograph/sketch analogue."""
    base = {"dataset": "world", "classes": classes, "seed": seed}
    domains = {d: {**base, "split": "test", "domain": d, "n": n_test} for d in (reference, *shifts)}
    return RobustFTStudy(train={**base, "split": "train", "domain": reference, "n": n_train}, reference=reference,
                         domains=domains, **{"templates": "world", **kw})


@BENCHMARKS.register("domainnet")
def domainnet_study(max_train: int | None = None, max_test: int | None = None, **kw) -> RobustFTStudy:
    """Lipsum-FT's DomainNet protocol (docs/protocols.md §4.3): fine-tune on ``real`` (train split), test on the
    ``test`` split of real, painting, clipart, infograph and sketch (quickdraw is left out)."""
    cap = lambda n: {} if n is None else {"max_images": int(n)}  # noqa: E731
    domains = {d: {"dataset": "domainnet", "split": "test", "domain": d, **cap(max_test)}
               for d in ("real", *DOMAINNET_SHIFTS)}
    return RobustFTStudy(train={"dataset": "domainnet", "split": "train", "domain": "real", **cap(max_train)},
                         reference="real", domains=domains, **{"templates": "imagenet80", "scale": "paper", **kw})


@BENCHMARKS.register("imagenet")
def imagenet_study(max_train: int | None = None, max_test: int | None = None, **kw) -> RobustFTStudy:
    """Lipsum-FT's ImageNet protocol: fine-tune on ImageNet train, test on ImageNet val and V2, R, A, Sketch
    (R and A masked to their 200 classes)."""
    cap = lambda n: {} if n is None else {"max_images": int(n)}  # noqa: E731
    domains = {d: {"dataset": d, "split": "test", **cap(max_test)} for d in ("imagenet", *IMAGENET_SHIFTS)}
    return RobustFTStudy(train={"dataset": "imagenet", "split": "train", **cap(max_train)}, reference="imagenet",
                         domains=domains, **{"templates": "imagenet80", "scale": "paper", **kw})


WISE_RECIPES = ("ft", "lipsum_ft")


def make_study(benchmark: str = "world", *, n_train: int = 0, n_test: int = 0, classes: str = "id",
               max_steps: int = 0, wise_alphas=None, lipsum_weights=(), **kw) -> RobustFTStudy:
    """The study of a notebook's parameters: ``benchmark`` world (embedded protocol), domainnet or imagenet;
    ``n_train`` / ``n_test`` cap the training pool and each evaluation set (0: the protocol's default, all
    images of a real benchmark); ``max_steps`` caps every fine-tuning recipe (0: the recipe's own schedule);
    ``wise_alphas`` replaces the WiSE-FT grid of FT and Lipsum-FT; ``lipsum_weights`` adds Lipsum-FT runs at
    these λ (at CLIP's logit scale; the recipe's own is the paper's λ = 1)."""
    make = BENCHMARKS.get(benchmark)  # unknown names list the valid ones
    check_max_steps(max_steps)
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
    methods = tuple(kw.pop("methods", DEFAULT_METHODS))
    scale = kw.get("scale", "embedded" if benchmark == "world" else "paper")
    overrides = {m: {} for m in methods if m != ZERO_SHOT}
    for name, o in overrides.items():
        if max_steps and get_recipe(name, scale).method not in ("linear_probe", "zeroshot"):
            o["max_steps"] = int(max_steps)  # the linear probe trains on cached features: its budget is cheap
        if wise_alphas is not None and name in WISE_RECIPES:
            o["wise_alphas"] = [float(a) for a in wise_alphas]
    overrides = {k: v for k, v in overrides.items() if v}
    weights = tuple(float(w) for w in lipsum_weights)
    if weights:
        if "lipsum_ft" not in methods:
            raise ConfigError("lipsum_weights sweeps Lipsum-FT's weight: add 'lipsum_ft' to methods")
        kw["weight_sweeps"] = {"lipsum_ft": weights}
    if benchmark == "world":
        sizes = {k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v}
        return make(classes=classes, methods=methods, recipe_overrides=overrides, **sizes, **kw)
    return make(max_train=n_train or None, max_test=n_test or None, methods=methods, recipe_overrides=overrides, **kw)


# --------------------------------------------------------------------------- data

@dataclass
class StudyData:
    """The model, the training pool, the evaluation sets (with class masks), the zero-shot tower's
    features of each set, and the random and class-prompt text features of the energy gaps."""

    loaded: Any
    pool: Any
    domains: dict
    positions: dict
    classnames: tuple
    features0: dict = field(default_factory=dict)
    random_texts: Any = None
    class_texts: Any = None


def load_study_data(study: RobustFTStudy, progress: bool = True) -> StudyData:
    """Load the model, build every dataset (errors name what is missing before any training) and encode
    what every cell shares once."""
    from ..analysis import random_text_features
    from ..features import extract_features
    from ..models import load_model
    from ..prompts import zeroshot_head

    loaded = load_model(study.model, study.pretrained, device=study.device)
    root = study.data_root or None
    pool = dataset_from_spec(study.train, root)
    domains = {name: dataset_from_spec(spec, root) for name, spec in study.domains.items()}
    for name, ds in domains.items():
        if len(ds) == 0:
            raise ConfigError(f"evaluation set {name!r} is empty")
    positions = {name: class_positions(pool, ds, name) for name, ds in domains.items()}
    data = StudyData(loaded, pool, domains, positions, tuple(pool.classnames))
    data.features0 = {n: extract_features(loaded, ds, progress=progress, desc=f"features {n}").features
                      for n, ds in domains.items()}
    data.random_texts = random_text_features(loaded, study.n_random_texts, study.text_length, seed=study.text_seed)
    data.class_texts = zeroshot_head(loaded, data.classnames, study.templates)
    return data


def class_positions(pool, dataset, name: str = "dataset"):
    """Which of the training pool's classes an evaluation set's labels refer to: ``None`` when both have
    the same classes, else the column indices that mask the pool's outputs to the set's classes (ImageNet-R
    and -A: ``class_indices`` into the 1000 ImageNet classes, Hendrycks et al. 2021)."""
    if tuple(dataset.classnames) == tuple(pool.classnames):
        return None
    sub, full = getattr(dataset, "class_indices", None), getattr(pool, "class_indices", None)
    if sub is None:
        raise ConfigError(f"evaluation set {name!r} has other classes than the training pool and no "
                          "class_indices to map them")
    sub = np.asarray(sub)
    full = np.arange(len(pool.classnames)) if full is None else np.asarray(full)
    where = {int(c): i for i, c in enumerate(full)}
    missing = [int(c) for c in sub if int(c) not in where]
    if missing:
        raise ConfigError(f"evaluation set {name!r} has {len(missing)} classes the training pool lacks "
                          f"(class indices {missing[:5]})")
    return np.array([where[int(c)] for c in sub], dtype=np.int64)


# --------------------------------------------------------------------------- cells

def run(study: RobustFTStudy, store=None, progress: bool = True, data: StudyData | None = None) -> "RobustFTResults":
    """Fill one result cell per (method, seed) (:func:`clipstudy.study.run`); return the tidy tables
    (:class:`RobustFTResults`)."""
    return run_study(study, store, progress, data)


run_robust_ft_study = run
"""The former name of :func:`run` (kept for existing notebooks and scripts)."""


def _spec(study: RobustFTStudy, data: StudyData, recipe, train: TrainSet, seed: int) -> dict:
    sets = {name: ds.cache_key for name, ds in data.domains.items()}
    extra = {"experiment": "robust_ft", "eval_sets": sets, "reference": study.reference,
             "texts": {"n": study.n_random_texts, "length": study.text_length, "seed": study.text_seed,
                       "templates": study.templates},
             "ece_bins": study.ece_bins}
    source = study.head_from.get(recipe.label)
    if source:
        extra["head_from"] = recipe_spec(study.recipe(source))
    if _records_dynamics(study, recipe.label, seed):
        extra["dynamics"] = {"images": study.dynamics_images}
    return cell_spec(data.loaded, recipe, train, seed, **extra)


def _records_dynamics(study: RobustFTStudy, label: str, seed: int) -> bool:
    return label in study.dynamics and seed in study.seeds[:study.dynamics_runs]


def _run_cell(study, data, recipe, train, seed, spec, progress) -> dict:
    t0 = time.time()
    method = _build_method(study, data, recipe, train, seed, progress)
    callbacks = [DynamicsProbe(study, data, seed)] if "dynamics" in spec else []
    start = [{"step": 0, **cb(method, 0, [])} for cb in callbacks]  # the untrained (zero-shot) model
    method, history, theta0 = train_method(data.loaded, recipe, train, data.classnames, seed, method=method,
                                           checkpoint=checkpoint_path(spec), callbacks=callbacks, progress=progress)
    history = start + list(history)
    train_seconds = time.time() - t0
    variants = [{"variant": recipe.label, "alpha": 1.0, "domains": evaluate_variant(study, data, method, progress)}]
    # wise_variants loads each alpha into one shared copy: evaluate each before the next is loaded
    for alpha, mixed in wise_variants(method, theta0, recipe.wise_alphas):
        variants.append({"variant": f"{recipe.label}+wise", "alpha": alpha,
                         "domains": evaluate_variant(study, data, mixed, progress)})
    return {"variants": variants, "history": history, "train_seconds": round(train_seconds, 2),
            "seconds": round(time.time() - t0, 2)}


def _build_method(study, data, recipe, train, seed, progress):
    """The recipe's method; for LP-FT (``head_from``) with the head of the trained probe (its own cell
    checkpoint, trained first if missing)."""

    source = study.head_from.get(recipe.label)
    if not source:
        kwargs = recipe.kwargs
        if recipe.method == "finetune" and kwargs.get("templates") == study.templates:
            # the zero-shot head the method would build is the study's class-prompt head: encode it once
            return build(data.loaded, recipe, data.classnames, seed=seed, head_init=data.class_texts)
        return build(data.loaded, recipe, data.classnames, seed=seed)
    lp_recipe = study.recipe(source)
    lp_spec = _spec(study, data, lp_recipe, train, seed)
    probe, _, _ = train_method(data.loaded, lp_recipe, train, data.classnames, seed,
                               checkpoint=checkpoint_path(lp_spec), progress=progress)
    weight = getattr(probe, "weight", None)
    if weight is None:
        raise ConfigError(f"{recipe.label}: head_from recipe {source!r} has no linear head (weight) to start from")
    bias = getattr(probe, "bias", None)
    return build(data.loaded, recipe, data.classnames, seed=seed, head_init=weight.detach(),
                 head_bias_init=None if bias is None else bias.detach())


def evaluate_variant(study: RobustFTStudy, data: StudyData, method, progress: bool = True) -> dict:
    """Per evaluation set: accuracy, NLL, ECE, energy gaps (random texts, class prompts) and feature
    distortion of one trained method against the zero-shot model. A method that fine-tunes the text tower
    too (FLYP: ``method.text_tower``) has its gaps measured with its own text features against the zero-shot
    ones, as Eq. 6 compares the two image-text pairs."""
    tuned = tuned_text_features(study, data, method)
    out = {}
    for name, ds in data.domains.items():
        o = method_outputs(method, data.loaded, ds, name=name, progress=progress)
        logits = float(method.scale) * masked(o.sims, data.positions[name])
        out[name] = {**classification_metrics(logits, o.labels, study.ece_bins),
                     **shift_metrics(o.features, data.features0[name], data.random_texts, data.class_texts, tuned)}
    return out


def tuned_text_features(study: RobustFTStudy, data: StudyData, method):
    """``(random, class)`` text features of the method's own text tower (the same random texts and class
    prompts as the zero-shot ones), or None for methods whose text tower is the frozen one."""
    from ..analysis import random_text_features
    from ..prompts import zeroshot_head

    tower = getattr(method, "text_tower", None)
    if tower is None:
        return None
    was = method.training
    method.eval()
    random = random_text_features(data.loaded, study.n_random_texts, study.text_length, seed=study.text_seed,
                                  encode_text=tower)
    classes = zeroshot_head(data.loaded, data.classnames, study.templates, encode_text=tower)
    method.train(was)
    return random, classes


def masked(sims: np.ndarray, positions) -> np.ndarray:
    """``sims`` restricted to the columns of an evaluation set's classes (all columns if ``positions`` is None)."""
    return sims if positions is None else sims[:, positions]


def classification_metrics(logits, labels, ece_bins: int = 15) -> dict:
    """Accuracy, NLL (Lipsum-FT reports both, docs/protocols.md §0.4) and ECE (``ece_bins`` equal-width bins)."""
    from ..metrics import accuracy, ece, nll

    return {"accuracy": accuracy(logits, labels), "nll": nll(logits, labels, from_logits=True),
            "ece": ece(logits, labels, n_bins=ece_bins, from_logits=True)}


def shift_metrics(features, features0, random_texts, class_texts, tuned_texts=None) -> dict:
    """Energy gap to θ0 with random texts and with the class prompts, and the feature distortion.
    ``tuned_texts``: ``(random, class)`` features of a fine-tuned text tower (else the frozen ones serve both
    sides of the gap)."""
    from ..analysis import energy_gap, feature_distortion

    if tuned_texts is None:
        gaps = {"energy_gap": energy_gap(features, features0, random_texts),
                "energy_gap_class": energy_gap(features, features0, class_texts)}
    else:
        gaps = {"energy_gap": energy_gap(features, features0, tuned_texts[0], text_features0=random_texts),
                "energy_gap_class": energy_gap(features, features0, tuned_texts[1], text_features0=class_texts)}
    return {**gaps, "distortion": feature_distortion(features, features0)}


# --------------------------------------------------------------------------- training dynamics

class DynamicsProbe:
    """A training callback (``cb(method, step, history) -> dict``): reference accuracy, mean shift accuracy
    and the random-text energy gap on the reference and the shifted sets, on the first ``dynamics_images``
    images of each evaluation set (preprocessed once, held in memory). Evaluates in eval mode without
    gradients, so it does not change the training run."""

    def __init__(self, study: RobustFTStudy, data: StudyData, seed: int = 0):
        from ..features import _Transformed

        self.study, self.data = study, data
        self.sets = {}
        for name, ds in data.domains.items():
            n = min(study.dynamics_images, len(ds))
            items = _Transformed(Subset(ds, np.arange(n)), data.loaded.preprocess)
            images = __import__("torch").stack([items[i][0] for i in range(n)])
            self.sets[name] = (images, np.asarray(ds.targets)[:n], data.features0[name][:n])

    def __call__(self, method, step, history) -> dict:
        import torch

        from ..analysis import energy_gap
        from ..features import encode_images

        was = method.training
        method.eval()
        acc, gap = {}, {}
        with torch.no_grad():
            for name, (images, labels, f0) in self.sets.items():
                z = torch.nn.functional.normalize(encode_images(method.encoder, images.to(self.data.loaded.device)),
                                                  dim=-1)
                sims = masked(method.feature_similarities(z).float().cpu().numpy(), self.data.positions[name])
                z = z.cpu()
                acc[name] = float((sims.argmax(1) == labels).mean())
                gap[name] = energy_gap(z, f0, self.data.random_texts)
        method.train(was)
        shifts = self.study.shifts
        return {"ref_accuracy": acc[self.study.reference], "shift_accuracy": float(np.mean([acc[s] for s in shifts])),
                "ref_energy_gap": gap[self.study.reference],
                "shift_energy_gap": float(np.mean([gap[s] for s in shifts]))}


# --------------------------------------------------------------------------- results

@dataclass
class RobustFTResults:
    """The study's cells as tidy DataFrames.

    ``metrics``: one row per (method, variant, alpha, seed, domain) with ``reference`` (bool), accuracy,
    nll, ece, energy_gap, energy_gap_class, distortion. ``history``: one row per logged training step of
    each (method, seed) (loss terms, lr and, where recorded, the dynamics columns; step 0 is the untrained
    model). ``domains``: the evaluation sets, reference first. :meth:`summary` gives reference vs shift
    averages per variant.
    """

    metrics: Any
    history: Any
    reference: str
    domains: list

    @classmethod
    def from_records(cls, records, reference: str, domains=()) -> "RobustFTResults":
        import pandas as pd

        rows, hist = [], []
        for spec, m in records:
            key = {"method": spec["method"], "seed": spec["seed"]}
            for v in m["variants"]:
                rows += [{**key, "variant": v["variant"], "alpha": v["alpha"], "domain": d,
                          "reference": d == reference, **vals} for d, vals in v["domains"].items()]
            hist += [{**key, **h} for h in m["history"]]
        domains = list(domains) or list(dict.fromkeys(r["domain"] for r in rows))
        return cls(pd.DataFrame(rows), pd.DataFrame(hist), reference, [reference] + [d for d in domains if d != reference])

    def summary(self, by_seed: bool = False):
        """Per (method, variant, alpha[, seed]): reference and shift-average accuracy, NLL, ECE, energy gaps
        and distortion (shift = mean over the shifted domains); averaged over seeds unless ``by_seed``."""
        df = self.metrics
        keys = ["method", "variant", "alpha", "seed"]
        values = ["accuracy", "nll", "ece", "energy_gap", "energy_gap_class", "distortion"]
        ref = df[df.reference].groupby(keys)[values].mean().add_prefix("ref_")
        shift = df[~df.reference].groupby(keys)[values].mean().add_prefix("shift_")
        out = ref.join(shift).reset_index()
        if not by_seed:
            out = out.groupby(keys[:3], sort=False).mean(numeric_only=True).drop(columns="seed").reset_index()
        return out


# --------------------------------------------------------------------------- claims

def seed_spread(res: RobustFTResults, column: str = "shift_accuracy", variants: bool = False):
    """Per trained method (its final model; with ``variants`` also each WiSE-FT point, indexed by
    ``(method, variant, alpha)``): mean, standard deviation over seeds (ddof = 1; 0 with one seed) and the
    number of seeds of ``column`` of :meth:`RobustFTResults.summary`."""
    s = res.summary(by_seed=True)
    if not variants:
        s = s[s.variant == s.method]
        keys = ["method"]
    else:
        keys = ["method", "variant", "alpha"]
    g = s.groupby(keys, sort=False)[column]
    out = g.agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    return out


def _stats(df) -> dict:
    """``{method: (mean, std)}`` of a :func:`seed_spread` table."""
    return {m: (float(r["mean"]), float(r["std"])) for m, r in df.iterrows()}


def _pm(df, m) -> str:
    return pm(float(df.loc[m, "mean"]), float(df.loc[m, "std"]))


def _status(sign: int) -> str:
    return STATUS[sign]


def correlation_difference(res: RobustFTResults, x: str = "shift_energy_gap", y: str = "shift_distortion",
                           n_boot: int = 2000, seed: int = 0) -> dict:
    """|Spearman ρ(x, shift accuracy)| − |ρ(y, shift accuracy)| over every evaluated model (methods × seeds and
    WiSE-FT points), with a 95 % bootstrap interval over models (seeded resampling)."""
    from scipy import stats as sps

    pts = res.summary(by_seed=True)[[x, y, "shift_accuracy"]].dropna()
    if len(pts) < 4:
        return {"delta": float("nan"), "low": float("nan"), "high": float("nan"), "n": len(pts)}
    arr = pts.to_numpy(float)

    def delta(a):
        rx = sps.spearmanr(a[:, 0], a[:, 2])[0]
        ry = sps.spearmanr(a[:, 1], a[:, 2])[0]
        return abs(rx) - abs(ry)

    rng = np.random.default_rng(seed)
    boots = [delta(arr[rng.integers(0, len(arr), len(arr))]) for _ in range(n_boot)]
    boots = np.asarray([b for b in boots if np.isfinite(b)])
    low, high = (np.quantile(boots, [0.025, 0.975]) if len(boots) else (np.nan, np.nan))
    return {"delta": float(delta(arr)), "low": float(low), "high": float(high), "n": len(arr)}


def key_numbers(res: RobustFTResults) -> dict:
    """The numbers notebook 03 records, from :meth:`RobustFTResults.summary` (means over seeds of each
    method's final model): ``<method>_ref_accuracy``, ``<method>_shift_accuracy``, ``<method>_shift_nll`` and
    ``<method>_shift_energy_gap`` for every method (a weight-sweep variant ``lipsum_ft@0.3`` as
    ``lipsum_ft_w0p3``), ``best_method_shift`` (the trained method with the best shift accuracy, zero-shot and
    the linear probe left out) and ``<method>_wise_best_shift_accuracy`` along each WiSE-FT path."""
    summary = res.summary()
    final = summary[summary.variant == summary.method].set_index("method")
    out: dict = {}
    for m, row in final.iterrows():
        key = m.replace(SWEEP_SEP, "_w").replace(".", "p") if SWEEP_SEP in m else m
        for col in ("ref_accuracy", "shift_accuracy", "shift_nll", "shift_energy_gap"):
            out[f"{key}_{col}"] = float(row[col])
    trained = final.drop(index=[ZERO_SHOT, "lp"], errors="ignore")
    if len(trained):
        out["best_method_shift"] = trained.shift_accuracy.idxmax()
    wise = summary[summary.variant.str.endswith("+wise")]
    for m, path in wise.groupby("method", sort=False):
        out[f"{m}_wise_best_shift_accuracy"] = float(path.shift_accuracy.max())
    return out


def verdicts(res: RobustFTResults, gap_r: Mapping | None = None, dist_r: Mapping | None = None,
             label=str) -> dict[str, str]:
    """One sentence per claim of Nam et al. (Sec. 1 and 5) saying whether this run supports it, from the seed
    means and seed spreads of :meth:`RobustFTResults.summary` and, for claims 2-3, the correlations of
    :func:`clipstudy.studies.robust_ft_figures.scatter_vs_shift` (``gap_r``: energy gap, ``dist_r``: feature
    distortion, each ``{"pearson", "spearman", "n"}``). Every comparison of two methods counts a difference
    smaller than the seed spread (:func:`compare`) as a tie and says so. ``label`` names methods. Claims whose
    methods did not run are left out."""
    acc = seed_spread(res, "shift_accuracy")
    ref = seed_spread(res, "ref_accuracy")
    out: dict[str, str] = {}
    if {ZERO_SHOT, "ft"} <= set(acc.index):
        up = compare(ref.loc["ft", "mean"], ref.loc["ft", "std"], ref.loc[ZERO_SHOT, "mean"], ref.loc[ZERO_SHOT, "std"])
        down = compare(acc.loc[ZERO_SHOT, "mean"], acc.loc[ZERO_SHOT, "std"], acc.loc["ft", "mean"], acc.loc["ft", "std"])
        sign = 1 if up > 0 and down > 0 else (-1 if up < 0 or down < 0 else 0)
        out["ft_tradeoff"] = (f"{_status(sign)}: FT moves reference accuracy {_pm(ref, ZERO_SHOT)} -> {_pm(ref, 'ft')} "
                              f"and shift accuracy {_pm(acc, ZERO_SHOT)} -> {_pm(acc, 'ft')} (mean ± std over "
                              f"{int(acc.loc['ft', 'n'])} seeds).")
    if gap_r is not None and np.isfinite(gap_r.get("spearman", np.nan)):
        ok = gap_r["spearman"] <= -0.5
        out["energy_gap"] = (f"{'Supported' if ok else 'Not supported'}: across {gap_r['n']} models the energy "
                             f"gap and shift accuracy have Spearman rho {gap_r['spearman']:.2f} (Pearson r "
                             f"{gap_r['pearson']:.2f}); the paper finds a strong negative relation.")
        d = correlation_difference(res)
        if dist_r is not None and np.isfinite(dist_r.get("spearman", np.nan)) and np.isfinite(d["low"]):
            sign = 1 if d["low"] > 0 else (-1 if d["high"] < 0 else 0)
            out["distortion"] = (f"{_status(sign).replace('seed spread', 'bootstrap interval')}: feature distortion "
                                 f"has Spearman rho {dist_r['spearman']:.2f} with shift accuracy against the energy "
                                 f"gap's {gap_r['spearman']:.2f} (|rho_gap| - |rho_distortion| = {d['delta']:+.2f}, "
                                 f"95 % bootstrap interval over the {d['n']} models [{d['low']:+.2f}, "
                                 f"{d['high']:+.2f}]); the claim is that distortion explains less.")
    tuned = acc.drop(index=[m for m in (ZERO_SHOT, "lp") if m in acc.index])
    lipsums = [m for m in tuned.index if m == "lipsum_ft" or m.startswith("lipsum_ft@")]
    if "lipsum_ft" in tuned.index and len(tuned) > len(lipsums):
        paper_lambda = _stats(tuned.drop(index=[m for m in lipsums if m != "lipsum_ft"]))
        lead = leaders(paper_lambda)
        sign = 1 if lead == ["lipsum_ft"] else (0 if "lipsum_ft" in lead else -1)
        main = rank_sentence(paper_lambda, "lipsum_ft", label)
        text = (f"{_status(sign)}: on shift accuracy Lipsum-FT (the paper's λ = 1) {main} among "
                f"{len(tuned) - len(lipsums) + 1} fine-tuned methods.")
        if len(lipsums) > 1:
            parts = []
            for m in sorted(lipsums, key=lambda m: float(m.split("@")[1]) if "@" in m else 1.0):
                lead_m = leaders(_stats(tuned.drop(index=[x for x in lipsums if x != m])))
                where = ("first" if lead_m == [m] else "tied for first" if m in lead_m else "not first")
                parts.append(f"λ = {m.split('@')[1] if '@' in m else '1'}: {_pm(tuned, m)} ({where})")
            text += " Weight sweep: " + "; ".join(parts) + "."
        out["lipsum_most_robust"] = text
    paths = {m: seed_spread(res, "shift_accuracy", variants=True) for m in ("ft", "lipsum_ft")}
    paths = {m: p.xs((m, f"{m}+wise"), level=("method", "variant")) if (m, f"{m}+wise") in
             {k[:2] for k in p.index} else None for m, p in paths.items()}
    if all(p is not None and len(p) for p in paths.values()):
        common = [a for a in paths["ft"].index.intersection(paths["lipsum_ft"].index) if a > 0]  # 0: zero-shot
        if common:
            signs = [compare(paths["lipsum_ft"].loc[a, "mean"], paths["lipsum_ft"].loc[a, "std"],
                             paths["ft"].loc[a, "mean"], paths["ft"].loc[a, "std"]) for a in common]
            wins, ties, losses = signs.count(1), signs.count(0), signs.count(-1)
            sign = 1 if losses == 0 and wins > 0 else (-1 if losses else 0)
            out["wise"] = (f"{_status(sign)}: along the WiSE-FT path Lipsum-FT's shift accuracy is above FT's at "
                           f"{wins}, tied within the seed spread at {ties} and below at {losses} of {len(common)} "
                           f"mixing weights alpha > 0 (best at alpha > 0: FT {paths['ft'].loc[common, 'mean'].max():.1%}, "
                           f"Lipsum-FT {paths['lipsum_ft'].loc[common, 'mean'].max():.1%}).")
    return out


def captions(res: RobustFTResults, claims: Mapping[str, str], gap_r: Mapping | None = None,
             gap_class_r: Mapping | None = None, dist_r: Mapping | None = None, label=str) -> dict[str, str]:
    """The Markdown caption of each figure of notebook 03, written from this run's numbers and verdicts
    (:func:`verdicts`): every number a caption quotes is computed here, so a rerun on another machine or
    another model rewrites them. Keys: ``accuracy``, ``energy_gap``, ``distortion``, ``wise``, ``dynamics``."""
    acc = seed_spread(res, "shift_accuracy")
    ref = seed_spread(res, "ref_accuracy")
    out: dict[str, str] = {}
    n_seeds = int(acc["n"].max()) if len(acc) else 0
    head = f"**This run** ({seeds_phrase(n_seeds)}; mean ± std over seeds):"
    parts = [claims[k] for k in ("ft_tradeoff", "lipsum_most_robust") if k in claims]
    if ZERO_SHOT in acc.index:
        tuned = acc.drop(index=[m for m in (ZERO_SHOT, "lp") if m in acc.index])
        reach = [m for m in tuned.index if compare(tuned.loc[m, "mean"], tuned.loc[m, "std"],
                                                   acc.loc[ZERO_SHOT, "mean"], 0.0) >= 0]
        parts.append(f"Zero-shot's shift accuracy is {_pm(acc, ZERO_SHOT)}; "
                     + (f"{len(reach)} of {len(tuned)} fine-tuned methods reach it within the seed spread "
                        f"({', '.join(label(m) for m in reach)})." if reach else
                        f"none of the {len(tuned)} fine-tuned methods reaches it."))
    out["accuracy"] = " ".join([head] + parts)
    if "energy_gap" in claims:
        text = [head, claims["energy_gap"]]
        if gap_class_r is not None and np.isfinite(gap_class_r.get("spearman", np.nan)):
            text.append(f"With the class prompts instead of random texts: Spearman rho {gap_class_r['spearman']:.2f}.")
        gaps = seed_spread(res, "shift_energy_gap").drop(index=[m for m in (ZERO_SHOT, "lp") if m in acc.index])
        if len(gaps):
            low = gaps["mean"].idxmin()
            ft = f", FT's {gaps.loc['ft', 'mean']:.4f}" if "ft" in gaps.index else ""
            text.append(f"Smallest mean gap of the fine-tuned methods: {label(low)} ({gaps.loc[low, 'mean']:.4f}{ft}).")
        out["energy_gap"] = " ".join(text)
    if "distortion" in claims:
        text = [head, claims["distortion"]]
        if not claims["distortion"].startswith("Supported"):
            text.append("A possible reason on this world: short fine-tuning runs from one initialisation move the "
                        "tower along similar directions, so the size of the move (distortion) and its effect on "
                        "the image-text similarities (energy gap) are close to proportional; the paper's "
                        "counter-examples (large distortion, small gap) come from longer, more varied runs.")
        out["distortion"] = " ".join(text)
    if "wise" in claims:
        text = [head, claims["wise"]]
        paths = seed_spread(res, "shift_accuracy", variants=True)
        refs = seed_spread(res, "ref_accuracy", variants=True)
        key = ("ft", "ft+wise", 0.5)
        if key in paths.index and "ft" in ref.index:
            text.append(f"FT + WiSE at alpha = 0.5: reference {refs.loc[key, 'mean']:.1%} (FT: {ref.loc['ft', 'mean']:.1%}), "
                        f"shift {paths.loc[key, 'mean']:.1%} (FT: {acc.loc['ft', 'mean']:.1%}).")
        if ZERO_SHOT in acc.index:
            best = max(paths.loc[k, "mean"] for k in paths.index if k[1].endswith("+wise") and k[2] > 0) \
                if any(k[1].endswith("+wise") and k[2] > 0 for k in paths.index) else float("nan")
            text.append(f"Best shift accuracy on either path: {best:.1%}, zero-shot: {acc.loc[ZERO_SHOT, 'mean']:.1%}.")
        out["wise"] = " ".join(text)
    h = res.history
    if not h.empty and "shift_energy_gap" in h:
        h = h.dropna(subset=["shift_energy_gap"])
        lines = []
        for m, g in h.groupby("method", sort=False):
            g = g.groupby("step").mean(numeric_only=True)
            last = g.iloc[-1]
            lines.append(f"{label(m)}: energy gap peaks at {g.shift_energy_gap.max():.4f} (step "
                         f"{int(g.shift_energy_gap.idxmax())}) and ends at {last.shift_energy_gap:.4f}; shift "
                         f"accuracy on the probe goes {g.shift_accuracy.iloc[0]:.0%} -> {last.shift_accuracy:.0%}")
        seeds = sorted(int(x) for x in h.seed.unique())
        out["dynamics"] = (f"**This run** (seed {', '.join(map(str, seeds))}; a probe of a few images per domain, so "
                           "single points are noisy): " + "; ".join(lines) + ".")
    return out
