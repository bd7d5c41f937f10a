"""Datasets from plain dicts ("dataset specs"), shared by every study.

A dataset spec is ``{"dataset": name, **options}``, e.g. ``{"dataset": "world", "domain": "photo", "n": 600}``
or ``{"dataset": "imagenet", "split": "val", "max_images": 10000}``, so a study's data is a parameter that the
embedded and the real path fill differently. :func:`dataset_from_spec` reads a few keys itself and passes the
rest to :func:`clipstudy.data.build_dataset`:

* ``root``: the data folder of this set (default: the study's ``data_root``);
* ``holdout`` (``"val"`` or ``"test"``) and ``holdout_fraction`` (0.2): a disjoint seeded split of the set,
  e.g. the ID images temperature scaling is fitted on, held out from the test images (Tu et al.'s
  calibration axis, docs/protocols.md §3.2);
* ``max_images`` (with ``subset_seed``, default 0): a seeded random subset of that many images, taken after
  the holdout split, to run a real benchmark on part of its test set (0 or absent: every image).

:class:`Subset` and :class:`ClassSubset` restrict a dataset to some images or some classes (a base or new
split, docs/protocols.md §0.5) with the common dataset interface; :class:`InMemory` holds a rendered world
set in memory and :func:`build_set` is :func:`dataset_from_spec` with world sets held that way.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError

HOLDOUTS = ("val", "test")
SPEC_KEYS = ("dataset", "root", "holdout", "holdout_fraction", "max_images", "subset_seed")
"""Keys of a dataset spec read by :func:`dataset_from_spec` itself; the others go to the dataset."""


def dataset_from_spec(spec: Mapping[str, Any], data_root=None, transform=None):
    """A registered dataset from ``{"dataset": name, **options}`` (see the module docstring for ``root``,
    ``holdout``, ``holdout_fraction``, ``max_images`` and ``subset_seed``); everything else goes to
    :func:`clipstudy.data.build_dataset` (``split``, ``domain`` and the dataset's own options)."""
    from . import build_dataset

    if not isinstance(spec, Mapping) or "dataset" not in spec:
        raise ConfigError(f"a dataset spec is a dict with a 'dataset' key, got {spec!r}")
    options = dict(spec)
    name = options.pop("dataset")
    max_images = options.pop("max_images", None)
    subset_seed = options.pop("subset_seed", 0)
    holdout, frac = options.pop("holdout", None), float(options.pop("holdout_fraction", 0.2))
    if holdout is not None and holdout not in HOLDOUTS:
        raise ConfigError(f"holdout must be 'val' or 'test', got {holdout!r}")
    root = options.pop("root", None) or data_root or None
    ds = build_dataset(name, root=root, transform=transform, **options)
    if holdout is not None:
        order = np.random.default_rng(subset_seed).permutation(len(ds))
        k = max(1, int(round(frac * len(ds))))
        ds = Subset(ds, np.sort(order[:k] if holdout == "val" else order[k:]))
    if max_images and int(max_images) < len(ds):
        ds = Subset(ds, np.sort(np.random.default_rng(subset_seed).choice(len(ds), int(max_images), replace=False)))
    return ds


def build_set(spec: Mapping[str, Any], data_root=None):
    """:func:`dataset_from_spec`, with world sets rendered once into memory (:class:`InMemory`) so that the
    feature pass of every model of a zoo reads the same images without rendering them again."""
    ds = dataset_from_spec(spec, data_root)
    return InMemory(ds) if hasattr(unwrap(ds)[0], "get_batch") else ds


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


class ClassSubset(Subset):
    """The images of ``dataset`` whose label is in ``label_map``, relabelled (``label_map[old]``) and with
    ``classnames`` in the new label order: a base or new split of a test set
    (:func:`clipstudy.experiment.subsample_classes`)."""

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


class InMemory:
    """A world dataset rendered once and held in memory (uint8 pixels), so the feature pass of every zoo
    model reads the same images without rendering them again; same ``cache_key`` as the original."""

    def __init__(self, dataset):
        self.dataset = dataset
        base, idx = unwrap(dataset)
        self.pixels = base.get_batch(idx.tolist())
        self.classnames, self.targets = tuple(dataset.classnames), np.asarray(dataset.targets)
        self.name, self.domain, self.cache_key = dataset.name, dataset.domain, dataset.cache_key

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        return {"image": Image.fromarray(self.pixels[i]), "label": int(self.targets[i]), "index": i}

    def factor_table(self):
        return self.dataset.factor_table()


def unwrap(ds) -> tuple[Any, np.ndarray]:
    """The underlying dataset and the indices of ``ds``'s images in it (through :class:`InMemory` and
    subsets)."""
    idx = np.arange(len(ds))
    while True:
        if isinstance(ds, InMemory):
            ds = ds.dataset
        elif hasattr(ds, "indices") and hasattr(ds, "dataset"):
            idx, ds = np.asarray(ds.indices)[idx], ds.dataset
        else:
            return ds, idx
