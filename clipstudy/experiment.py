"""Composing model + data + method into trained methods and their outputs (shared by every study).

* :func:`dataset_from_spec` builds a dataset from a plain dict (``{"dataset": "world", "domain": "photo",
  "n": 600}`` or ``{"dataset": "imagenet", "split": "val", "max_images": 10000}``), so a study's data is a
  parameter that the embedded and the real path fill differently.
* :class:`Recipe` says how to train one method (its constructor parameters and optimisation settings);
  defaults per method live in ``data/resources/recipes*.json`` at two scales, ``paper`` (the papers'
  settings) and ``embedded`` (the same recipe scaled to the embedded world and a CPU).
* :func:`train_method` trains one method on a few-shot (or full) training set through the one loop in
  :mod:`clipstudy.train` — on cached frozen features for feature methods, on images for image methods —
  with a resumable checkpoint.
* :func:`method_outputs` evaluates a trained method on a dataset (cached features of the frozen tower,
  or of the method's own fine-tuned tower) and :func:`wise_variants` yields WiSE-FT interpolations.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from . import paths
from .errors import ConfigError
from .io import read_json

SCALES = ("embedded", "paper")
PROTOCOL_VERSION = 2
"""Part of every result spec: bump it when a change alters the numbers a cell produces (2: the cell's seed
reaches every random initialisation; regularizer weights carried to the model's logit scale by one rule;
FLYP trains its logit scale; prompt learners' weight decay as Dassl's)."""


# --------------------------------------------------------------------------- datasets

def dataset_from_spec(spec: Mapping[str, Any], data_root=None, transform=None):
    """A registered dataset from ``{"dataset": name, **options}``.

    ``max_images`` (optional) keeps a seeded random subset of that many images (``subset_seed``, default
    0), to run a real benchmark on part of its test set. Everything else goes to
    :func:`clipstudy.data.build_dataset` (``split``, ``domain`` and the dataset's own options).
    """
    from .data import build_dataset

    if not isinstance(spec, Mapping) or "dataset" not in spec:
        raise ConfigError(f"a dataset spec is a dict with a 'dataset' key, got {spec!r}")
    options = dict(spec)
    name = options.pop("dataset")
    max_images = options.pop("max_images", None)
    subset_seed = options.pop("subset_seed", 0)
    root = options.pop("root", None) or data_root or None
    ds = build_dataset(name, root=root, transform=transform, **options)
    if max_images is not None and int(max_images) < len(ds):
        ds = Subset(ds, np.sort(np.random.default_rng(subset_seed).choice(len(ds), int(max_images), replace=False)))
    return ds


class Subset:
    """Some images of a dataset, with the common dataset interface (labels and names unchanged)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.classnames = tuple(dataset.classnames)
        self.targets = np.asarray(dataset.targets)[self.indices]
        self.name = getattr(dataset, "name", "dataset")
        self.domain = getattr(dataset, "domain", self.name)

    @property
    def cache_key(self) -> str:
        digest = hashlib.blake2b(self.indices.tobytes(), digest_size=8).hexdigest()
        return f"{self.dataset.cache_key}|subset:{len(self.indices)}:{digest}"

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[int(self.indices[i])])
        item["index"] = i
        return item

    def factor_table(self):
        table = self.dataset.factor_table()
        return [table[int(i)] for i in self.indices]


# --------------------------------------------------------------------------- recipes

@dataclass(frozen=True)
class Recipe:
    """How to train one method: what to build and how to optimise it.

    ``epochs`` is a number or a per-shot table (``{"1": 50, "2": 100, ...}``, CoOp's schedule); the step
    count is ``ceil(epochs * n_train / batch_size)``, capped at ``max_steps`` (the embedded scale's CPU
    budget) unless ``steps`` fixes it. Warm-up lasts ``warmup_epochs`` (at most a tenth of the steps), at
    the constant ``warmup_lr`` if set (CoOp) or linearly from 0. ``wise_alphas`` adds WiSE-FT
    interpolations of the trained method with its initial (zero-shot) state to its evaluation.
    """

    method: str
    label: str = ""
    params: tuple = ()
    trains: bool = True
    epochs: Any = 10
    steps: int | None = None
    max_steps: int | None = None
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.002
    weight_decay: float = 0.0
    momentum: float = 0.9
    warmup_epochs: float = 0.0
    warmup_lr: float | None = None
    grad_clip: float | None = None
    precision: str = "fp32"
    augment: str = "none"
    wise_alphas: tuple = ()
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "params", _pairs(self.params))
        object.__setattr__(self, "wise_alphas", tuple(float(a) for a in self.wise_alphas))
        if isinstance(self.epochs, Mapping):
            object.__setattr__(self, "epochs", _pairs({str(k): v for k, v in self.epochs.items()}))
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"recipe {self.label or self.method!r}: unknown augment {self.augment!r}; "
                              f"valid: {', '.join(AUGMENTATIONS)}")
        bad = [a for a in self.wise_alphas if not 0.0 <= a <= 1.0]
        if bad:
            raise ConfigError(f"recipe {self.label or self.method!r}: WiSE-FT alphas must lie in [0, 1], got {bad}")
        if not self.label:
            object.__setattr__(self, "label", self.method)

    @property
    def kwargs(self) -> dict:
        return {k: _thaw(v) for k, v in self.params}

    def epochs_for(self, shots: int | None) -> float:
        if isinstance(self.epochs, tuple):
            table = dict(self.epochs)
            key = str(shots) if shots is not None else "full"
            if key not in table:
                raise ConfigError(f"recipe {self.label!r} has no epochs for {key} shots; it has {sorted(table)}")
            return float(table[key])
        return float(self.epochs)

    def train_config(self, n_train: int, shots: int | None, seed: int):
        from .train import TrainConfig

        per_epoch = max(1, math.ceil(n_train / self.batch_size))
        steps = self.steps or max(1, math.ceil(self.epochs_for(shots) * per_epoch))
        if self.max_steps and not self.steps:
            steps = min(steps, int(self.max_steps))
        warmup = min(int(round(self.warmup_epochs * per_epoch)), steps // 10)
        return TrainConfig(steps=steps, lr=self.lr, weight_decay=self.weight_decay, optimizer=self.optimizer,
                           momentum=self.momentum, warmup_steps=warmup,
                           warmup_lr=self.warmup_lr if warmup else None, grad_clip=self.grad_clip,
                           precision=self.precision, seed=seed, log_every=max(1, steps // 10))

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)


AUGMENTATIONS = ("none", "flip")


def _pairs(value) -> tuple:
    if isinstance(value, Mapping):
        value = value.items()
    return tuple(sorted((str(k), _freeze(v)) for k, v in value))


def _freeze(v):
    if isinstance(v, Mapping):
        return ("__dict__", _pairs(v))
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v):
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "__dict__":
        return {k: _thaw(x) for k, x in v[1]}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


@functools.lru_cache(maxsize=None)
def _recipe_table() -> dict:
    """Every ``data/resources/recipes*.json`` merged (one file per study; a name defined twice is an error).

    An entry with ``"extends": "<recipe>"`` is that recipe's entry with its own fields merged over it
    (dicts such as ``params``, ``paper`` and ``embedded`` merged key by key, recursively; other values
    replaced), so e.g. ``coop_dor`` is ``coop`` plus a regularizer."""
    table: dict = {}
    for path in sorted(paths.resources_dir().glob("recipes*.json")):
        for name, entry in read_json(path).items():
            if name.startswith("_"):
                continue
            if name in table:
                raise ConfigError(f"recipe {name!r} is defined twice ({path.name} and an earlier recipes file)")
            table[name] = entry
    return {name: _resolve_extends(table, name, ()) for name in table}


def _resolve_extends(table: dict, name: str, seen: tuple) -> dict:
    entry = dict(table[name])
    parent = entry.pop("extends", None)
    if parent is None:
        return entry
    if parent not in table or parent in seen + (name,):
        why = "is not a recipe" if parent not in table else "forms a cycle"
        raise ConfigError(f"recipe {name!r} extends {parent!r}, which {why}")
    return _deep_merge(_resolve_extends(table, parent, seen + (name,)), entry)


def _deep_merge(base: Mapping, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def list_recipes() -> list[str]:
    return sorted(_recipe_table())


def get_recipe(name: str, scale: str = "embedded", **overrides) -> Recipe:
    """The recipe ``name`` at ``scale`` (``embedded`` or ``paper``), with ``overrides`` applied.

    A recipe entry holds shared fields and per-scale fields (a scale's ``params`` are merged key by key over
    the shared ``params``, recursively); unknown names list the valid ones.
    """
    from .registry import UnknownNameError

    table = _recipe_table()
    if name not in table:
        raise UnknownNameError(f"unknown recipe {name!r}; valid recipes: {', '.join(sorted(table))}")
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    entry = dict(table[name])
    values = {k: v for k, v in entry.items() if k not in SCALES and not k.startswith("_")}
    scaled = dict(entry.get(scale, {}))
    if isinstance(scaled.get("params"), Mapping):
        scaled["params"] = _deep_merge(values.get("params", {}), scaled["params"])
    values.update(scaled)
    values.update(overrides)
    values.setdefault("label", name)
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"recipe {name!r}: unknown settings {unknown}; valid: {', '.join(sorted(fields))}")
    return Recipe(**values)


def recipe_spec(recipe: Recipe) -> dict:
    """The recipe as plain JSON types (part of a result cell's spec)."""
    d = dataclasses.asdict(recipe)
    d["params"] = recipe.kwargs
    if isinstance(recipe.epochs, tuple):
        d["epochs"] = dict(recipe.epochs)
    return d


# --------------------------------------------------------------------------- training

@dataclass
class TrainSet:
    """The images a method trains on: ``dataset`` restricted to ``indices``, with ``labels`` already mapped
    to the method's class order."""

    dataset: Any
    indices: np.ndarray
    labels: np.ndarray
    shots: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def images(self) -> "Subset":
        return Subset(self.dataset, self.indices)

    def features(self, loaded, encoder=None, progress: bool = True):
        """Unit features ``[n, d]`` of the training images (frozen tower, or ``encoder``), cached on disk."""
        from .features import extract_features

        return extract_features(loaded, self.images, encoder=encoder, progress=progress,
                                desc=f"features {self.dataset.name} ({self.shots or 'all'}-shot train)").features


def few_shot_set(pool, shots: int | None, seed: int, *, label_map: Mapping[int, int] | None = None) -> TrainSet:
    """``shots`` images per class of ``pool`` drawn as CoOp does (:func:`clipstudy.data.fewshot.few_shot_indices`;
    every image if ``shots`` is None). ``label_map`` keeps only the classes it maps and relabels them."""
    from .data.fewshot import few_shot_indices

    targets = np.asarray(pool.targets)
    keep = np.arange(len(targets)) if label_map is None else np.flatnonzero(np.isin(targets, list(label_map)))
    if shots is None:
        idx = keep
    else:
        local = few_shot_indices(targets[keep], shots, seed, classnames=_names_for(pool, targets[keep]))
        idx = keep[local]
    labels = targets[idx] if label_map is None else np.array([label_map[int(t)] for t in targets[idx]])
    return TrainSet(pool, idx, labels.astype(np.int64), shots)


SUBSAMPLES = ("all", "base", "new")


def subsample_classes(n_classes: int, subsample: str = "all") -> dict[int, int]:
    """``{old label: new label}`` of CoOp's base-to-new split (``KaiyangZhou/CoOp``
    ``datasets/oxford_pets.py::subsample_classes``; docs/protocols.md §0.5): labels sorted, the first
    ``ceil(n/2)`` are ``"base"``, the rest ``"new"``, each relabelled from 0; ``"all"`` keeps every label."""
    if subsample not in SUBSAMPLES:
        raise ConfigError(f"unknown class subsample {subsample!r}; valid: {', '.join(SUBSAMPLES)}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ConfigError(f"a base-to-new split needs at least 2 classes, got {n_classes!r}")
    m = math.ceil(int(n_classes) / 2)
    kept = {"all": range(n_classes), "base": range(m), "new": range(m, n_classes)}[subsample]
    return {int(old): i for i, old in enumerate(kept)}


class ClassSubset(Subset):
    """The images of ``dataset`` whose label is in ``label_map``, relabelled (``label_map[old]``) and with
    ``classnames`` in the new label order: a base or new split of a test set (:func:`subsample_classes`)."""

    def __init__(self, dataset, label_map: Mapping[int, int], name: str | None = None):
        label_map = {int(k): int(v) for k, v in label_map.items()}
        if sorted(label_map.values()) != list(range(len(label_map))):
            raise ConfigError("label_map must map the kept labels onto 0..n-1")
        targets = np.asarray(dataset.targets)
        super().__init__(dataset, np.flatnonzero(np.isin(targets, list(label_map))))
        names = tuple(dataset.classnames)
        inverse = {v: k for k, v in label_map.items()}
        self.label_map = label_map
        self.classnames = tuple(names[inverse[i]] for i in range(len(label_map)))
        self.targets = np.array([label_map[int(t)] for t in targets[self.indices]], dtype=np.int64)
        self.domain = name or self.domain

    @property
    def cache_key(self) -> str:
        mapping = ",".join(f"{k}:{v}" for k, v in sorted(self.label_map.items()))
        return f"{self.dataset.cache_key}|classes:{hashlib.blake2b(mapping.encode(), digest_size=8).hexdigest()}"

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        item["label"] = self.label_map[int(item["label"])]
        return item


def _names_for(pool, targets):
    names = tuple(pool.classnames)
    return names if len(names) > int(np.max(targets, initial=0)) else None


def build(loaded, recipe: Recipe, classnames: Sequence[str], *, seed: int, **extra):
    """Instantiate the recipe's method for ``classnames``, every random choice of its construction drawn from
    the cell's ``seed`` (:func:`clipstudy.methods.build_method`); ``extra`` are constructor arguments that
    are not part of the recipe (e.g. ``head_init``)."""
    from .methods import build_method

    kwargs = {**recipe.kwargs, **extra}
    if "seed" in kwargs:
        raise ConfigError(f"recipe {recipe.label!r}: 'seed' is set both by the cell ({seed}) and in the recipe "
                          f"({kwargs['seed']!r}); remove it from the recipe, the cell's seed drives every draw")
    return build_method(recipe.method, loaded, classnames, seed=seed, **kwargs)


def transfer_to_classes(method, loaded, recipe: Recipe, classnames: Sequence[str], *, seed: int = 0):
    """The trained ``method`` rebuilt for other ``classnames`` (a base-to-new split's new classes, docs/protocols.md
    §0.5): the recipe's method is built for the new names (without regularizers, which only shape training)
    and the trained parameters are loaded into it. Parameters tied to the training classes (linear heads,
    class-specific contexts: ``method.class_bound_parameters()``) cannot transfer: :class:`ConfigError`."""
    from .train import trainable_state

    bound = method.class_bound_parameters()
    if bound:
        raise ConfigError(f"{recipe.label}: {', '.join(bound)} belong to the {len(method.classnames)} training "
                          "classes (a linear head or a class-specific context) and cannot be evaluated on other "
                          "class names; use a method with shared prompts (coop, cocoop, kgcoop, maple, ...)")
    kwargs = {k: v for k, v in recipe.kwargs.items() if k != "regularizers"}
    from .methods import build_method

    target = build_method(recipe.method, loaded, classnames, seed=seed, **kwargs)
    state, own = trainable_state(method), target.state_dict()
    bad = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
           if k not in own or own[k].shape != v.shape]
    if bad:
        raise ConfigError(f"{recipe.label}: trained parameters do not fit the method built for the new classes: "
                          + "; ".join(bad))
    target.load_state_dict(state, strict=False)
    target.eval()
    return target


def train_method(loaded, recipe: Recipe, train: TrainSet, classnames: Sequence[str], seed: int, *,
                 checkpoint: str | Path | None = None, callbacks: Sequence[Callable] = (),
                 progress: bool = True, method=None):
    """Build (or take) the recipe's method, train it on ``train`` and return ``(method, history, theta0)``.

    ``seed`` drives every random choice of the cell: the method's construction (random context vectors,
    adapter and meta-net weights, random texts, template draws: :func:`build`), the batch order and the
    augmentations. A ``method`` built by the caller must have been built with the same seed.
    ``theta0`` is the method's state before training (its zero-shot state for fine-tuning methods: the
    WiSE-FT endpoint). A method with nothing to train is returned as built. With ``checkpoint`` set,
    training resumes from it and a finished checkpoint is reused without training again.
    """
    from .train import fit, prefetched

    method = method if method is not None else build(loaded, recipe, classnames, seed=seed)
    theta0 = {k: v.detach().clone() for k, v in method.state_dict().items()}
    if not (recipe.trains and method.trains):
        return method, [], theta0
    cfg = recipe.train_config(len(train), train.shots, seed)
    if method.inputs == "images":
        batches = prefetched(image_batches(loaded, train, recipe.batch_size, seed, recipe.augment))
    else:
        batches = _feature_batches(loaded, train, recipe.batch_size, seed, progress)
    desc = f"{recipe.label} {train.shots or 'all'}-shot seed {seed}"
    history = fit(method, batches, cfg, checkpoint=checkpoint, callbacks=callbacks, progress=progress, desc=desc)
    return method, history, theta0


def _feature_batches(loaded, train: TrainSet, batch_size: int, seed: int, progress: bool):
    import torch

    from .methods.base import feature_batches

    x = train.features(loaded, progress=progress).to(loaded.device)
    return feature_batches(x, torch.as_tensor(train.labels).to(loaded.device), min(batch_size, len(train)), seed)


def image_batches(loaded, train: TrainSet, batch_size: int, seed: int, augment: str = "none",
                  preload_bytes: int = 1 << 30):
    """``step -> {"images", "y"}`` over shuffled epochs of the training images, preprocessed with the
    model's transform. Small sets (the few-shot world, < ``preload_bytes``) are transformed once and held
    in memory; larger ones are read per batch. ``augment="flip"`` mirrors each image with probability
    1/2, drawn from ``(seed, step)``. Batches carry their ``step`` so methods and regularizers that draw
    per-step randomness (Lipsum-FT's random texts, FLYP's templates) draw it from ``(seed, step)`` and
    resume exactly."""
    import torch

    from .features import _Transformed
    from .train import epoch_batches

    data = _Transformed(train.images, loaded.preprocess)
    labels = torch.as_tensor(train.labels)
    size = loaded.image_size
    order = epoch_batches(len(train), min(batch_size, len(train)), seed)
    cached = None
    if len(train) * 3 * size * size * 4 <= preload_bytes:
        cached = torch.stack([data[i][0] for i in range(len(data))])

    def batch(step: int) -> dict:
        j = order(step)
        images = cached[j] if cached is not None else torch.stack([data[int(k)][0] for k in j])
        if augment == "flip":
            g = torch.Generator().manual_seed(seed * 1_000_003 + step)
            flip = torch.rand(len(j), generator=g) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return {"images": images.to(loaded.device), "y": labels[j].to(loaded.device), "step": step}

    batch.steps_per_epoch = order.steps_per_epoch
    return batch


def checkpoint_path(spec: Mapping[str, Any]) -> Path:
    """Where a cell's trained method is kept (``<checkpoints>/cells/<spec hash>.pt``)."""
    from .results import spec_hash

    return paths.checkpoints_dir() / "cells" / f"{spec_hash(spec, 16)}.pt"


# --------------------------------------------------------------------------- evaluation

@dataclass
class Outputs:
    """A method's view of a dataset: similarities ``[N, K]``, labels, unit image features (and local
    features for GL-MCM) of the tower the method uses."""

    name: str
    sims: np.ndarray
    labels: np.ndarray
    features: Any
    local: Any = None

    @property
    def accuracy(self) -> float:
        return float((self.sims.argmax(1) == self.labels).mean())


def method_outputs(method, loaded, dataset, *, name: str | None = None, local: bool = False,
                   progress: bool = True, batch_size: int = 1024) -> Outputs:
    """Similarities of ``method`` on every image of ``dataset``: cached features of the frozen tower for
    feature methods, of the method's own tower for image methods (cached by its weights hash)."""
    import torch

    from .features import extract_features

    fs = extract_features(loaded, dataset, encoder=method.encoder, local=local, progress=progress,
                          desc=f"features {name or dataset.name}")
    was = method.training
    method.eval()
    with torch.no_grad():
        sims = torch.cat([method.feature_similarities(fs.features[i:i + batch_size].to(loaded.device)).float().cpu()
                          for i in range(0, len(fs.features), batch_size)])
    method.train(was)
    return Outputs(name or getattr(dataset, "domain", dataset.name), sims.numpy(), fs.labels.numpy(),
                   fs.features, fs.local)


def local_similarities(method, outputs: Outputs, chunk: int = 256) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, local sims [n, HW, K])`` in chunks of images, so GL-MCM never holds ``[N, HW, K]`` at once."""
    import torch

    if outputs.local is None:
        raise ConfigError(f"outputs {outputs.name!r} were computed without local features (local=True)")
    with torch.no_grad():
        for s in range(0, len(outputs.labels), chunk):
            rows = slice(s, s + chunk)
            device = method.scale.device
            sims = method.local_similarities(outputs.features[rows].to(device), outputs.local[rows].to(device).float())
            yield rows, sims.cpu().numpy()


def wise_variants(method, theta0: Mapping[str, Any], alphas: Sequence[float]) -> Iterator[tuple[float, Any]]:
    """``(alpha, method_alpha)`` for each WiSE-FT mixing weight: the weights ``(1-alpha)·theta0 +
    alpha·theta1`` (:func:`clipstudy.wise.interpolate`) loaded into one copy of ``method``."""
    from .wise import interpolate

    theta1 = {k: v.detach().clone() for k, v in method.state_dict().items()}
    loaded = method.__dict__.get("_loaded")  # the frozen model is shared, not copied (its tokenizer is slow to copy)
    mixed = copy.deepcopy(method, {id(loaded): loaded} if loaded is not None else None)
    for alpha in alphas:
        mixed.load_state_dict(interpolate(theta0, theta1, float(alpha)))
        yield float(alpha), mixed


def cell_spec(loaded, recipe: Recipe, train: TrainSet, seed: int, **extra) -> dict:
    """The identity of a training cell: model and weights, training data, recipe, shots, seed."""
    from . import __version__

    digest = hashlib.blake2b(np.asarray(train.indices, np.int64).tobytes(), digest_size=8).hexdigest()
    pretrained = Path(loaded.pretrained).name if ("/" in loaded.pretrained or "\\" in loaded.pretrained) else loaded.pretrained
    return {"model": loaded.name, "pretrained": pretrained, "weights": loaded.weights_id,
            "train_data": f"{train.dataset.cache_key}|{len(train)}:{digest}", "method": recipe.label,
            "recipe": recipe_spec(recipe), "shots": train.shots, "seed": seed,
            "protocol": PROTOCOL_VERSION, "clipstudy": __version__, **extra}
