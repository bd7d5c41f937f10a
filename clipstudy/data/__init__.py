"""Datasets: one registry for the embedded world and real benchmarks.

Every dataset object has the same small interface, whatever its source:

* ``len(ds)``, ``ds[i] -> {"image": ..., "label": int, ...}`` (image after ``transform``);
* ``ds.classnames`` (tuple of readable names), ``ds.targets`` (numpy int array);
* ``ds.cache_key`` — a string that changes whenever the content would (used by feature caches);
* ``ds.name`` and ``ds.domain``.

Builders are registered in :data:`DATASETS` and called through :func:`build_dataset`;
:func:`dataset_domains` lists the domains a dataset offers (a dataset without domains has one,
named after it). Every module of this package is imported on the first lookup in :data:`DATASETS`
(:func:`clipstudy.registry.import_submodules`), so a builder module registers itself without being added
to any list; builder modules import heavy packages only when a dataset is built.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from ..errors import ConfigError, DataError
from ..registry import Registry

DATASETS = Registry("dataset", package=__name__)


def build_dataset(name: str, *, root: str | None = None, split: str = "test", domain: str | None = None,
                  transform: Callable | None = None, **options: Any):
    """Build a registered dataset; unknown names or options give a clear error."""
    builder = DATASETS.get(name)
    accepted = set(inspect.signature(builder.build).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        valid = sorted(accepted - {"root", "split", "domain", "transform"})
        raise ConfigError(f"dataset {name!r} has no option(s) {unknown}; valid options: {valid}")
    return builder.build(root=root, split=split, domain=domain, transform=transform, **options)


def dataset_domains(name: str, root: str | None = None) -> list[str]:
    return list(DATASETS.get(name).domains(root))


def list_datasets() -> list[str]:
    return DATASETS.list()


def _ensure_registered() -> None:
    """Import every dataset module now (kept for callers of the former hand-kept import list; any lookup in
    :data:`DATASETS` does it)."""
    DATASETS.load()


def require_dir(path, what: str, layout: str):
    """Return ``Path(path)`` if it is an existing folder, else raise a DataError naming the layout."""
    from pathlib import Path

    if path in (None, ""):
        raise DataError(f"{what} needs a data folder (--data-root); expected layout: {layout}")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(f"{what} folder {p} does not exist; expected layout: {layout}")
    return p
