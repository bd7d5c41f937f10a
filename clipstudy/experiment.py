"""Composing model + data + method into trained methods and their outputs (shared by every study).

* :func:`dataset_from_spec` (defined in :mod:`clipstudy.data.specs`, re-exported here with :class:`Subset`
  and :class:`ClassSubset`) builds a dataset from a plain dict (``{"dataset": "world", "domain": "photo",
  "n": 600}``), so a study's data is a parameter that the embedded and the real path fill differently.
* :class:`Recipe` says how to train one method (its constructor parameters and optimisation settings);
  defaults per method live in ``clipstudy/recipes/<name>.json`` (:data:`clipstudy.recipes.RECIPES`) at two
  scales, ``paper`` (the papers' settings) and ``embedded`` (the same recipe scaled to the embedded world and
  a CPU).
* :func:`train_method` trains one method on a few-shot (or full) training set through the one loop in
  :mod:`clipstudy.train` — on cached frozen features for feature methods, on images for image methods —
  with a resumable checkpoint.
* :func:`method_outputs` evaluates a trained method on a dataset (cached features of the frozen tower,
  or of the method's own fine-tuned tower) and :func:`wise_variants` yields WiSE-FT interpolations.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from . import paths
from .batches import image_batches  # noqa: F401  (re-exported: batch sources live in clipstudy.batches)
from .data.specs import ClassSubset, Subset, dataset_from_spec  # noqa: F401  (re-exported: they live in data/specs)
from .errors import ConfigError

SCALES = ("embedded", "paper")
PROTOCOL_VERSION = 2
"""Part of every result spec: bump it when a change alters the numbers a cell produces (2: the cell's seed
reaches every random initialisation; regularizer weights carried to the model's logit scale by one rule;
FLYP trains its logit scale; prompt learners' weight decay as Dassl's)."""


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


def _recipe_table() -> dict:
    """Every recipe of :data:`clipstudy.recipes.RECIPES` (one JSON file per recipe in ``clipstudy/recipes/``)
    with its ``extends`` chain applied, as ``{name: settings}`` (copies: changing them changes nothing).

    An entry with ``"extends": "<recipe>"`` is that recipe's entry with its own fields merged over it
    (dicts such as ``params``, ``paper`` and ``embedded`` merged key by key, recursively; other values
    replaced), so e.g. ``coop_dor`` is ``coop`` plus a regularizer."""
    from .recipes import RECIPES

    return {name: copy.deepcopy(RECIPES.get(name)) for name in RECIPES.list()}


def _deep_merge(base: Mapping, over: Mapping) -> dict:
    from .recipes import deep_merge

    return deep_merge(base, over)


def list_recipes() -> list[str]:
    from .recipes import RECIPES

    return RECIPES.list()


def get_recipe(name: str, scale: str = "embedded", **overrides) -> Recipe:
    """The recipe ``name`` at ``scale`` (``embedded`` or ``paper``), with ``overrides`` applied.

    A recipe entry (``clipstudy/recipes/<name>.json``, :data:`clipstudy.recipes.RECIPES`) holds shared fields
    and per-scale fields (a scale's ``params`` are merged key by key over the shared ``params``, recursively);
    unknown names list the valid ones.
    """
    from .recipes import RECIPES

    entry = copy.deepcopy(RECIPES.get(name))  # unknown names raise, listing the valid recipes
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
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
    """The recipe as plain JSON types (part of a result cell's spec): every field that can change a number.
    ``source`` (prose naming where the settings come from) is left out, so editing a citation never
    invalidates finished cells."""
    d = dataclasses.asdict(recipe)
    d.pop("source", None)
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
    from .batches import prefetched
    from .train import fit

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

    from .batches import feature_batches

    x = train.features(loaded, progress=progress).to(loaded.device)
    return feature_batches(x, torch.as_tensor(train.labels).to(loaded.device), min(batch_size, len(train)), seed)



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
