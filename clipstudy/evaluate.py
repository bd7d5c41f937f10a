"""Zero-shot evaluation shared by the CLI, the pretraining model card and the notebooks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import build_dataset, dataset_domains
from .features import extract_features
from .methods import build_method


@dataclass
class ZeroShotResult:
    domain: str
    classnames: tuple
    labels: np.ndarray
    similarities: np.ndarray  # [N, K] cosine similarities
    factors: object = None  # per-image factor table (world datasets), else None
    templates: object = None  # the template set or prompt the class heads were built from

    @property
    def predictions(self) -> np.ndarray:
        return self.similarities.argmax(1)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())


def zeroshot_on(loaded, dataset, templates="photo", *, progress: bool = True, cache: bool = True,
                heads: dict | None = None) -> ZeroShotResult:
    """Zero-shot similarities of every image of ``dataset`` to its class prompts.

    ``heads`` (a dict the caller keeps) reuses text heads across datasets with the same classes, so a
    loop over domains or corruptions encodes the prompts once."""
    fs = extract_features(loaded, dataset, progress=progress, cache=cache)
    heads = {} if heads is None else heads
    key = (tuple(dataset.classnames), str(templates))
    if key not in heads:
        heads[key] = build_method("zeroshot", loaded, dataset.classnames, templates=templates)
    head = heads[key]
    sims = head.predict_similarities(fs.features).numpy()
    factors = dataset.factor_table() if hasattr(dataset, "factor_table") else None
    return ZeroShotResult(getattr(dataset, "domain", dataset.name), tuple(dataset.classnames),
                          fs.labels.numpy(), sims, factors, templates)


OWN_TEMPLATES = ("auto", "dataset")
"""Template choices that read a dataset's own prompt (``ds.template``: CoOp's hand-crafted prompt of each CoOp
dataset, the world suite's prompts): ``dataset`` requires one, ``auto`` falls back to the photo prompt."""


def resolve_templates(templates, dataset):
    """The templates to use on ``dataset``: ``templates`` itself, or for ``auto``/``dataset`` its own prompt."""
    from .errors import ConfigError

    if not (isinstance(templates, str) and templates in OWN_TEMPLATES):
        return templates
    own = getattr(dataset, "template", None)
    if own:
        return own
    if templates == "dataset":
        raise ConfigError(f"dataset {getattr(dataset, 'name', dataset)!r} has no prompt of its own (ds.template); "
                          "pass a template set (photo, imagenet80, mcm) or a prompt with '{}'")
    return "photo"


def zeroshot_by_domain(loaded, dataset: str = "world", *, root=None, domains=None, templates="photo",
                       split: str = "test", progress: bool = True, cache: bool = True,
                       **options) -> dict[str, ZeroShotResult]:
    """Zero-shot results for each domain of a dataset (one domain, named after it, if it has none).

    ``templates`` is a template set, a prompt with ``{}``, or ``auto``/``dataset`` for the dataset's own prompt
    (:func:`resolve_templates`). The templates and every domain's dataset (``n`` images of the world:
    1..``MAX_IMAGES``) are checked before any image is encoded, so a bad value fails at once with one line."""
    from .prompts import get_templates

    domains = domains or dataset_domains(dataset, root)
    built = {domain: build_dataset(dataset, root=root, split=split, domain=domain, **options) for domain in domains}
    chosen = {domain: resolve_templates(templates, ds) for domain, ds in built.items()}
    for t in chosen.values():
        get_templates(t)  # an unknown template set lists the valid ones
    heads = {}
    return {domain: zeroshot_on(loaded, ds, chosen[domain], progress=progress, cache=cache, heads=heads)
            for domain, ds in built.items()}


def accuracy_by_factor(result: ZeroShotResult, factors=("color", "size", "position", "rotation", "pattern",
                                                        "background", "occlusion")) -> "object":
    """Accuracy per value of each nuisance factor (a tidy DataFrame: factor, value, accuracy, n)."""
    import pandas as pd

    if result.factors is None:
        raise ValueError(f"the {result.domain} dataset has no factor labels (only the world has them)")
    df = pd.DataFrame(list(result.factors))
    df["correct"] = result.predictions == result.labels
    rows = []
    for factor in [f for f in factors if f in df.columns]:
        for value, g in df.groupby(factor, sort=False):
            rows.append({"domain": result.domain, "factor": factor, "value": str(value),
                         "accuracy": float(g["correct"].mean()), "n": len(g)})
    return pd.DataFrame(rows)


def shape_bias_on_world(loaded, *, n: int = 1000, seed: int = 0, domain: str = "photo", templates="photo",
                        progress: bool = True, cache: bool = True) -> dict:
    """Shape bias on the world's cue-conflict images (shape of one class, typical texture of
    another): shape decisions / (shape + texture decisions), as in Geirhos et al. 2019 and
    Tu et al. §IV-B; returns the bias and the fractions of shape and texture decisions."""
    from .metrics import shape_bias

    ds = build_dataset("world", split="test", domain=domain, n=n, seed=seed, kind="cue_conflict")
    res = zeroshot_on(loaded, ds, templates, progress=progress, cache=cache)
    index = {c: i for i, c in enumerate(res.classnames)}
    texture = np.array([index[f["texture_class"]] for f in res.factors])
    pred = res.predictions
    return {"shape_bias": float(shape_bias(pred, res.labels, texture)),
            "shape_decisions": float((pred == res.labels).mean()),
            "texture_decisions": float((pred == texture).mean())}


def corruption_accuracy(loaded, corruptions=None, severities=(3,), *, n: int = 500, seed: int = 0,
                        domain: str = "photo", templates="photo", progress: bool = True,
                        cache: bool = True) -> list[dict]:
    """Zero-shot accuracy under each corruption and severity (the ImageNet-C analogue)."""
    from .world import CORRUPTIONS

    rows, heads = [], {}
    for c in corruptions or CORRUPTIONS:
        for s in severities:
            ds = build_dataset("world", split="test", domain=domain, n=n, seed=seed, corruption=c, severity=s)
            res = zeroshot_on(loaded, ds, templates, progress=progress, cache=cache, heads=heads)
            rows.append({"corruption": c, "severity": s, "accuracy": res.accuracy})
    return rows


def zeroshot_calibration(result: ZeroShotResult, logit_scale: float, classes=None) -> dict:
    """Accuracy, mean confidence and ECE (10 equal-width ``[lower, upper)`` bins, the DAC/DOR convention; and
    ECE-15 as Tu et al. bin it) of a zero-shot result at the model's logit scale, softmax over all classes or,
    with ``classes``, over those classes on the images of those classes (a CoOp base or new group,
    docs/protocols.md §0.5)."""
    from .metrics import calibration_summary

    sims, labels = result.similarities, result.labels
    if classes is not None:
        cols = [result.classnames.index(c) for c in classes]
        keep = np.isin(labels, cols)
        remap = {c: i for i, c in enumerate(cols)}
        sims, labels = sims[keep][:, cols], np.array([remap[y] for y in labels[keep]], np.int64)
    s = calibration_summary(logit_scale * sims, labels, from_logits=True)
    return {k: round(s[k], 4) for k in ("accuracy", "confidence", "ece", "ece15")}


def suite_zeroshot(loaded, suite: str = "world-suite", *, n: int | None = None, seed: int = 0,
                   progress: bool = True, cache: bool = True) -> dict:
    """Zero-shot calibration of a model on every dataset of a suite, each with its own prompt (test split):
    ``{dataset: {"base"|"new"|"all": zeroshot_calibration}}`` plus ``"mean"`` over the datasets (the paper's
    average over its datasets, Wang et al. Table 1)."""
    from .data.world_suite import SUITES, base_new_split

    scale = float(loaded.logit_scale)
    out = {}
    for name in SUITES[suite]:
        base, new = base_new_split(name)
        size = {"n": max(int(n), len(base) + len(new))} if n else {}  # at least one image per class
        ds = build_dataset(name, split="test", seed=seed, **size)
        res = zeroshot_on(loaded, ds, resolve_templates("dataset", ds), progress=progress, cache=cache)
        out[name] = {"base": zeroshot_calibration(res, scale, base), "new": zeroshot_calibration(res, scale, new),
                     "all": zeroshot_calibration(res, scale)}
    out["mean"] = {g: {k: round(float(np.mean([out[d][g][k] for d in SUITES[suite]])), 4)
                       for k in ("accuracy", "confidence", "ece", "ece15")} for g in ("base", "new", "all")}
    return out


SCALE_FITS = ("", "pretrain-val")
"""How a pretraining run sets its final logit scale: ``""`` keeps the scale the contrastive loss learned;
``"pretrain-val"`` replaces it with :func:`fit_pretraining_scale`'s NLL-optimal scale."""


def fit_pretraining_scale(loaded, world_cfg, *, progress: bool = False) -> dict:
    """The NLL-optimal zero-shot logit scale on a held-out stream of the pretraining distribution.

    ``world_cfg`` is that stream (``PretrainConfig.world_config("val", n)``: the pretraining mixture of
    domains and factors, on the world's validation split, so none of its images was trained on). Each image
    is classified zero-shot over every world class with its own domain's caption prompt ("a sketch of a
    {}."), and the scale ``s`` of ``s * cos`` that minimises the mean cross-entropy is found by temperature
    scaling (Guo et al. 2017; L-BFGS on ``log T`` from the learned scale, :func:`clipstudy.temperature.fit_temperature`).
    CLIP learns its scale as part of the likelihood of its pretraining data; this fits the same scale to the
    likelihood of the classification task the zero-shot model is used for, on the same distribution, and
    never on a downstream dataset. Returns ``{"learned", "fitted", "nll_learned", "nll_fitted", "n",
    "accuracy"}``."""
    import math

    from .data.world_data import WorldData
    from .temperature import fit_temperature, temperature_nll
    from .world import CLASS_NAMES
    from .world.captions import simple_caption

    ds = WorldData(world_cfg)
    fs = extract_features(loaded, ds, progress=progress, cache=False)
    domains = np.asarray([row["domain"] for row in ds.factor_table()])
    sims = np.zeros((len(domains), len(CLASS_NAMES)), np.float64)
    for d in np.unique(domains):
        head = build_method("zeroshot", loaded, CLASS_NAMES, templates=simple_caption(str(d), "{}"))
        rows = np.flatnonzero(domains == d)
        sims[rows] = head.predict_similarities(fs.features[rows]).double().numpy()
    labels = fs.labels.numpy()
    learned = float(loaded.logit_scale)
    t = fit_temperature(learned * sims, labels, method="lbfgs", lower=0.05, upper=20.0)
    fitted = learned / t
    if not math.isfinite(fitted) or fitted <= 0:
        raise ValueError(f"scale fit failed: T = {t!r}")
    return {"learned": round(learned, 4), "fitted": round(fitted, 4), "n": int(len(labels)),
            "accuracy": round(float((sims.argmax(1) == labels).mean()), 4),
            "nll_learned": round(temperature_nll(learned * sims, labels, 1.0), 4),
            "nll_fitted": round(temperature_nll(fitted * sims, labels, 1.0), 4)}


def set_logit_scale(loaded, scale: float) -> None:
    """Set a CLIP model's logit scale (stored as its log) to ``scale``."""
    import math

    import torch

    with torch.no_grad():
        loaded.model.logit_scale.fill_(math.log(float(scale)))
