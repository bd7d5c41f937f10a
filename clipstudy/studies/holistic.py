"""Tu, Deng & Gedeon, "Toward a holistic evaluation of robustness in CLIP models" (TPAMI 2025; docs/protocols.md §3):
a zoo of CLIP models that differ in one of six factors, each evaluated on every reliability axis.

Protocol (docs/protocols.md §3.2, reconstructed where the paper's is not known, and scaled to the embedded world):

* the zoo (:mod:`clipstudy.studies.zoo`, ``data/resources/zoo.json``) varies the architecture, the training
  distribution, the training-set size, fine-tuning (FT, FLYP), the contrastive loss (CLIP, SigLIP); the
  sixth factor, test-time prompts, evaluates every zero-shot model with each prompt set;
* every classification is over the ID classes; each model is encoded once per dataset (cached features,
  :func:`clipstudy.features.extract_features`) and every axis is a function of those features
  (:mod:`clipstudy.analysis.robustness`): accuracy per nuisance-factor value and its effective robustness,
  shape bias on cue-conflict images, OOD detection (every model with both MCM and MSP; the paper's pairing,
  MCM for zero-shot and MSP for fine-tuned models, only as a labelled view), ECE-15
  and NLL before/after temperature scaling fitted on ID validation data (ID, domain shifts, corruptions),
  image-text recall@K, and accuracy per corruption and severity (geometric corruptions stand in for the
  paper's 3D corruptions);
* effective robustness (per factor value against the factor set's accuracy, per domain shift against ID
  accuracy) is measured against lines fitted on logit axes across the zoo's **baseline family** only, as
  Taori et al. (2020) fit them on standard ImageNet-trained models: supervised classifiers trained on the
  ID photos alone at several step budgets (:func:`clipstudy.studies.zoo.load_baseline_member`), so a model on
  the baseline trend scores 0 and the zoo's mean need not be 0; with fewer than two valid baseline points a
  line is undefined and effective robustness is NaN (:attr:`HolisticResults.er_note` says why);
* one result cell per zoo model (all prompt sets inside) and per baseline model in a
  :class:`~clipstudy.results.ResultStore`, skipped when present: a rerun reads the cells back and retrains
  nothing.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..data.specs import InMemory, build_set, unwrap as _unwrap  # noqa: F401  (InMemory, build_set: re-exported)
from ..errors import ConfigError
from ..registry import Registry
from ..study import StudyConfig, call_with, run as run_study, run_cells, split_params

PROTOCOL_VERSION = 2  # 2: both OOD scorers for every model; effective robustness against the baseline family
DEFAULT_PROMPTS = {"single": "photo", "ensemble": "world"}
ROLES = ("train", "id", "val", "factors", "shift", "ood", "cue_conflict", "corruptions", "retrieval")
GROUP_ROLES = ("shift", "ood", "corruptions", "retrieval")
VISUAL_FACTORS = ("color", "size", "position", "rotation", "pattern", "background", "occlusion")


@dataclass(frozen=True)
class HolisticStudy(StudyConfig):
    """Everything that defines the study; every field is part of each cell's spec (the shared fields:
    :class:`clipstudy.study.StudyConfig`; ``scale`` is the recipe scale of the fine-tuned zoo models).

    ``zoo`` names a zoo of ``zoo.json``; ``models`` (``[arch, pretrained]`` rows, the real path) replaces
    it. ``retrain_zoo`` pretrains the zoo's shipped models here instead of loading them, and ``pretrain_jobs``
    trains that many of the zoo's pretraining runs side by side (:func:`clipstudy.studies.zoo.pretrain_zoo`).
    ``sets`` holds dataset specs by role (:func:`holistic_benchmark`); ``prompts`` maps a label to a
    template set (:data:`clipstudy.prompts.TEMPLATES`), the first being the default of every zero-shot
    model; ``geometric`` names the corruptions that stand in for 3D corruptions; ``factors`` the visual
    factors read from the factor set's table.
    """

    zoo: str = "quick"
    models: tuple = ()
    retrain_zoo: bool = False
    pretrain_jobs: int = 1
    prompts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PROMPTS))
    sets: Mapping[str, Any] = field(default_factory=dict)
    geometric: tuple = ("rotate", "zoom", "occlude")
    factors: tuple = VISUAL_FACTORS
    n_bins: int = 15
    ts_bounds: tuple = (0.01, 10.0)
    ks: tuple = (1, 5)

    desc = "holistic zoo"

    def __post_init__(self):
        from ..prompts import get_templates

        if not isinstance(self.pretrain_jobs, int) or isinstance(self.pretrain_jobs, bool) or self.pretrain_jobs < 1:
            raise ConfigError(f"pretrain_jobs must be a positive whole number of pretraining runs side by side, got "
                              f"{self.pretrain_jobs!r}")
        if not self.prompts:
            raise ConfigError("the holistic study needs at least one prompt set (prompts={label: template set})")
        for templates in self.prompts.values():
            get_templates(templates)  # unknown template sets list the valid ones
        unknown = sorted(set(self.sets) - set(ROLES))
        if unknown:
            raise ConfigError(f"unknown dataset roles {unknown}; valid roles: {', '.join(ROLES)}")
        for role in ("id", "val"):
            if role not in self.sets:
                raise ConfigError(f"the holistic study needs a {role!r} dataset spec")
        self.get_zoo()

    def get_zoo(self):
        from .zoo import load_zoo, zoo_from_models

        return zoo_from_models(self.models) if self.models else load_zoo(self.zoo)

    @property
    def default_prompts(self) -> str:
        return next(iter(self.prompts))

    # ---- the study contract (clipstudy.study.Study)
    def load_data(self, progress: bool = True) -> "StudyData":
        return load_study_data(self)

    def cells(self, data) -> list[str]:
        """The zoo's model names, in the zoo's order (base models before the models derived from them)."""
        data.zoo = self.get_zoo()
        return list(data.zoo.names)

    def prepare(self, data, name: str) -> "HolisticCell":
        """The zoo model ``name``, loaded (trained on demand, cached: a rerun trains nothing)."""
        from .zoo import load_member

        zoo = data.zoo
        member = load_member(zoo, name, train=data.train, classnames=data.classnames, scale=self.scale,
                             device=self.device, progress=data.progress, retrain=self.retrain_zoo,
                             _bases=data.bases)
        if name in {m.base for m in zoo.models if m.base}:
            data.bases[name] = member
        return HolisticCell(name, member)

    def spec(self, data, cell: "HolisticCell") -> dict:
        return cell_spec(self, data, data.zoo, cell.member)

    def run_cell(self, data, cell: "HolisticCell", spec, store, progress: bool = True) -> dict:
        return evaluate_member(self, data, cell.member, progress)

    def run(self, store=None, progress: bool = True, data=None) -> "HolisticResults":
        """Two families of cells through the one runner (:func:`clipstudy.study.run_cells`): the zoo's models,
        then its baseline family (:func:`run_baseline`)."""
        from ..results import ResultStore

        store = store or ResultStore()
        if not self.models:  # the embedded zoo's pretraining runs first, pretrain_jobs of them side by side
            from .zoo import pretrain_zoo

            pretrain_zoo(self.get_zoo(), retrain=self.retrain_zoo, jobs=self.pretrain_jobs, progress=progress)
        data = data if data is not None else self.load_data(progress)
        data.progress = progress
        records = run_cells(self, self.cells(data), data, store, progress)
        data.baseline, data.baseline_note = run_baseline(self, data, data.zoo, store, progress)
        return self.tables(records, data, store)

    def tables(self, records, data, store) -> "HolisticResults":
        res = HolisticResults.from_records([(r.spec, r.metrics) for r in records], data.zoo, self,
                                           baseline=data.baseline, baseline_note=data.baseline_note)
        res.n_classes = len(data.classnames)
        return res

    def key_numbers(self, res) -> dict:
        return key_numbers(res)

    def verdicts(self, res, *args, **kwargs) -> dict[str, str]:
        """:func:`verdicts` of the key numbers (``res``: the results, or their :func:`key_numbers`)."""
        return verdicts(key_numbers(res) if isinstance(res, HolisticResults) else res, *args, **kwargs)


@dataclass(frozen=True)
class HolisticCell:
    """One zoo model's cell as it runs: its name and the loaded model (:class:`clipstudy.studies.zoo.Member`)."""

    name: str
    member: Any


# --------------------------------------------------------------------------- data

@dataclass
class StudyData:
    """Every dataset of the study by role (groups as dicts) and the ID class names; while the study runs,
    also its zoo, the loaded base models that derived models start from, and the baseline family's records."""

    sets: dict
    classnames: tuple
    train: Any = None
    zoo: Any = None
    bases: dict = field(default_factory=dict)
    progress: bool = True
    baseline: list = field(default_factory=list)
    baseline_note: str = ""

    def items(self, role: str) -> dict:
        value = self.sets.get(role)
        if value is None:
            return {}
        return value if isinstance(value, dict) else {role: value}


def load_study_data(study: HolisticStudy) -> StudyData:
    """Build every dataset (errors name what is missing before any training); check the class alignment."""
    from ..experiment import few_shot_set

    root = study.data_root or None
    sets = {}
    for role, spec in study.sets.items():
        if role in GROUP_ROLES:
            sets[role] = {name: build_set(s, root) for name, s in spec.items()}
        elif spec:
            sets[role] = build_set(spec, root)
    data = StudyData(sets, tuple(sets["id"].classnames))
    for role in ("val", "factors", "shift", "corruptions"):
        for name, ds in data.items(role).items():
            class_columns(sets["id"], ds, name)
    if "train" in sets:
        if tuple(sets["train"].classnames) != data.classnames:
            raise ConfigError("the fine-tuning set ('train') must have the ID classes in the ID order")
        data.train = few_shot_set(sets["train"], None, 0)
    return data


def class_columns(id_ds, ds, name: str = "dataset"):
    """Columns of the ID head that score ``ds``'s classes: ``None`` when it has the ID classes in the ID
    order; the positions of its ``class_indices`` among the ID set's (ImageNet-R/A's 200 of 1000)."""
    if tuple(ds.classnames) == tuple(id_ds.classnames):
        return None
    sub, full = getattr(ds, "class_indices", None), getattr(id_ds, "class_indices", None)
    if sub is None:
        raise ConfigError(f"{name!r} must have the ID classes in the ID order (or ImageNet class_indices)")
    full = np.arange(len(id_ds.classnames)) if full is None else np.asarray(full)
    where = {int(c): i for i, c in enumerate(full)}
    missing = [int(c) for c in sub if int(c) not in where]
    if missing:
        raise ConfigError(f"{name!r} has {len(missing)} classes outside the ID classes")
    return np.array([where[int(c)] for c in sub])


# --------------------------------------------------------------------------- benchmarks

BENCHMARKS = Registry("holistic benchmark")
"""Named benchmarks: each returns the study's dataset specs by role."""


def holistic_benchmark(name: str, **options) -> dict:
    """Dataset specs by role of benchmark ``world`` (embedded) or ``imagenet`` (real folders); unknown names
    list the valid ones."""
    return BENCHMARKS.get(name)(**options)


def make_study(benchmark: str = "world", **params) -> HolisticStudy:
    """The study of a notebook's parameters: the dataset specs of ``benchmark`` (:data:`BENCHMARKS`; its
    options ``n_train``, ``n_test``, ``n_val``, ``n_shift``, ``n_ood``, ``n_cue``, ``n_corrupt``,
    ``severities``, ``corruptions``, ``n_retrieval``, ``seed`` go to its builder), the benchmark's defaults
    (:func:`benchmark_defaults`: visual factors, geometric corruptions, prompt sets; ``prompts={}`` keeps
    them) and every :class:`HolisticStudy` field (lists become tuples, ``models`` rows too)."""
    builder = BENCHMARKS.get(benchmark)
    options, fields = split_params(HolisticStudy, BENCHMARKS, params)
    root = fields.get("data_root") or None
    options["data_root"] = root
    defaults = benchmark_defaults(benchmark, root)
    fields["prompts"] = fields.get("prompts") or defaults["prompts"]
    fields.setdefault("geometric", defaults["geometric"])
    fields.setdefault("factors", defaults["factors"])
    return HolisticStudy(sets=call_with(builder, options), **fields)


@BENCHMARKS.register("world")
def world_benchmark(n_train: int = 1500, n_test: int = 600, n_val: int = 400, n_shift: int = 300,
                    n_ood: int = 300, n_cue: int = 400, n_corrupt: int = 100, severities=(1, 2, 3, 4, 5),
                    corruptions=(), n_retrieval: int = 400, seed: int = 0, data_root=None) -> dict:
    """The embedded analogue of the paper's benchmarks. ID = the 30 ID classes as photos (fine-tuning pool
    from the train split, temperature fitted on the val split); factors = the ID test set's nuisance
    factors; shift = the ID classes in the four other domains; OOD = near-OOD siblings, far-OOD icons and
    texture-only images; cue-conflict images of ID shapes with ID textures; every corruption (default: all
    14) at each severity applied to the first ``n_corrupt`` ID test images; retrieval = photos of every
    class with descriptive captions."""
    from ..world import CORRUPTIONS

    def world(split, n, s, **kw):
        return {"dataset": "world", "split": split, "n": int(n), "seed": seed + s, **kw}

    idc = {"classes": "id", "domain": "photo"}
    return {
        "train": world("train", n_train, 0, **idc), "id": world("test", n_test, 0, **idc),
        "val": world("val", n_val, 0, **idc),
        "shift": {d: world("test", n_shift, 10 + i, classes="id", domain=d)
                  for i, d in enumerate(("painting", "clipart", "sketch", "infograph"))},
        "ood": {"near_ood": world("test", n_ood, 1, classes="near_ood", domain="photo"),
                "far_ood": world("test", n_ood, 2, classes="far_ood", domain="photo"),
                "texture": world("test", n_ood, 3, kind="texture_only")},
        "cue_conflict": world("test", n_cue, 4, kind="cue_conflict", **idc),
        "corruptions": {f"{c}@{s}": world("test", n_corrupt, 0, corruption=c, severity=int(s), **idc)
                        for c in (corruptions or CORRUPTIONS) for s in severities},
        "retrieval": {"world_captions": world("test", n_retrieval, 6, domain="photo")},
    }


@BENCHMARKS.register("imagenet")
def imagenet_benchmark(n_test: int = 0, n_val: int = 0, n_shift: int = 0, n_ood: int = 0, n_corrupt: int = 0,
                       severities=(), corruptions=(), n_retrieval: int = 0, seed: int = 0, data_root=None,
                       **_ignored) -> dict:
    """The paper's benchmarks read from folders (docs/protocols.md §3.2): ImageNet val (a seeded 20% held out for
    temperature scaling), ImageNet-X factors, ImageNet-V2/Sketch/R/A shifts, the MCM OOD sets and NINCO,
    Geirhos' cue-conflict stimuli, ImageNet-C (``imagenet_c``; every corruption and severity present under
    ``data_root`` unless listed) and COCO / Flickr30k retrieval. ``n_*`` cap each set (0: every image)."""
    def cap(spec, n):
        return {**spec, "max_images": int(n), "subset_seed": seed} if n else {**spec, "subset_seed": seed}

    return {
        "id": cap({"dataset": "imagenet", "split": "val", "holdout": "test"}, n_test),
        "val": cap({"dataset": "imagenet", "split": "val", "holdout": "val"}, n_val),
        "factors": cap({"dataset": "imagenet_x"}, n_test),
        "shift": {d: cap({"dataset": d}, n_shift) for d in ("imagenet_v2", "imagenet_sketch", "imagenet_r",
                                                            "imagenet_a")},
        "ood": {d: cap({"dataset": d}, n_ood) for d in ("inaturalist", "sun", "places", "textures", "ninco")},
        "cue_conflict": {"dataset": "cue_conflict"},
        "corruptions": {f"{c}@{s}": cap({"dataset": "imagenet_c", "corruption": c, "severity": int(s), "folder": f},
                                        n_corrupt)
                        for f, c, s in _imagenet_c_cells(data_root, corruptions, severities)},
        "retrieval": {d: cap({"dataset": d}, n_retrieval) for d in ("coco_captions", "flickr30k")},
    }


def _imagenet_c_cells(root, corruptions, severities) -> list[tuple[str, str, int]]:
    """``(folder, corruption, severity)`` of every ImageNet-C cell under ``root`` (required) and every
    ImageNet-3DCC cell (optional, ``imagenet-3dcc``), filtered by ``corruptions`` / ``severities``."""
    from ..data.imagenet_c import FOLDER, FOLDER_3DCC, available

    cells = [(FOLDER, c, s) for c, s in available(root)]
    if root and (Path(root) / FOLDER_3DCC).is_dir():
        cells += [(FOLDER_3DCC, c, s) for c, s in available(root, FOLDER_3DCC)]
    return [(f, c, s) for f, c, s in cells
            if (not corruptions or c in corruptions) and (not severities or s in severities)]


IMAGENET_X_FACTORS = ("pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory",
                      "texture", "larger")
"""The ten ImageNet-X factors of the analysis (docs/protocols.md §3.2: likely the ten most frequent; unverified)."""


def benchmark_defaults(name: str, data_root=None) -> dict:
    """Per benchmark: the visual factors read from its factor table, the corruptions standing in for 3D
    corruptions (world: rotate, zoom, occlude; ImageNet: the ImageNet-3DCC ones present) and the prompt sets
    (a single prompt and the ensemble: the world's 30 templates or CLIP's 80 ImageNet templates)."""
    if name == "world":
        from ..world import GEOMETRIC_CORRUPTIONS

        return {"factors": VISUAL_FACTORS, "geometric": tuple(GEOMETRIC_CORRUPTIONS),
                "prompts": {"single": "photo", "ensemble": "world"}}
    from ..data.imagenet_c import FOLDER_3DCC, available

    three_d = available(data_root, FOLDER_3DCC) if data_root and (Path(data_root) / FOLDER_3DCC).is_dir() else []
    return {"factors": IMAGENET_X_FACTORS, "geometric": tuple(sorted({c for c, _ in three_d})),
            "prompts": {"single": "photo", "ensemble": "imagenet80"}}


# --------------------------------------------------------------------------- evaluation

class FeatureBank:
    """Features of one zoo model's image tower per dataset: one pass each (cached on disk by
    :func:`clipstudy.features.extract_features`), kept in memory for every head and axis of the model."""

    def __init__(self, member, progress: bool = True, cache: bool = True):
        self.member, self.progress, self.cache, self._sets = member, progress, cache, {}

    def get(self, ds):
        if ds.cache_key not in self._sets:
            from ..features import extract_features

            encoder = self.member.method.encoder if self.member.method is not None else None
            self._sets[ds.cache_key] = extract_features(
                self.member.loaded, ds, encoder=encoder, progress=self.progress, cache=self.cache,
                desc=f"features {self.member.entry.name} {ds.domain}")
        return self._sets[ds.cache_key]

    def sims(self, method, ds, columns=None) -> tuple[np.ndarray, np.ndarray]:
        """``(similarities [N, K], labels [N])`` of ``method`` on ``ds`` (K restricted to ``columns``)."""
        import torch

        fs = self.get(ds)
        with torch.no_grad():
            s = method.feature_similarities(fs.features.to(self.member.loaded.device)).float().cpu().numpy()
        return (s if columns is None else s[:, columns]), fs.labels.numpy()


def member_heads(study: HolisticStudy, member, classnames) -> list[tuple[str, Any]]:
    """``(prompts label, method)`` per evaluated head: every prompt set for a zero-shot model, the trained
    head for a fine-tuned one. Every head is scored for OOD detection with both MCM and MSP."""
    from ..methods import build_method

    if member.method is not None:
        return [("fine-tuned", member.method)]
    return [(label, build_method("zeroshot", member.loaded, classnames, templates=t))
            for label, t in study.prompts.items()]


def evaluate_member(study: HolisticStudy, data: StudyData, member, progress: bool = True,
                    cache: bool = True) -> dict:
    """Every axis for every head of one zoo model (one feature pass per dataset)."""
    t0 = time.time()
    bank = FeatureBank(member, progress, cache)
    retrieval = {name: retrieval_metrics(study, member, bank, ds) for name, ds in data.items("retrieval").items()}
    variants = []
    for label, method in member_heads(study, member, data.classnames):
        templates = study.prompts.get(label, study.prompts[study.default_prompts])
        row = {"prompts": label, "scale": float(method.scale)}
        row.update(classification_axes(study, data, bank, method, templates))
        row.update(ood_calibration_axes(study, data, bank, method))
        row["retrieval"] = retrieval
        variants.append(row)
    return {"variants": variants, "info": member.info, "seconds": round(time.time() - t0, 2)}


def accuracy_axes(study: HolisticStudy, data: StudyData, bank: FeatureBank, method) -> dict:
    """ID accuracy, the factor set's accuracy and accuracy per factor value, and accuracy per domain shift:
    what the effective-robustness lines need (zoo and baseline models alike)."""
    from ..analysis.robustness import factor_accuracy

    id_ds = data.sets["id"]
    s, y = bank.sims(method, id_ds)
    out = {"id_accuracy": float(np.mean(s.argmax(1) == y))}
    fac = data.sets.get("factors", id_ds)
    fs, fy = bank.sims(method, fac, class_columns(id_ds, fac))
    out["factor_set_accuracy"] = float(np.mean(fs.argmax(1) == fy))
    out["factors"] = factor_accuracy(fs.argmax(1) == fy, list(fac.factor_table()), study.factors) \
        if hasattr(fac, "factor_table") else []
    out["shift_accuracy"] = {n: _accuracy(bank, method, id_ds, ds, n) for n, ds in data.items("shift").items()}
    return out


def classification_axes(study: HolisticStudy, data: StudyData, bank: FeatureBank, method, templates) -> dict:
    """:func:`accuracy_axes`, accuracy per corruption, and the shape bias."""
    id_ds = data.sets["id"]
    out = accuracy_axes(study, data, bank, method)
    specs = study.sets.get("corruptions", {})
    out["corruptions"] = [{"corruption": specs[n]["corruption"], "severity": int(specs[n]["severity"]),
                           "accuracy": _accuracy(bank, method, id_ds, ds, n)}
                          for n, ds in data.items("corruptions").items()]
    if "cue_conflict" in data.sets:
        out["shape"] = shape_metrics(bank, method, data.sets["cue_conflict"], id_ds, templates)
    return out


def _accuracy(bank, method, id_ds, ds, name) -> float:
    s, y = bank.sims(method, ds, class_columns(id_ds, ds, name))
    return float(np.mean(s.argmax(1) == y))


def shape_metrics(bank: FeatureBank, method, cue, id_ds, templates) -> dict:
    """Shape bias on cue-conflict images; a cue-conflict set with its own classes (Geirhos' 16) is scored
    with a zero-shot head over them from the model's text tower and ``templates``."""
    from ..analysis.robustness import shape_bias_axis
    from ..methods import build_method

    head = method if tuple(cue.classnames) == tuple(id_ds.classnames) else build_method(
        "zeroshot", bank.member.loaded, cue.classnames, templates=templates)
    s, y = bank.sims(head, cue)
    index = {c: i for i, c in enumerate(cue.classnames)}
    texture = np.array([index[row["texture_class"]] for row in cue.factor_table()])
    return shape_bias_axis(s.argmax(1), y, texture)


def ood_calibration_axes(study: HolisticStudy, data: StudyData, bank: FeatureBank, method) -> dict:
    """OOD detection (ID test vs each OOD set) with both MCM and MSP (MSP at the head's own logit scale), so
    that every factor effect on OOD detection is measured within one scorer; and calibration before/after
    temperature scaling fitted on the ID validation set, on the ID test set, every domain shift and every
    corruption."""
    from ..analysis.robustness import OOD_SCORERS, calibration_axis, ood_axis
    from ..temperature import warn_if_at_bound

    id_ds, scale = data.sets["id"], float(method.scale)
    s_id, y_id = bank.sims(method, id_ds)
    ood = {n: bank.sims(method, ds)[0] for n, ds in data.items("ood").items()}
    out = {"ood": ood_axis(s_id, ood, OOD_SCORERS, logit_scale=scale) if ood else []}
    s_val, y_val = bank.sims(method, data.sets["val"], class_columns(id_ds, data.sets["val"]))
    sets, groups = {"id": (scale * s_id, y_id)}, {"id": "id"}
    for role, group in (("shift", "shift"), ("corruptions", "corruption")):
        for n, ds in data.items(role).items():
            s, y = bank.sims(method, ds, class_columns(id_ds, ds, n))
            sets[n], groups[n] = (scale * s, y), group
    T, rows = calibration_axis(scale * s_val, y_val, sets, n_bins=study.n_bins, bounds=tuple(study.ts_bounds))
    out["temperature"] = T
    out["ts_at_bound"] = warn_if_at_bound(T, "holistic calibration axis", *tuple(study.ts_bounds))
    out["calibration"] = [{**r, "group": groups[r["set"]]} for r in rows]
    return out


def retrieval_metrics(study: HolisticStudy, member, bank: FeatureBank, ds) -> dict:
    """Image->text and text->image recall@K of one model on a captioned set (its own text tower)."""
    from ..analysis.robustness import retrieval_axis

    captions, owner = retrieval_texts(ds)
    return retrieval_axis(bank.get(ds).features.numpy(), encode_texts(member, captions), owner, study.ks)


def encode_texts(member, texts, batch_size: int = 256) -> np.ndarray:
    """Unit text features of ``texts`` from the model's text tower (FLYP: its fine-tuned one)."""
    import torch
    import torch.nn.functional as F

    model = member.text_model()
    with torch.no_grad():
        feats = [F.normalize(model.encode_text(member.loaded.tokenize(texts[i:i + batch_size])).float(), dim=-1)
                 for i in range(0, len(texts), batch_size)]
    return torch.cat(feats).cpu().numpy()


def retrieval_texts(ds) -> tuple[list[str], np.ndarray]:
    """``(captions, index of each caption's image)`` of a retrieval set: COCO/Flickr30k's own captions, or
    for the world one descriptive caption per image (no bare "a photo of a {class}." prompts, which
    would tie every image of a class)."""
    base, idx = _unwrap(ds)
    if hasattr(base, "all_captions"):
        captions, owner = base.all_captions()
        pos = {int(i): j for j, i in enumerate(idx)}
        keep = [k for k, o in enumerate(owner) if int(o) in pos]
        return [captions[k] for k in keep], np.array([pos[int(owner[k])] for k in keep], dtype=np.int64)
    if hasattr(base, "cfg"):
        from ..world import caption

        cfg = base.cfg.replace(simple_caption_prob=0.0)
        return [caption(cfg, int(i)) for i in idx], np.arange(len(idx), dtype=np.int64)
    raise ConfigError(f"{getattr(ds, 'name', ds)!r} has no captions for retrieval (need all_captions() or the world)")


def evaluate_baseline(study: HolisticStudy, data: StudyData, member, progress: bool = True,
                      cache: bool = True) -> dict:
    """The axes the effective-robustness lines need (:func:`accuracy_axes`) for one baseline model."""
    t0 = time.time()
    bank = FeatureBank(member, progress, cache)
    row = {"prompts": "supervised", "scale": float(member.method.scale)}
    row.update(accuracy_axes(study, data, bank, member.method))
    return {"variants": [row], "info": member.info, "seconds": round(time.time() - t0, 2)}


# --------------------------------------------------------------------------- running

def run(study: HolisticStudy, store=None, progress: bool = True, data: StudyData | None = None) -> "HolisticResults":
    """Load (training on demand) every zoo model and fill its result cell, then the baseline family's
    (:meth:`HolisticStudy.run`); return :class:`HolisticResults`. Cells are read back when present; trained
    models are cached, so a rerun trains nothing."""
    return run_study(study, store, progress, data)


run_holistic_study = run
"""The former name of :func:`run` (kept for existing notebooks and scripts)."""


class BaselineCells:
    """The baseline family's cells for :func:`clipstudy.study.run_cells`: one per step budget."""

    def __init__(self, study: HolisticStudy, zoo, family):
        self.study, self.zoo, self.family = study, zoo, family
        self.desc = f"baseline {family.name}"

    def prepare(self, data, steps: int):
        from .zoo import load_baseline_member

        return load_baseline_member(self.zoo, self.family, steps, train=data.train, classnames=data.classnames,
                                    device=self.study.device, progress=data.progress)

    def spec(self, data, member) -> dict:
        return baseline_cell_spec(self.study, data, self.zoo, self.family, member)

    def run_cell(self, data, member, spec, store, progress: bool = True) -> dict:
        return evaluate_baseline(self.study, data, member, progress)


def run_baseline(study: HolisticStudy, data: StudyData, zoo, store, progress: bool = True) -> tuple[list, str]:
    """Train (on demand, cached) and evaluate every model of the zoo's baseline family; returns its
    ``(spec, metrics)`` records and a note when there is no baseline family to fit lines on."""
    from .zoo import load_baseline

    if not zoo.baseline:
        return [], (f"zoo {zoo.name!r} has no baseline family (supervised models trained on the ID photos), so no "
                    "effective-robustness line can be fitted; effective robustness is NaN")
    if data.train is None:
        return [], ("the study has no ID training set ('train') to train the baseline family on, so no "
                    "effective-robustness line can be fitted; effective robustness is NaN")
    family = load_baseline(zoo.baseline)
    data.progress = progress
    cells = BaselineCells(study, zoo, family)
    return [(r.spec, r.metrics) for r in run_cells(cells, family.steps, data, store, progress)], ""


def baseline_cell_spec(study: HolisticStudy, data: StudyData, zoo, family, member) -> dict:
    """The identity of one baseline model's cell: its family, budget, trained weights and the evaluation sets."""
    from .. import __version__
    from ..models import weights_hash

    sets = {role: {n: ds.cache_key for n, ds in data.items(role).items()}
            for role in ("id", "factors", "shift") if role in study.sets}
    return {"experiment": "holistic-baseline", "model": member.entry.name, "zoo": zoo.name, "family": family.name,
            "steps": member.entry.steps, "arch": member.entry.arch, "recipe": dict(family.recipe),
            "seed": zoo.seed, "method_weights": weights_hash(member.method), "eval_sets": sets,
            "factors": list(study.factors), "protocol": PROTOCOL_VERSION, "clipstudy": __version__}


def cell_spec(study: HolisticStudy, data: StudyData, zoo, member) -> dict:
    """The identity of one zoo model's cell: the model (weights), the evaluation sets and the protocol."""
    from .. import __version__
    from ..models import weights_hash

    sets = {role: {n: ds.cache_key for n, ds in data.items(role).items()} for role in study.sets if role != "train"}
    return {"experiment": "holistic", "model": member.entry.name, "zoo": zoo.name, "entry": asdict(member.entry),
            "weights": member.loaded.weights_id,
            "method_weights": weights_hash(member.method) if member.method is not None else None,
            "eval_sets": sets, "prompts": dict(study.prompts), "factors": list(study.factors),
            "geometric": list(study.geometric), "n_bins": study.n_bins, "ts_bounds": list(study.ts_bounds),
            "ks": list(study.ks), "protocol": PROTOCOL_VERSION, "clipstudy": __version__}


# --------------------------------------------------------------------------- tidy results

SUMMARY_METRICS = ("id_accuracy", "shift_accuracy", "shift_er", "factor_er", "shape_bias", "ood_auroc_mcm",
                   "ood_auroc_msp", "ood_fpr95_mcm", "ood_fpr95_msp", "ece_id", "ece_id_ts", "ece_shift",
                   "ece_shift_ts", "nll_shift", "nll_shift_ts", "ece_corruption_ts", "retrieval_r1", "retrieval_r5",
                   "common_accuracy", "geometric_accuracy", "common_relative", "geometric_relative",
                   "geometric_accuracy_high")


@dataclass
class HolisticResults:
    """The study's cells as tidy DataFrames, one row per *entry* (a zoo model under one prompt set; the
    default prompt set keeps the model's name, others are ``<model>+<prompts>``).

    ``models`` (entry, model, prompts, factor, value, kind, zero_shot, id_accuracy, train_minutes, steps),
    ``factors`` (entry, factor, value, accuracy, n, overall, predicted, effective_robustness), ``shape``,
    ``ood`` (set, scorer in {mcm, msp} for every entry, paper_scorer: whether the row's scorer is Tu et al.'s
    choice for the entry, auroc, fpr95, aupr_in), ``calibration`` (set, group, scaled, ece, nll, accuracy),
    ``retrieval`` (set, i2t@k, t2i@k), ``corruptions`` (corruption, severity, kind, accuracy), ``shift`` (set,
    accuracy, id_accuracy, predicted, effective_robustness) and ``summary`` (one row per entry,
    :data:`SUMMARY_METRICS`).

    The baseline family the effective-robustness lines are fitted on: ``baseline_models`` (entry, steps,
    id_accuracy, factor_set_accuracy, train_minutes), ``baseline_factors`` and ``baseline_shift`` (as
    ``factors`` and ``shift``, with each baseline model's own residual), the lines ``factor_lines`` (factor,
    value) and ``shift_lines`` (set) with slope, intercept (logit axes), n_points and note, and ``er_note``:
    empty, or why some or all lines are undefined.
    """

    models: Any
    factors: Any
    shape: Any
    ood: Any
    calibration: Any
    retrieval: Any
    corruptions: Any
    shift: Any
    summary: Any
    zoo: Any
    default_prompts: str = "single"
    n_classes: int = 0
    baseline_models: Any = None
    baseline_factors: Any = None
    baseline_shift: Any = None
    factor_lines: Any = None
    shift_lines: Any = None
    er_note: str = ""

    @classmethod
    def from_records(cls, records, zoo, study: HolisticStudy, baseline=(),
                     baseline_note: str = "") -> "HolisticResults":
        import pandas as pd

        rows = {k: [] for k in ("models", "factors", "shape", "ood", "calibration", "retrieval", "corruptions",
                                "shift")}
        for spec, metrics in records:
            entry = zoo.get(spec["model"])
            for v in metrics["variants"]:
                _collect(rows, entry, v, metrics.get("info", {}), study)
        t = {k: pd.DataFrame(v) for k, v in rows.items()}
        b = baseline_tables(baseline)
        if len(t["shift"]):
            t["shift"] = t["shift"].merge(t["models"][["entry", "id_accuracy"]], on="entry", how="left")
        er = effective_robustness_tables(t["factors"], t["shift"], b, baseline_note)
        t["factors"], t["shift"] = er.pop("factors"), er.pop("shift")
        t["corruptions"]["kind"] = np.where(t["corruptions"]["corruption"].isin(study.geometric), "geometric",
                                            "common") if len(t["corruptions"]) else []
        return cls(**t, summary=summarize(t, study), zoo=zoo, default_prompts=study.default_prompts,
                   baseline_models=b["models"], **er)

    def entries(self, zero_shot: bool | None = None, prompts: str | None = None) -> list[str]:
        m = self.models
        if zero_shot is not None:
            m = m[m.zero_shot == zero_shot]
        if prompts is not None:
            m = m[m.prompts == prompts]
        return list(m.entry)


def baseline_tables(records) -> dict:
    """The baseline family's cells as tidy tables: ``models`` (entry, steps, id_accuracy, factor_set_accuracy,
    train_minutes), ``factors`` (entry, factor, value, accuracy, n, overall), ``shift`` (entry, set, accuracy,
    id_accuracy)."""
    import pandas as pd

    models, factors, shift = [], [], []
    for spec, metrics in records:
        for v in metrics["variants"]:
            key = {"entry": spec["model"]}
            models.append({**key, "steps": spec["steps"], "id_accuracy": v["id_accuracy"],
                           "factor_set_accuracy": v["factor_set_accuracy"],
                           "train_minutes": metrics.get("info", {}).get("train_minutes")})
            factors += [{**key, **r, "overall": v["factor_set_accuracy"]} for r in v["factors"]]
            shift += [{**key, "set": n, "accuracy": a, "id_accuracy": v["id_accuracy"]}
                      for n, a in v["shift_accuracy"].items()]
    cols = {"models": ["entry", "steps", "id_accuracy", "factor_set_accuracy", "train_minutes"],
            "factors": ["entry", "factor", "value", "accuracy", "n", "overall"],
            "shift": ["entry", "set", "accuracy", "id_accuracy"]}
    return {k: pd.DataFrame(rows, columns=None if rows else cols[k])
            for k, rows in (("models", models), ("factors", factors), ("shift", shift))}


def effective_robustness_tables(factors, shift, baseline: dict, note: str = "") -> dict:
    """Effective robustness of every zoo entry and baseline model against the lines fitted on the baseline
    family only (:func:`clipstudy.analysis.robustness.factor_effective_robustness`, logit axes): per factor
    value against the factor set's accuracy, per domain shift against ID accuracy (Taori et al. 2020)."""
    from ..analysis.robustness import apply_lines, baseline_lines

    out = {}
    for name, table, base, by, overall in (("factor", factors, baseline["factors"], ("factor", "value"), "overall"),
                                           ("shift", shift, baseline["shift"], ("set",), "id_accuracy")):
        lines = baseline_lines(base, overall=overall, by=by)
        plural = "factors" if name == "factor" else "shift"
        out[plural] = apply_lines(table, lines, overall=overall, by=by) if len(table) else table
        out[f"baseline_{plural}"] = apply_lines(base, lines, overall=overall, by=by)
        out[f"{name}_lines"] = lines
    if not note:
        n_models = baseline["models"]["entry"].nunique() if len(baseline["models"]) else 0
        lines = [out["factor_lines"], out["shift_lines"]]
        total = sum(len(x) for x in lines)
        missing = sum(int(x["slope"].isna().sum()) for x in lines if len(x))
        if n_models < 2:
            note = (f"the baseline family has {n_models} model(s); a line needs at least 2, so effective "
                    "robustness is NaN")
        elif total and missing == total:
            note = (f"no effective-robustness line could be fitted: none of the {total} factor values and shifts "
                    f"has 2 baseline points with accuracies strictly inside (0, 1) and distinct x; effective "
                    "robustness is NaN")
        elif missing:
            note = (f"{missing} of {total} effective-robustness lines are undefined (fewer than 2 valid baseline "
                    "points); their effective robustness is NaN")
    out["er_note"] = note
    return out


def entry_name(model: str, prompts: str, default: str) -> str:
    return model if prompts in (default, "fine-tuned") else f"{model}+{prompts}"


def _collect(rows: dict, entry, v: dict, info: dict, study: HolisticStudy) -> None:
    from ..analysis.robustness import paper_scorer

    name = entry_name(entry.name, v["prompts"], study.default_prompts)
    key = {"entry": name}
    rows["models"].append({**key, "model": entry.name, "prompts": v["prompts"], "factor": entry.factor,
                           "value": entry.value, "kind": entry.kind, "zero_shot": entry.zero_shot,
                           "id_accuracy": v["id_accuracy"], "scale": v["scale"],
                           "train_minutes": info.get("train_minutes"), "steps": info.get("steps")})
    rows["factors"] += [{**key, **r, "overall": v["factor_set_accuracy"]} for r in v["factors"]]
    if "shape" in v:
        rows["shape"].append({**key, **v["shape"]})
    rows["ood"] += [{**key, **r, "paper_scorer": r["scorer"] == paper_scorer(entry.zero_shot)} for r in v["ood"]]
    rows["calibration"] += [{**key, **r, "temperature": v["temperature"],
                             "ts_at_bound": v.get("ts_at_bound")} for r in v["calibration"]]
    rows["retrieval"] += [{**key, "set": n, **r} for n, r in v["retrieval"].items()]
    rows["corruptions"] += [{**key, **r} for r in v["corruptions"]]
    rows["shift"] += [{**key, "set": n, "accuracy": a} for n, a in v["shift_accuracy"].items()]


def summarize(t: dict, study: HolisticStudy):
    """One row per entry with the headline number of every axis (means over sets; OOD detection once per
    scorer, ``ood_auroc_mcm`` and ``ood_auroc_msp``; corruption accuracy also relative to the ID accuracy,
    and at the two highest severities)."""
    from ..analysis.robustness import OOD_SCORERS, corruption_summary

    s = t["models"].set_index("entry")[["id_accuracy"]].copy()
    mean = lambda df, col, **eq: _mean_by_entry(df, col, **eq)  # noqa: E731
    s["shift_accuracy"] = mean(t["shift"], "accuracy")
    s["shift_er"] = mean(t["shift"], "effective_robustness")
    s["factor_er"] = mean(t["factors"], "effective_robustness")
    s["shape_bias"] = mean(t["shape"], "shape_bias")
    for scorer in OOD_SCORERS:
        s[f"ood_auroc_{scorer}"] = mean(t["ood"], "auroc", scorer=scorer)
        s[f"ood_fpr95_{scorer}"] = mean(t["ood"], "fpr95", scorer=scorer)
    cal = t["calibration"]
    for group, tag in (("id", "id"), ("shift", "shift"), ("corruption", "corruption")):
        for scaled, suffix in ((False, ""), (True, "_ts")):
            s[f"ece_{tag}{suffix}"] = mean(cal, "ece", group=group, scaled=scaled)
            s[f"nll_{tag}{suffix}"] = mean(cal, "nll", group=group, scaled=scaled)
    for k in study.ks:
        s[f"retrieval_r{k}"] = mean(t["retrieval"], f"mean@{k}")
    if len(t["corruptions"]):
        rows = {e: corruption_summary(g.to_dict("records"), s.loc[e, "id_accuracy"], study.geometric)
                for e, g in t["corruptions"].groupby("entry")}
        s = s.join(__import__("pandas").DataFrame.from_dict(rows, orient="index"))
    return s.reset_index()


def _mean_by_entry(df, col: str, **eq):
    if df is None or not len(df) or col not in df:
        return np.nan
    for k, v in eq.items():
        df = df[df[k] == v]
    return df.groupby("entry")[col].mean()


# --------------------------------------------------------------------------- factor effects, key numbers, claims

FACTOR_LABELS = {"architecture": "architecture", "training_distribution": "training distribution",
                 "training_set_size": "training-set size", "fine_tuning": "fine-tuning",
                 "contrastive_loss": "contrastive loss", "test_time_prompts": "test-time prompts"}
EFFECT_METRICS = ("id_accuracy", "shift_accuracy", "shift_er", "factor_er", "shape_bias", "ood_auroc_mcm",
                  "ood_auroc_msp", "ece_id", "ece_shift_ts", "retrieval_r1", "common_relative", "geometric_relative")
"""Axis metrics of the factor-effect table. OOD detection appears once per scorer: every entry is scored with
both MCM and MSP, so the effect of fine-tuning is never mixed with the effect of switching scorers."""


def effect_contrasts(res: HolisticResults) -> list[dict]:
    """The contrasts of the summary heatmap: per factor value, the zoo's models of that value against their
    reference, paired by position (a preset model against the zoo's base; a fine-tuned model against the base
    replicate it was fine-tuned from, so FT at seed k pairs with the base at seed k), and every non-default
    prompt set against the default one, paired over the zoo's zero-shot models (base replicates included)."""
    zoo, out, groups = res.zoo, [], {}
    for m in zoo.models:
        if m.factor in FACTOR_LABELS:
            groups.setdefault((m.factor, m.value), []).append(m)
    for (factor, value), models in groups.items():
        out.append({"row": f"{FACTOR_LABELS[factor]}: {value} vs {zoo.base_value(factor)}", "factor": factor,
                    "variant": [m.name for m in models], "reference": [m.base or zoo.base for m in models]})
    zs = [m.name for m in zoo.models if m.zero_shot and m.factor != "reference"]
    for label in sorted(set(res.models.prompts) - {res.default_prompts, "fine-tuned"}):
        pairs = [n for n in zs if f"{n}+{label}" in set(res.models.entry)]
        if pairs:
            out.append({"row": f"{FACTOR_LABELS['test_time_prompts']}: {label} vs {res.default_prompts}",
                        "factor": "test_time_prompts", "variant": [f"{n}+{label}" for n in pairs], "reference": pairs})
    return out


def base_replicates(res: HolisticResults) -> list[str]:
    """The zoo's base model and its replicates (the base recipe at other seeds: models whose factor is
    ``base``), the zoo's base first."""
    zoo = res.zoo
    return [zoo.base] + [m.name for m in zoo.models if m.factor == "base" and m.name != zoo.base]


def effect_spread(res: HolisticResults, metrics=EFFECT_METRICS):
    """Each contrast's paired differences summarised per metric: ``n`` pairs, their ``mean`` (the heatmap's
    number), ``std`` (ddof = 1; 0 for one pair), ``min`` and ``max``; plus the **seed spread of the base**, the
    standard deviation of each metric over the base replicates (rows labelled ``"seed spread of the base"``;
    absent with one replicate): the yardstick against which a factor measured at one seed is read. A tidy
    DataFrame (row, factor, metric, n, mean, std, min, max)."""
    import pandas as pd

    from ..analysis.spread import mean_std

    s = res.summary.set_index("entry")
    metrics = [m for m in metrics if m in s and s[m].notna().any()]
    rows = []
    for c in effect_contrasts(res):
        for metric in metrics:
            d = s.loc[c["variant"], metric].to_numpy(float) - s.loc[c["reference"], metric].to_numpy(float)
            mean, std, n = mean_std(d)
            rows.append({"row": c["row"], "factor": c["factor"], "metric": metric, "n": n, "mean": mean, "std": std,
                         "min": float(np.nanmin(d)) if n else np.nan, "max": float(np.nanmax(d)) if n else np.nan})
    reps = base_replicates(res)
    if len(reps) > 1:
        for metric in metrics:
            v = s.loc[reps, metric].to_numpy(float)
            mean, std, n = mean_std(v)
            rows.append({"row": "seed spread of the base", "factor": "base", "metric": metric, "n": n, "mean": mean,
                         "std": std, "min": float(np.nanmin(v)) if n else np.nan,
                         "max": float(np.nanmax(v)) if n else np.nan})
    return pd.DataFrame(rows, columns=["row", "factor", "metric", "n", "mean", "std", "min", "max"])


def factor_effect_table(res: HolisticResults, metrics=EFFECT_METRICS):
    """Contrasts x axis metrics: mean difference variant - reference
    (:func:`clipstudy.analysis.robustness.factor_effects`), each metric measured the same way for every entry (one OOD scorer per column)."""
    from ..analysis.robustness import factor_effects

    metrics = [m for m in metrics if m in res.summary and res.summary[m].notna().any()]
    contrasts = effect_contrasts(res)
    if not contrasts:
        import pandas as pd

        return pd.DataFrame(columns=metrics)
    return factor_effects(res.summary, contrasts, metrics)


def key_numbers(res: HolisticResults) -> dict:
    """The numbers the notebook records and its verdicts read (default prompt set unless named)."""
    s, zoo = res.summary.set_index("entry"), res.zoo
    out = {"n_models": len(zoo.models), "n_entries": len(s)}
    for col in ("id_accuracy", "shape_bias", "ood_auroc_mcm", "ood_auroc_msp", "ece_shift", "ece_shift_ts",
                "retrieval_r1", "geometric_relative", "common_relative", "factor_er", "shift_er"):
        if col in s:
            out[f"base_{col}"] = float(s.loc[zoo.base, col])
    spread = effect_spread(res)
    out["n_base_seeds"] = len(base_replicates(res))
    out.update(_fine_tuning_numbers(res, s, spread))
    out.update(_architecture_numbers(res, s))
    out.update(_prompt_numbers(res, s, spread))
    out.update(_seed_numbers(spread))
    zs = [e for e in res.entries(zero_shot=True, prompts=res.default_prompts)]
    out["zs_ece_shift"] = float(s.loc[zs, "ece_shift"].mean())
    out["zs_ece_shift_ts"] = float(s.loc[zs, "ece_shift_ts"].mean())
    same = [e for e in zs if zoo.get(e).factor != "training_distribution"]
    if len(same) >= 3 and s.loc[same, "id_accuracy"].std() > 0:  # zero-shot models, MCM (one scorer)
        out["acc_auroc_pearson"] = float(np.corrcoef(s.loc[same, "id_accuracy"], s.loc[same, "ood_auroc_mcm"])[0, 1])
        out["acc_auroc_n"] = len(same)
        inner = [e for e in same if zoo.get(e).factor != "reference"]  # without the longer-trained reference
        if len(inner) < len(same) and len(inner) >= 3 and s.loc[inner, "id_accuracy"].std() > 0:
            out["acc_auroc_pearson_zoo"] = float(np.corrcoef(s.loc[inner, "id_accuracy"],
                                                             s.loc[inner, "ood_auroc_mcm"])[0, 1])
    out.update(_baseline_numbers(res))
    out.update(_effect_numbers(res, spread=spread))
    return out


def _baseline_numbers(res) -> dict:
    """The baseline family: how many models, their ID-accuracy range, how many lines could be fitted, and
    the zoo's mean effective robustness against them (not 0 by construction: the lines ignore the zoo)."""
    out = {}
    b = res.baseline_models
    if b is None or not len(b):
        out["n_baseline"] = 0
        return out
    out["n_baseline"] = int(b["entry"].nunique())
    out["baseline_id_accuracy_min"] = float(b["id_accuracy"].min())
    out["baseline_id_accuracy_max"] = float(b["id_accuracy"].max())
    for name, lines in (("factor", res.factor_lines), ("shift", res.shift_lines)):
        if lines is not None and len(lines):
            out[f"n_{name}_lines"] = int(lines["slope"].notna().sum())
    zoo_entries = [e for e in res.entries(prompts=res.default_prompts) + res.entries(prompts="fine-tuned")
                   if res.zoo.get(res.models.set_index("entry").loc[e, "model"]).factor != "reference"]
    s = res.summary.set_index("entry")
    for col in ("factor_er", "shift_er"):
        if col in s and s.loc[zoo_entries, col].notna().any():
            out[f"zoo_mean_{col}"] = float(s.loc[zoo_entries, col].mean())
    return out


def _effect_numbers(res, threshold: float = 0.5, spread=None) -> dict:
    """Per factor, how many axes (ID accuracy aside) one of its contrasts moves by at least ``threshold``
    times the zoo's spread, and (with base replicates) by more than the base's seed spread on that axis; and
    which factor moves geometric-corruption robustness most."""
    table = factor_effect_table(res)
    if not len(table):
        return {}
    z = table / res.summary[list(table.columns)].std().replace(0, np.nan)
    factor_of = {c["row"]: c["factor"] for c in effect_contrasts(res)}
    axes = [m for m in z.columns if m != "id_accuracy"]
    out = {"n_axes": len(axes)}
    seed_sd = {}
    if spread is not None and len(spread):
        seed_sd = spread[spread.row == "seed spread of the base"].set_index("metric")["std"].to_dict()
    for row in z.index:
        key = f"moved_axes_{factor_of[row]}"
        out[key] = max(out.get(key, 0), int((z.loc[row, axes].abs() >= threshold).sum()))
        if seed_sd:
            beyond = sum(bool(abs(table.loc[row, a]) > seed_sd.get(a, np.nan)) for a in axes)
            key = f"moved_axes_beyond_seed_{factor_of[row]}"
            out[key] = max(out.get(key, 0), int(beyond))
    if "geometric_relative" in z:
        g = z["geometric_relative"].abs()
        top = g.groupby(lambda r: factor_of[r]).max().dropna()
        if len(top):
            out["geometric_top_factor"] = str(top.idxmax())
    return out


def _paired(spread, row: str, metric: str, prefix: str) -> dict:
    """``{prefix}_d`` (mean paired difference), ``{prefix}_sd`` (its std over pairs) and ``{prefix}_n`` of one
    contrast row and metric of :func:`effect_spread`."""
    if spread is None or not len(spread):
        return {}
    hit = spread[(spread.row == row) & (spread.metric == metric)]
    if not len(hit):
        return {}
    r = hit.iloc[0]
    return {f"{prefix}_d": float(r["mean"]), f"{prefix}_sd": float(r["std"]), f"{prefix}_n": int(r["n"])}


def _fine_tuning_numbers(res, s, spread=None) -> dict:
    """Per fine-tuning value (FT, FLYP): each column's mean over its models (one per seed), and the paired
    differences against the base replicate each was fine-tuned from (mean, std over seeds, n)."""
    out = {}
    cols = ("id_accuracy", "shape_bias", "ood_auroc_mcm", "ood_auroc_msp", "ece_shift", "ece_shift_ts", "factor_er",
            "shift_er")
    by_value = {}
    for m in res.zoo.models:
        if m.factor == "fine_tuning":
            by_value.setdefault(m.value, []).append(m.name)
    for value, names in by_value.items():
        tag = value.lower().replace("-", "_").replace(" ", "_")
        out.update({f"{tag}_{c}": float(s.loc[names, c].mean()) for c in cols if c in s})
        out[f"{tag}_n_seeds"] = len(names)
        row = f"{FACTOR_LABELS['fine_tuning']}: {value} vs {res.zoo.base_value('fine_tuning')}"
        for c in cols:
            out.update(_paired(spread, row, c, f"{tag}_{c}"))
    return out


def _architecture_numbers(res, s) -> dict:
    """Geometric- and common-corruption robustness of CNN (ResNet, ConvNeXt) and ViT towers."""
    arch = {m.name: res.zoo.values(m.name).get("architecture", "") for m in res.zoo.models
            if m.factor in ("base", "architecture")}
    groups = {"vit": [n for n, a in arch.items() if "vit" in a.lower()],
              "cnn": [n for n, a in arch.items() if a and "vit" not in a.lower()]}
    out = {}
    for g, names in groups.items():
        for col in ("geometric_relative", "common_relative", "geometric_accuracy_high", "id_accuracy"):
            if names and col in s:
                out[f"{g}_{col}"] = float(s.loc[names, col].mean())
    return out


def _prompt_numbers(res, s, spread=None) -> dict:
    """Per prompt set, each column's mean over the zoo's zero-shot models (the reference model aside); and for
    every non-default set, the paired difference against the default on the base replicates alone (mean, std
    over the base's seeds, n): the prompt factor of the base model."""
    from ..analysis.spread import mean_std

    out = {}
    models = res.models.set_index("entry")
    cols = ("ood_auroc_mcm", "ood_auroc_msp", "ece_id", "ece_shift", "factor_er", "id_accuracy")
    for label in sorted(set(res.models.prompts) - {"fine-tuned"}):
        entries = res.entries(zero_shot=True, prompts=label)
        entries = [e for e in entries if res.zoo.get(models.loc[e, "model"]).factor != "reference"]
        for col in cols:
            out[f"{label}_{col}"] = float(s.loc[entries, col].mean())
    reps = base_replicates(res)
    for label in sorted(set(res.models.prompts) - {"fine-tuned", res.default_prompts}):
        pairs = [b for b in reps if f"{b}+{label}" in s.index]
        for col in cols:
            if pairs and col in s:
                d = s.loc[[f"{b}+{label}" for b in pairs], col].to_numpy(float) - s.loc[pairs, col].to_numpy(float)
                mean, std, n = mean_std(d)
                out.update({f"base_{label}_{col}_d": mean, f"base_{label}_{col}_sd": std, f"base_{label}_{col}_n": n})
    return out


def _seed_numbers(spread) -> dict:
    """The base's seed spread (std over its replicates, ddof = 1) of every axis metric: ``seed_sd_<metric>``."""
    if spread is None or not len(spread):
        return {}
    rows = spread[spread.row == "seed spread of the base"]
    return {f"seed_sd_{r['metric']}": float(r["std"]) for _, r in rows.iterrows()}


def _delta(n: Mapping[str, float], key: str, fallback: float) -> tuple[float, float, int]:
    """A paired difference of :func:`key_numbers` (``<key>_d``, ``_sd``, ``_n``), or ``fallback`` as one pair."""
    if n.get(f"{key}_n", 0) > 0 and np.isfinite(n[f"{key}_d"]):
        return float(n[f"{key}_d"]), float(n[f"{key}_sd"]), int(n[f"{key}_n"])
    return float(fallback), 0.0, 1


def _seeds(d: float, sd: float, k: int, what: str, metric: str = "it", fmt: str = ".2f") -> str:
    """How a paired difference reads against its spread over seeds: "<what> changes <metric> by ..."."""
    if k <= 1:
        return f"{what} changes {metric} by {d:+{fmt}} at one seed (no seed spread)"
    from ..analysis.spread import compare, direction

    return (f"{what} changes {metric} by {d:+{fmt}} ± {sd:{fmt}} over {k} seeds "
            f"({direction(compare(d, sd, 0.0, 0.0), 'up', 'down')})")


def verdicts(n: Mapping[str, float], default: str = "single", other: str = "ensemble") -> dict[str, str]:
    """One sentence per finding of Tu et al. (docs/protocols.md §3.3), saying whether the numbers support it."""
    from ..analysis.spread import compare, direction

    out = {}
    if "base_shape_bias" in n and "ft_shape_bias" in n:
        zs, ft, fl = n["base_shape_bias"], n["ft_shape_bias"], n.get("flyp_shape_bias", np.nan)
        d, sd, k = _delta(n, "ft_shape_bias", ft - zs)
        ok = zs > 0.5 and compare(d, sd, 0.0, 0.0) < 0
        flyp = "" if np.isnan(fl) else (f"; FLYP {'keeps more of it' if fl > ft else 'does not keep more of it'} "
                                        f"({fl:.2f})")
        # FT's shape bias is a mean over the base's seeds: set it against the same seeds' zero-shot mean (ft - d)
        same = "" if k <= 1 else f"; {ft - d:.2f} averaged over its {k} seeds"
        out["shape_bias"] = (f"{'Supported' if ok else 'Not supported'}: the zero-shot base model's shape bias is "
                             f"{zs:.2f} ({'shape' if zs > 0.5 else 'texture'}-biased{same}) and fine-tuning moves "
                             f"{'the same seeds to ' if k > 1 else 'it to '}{ft:.2f}{flyp}; paired with its base, "
                             f"{_seeds(d, sd, k, 'FT')}.")
    if "cnn_geometric_relative" in n and "vit_geometric_relative" in n:
        c, v = n["cnn_geometric_relative"], n["vit_geometric_relative"]
        cc, vc = n["cnn_common_relative"], n["vit_common_relative"]
        top = n.get("geometric_top_factor", "")
        top = f"; of all factors, {FACTOR_LABELS.get(top, top)} moves it most" if top else ""
        sd = n.get("seed_sd_geometric_relative", np.nan)
        ok = c - v > (sd if np.isfinite(sd) else 0.0)
        seeds = ("" if not np.isfinite(sd) else
                 f"; the gap of {c - v:+.0%} is {'larger' if abs(c - v) > sd else 'no larger'} than the base "
                 f"model's seed spread on it (± {sd:.1%}, {n.get('n_base_seeds', '?')} seeds)")
        out["architecture_3d"] = (f"{'Supported' if ok else 'Not supported'}: under geometric corruptions (the "
                                  f"3D-corruption analogue) CNN towers keep {c:.0%} of their clean accuracy, the ViT "
                                  f"{v:.0%} (common corruptions: CNN {cc:.0%}, ViT {vc:.0%}){seeds}{top}.")
    claims = {"training_distribution": ("the training distribution", "the training source strongly affects every "
                                        "property"),
              "training_set_size": ("the training-set size", "data curation, of which the amount of data is one "
                                    "lever, helps nearly every axis")}
    for factor, (what, paper) in claims.items():
        if f"moved_axes_{factor}" not in n:
            continue
        k, m = n[f"moved_axes_{factor}"], n["n_axes"]
        beyond = n.get(f"moved_axes_beyond_seed_{factor}")
        ok = k >= m / 2 and (beyond is None or beyond >= m / 2)
        seeds = ("" if beyond is None else
                 f", {beyond} of {m} by more than the base model's seed spread ({n.get('n_base_seeds', '?')} seeds)")
        out[factor] = (f"{'Supported' if ok else 'Not supported'}: {what} moves {k} of {m} axes by at least half "
                       f"the zoo's spread{seeds} (the paper: {paper}).")
    if f"{default}_ood_auroc_mcm" in n and f"{other}_ood_auroc_mcm" in n:
        d_ood = n[f"{default}_ood_auroc_mcm"] - n[f"{other}_ood_auroc_mcm"]
        d_msp = n.get(f"{default}_ood_auroc_msp", np.nan) - n.get(f"{other}_ood_auroc_msp", np.nan)
        d_ece = n[f"{other}_ece_id"] - n[f"{default}_ece_id"]
        d_er = n[f"{default}_factor_er"] - n[f"{other}_factor_er"]
        ok_ood, ok_ece, base = d_ood > 0, d_ece > 0, ""
        if n.get(f"base_{other}_ood_auroc_mcm_n", 0) > 1:  # the base model at several seeds: read against its spread
            b_ood, b_ood_sd, k = (-n[f"base_{other}_ood_auroc_mcm_d"], n[f"base_{other}_ood_auroc_mcm_sd"],
                                  n[f"base_{other}_ood_auroc_mcm_n"])
            b_ece, b_ece_sd = -n[f"base_{other}_ece_id_d"], n[f"base_{other}_ece_id_sd"]
            ok_ood, ok_ece = compare(b_ood, b_ood_sd, 0.0, 0.0) > 0, compare(b_ece, b_ece_sd, 0.0, 0.0) < 0
            base = (f"; on the base model alone, {_seeds(b_ood, b_ood_sd, k, 'one prompt', 'MCM OOD AUROC', '.3f')} "
                    f"and ID ECE by {b_ece:+.3f} ± {b_ece_sd:.3f} "
                    f"({direction(compare(b_ece, b_ece_sd, 0.0, 0.0), 'up', 'down')})")
        er = ("undefined (no baseline line)" if np.isnan(d_er) else f"{d_er:+.3f}")
        msp = "" if np.isnan(d_msp) else f" (MSP: {d_msp:+.3f})"
        status = "Supported" if ok_ood and ok_ece else "Partly supported" if ok_ood or ok_ece else "Not supported"
        out["prompts"] = (f"{status}: one prompt instead of an ensemble changes MCM OOD AUROC by {d_ood:+.3f}{msp} and "
                          f"lowers ID ECE by {d_ece:+.3f} (mean over zero-shot models){base}; factor effective "
                          f"robustness changes by {er}.")
    if "ft_ood_auroc_mcm" in n and "base_ood_auroc_mcm" in n:
        mcm, mcm_sd, k = _delta(n, "ft_ood_auroc_mcm", n["ft_ood_auroc_mcm"] - n["base_ood_auroc_mcm"])
        msp, msp_sd, _ = _delta(n, "ft_ood_auroc_msp", n["ft_ood_auroc_msp"] - n["base_ood_auroc_msp"])
        paper = n["ft_ood_auroc_msp"] - n["base_ood_auroc_mcm"]
        spread = f" (± {mcm_sd:.3f} and ± {msp_sd:.3f} over {k} seeds, each paired with its base)" if k > 1 else ""
        out["fine_tuning_ood"] = (f"Within one scorer, fine-tuning (FT) changes OOD AUROC by {mcm:+.3f} (MCM) and "
                                  f"{msp:+.3f} (MSP){spread}; the paper's pairing (MCM zero-shot vs MSP fine-tuned) "
                                  f"would report {paper:+.3f}, which mixes in the scorer's effect.")
    if "zs_ece_shift" in n:
        b, a = n["zs_ece_shift"], n["zs_ece_shift_ts"]
        out["temperature_scaling"] = (f"{'Supported' if a < b else 'Not supported'}: temperature scaling fitted on "
                                      f"ID data changes the mean ECE under domain shift from {b:.3f} to {a:.3f}.")
    if "zoo_mean_factor_er" in n:
        out["effective_robustness"] = (
            f"Against the line fitted on {n.get('n_baseline', '?')} supervised photo-only baseline models (ID "
            f"accuracy {n['baseline_id_accuracy_min']:.0%}-{n['baseline_id_accuracy_max']:.0%}), the zoo's mean "
            f"factor effective robustness is {n['zoo_mean_factor_er']:+.3f}"
            + (f" and its mean domain-shift effective robustness {n['zoo_mean_shift_er']:+.3f}"
               if "zoo_mean_shift_er" in n else "")
            + " (zero-shot CLIP lies above the line of ImageNet-trained models in Radford et al. 2021).")
    if "acc_auroc_pearson" in n:
        r = n["acc_auroc_pearson"]
        inner = n.get("acc_auroc_pearson_zoo")
        rest = (f"; without the reference model (trained longer), r = {inner:.2f}, so the correlation rests on the "
                f"reference" if inner is not None and inner <= 0.3 else
                f"; without the reference model, r = {inner:.2f}" if inner is not None else "")
        ok = r > 0.3 and (inner is None or inner > 0.3)
        out["accuracy_ood"] = (f"{'Supported' if ok else 'Not supported'}: within the photo-heavy training "
                               f"distribution, ID accuracy and OOD AUROC (MCM) correlate with Pearson r = {r:.2f} over "
                               f"{n.get('acc_auroc_n', '?')} zero-shot models{rest}.")
    return out
