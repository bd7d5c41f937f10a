"""Ming & Li, "How does fine-tuning impact out-of-distribution detection for vision-language models?"
(IJCV 2023): OOD scores before and after few-shot fine-tuning.

Protocol (docs/protocols.md §1.3, reconstructed where the paper's is not known): a method is trained on ``K``
shots per ID class (CoOp sampling, several seeds), then every registered OOD scorer (higher = more ID,
:mod:`clipstudy.scores`) is computed from the method's class similarities on the ID test set and on each
OOD set, and AUROC / FPR95 / AUPR-In / AUPR-Out are computed with ID as the positive class (MCM's
``get_measures``, :func:`clipstudy.metrics.ood_metrics`). Covariate-shift sets (ID classes in another
domain) are scored the same way but reported separately: they should *not* be flagged as OOD.

One result cell per (method, shots, seed) holds the metrics of the trained method (and of its WiSE-FT
interpolations), the MCM temperature sweep and the ID accuracy; its similarity matrices are kept next to
it (``.npz``) for score histograms. Cells are skipped when present, so an interrupted study resumes.

Prompts (docs/protocols.md §0.2): MCM's code prompts every ID set with the one prompt ``"a photo of a {}"``;
CoOp and its successors prompt each dataset with its own hand-crafted template (``CUSTOM_TEMPLATES``). With
``template=""`` (the default) a study whose ID set carries a ``template`` (the world suite's datasets,
docs/world_suite.md) uses that prompt for the zero-shot head, for the heads that start from zero-shot (linear
probe, CLIP-Adapter, full fine-tuning) and for the phrase prompt learning starts from (CoOp/CoCoOp's
``ctx_init``): :func:`with_id_prompt`. ID sets without one (``world``, ``imagenet``) keep each recipe's own
prompt (MCM's).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from ..analysis.spread import (ONE_SEED_NOTE, STATUS, compare, leaders, mean_std, pm, seeds_phrase)
from ..analysis.spread import all_sign as _all_sign, direction as _direction, one_seed as _one_seed
from ..errors import ConfigError
from ..registry import Registry
from ..data.specs import dataset_from_spec
from ..experiment import (Outputs, TrainSet, cell_spec, checkpoint_path, few_shot_set, local_similarities,
                          method_outputs, train_method, wise_variants)
from ..study import (RecipeStudyConfig, call_with, check_names, check_shots, max_steps_overrides, run as run_study,
                     split_params)

DEFAULT_SCORERS = ("mcm", "msp", "max_logit", "energy", "entropy", "variance", "energy_cos", "entropy_cos",
                   "variance_cos", "mahalanobis", "knn", "gl_mcm")
DEFAULT_TEMPERATURES = tuple(float(t) for t in np.round(np.logspace(-3, 1, 17), 6))
SCORE_DEFINITIONS = 2
"""Part of every cell's spec, so that cells stored before energy, entropy and variance moved from cosines to
the model's logits (specs without this key) are not read back as if they had the new definitions."""
HIST_SCORERS = ("mcm", "msp")
RECIPE_PROMPTS = "recipe"
"""``template`` value that keeps every recipe's own prompt, whatever the ID set's."""
SINGLE_PROMPTS = ("mcm", "photo", "dataset", "a photo of a {}", "a photo of a {}.")
"""Recipe prompt settings (``templates`` / ``template``) that stand for "the dataset's single hand-crafted
prompt" and are replaced by the ID set's own (:func:`with_id_prompt`): the template sets ``mcm`` and
``photo``, the calibration recipes' ``"dataset"`` placeholder, and the two literal photo prompts."""
PHOTO_PHRASE = "a photo of a"
"""The context phrase the prompt-learning recipes start from (CoOp's ``ctxv1``), replaced by the ID
prompt's phrase."""
DEFAULT_TEMPLATE = "a photo of a {}."


@dataclass(frozen=True)
class OODStudy(RecipeStudyConfig):
    """Everything that defines the study; every field is part of each cell's spec (the shared fields:
    :class:`clipstudy.study.RecipeStudyConfig`).

    ``train``, ``id_test`` and each entry of ``ood`` / ``shift`` are dataset specs for
    :func:`clipstudy.data.specs.dataset_from_spec`; ``methods`` are recipe names
    (``clipstudy/recipes/*.json``) trained at ``scale``; ``recipe_overrides`` maps a recipe name to
    settings that replace its defaults (e.g. ``{"coop": {"max_steps": 100}}``). ``scorer_params`` maps a
    scorer to its parameters; the logit scale of the scorers registered with ``needs_scale`` (MSP, energy,
    entropy, variance) is always the model's own, so it cannot be set there. ``template`` is the ID set's
    hand-crafted prompt (one ``{}``) put into every recipe that uses a single prompt (:func:`with_id_prompt`):
    ``""`` = the ID set's own ``template`` attribute when it has one (the world suite), else each recipe's
    own prompt; ``"recipe"`` = always each recipe's own prompt.
    """

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
    template: str = ""

    desc = "OOD study cells"

    def __post_init__(self):
        from ..scores import SCORERS

        self.check_fields()
        check_shots(self.shots)
        check_names("scorers", self.scorers, "scorer names")
        for name in self.scorers:
            SCORERS.get(name)  # unknown scorers list the valid ones
        for name, params in self.scorer_params.items():
            if "logit_scale" in params and SCORERS.meta(name).get("needs_scale", False):
                raise ConfigError(f"scorer_params[{name!r}] sets logit_scale; {name} always uses the model's own")
        if not self.ood:
            raise ConfigError("the OOD study needs at least one OOD set (ood={name: dataset spec})")
        if not isinstance(self.template, str) or (self.template not in ("", RECIPE_PROMPTS)
                                                  and self.template.count("{}") != 1):
            raise ConfigError(f"template must be a prompt with one '{{}}' for the class name, '' (the ID set's own "
                              f"prompt) or {RECIPE_PROMPTS!r} (each recipe's own), got {self.template!r}")
        self.check_recipes()  # unknown recipes or settings fail before anything runs

    # ---- the study contract (clipstudy.study.Study)
    def load_data(self, progress: bool = True) -> "StudyData":
        return load_study_data(self, progress)

    def cells(self, data) -> list[tuple]:
        """``(method, shots, seed)`` for every method, shot count and seed."""
        return [(m, k, s) for m in self.methods for k in self.shots for s in self.seeds]

    def before(self, data, cells, progress: bool = True) -> None:
        data.local_reason = _local_reason(self, data)

    def prepare(self, data, cell) -> "OODCell":
        name, shots, seed = cell
        return OODCell(with_id_prompt(self.recipe(name), data.template), few_shot_set(data.pool, shots, seed), seed)

    def id_template(self, id_set=None) -> str | None:
        """The prompt of the ID set put into the recipes (:func:`with_id_prompt`), ``None`` to keep theirs:
        ``template`` if set, else the ``template`` of the built ID set ``id_set`` (through subsets), else that
        of the ID dataset's registry entry (so it is known before any dataset is built)."""
        from ..data import DATASETS
        from ..data.specs import unwrap

        if self.template == RECIPE_PROMPTS:
            return None
        if self.template:
            return self.template
        if id_set is not None:
            own = getattr(id_set, "template", None) or getattr(unwrap(id_set)[0], "template", None)
            if own:
                return own
        name = self.id_test.get("dataset") if isinstance(self.id_test, Mapping) else None
        return (DATASETS.meta(name).get("template") if name in DATASETS else None) or None

    def trained_recipe(self, name: str, id_set=None):
        """Recipe ``name`` as the study trains it: at its scale, with its overrides and the ID prompt."""
        return with_id_prompt(self.recipe(name), self.id_template(id_set))

    def spec(self, data, cell: "OODCell") -> dict:
        return _spec(self, data, cell.recipe, cell.train, cell.seed)

    def run_cell(self, data, cell: "OODCell", spec, store, progress: bool = True) -> dict:
        return _run_cell(self, data, cell.recipe, cell.train, cell.seed, spec, store, data.local_reason, progress)

    def tables(self, records, data, store) -> "OODResults":
        if data.local_reason:
            print(f"gl_mcm skipped: {data.local_reason}")
        return OODResults.from_records([(r.spec, r.metrics) for r in records], store,
                                       logit_scale=data.loaded.logit_scale)


@dataclass(frozen=True)
class OODCell:
    """One cell as it runs: the recipe, the few-shot training set drawn for the seed, the seed."""

    recipe: Any
    train: TrainSet
    seed: int


@dataclass
class StudyData:
    loaded: Any
    pool: Any
    id_test: Any
    ood: dict
    shift: dict
    classnames: tuple
    local_reason: str | None = None
    template: str | None = None


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
    return StudyData(loaded, pool, id_test, ood, shift, tuple(id_test.classnames),
                     template=study.id_template(id_test))


def context_phrase(template: str) -> str | None:
    """The phrase before the class name of a prompt that ends with it (``"a sketch of a {}."`` ->
    ``"a sketch of a"``): CoOp's prompts are ``"{context} {name}."`` (``KaiyangZhou/CoOp``
    ``trainers/coop.py``), so only such a prompt can initialise the context; ``None`` otherwise (e.g.
    ``"a photo of a {} texture."``)."""
    head, _, tail = template.partition("{}")
    if tail.strip() not in ("", "."):
        return None
    return head.strip() or None


def with_id_prompt(recipe, template: str | None):
    """``recipe`` with the ID set's prompt ``template`` in place of its single photo prompt, as CoOp prompts
    each dataset with its own hand-crafted template (``KaiyangZhou/CoOp`` ``CUSTOM_TEMPLATES``,
    docs/protocols.md §0.2; MCM's code uses ``"a photo of a {}"`` for every ID set): ``templates`` /
    ``template`` settings among :data:`SINGLE_PROMPTS` (the zero-shot head and the heads initialised from
    it) become ``template``, and a prompt-learning context initialised from
    :data:`PHOTO_PHRASE` starts from the prompt's own phrase (:func:`context_phrase`; kept when the prompt
    does not end with the class name). Prompt ensembles (``world``, ``imagenet80``), random contexts
    (``ctx_init=""``) and any other setting are kept. ``template=None``: the recipe unchanged; a
    ``"dataset"`` placeholder then becomes :data:`DEFAULT_TEMPLATE`."""
    params = recipe.kwargs
    new = dict(params)
    for key in ("templates", "template"):
        if isinstance(params.get(key), str) and (params[key] in SINGLE_PROMPTS if template else
                                                 params[key] == "dataset"):
            new[key] = template or DEFAULT_TEMPLATE
    phrase = context_phrase(template) if template else None
    if phrase and isinstance(params.get("ctx_init"), str) and params["ctx_init"].strip() == PHOTO_PHRASE:
        new["ctx_init"] = phrase
    return recipe if new == params else recipe.replace(params=new)


def run(study: OODStudy, store=None, progress: bool = True, data: StudyData | None = None) -> "OODResults":
    """Fill one result cell per (method, shots, seed) (:func:`clipstudy.study.run`); return the tidy tables
    (:class:`OODResults`)."""
    return run_study(study, store, progress, data)


run_ood_study = run
"""The former name of :func:`run` (kept for existing notebooks and scripts)."""


def _local_reason(study: OODStudy, data: StudyData) -> str | None:
    from ..local_features import local_support

    if "gl_mcm" not in study.scorers:
        return None
    return local_support(data.loaded.model.visual)


def _spec(study: OODStudy, data: StudyData, recipe, train: TrainSet, seed: int) -> dict:
    sets = {"id_test": data.id_test.cache_key, **{f"ood:{k}": v.cache_key for k, v in data.ood.items()},
            **{f"shift:{k}": v.cache_key for k, v in data.shift.items()}}
    protocol = {k: v for k, v in asdict(study).items() if k in ("scorers", "scorer_params", "temperatures")}
    return cell_spec(data.loaded, recipe, train, seed, experiment="ood", eval_sets=sets,
                     score_definitions=SCORE_DEFINITIONS, **protocol)


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
    scorers from :func:`fit_feature_scorers`. Local scorers (GL-MCM) run in chunks of images. Scorers
    registered with ``needs_scale`` (MSP, energy, entropy, variance) get the method's own logit scale."""
    from ..scores import SCORERS, needs_scale, score

    out = {}
    for name in study.scorers:
        params = dict(study.scorer_params.get(name, {}))
        needs = SCORERS.meta(name)["needs"]
        if needs_scale(name):
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
    """Dataset specs ``{"train", "id_test", "ood", "shift"}`` of a named benchmark (``world-suite``,
    ``world`` or ``imagenet``); unknown names list the valid ones. ``sizes`` go to the benchmark's builder."""
    return BENCHMARKS.get(name)(**sizes)


DEFAULT_BENCHMARK = "world-suite"
"""The benchmark of :func:`make_study` and notebook 01: the world suite's ImageNet analogue as ID."""


def make_study(benchmark: str = DEFAULT_BENCHMARK, *, max_steps: int = 0, **params) -> OODStudy:
    """The study of a notebook's parameters: the dataset specs of ``benchmark`` (:data:`BENCHMARKS`, default
    :data:`DEFAULT_BENCHMARK`; its options such as ``n_train``, ``n_test``, ``n_ood``, ``shift_domains``,
    ``id_dataset``, ``seed`` go to its builder) and every :class:`OODStudy` field (lists become tuples). ``max_steps`` > 0 caps every method's steps, merged
    under ``recipe_overrides`` (:func:`clipstudy.study.max_steps_overrides`)."""
    builder = BENCHMARKS.get(benchmark)
    options, fields = split_params(OODStudy, BENCHMARKS, params)
    methods = fields.get("methods", OODStudy.methods)
    overrides = max_steps_overrides(methods, max_steps, fields.pop("recipe_overrides", {}))
    return OODStudy(**fields, recipe_overrides=overrides, **call_with(builder, options))


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


SUITE_ID_SETS = ("world-shapes", "world-sketch", "world-infograph")
"""World-suite datasets that may be the ID set of the OOD study (docs/world_suite.md, "The suite and notebook
01"): their classes are the 30 ID shapes, none of the OOD sets' concepts. ``world-siblings`` (the near-OOD
classes), ``world-icons`` (the far-OOD classes), ``world-textures`` (the texture-only set's concept) and
``world-scenes`` (labelled by the background every OOD image has too) never are."""


def _suite_dataset(name: str, role: str, valid=SUITE_ID_SETS) -> str:
    """``"sketch"`` or ``"world-sketch"`` -> ``"world-sketch"``, checked against ``valid``."""
    full = name if str(name).startswith("world-") else f"world-{name}"
    if full not in valid:
        raise ConfigError(f"{role} {name!r} is not a world-suite dataset with the ID classes; valid: "
                          f"{', '.join(valid)}")
    return full


@BENCHMARKS.register("world-suite")
def world_suite_benchmark(n_train: int = 1200, n_test: int = 900, n_ood: int = 450, shift_domains=None,
                          id_dataset: str = "world-shapes", seed: int = 0) -> dict:
    """Ming & Li's ImageNet-1k protocol on the world suite (docs/world_suite.md, "The suite and notebook 01").

    ID = suite dataset ``id_dataset`` (default ``world-shapes``, the ImageNet analogue; one of
    :data:`SUITE_ID_SETS`), few shots drawn from ``n_train`` images of its train split, evaluated on
    ``n_test`` images of its test split, with its own prompt (``template``; :func:`with_id_prompt`). OOD
    sets as in the ``world`` benchmark, from the world's own streams and never from a suite dataset's
    images: ``near_ood`` (the 8 sibling shapes) and ``far_ood`` (the 8 object icons) in the ID set's
    domain, ``texture`` (texture-only images, the Textures analogue). Covariate shift: the other suite
    datasets with the ID classes in the same order, ``n_ood`` test images each (default for
    ``world-shapes``: ``world-sketch``, the ImageNet-Sketch analogue, and ``world-infograph``); names as
    ``"sketch"`` or ``"world-sketch"``. Ming & Li's smaller ID sets (CUB, Cars, Food, Pets) have no analogue
    here: the suite's other tasks hold the OOD concepts (docs/world_suite.md), so they cannot be ID.
    """
    from ..data.world_suite import get_spec

    id_name = _suite_dataset(id_dataset, "id_dataset")
    if shift_domains is None:
        shift_domains = [d for d in SUITE_ID_SETS if d != id_name]
    shift = [_suite_dataset(d, "covariate-shift set") for d in shift_domains]
    if id_name in shift:
        raise ConfigError(f"the covariate-shift sets {list(shift_domains)} include the ID set {id_name!r}")
    domain = get_spec(id_name).domain

    def suite(name, split, n):
        return {"dataset": name, "split": split, "n": int(n), "seed": seed}

    specs = world_benchmark(n_train, n_test, n_ood, shift_domains=(), id_domain=domain, seed=seed)
    return {"train": suite(id_name, "train", n_train), "id_test": suite(id_name, "test", n_test),
            "ood": specs["ood"], "shift": {d: suite(d, "test", n_ood) for d in shift}}


@BENCHMARKS.register("imagenet")
def imagenet_benchmark(n_test: int | None = None, n_ood: int | None = None, shift_domains=("imagenet_sketch",),
                       seed: int = 0, **_ignored) -> dict:
    """MCM's ImageNet protocol (docs/protocols.md §1.3): few shots from ImageNet train, ID test = ImageNet val,
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

def _is_zeroshot(variant: str) -> bool:
    return str(variant).startswith("zeroshot")


def seed_spread(res: "OODResults", metric: str = "auroc", group: str = "ood", shots: int | str | None = None):
    """Per (variant, scorer): mean, standard deviation over seeds (ddof = 1; 0 with one seed) and number of
    seeds of ``metric`` averaged over the ``group``'s sets (``ood`` or ``shift``) within each seed, at ``shots``
    (default: the largest shot count; ``"all"``: every shot count, indexed by (variant, scorer, shots)).
    Zero-shot variants do not train: their spread is that of the shot draw alone (0 for the similarity
    scores; the feature scores, fitted on the drawn shots, vary with it)."""
    o = res.ood[res.ood.group == group]
    keys = ["variant", "scorer"]
    if shots == "all":
        keys.append("shots")
    else:
        o = o[o.shots == (shots or int(res.accuracy["shots"].max()))]
    per_seed = o.groupby(keys + ["seed"], sort=False)[metric].mean()
    out = per_seed.groupby(level=keys, sort=False).agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    return out


def accuracy_spread(res: "OODResults", shots: int | None = None):
    """Per variant: mean, standard deviation over seeds and number of seeds of the ID accuracy at ``shots``
    (default: the largest)."""
    a = res.accuracy[res.accuracy.shots == (shots or int(res.accuracy["shots"].max()))]
    out = a.groupby("variant", sort=False)["id_accuracy"].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    return out


def _st(table, key) -> tuple[float, float]:
    r = table.loc[key]
    return float(r["mean"]), float(r["std"])


def _scorer_stats(table, variant) -> dict:
    """``{scorer: (mean, std)}`` of one variant of a :func:`seed_spread` table."""
    g = table.xs(variant, level="variant")
    return {s: (float(r["mean"]), float(r["std"])) for s, r in g.iterrows()}


def _zeroshot_ref(variants) -> str | None:
    variants = list(variants)
    return "zeroshot" if "zeroshot" in variants else next((v for v in variants if _is_zeroshot(v)), None)


def mcm_rank_range(table, variant) -> tuple[int, int]:
    """MCM's rank (1 = best) among the scorers of ``variant`` counting scorers within the seed spread of MCM
    as ties: ``(best, worst)``, ranked behind only the scorers above it beyond the spread, and behind every
    scorer not below it beyond the spread."""
    stats = _scorer_stats(table, variant)
    m = stats["mcm"]
    others = [s for s in stats if s != "mcm"]
    ahead = sum(compare(*stats[s], *m) > 0 for s in others)
    not_behind = sum(compare(*stats[s], *m) >= 0 for s in others)
    return ahead + 1, not_behind + 1


def key_numbers(res: "OODResults") -> dict:
    """The numbers the notebook records, at the largest shot count (mean over seeds; AUROC also averaged
    over OOD sets). Keys: ``<variant>_id_accuracy``, ``auroc_<scorer>_<variant>``,
    ``shift_auroc_mcm_<variant>``, ``scorer_spread_<variant>`` (best minus worst scorer's mean AUROC),
    ``mcm_rank_<variant>`` (MCM's rank among the scorers, 1 = best, scorers within the seed spread of MCM
    counted as ties: :func:`mcm_rank_range`'s best rank), ``msp_temperature``. The verdicts
    (:func:`verdicts`) read the per-seed tables (:func:`seed_spread`) instead."""
    shots = int(res.accuracy["shots"].max())
    acc = res.accuracy[res.accuracy.shots == shots].groupby("variant")["id_accuracy"].mean()
    o = res.ood[res.ood.shots == shots]
    ood = o[o.group == "ood"].groupby(["variant", "scorer"])["auroc"].mean()
    out = {"shots": shots, "msp_temperature": res.msp_temperature}
    out.update({f"{v}_id_accuracy": float(a) for v, a in acc.items()})
    out.update({f"auroc_{s}_{v}": float(a) for (v, s), a in ood.items()})
    table = seed_spread(res)
    for v, g in ood.groupby(level="variant"):
        g = g.droplevel("variant")
        out[f"scorer_spread_{v}"] = float(g.max() - g.min())
        if "mcm" in g:
            out[f"mcm_rank_{v}"] = mcm_rank_range(table, v)[0]
    shift = o[(o.group == "shift") & (o.scorer == "mcm")].groupby("variant")["auroc"].mean()
    out.update({f"shift_auroc_mcm_{v}": float(a) for v, a in shift.items()})
    return out


SCORE_CHOICE_GAP = 0.05
"""The AUROC gap between the best and the worst score (beyond the seed spread) from which the score choice
is said to matter."""
TEMPERATURE_VARIANTS = ("zeroshot", "coop", "finetune")


def _n_seeds(res: "OODResults") -> int:
    return int(res.accuracy["seed"].nunique()) if len(res.accuracy) else 0


def best_temperatures(res: "OODResults", variants=TEMPERATURE_VARIANTS, shots: int | None = None) -> dict:
    """``{variant: (T*, auroc)}``: the MCM temperature with the best AUROC (mean over OOD sets and seeds) at
    ``shots`` (default: the largest), as Figure 3 marks it."""
    curves = _sweep_per_seed(res, variants, shots).groupby(["variant", "T"], sort=False)["auroc"].mean()
    out = {}
    for v in dict.fromkeys(curves.index.get_level_values("variant")):
        c = curves.xs(v, level="variant").sort_index()
        out[v] = (float(c.idxmax()), float(c.max()))
    return out


def _sweep_per_seed(res: "OODResults", variants, shots: int | None = None):
    """The MCM sweep at ``shots`` per (variant, seed, T), averaged over the OOD sets (shift sets left out)."""
    shots = shots or int(res.accuracy["shots"].max())
    sw = res.sweep[(res.sweep.shots == shots) & res.sweep.variant.isin(list(variants))]
    sw = sw[~sw.set.isin(res.ood.loc[res.ood.group == "shift", "set"].unique())]
    return sw.groupby(["variant", "seed", "T"], sort=False)["auroc"].mean().reset_index()


def accuracy_auroc_correlation(res: "OODResults", scorer: str = "mcm") -> dict:
    """Pearson r between ID accuracy and ``scorer``'s AUROC (mean over OOD sets) across the method × shots
    points: ``r_means`` on the seed means (Figure 4's), and ``mean``/``std``/``n`` of r computed within
    each seed; ``points`` = number of method × shots points."""
    o = res.ood[(res.ood.group == "ood") & (res.ood.scorer == scorer)]
    auroc = o.groupby(["variant", "shots", "seed"])["auroc"].mean()
    acc = res.accuracy.set_index(["variant", "shots", "seed"])["id_accuracy"]
    df = auroc.to_frame().join(acc).dropna().reset_index()

    def r(d):
        x, y = d["id_accuracy"].to_numpy(float), d["auroc"].to_numpy(float)
        return float(np.corrcoef(x, y)[0, 1]) if len(d) > 2 and x.std() > 0 and y.std() > 0 else float("nan")

    means = df.groupby(["variant", "shots"])[["id_accuracy", "auroc"]].mean()
    rs = [r(g) for _, g in df.groupby("seed")]
    m, s, n = mean_std(rs)
    return {"r_means": r(means), "mean": m, "std": s, "n": n, "points": len(means)}


def verdicts(res: "OODResults", best_t: Mapping | None = None, label=str) -> dict[str, str]:
    """One sentence per claim of Ming & Li (Sec. 1 and the conclusions of the paper) saying whether this run
    supports it, from the per-seed tables at the largest shot count (:func:`seed_spread`: AUROC averaged
    over the OOD sets within each seed, then mean ± std over seeds). Every comparison of two methods or two
    scores counts a difference smaller than the seed spread (:func:`clipstudy.analysis.spread.compare`) as
    a tie and says so. ``best_t`` (Figure 3's ``{variant: (T, auroc)}``) picks the variants of the
    temperature claim (default: those of :data:`TEMPERATURE_VARIANTS` that ran). ``label`` names methods
    and scores. Claims whose methods did not run are left out."""
    out: dict[str, str] = {}
    if res.ood.empty:
        return out
    shots = int(res.accuracy["shots"].max())
    n_seeds = _n_seeds(res)
    seeds = seeds_phrase(n_seeds)
    table = seed_spread(res)
    variants = list(dict.fromkeys(table.index.get_level_values("variant")))
    trained = [v for v in variants if not _is_zeroshot(v)] or variants
    f3 = lambda st: pm(*st, ".3f")  # noqa: E731

    gaps = {}
    for v in trained:
        stats = _scorer_stats(table, v)
        if len(stats) < 2:
            continue
        best, worst = max(stats, key=lambda k: stats[k][0]), min(stats, key=lambda k: stats[k][0])
        gap = stats[best][0] - stats[worst][0]
        sign = compare(*stats[best], *stats[worst])
        gaps[v] = (gap, sign, best, worst, stats)
    if gaps:
        matters = [v for v, (gap, sign, *_rest) in gaps.items() if sign > 0 and gap >= SCORE_CHOICE_GAP]
        v = max(gaps, key=lambda k: gaps[k][0])
        gap, sign, best, worst, stats = gaps[v]
        status = STATUS[1] if matters else (STATUS[0] if sign == 0 else STATUS[-1])
        lead = leaders(stats)
        tied = (f"; {', '.join(label(s) for s in lead if s != best)} tie{'s' if len(lead) == 2 else ''} with it "
                f"within the seed spread" if len(lead) > 1 else "")
        out["score_choice"] = (
            f"{status}: the score choice matters (a gap between the best and the worst score beyond the seed "
            f"spread and of at least {SCORE_CHOICE_GAP:.2f} AUROC) for {len(matters)} of {len(gaps)} trained "
            f"methods. The largest gap is {label(v)}'s: {label(best)} {f3(stats[best])}{tied}, against "
            f"{label(worst)} {f3(stats[worst])} ({gap:.3f}, {'beyond' if sign else 'within'} the seed spread; "
            f"mean OOD AUROC, {shots} shots, mean ± std over {seeds}).")
    with_mcm = [v for v in variants if (v, "mcm") in table.index and len(_scorer_stats(table, v)) > 1]
    if with_mcm:
        ranks = {v: mcm_rank_range(table, v) for v in with_mcm}
        top_best = sum(r[0] <= 3 for r in ranks.values())
        top_worst = sum(r[1] <= 3 for r in ranks.values())
        need = len(ranks) / 2
        sign = 1 if top_worst >= need else (-1 if top_best < need else 0)
        n_scores = max(len(_scorer_stats(table, v)) for v in with_mcm)
        count = f"{top_worst}" if top_worst == top_best else f"{top_worst} to {top_best}"
        ranks_txt = ", ".join(f"{label(v)} {a}" if a == b else f"{label(v)} {a}–{b}" for v, (a, b) in ranks.items())
        out["mcm_promising"] = (
            f"{STATUS[sign]}: MCM (T = 1) is among the top 3 of {n_scores} scores for {count} of {len(ranks)} "
            f"methods, counting scores within the seed spread of MCM as ties (MCM's rank: {ranks_txt}); the "
            f"claim needs at least half of the methods ({shots} shots, {seeds}).")
    zs = _zeroshot_ref(variants)
    if zs and "coop" in variants:
        parts, signs = [], []
        for scorer in ("mcm", "msp"):
            if (zs, scorer) in table.index and ("coop", scorer) in table.index:
                s = compare(*_st(table, ("coop", scorer)), *_st(table, (zs, scorer)))
                signs.append(s)
                parts.append(f"with {label(scorer)} {f3(_st(table, (zs, scorer)))} -> "
                             f"{f3(_st(table, ('coop', scorer)))} ({_direction(s)})")
        if parts:
            text = (f"{_status_of(signs)}: CoOp's mean OOD AUROC against {label(zs)}'s at {shots} shots: "
                    f"{'; '.join(parts)} (mean ± std over {seeds}).")
            per_shot = seed_spread(res, shots="all")
            ks = sorted({k for (v, s, k) in per_shot.index if v == "coop" and s == "mcm"
                         and (zs, "mcm", k) in per_shot.index})
            if len(ks) > 1:
                ss = [compare(*_st(per_shot, ("coop", "mcm", k)), *_st(per_shot, (zs, "mcm", k))) for k in ks]
                text += (f" With MCM, CoOp is above zero-shot beyond the seed spread at {ss.count(1)}, tied at "
                         f"{ss.count(0)} and below at {ss.count(-1)} of {len(ks)} shot counts "
                         f"({', '.join(map(str, ks))}).")
            out["prompt_learning"] = text
    tv = [v for v in (best_t or TEMPERATURE_VARIANTS) if v in set(res.sweep.variant)] if len(res.sweep) else []
    tzs = _zeroshot_ref(tv)
    if tzs and len(tv) > 1:
        per_seed = _sweep_per_seed(res, tv).set_index(["variant", "T", "seed"])["auroc"].sort_index()
        best = best_temperatures(res, tv)
        t0 = best[tzs][0]
        moved, beyond = [], []
        for v in tv:
            if v == tzs or best[v][0] == t0:
                continue
            own = mean_std(per_seed.loc[(v, best[v][0])].to_list())
            at0 = mean_std(per_seed.loc[(v, t0)].to_list())
            s = compare(own[0], own[1], at0[0], at0[1])
            moved.append(v)
            if s > 0:
                beyond.append(f"{label(v)} ({f3(own[:2])} at T = {best[v][0]:g} vs {f3(at0[:2])} at T = {t0:g})")
        sign = 1 if beyond else (0 if moved else -1)
        txt = ", ".join(f"{label(v)} T* = {best[v][0]:g}" for v in tv)
        tail = (f"; at its own T* the AUROC is above that at {label(tzs)}'s T* beyond the seed spread for "
                f"{'; '.join(beyond)}" if beyond else
                f"; the AUROC at the moved T* is within the seed spread of that at {label(tzs)}'s T* = {t0:g}"
                if moved else "")
        out["temperature"] = (f"{STATUS[sign]}: the best MCM temperature "
                              f"{'moves' if moved else 'does not move'} after fine-tuning ({txt}; mean OOD AUROC "
                              f"over {seeds}){tail}. The claim: the temperature must be chosen anew after "
                              f"fine-tuning.")
    c = accuracy_auroc_correlation(res)
    if np.isfinite(c["mean"]):
        sign = compare(c["mean"], c["std"], 0.0, 0.0)
        out["accuracy_auroc"] = (
            f"{STATUS[sign]}: across {c['points']} method × shot points the Pearson r between ID accuracy and MCM "
            f"AUROC (mean over OOD sets) is {c['r_means']:.2f} on the seed means and {c['mean']:.2f} ± "
            f"{c['std']:.2f} within a seed (mean ± std over {seeds_phrase(c['n'])}); the "
            f"claim (better ID accuracy goes with better OOD detection) needs r above 0 beyond that spread.")
    return _one_seed(out, n_seeds)


def _status_of(signs) -> str:
    return STATUS[_all_sign(signs)]


def captions(res: "OODResults", claims: Mapping[str, str], best_t: Mapping | None = None, label=str) -> dict[str, str]:
    """The Markdown caption of each figure of notebook 01, written from this run's numbers and verdicts
    (:func:`verdicts`): every number a caption quotes is computed here. Keys: ``scores`` (Figure 1),
    ``score_forms`` (logits vs cosines), ``shots`` (Figure 2), ``temperature`` (Figure 3), ``accuracy``
    (Figure 4), ``histograms`` (Figure 5). Explanations of a failed claim are printed only when its verdict
    is "Not supported"."""
    out: dict[str, str] = {}
    if res.ood.empty:
        return out
    shots = int(res.accuracy["shots"].max())
    n_seeds = _n_seeds(res)
    head = f"**This run** ({seeds_phrase(n_seeds)}; {shots} shots; mean ± std over seeds):"
    table = seed_spread(res)
    variants = list(dict.fromkeys(table.index.get_level_values("variant")))
    f3 = lambda st: pm(*st, ".3f")  # noqa: E731

    text = [head] + [claims[k] for k in ("score_choice", "mcm_promising") if k in claims]
    if claims.get("mcm_promising", "").startswith("Not supported"):
        text.append(f"A likely reason: at T = 1 MCM's softmax over the class cosines is nearly flat, since the "
                    f"cosines span a narrow range and this model's logit scale is {res.logit_scale:.1f} "
                    f"(MSP is MCM at T = 1/{res.logit_scale:.1f}); the temperature sweep (Figure 3) shows how "
                    f"MCM's AUROC changes with T.")
    shift = seed_spread(res, group="shift")
    if len(shift):
        sv = [v for v in variants if v in set(shift.index.get_level_values("variant"))]
        flag = []
        for v in sv[:1] + [x for x in sv[1:] if x == "coop"]:
            stats = _scorer_stats(shift, v)
            top = max(stats, key=lambda k: stats[k][0])
            mcm_txt = f", MCM {f3(stats['mcm'])}" if "mcm" in stats and top != "mcm" else ""
            flag.append(f"{label(v)}: {label(top)} {f3(stats[top])}{mcm_txt}")
        names = list(dict.fromkeys(res.ood.loc[res.ood.group == "shift", "set"]))
        where = (f"the covariate-shift set {label(names[0])}" if len(names) == 1 else
                 f"the covariate-shift sets ({', '.join(label(n) for n in names)}; AUROC averaged over them)")
        text.append(f"On {where} (AUROC 0.5 is ideal: ID classes in another domain are not OOD), "
                    "the score that flags them most: " + "; ".join(flag) + ".")
    out["scores"] = " ".join(text)

    forms = []
    for a in ("energy", "entropy", "variance"):
        b = f"{a}_cos"
        pairs = [v for v in variants if (v, a) in table.index and (v, b) in table.index]
        if pairs:
            ss = [compare(*_st(table, (v, a)), *_st(table, (v, b))) for v in pairs]
            ma = np.mean([table.loc[(v, a), "mean"] for v in pairs])
            mb = np.mean([table.loc[(v, b), "mean"] for v in pairs])
            forms.append(f"{label(a)} on the logits vs {label(b)}: mean OOD AUROC {ma:.3f} vs {mb:.3f} over the "
                         f"{len(pairs)} methods; the logits are better beyond the seed spread for {ss.count(1)}, "
                         f"tied for {ss.count(0)} and worse for {ss.count(-1)}.")
    if forms:
        out["score_forms"] = " ".join([head] + forms)

    zs = _zeroshot_ref(variants)
    text = [head] + ([claims["prompt_learning"]] if "prompt_learning" in claims else [])
    if zs and (zs, "mcm") in table.index:
        groups = {1: [], 0: [], -1: []}
        for v in variants:
            if v != zs and (v, "mcm") in table.index:
                groups[compare(*_st(table, (v, "mcm")), *_st(table, (zs, "mcm")))].append(
                    f"{label(v)} {f3(_st(table, (v, 'mcm')))}")
        names = {1: "above it beyond the seed spread", 0: "tied with it within the seed spread",
                 -1: "below it beyond the seed spread"}
        text.append(f"Every method against {label(zs)} with MCM ({f3(_st(table, (zs, 'mcm')))}): "
                    + "; ".join(f"{names[k]}: {', '.join(g)}" for k, g in groups.items() if g) + ".")
    if claims.get("prompt_learning", "").startswith("Not supported") and zs:
        acc = accuracy_spread(res)
        if "coop" in acc.index and zs in acc.index:
            s = compare(*_st(acc, "coop"), *_st(acc, zs))
            text.append(f"A possible reason: few-shot training barely moves this model: CoOp's ID accuracy is "
                        f"{pm(*_st(acc, 'coop'))} against {label(zs)}'s {pm(*_st(acc, zs))} ({_direction(s)}).")
    out["shots"] = " ".join(text)

    tv = [v for v in (best_t or TEMPERATURE_VARIANTS) if v in set(res.sweep.variant)] if len(res.sweep) else []
    if tv:
        best = best_temperatures(res, tv)
        grid = sorted(res.sweep["T"].unique())
        lines = []
        for v in tv:
            t, auroc = best[v]
            where = ("at the lower edge of the grid" if t == grid[0] else "at the upper edge of the grid"
                     if t == grid[-1] else "inside the grid")
            side = "below" if t < res.msp_temperature else "at or above"
            lines.append(f"{label(v)}: T* = {t:g} (AUROC {auroc:.3f}), {where} ({grid[0]:g} to {grid[-1]:g}), "
                         f"{side} MSP's T = 1/scale = {res.msp_temperature:.3g}")
        out["temperature"] = " ".join([head] + ([claims["temperature"]] if "temperature" in claims else [])
                                      + ["; ".join(lines) + "."])

    text = [head] + ([claims["accuracy_auroc"]] if "accuracy_auroc" in claims else [])
    acc = accuracy_spread(res)
    if len(acc):
        st = {v: _st(acc, v) for v in acc.index}
        lead = leaders(st)
        line = (f"Highest ID accuracy at {shots} shots: {label(lead[0])} {pm(*st[lead[0]])}"
                + (f" (tied within the seed spread: {', '.join(f'{label(v)} {pm(*st[v])}' for v in lead[1:])})"
                   if len(lead) > 1 else ""))
        mcm = {v: _st(table, (v, "mcm")) for v in variants if (v, "mcm") in table.index}
        if mcm:
            lm = leaders(mcm)
            line += (f"; highest MCM AUROC: {label(lm[0])} {f3(mcm[lm[0]])}"
                     + (f" (tied within the seed spread: {', '.join(f'{label(v)} {f3(mcm[v])}' for v in lm[1:])})"
                        if len(lm) > 1 else ""))
        text.append(line + ".")
    out["accuracy"] = " ".join(text)

    text = [head]
    hv = [v for v in ("zeroshot", "coop") if v in variants]
    seed = int(res.accuracy["seed"].min()) if len(res.accuracy) else None
    ood_sets = list(dict.fromkeys(res.ood.loc[res.ood.group == "ood", "set"]))
    if res.store is not None and seed is not None:
        from ..scores import mcm as mcm_score

        ranges = []
        for v in hv:
            try:
                arrays = res.sims(v, shots, seed)
            except KeyError:
                continue
            vals = np.concatenate([mcm_score(arrays[f"{k}/sims"].astype(np.float64))
                                   for k in ["id"] + ood_sets if f"{k}/sims" in arrays])
            k = arrays["id/sims"].shape[1]
            ranges.append(f"{label(v)} {vals.min():.3f} to {vals.max():.3f}")
        if ranges:
            text.append(f"In the cell drawn (seed {seed}), MCM at T = 1 lies between {'; '.join(ranges)} "
                        f"(1/K = {1 / k:.3f} for K = {k} classes).")
    comp = []
    for v in hv:
        if (v, "msp") in table.index and (v, "mcm") in table.index:
            s = compare(*_st(table, (v, "msp")), *_st(table, (v, "mcm")))
            comp.append(f"{label(v)} MSP {f3(_st(table, (v, 'msp')))} vs MCM {f3(_st(table, (v, 'mcm')))} "
                        f"({_direction(s, 'MSP higher', 'MSP lower')})")
    if comp:
        text.append("Mean OOD AUROC, MSP against MCM at T = 1: " + "; ".join(comp) + ".")
    out["histograms"] = " ".join(text)
    return _one_seed(out, n_seeds)
