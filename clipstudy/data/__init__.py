"""Datasets: one registry for the embedded world and real benchmarks.

Every dataset object has the same small interface, whatever its source:

* ``len(ds)``, ``ds[i] -> {"image": ..., "label": int, ...}`` (image after ``transform``);
* ``ds.classnames`` (tuple of readable names), ``ds.targets`` (numpy int array);
* ``ds.cache_key`` — a string that changes whenever the content would (used by feature caches);
* ``ds.name`` and ``ds.domain``.

Builders are registered in :data:`DATASETS` and called through :func:`build_dataset`;
:func:`dataset_domains` lists the domains a dataset offers (a dataset without domains has one,
named after it).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from ..errors import ConfigError, DataError
from ..registry import Registry

DATASETS = Registry("dataset")


def build_dataset(name: str, *, root: str | None = None, split: str = "test", domain: str | None = None,
                  transform: Callable | None = None, **options: Any):
    """Build a registered dataset; unknown names or options give a clear error."""
    _ensure_registered()
    builder = DATASETS.get(name)
    accepted = set(inspect.signature(builder.build).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        valid = sorted(accepted - {"root", "split", "domain", "transform"})
        raise ConfigError(f"dataset {name!r} has no option(s) {unknown}; valid options: {valid}")
    return builder.build(root=root, split=split, domain=domain, transform=transform, **options)


def dataset_domains(name: str, root: str | None = None) -> list[str]:
    _ensure_registered()
    return list(DATASETS.get(name).domains(root))


def list_datasets() -> list[str]:
    _ensure_registered()
    return DATASETS.list()


def _ensure_registered() -> None:
    # Builders live in submodules that import heavy packages only when a dataset is built.
    from . import coop_datasets, cue_conflict, domainnet, folders, imagenet, ood_sets, retrieval, world_data  # noqa: F401
    from . import imagenet_c  # noqa: F401  (holistic study: ImageNet-C cells)


def require_dir(path, what: str, layout: str):
    """Return ``Path(path)`` if it is an existing folder, else raise a DataError naming the layout."""
    from pathlib import Path

    if path in (None, ""):
        raise DataError(f"{what} needs a data folder (--data-root); expected layout: {layout}")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(f"{what} folder {p} does not exist; expected layout: {layout}")
    return p
