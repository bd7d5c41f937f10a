"""The embedded procedural world as a registered dataset family (``world``)."""
from __future__ import annotations

from typing import Callable, Sequence

from ..errors import ConfigError
from . import DATASETS

SPLITS = ("train", "val", "test")

#: Most images one world dataset may have: every label is computed when it is built (~40 us each) and
#: every image is rendered in memory (~2 ms each on a CPU), so a million is already about half an hour.
MAX_IMAGES = 1_000_000


def check_n(n) -> int:
    """``n`` as an int if it is a valid number of world images (1..:data:`MAX_IMAGES`), else a ConfigError."""
    import numbers

    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_IMAGES:
        raise ConfigError(f"n (world images per domain) must be an integer in 1..{MAX_IMAGES:,}, got {n!r} "
                          "(images are rendered in memory and every label is computed up front)")
    return int(n)


def resolve_classes(classes) -> tuple[str, ...] | None:
    """``None``/"all" -> every class; a group name ("id", "near_ood", "far_ood") -> its classes;
    a comma-separated string or a sequence -> those classes."""
    from ..world import class_groups

    if classes in (None, "", "all"):
        return None
    if isinstance(classes, str):
        groups = class_groups()
        if classes in groups:
            return tuple(groups[classes])
        if "," not in classes and " " not in classes.strip() and classes not in _all_names():
            raise ConfigError(f"unknown world class group {classes!r}; valid groups: all, {', '.join(groups)}")
        classes = [c.strip() for c in classes.split(",")]
    return tuple(classes)


def _all_names():
    from ..world import CLASS_NAMES

    return CLASS_NAMES


class WorldData:
    """A :class:`clipstudy.world.WorldDataset` with the common dataset interface."""

    name = "world"

    def __init__(self, cfg, transform: Callable | None = None):
        from ..world import WorldDataset

        self.cfg = cfg
        self._ds = WorldDataset(cfg, transform=transform)
        self.classnames = tuple(self._ds.classnames)
        self.targets = self._ds.targets
        fixed = dict(cfg.fixed)
        self.domain = fixed.get("domain", "mixed")

    @property
    def cache_key(self) -> str:
        return f"world:{self.cfg!r}"

    def __len__(self) -> int:
        return len(self._ds)

    def __getitem__(self, i: int) -> dict:
        item = dict(self._ds[i])
        item["index"] = i
        return item

    def get_batch(self, indices: Sequence[int]):
        return self._ds.get_batch(indices)

    def factor_table(self):
        return self._ds.factor_table()


@DATASETS.register("world")
class WorldBuilder:
    """The procedurally rendered world (``clipstudy.world``). Options: ``n`` images, ``seed``,
    ``classes`` (all / id / near_ood / far_ood / a list), ``kind`` (object, cue_conflict,
    texture_only), ``corruption`` and ``severity``, ``image_size``, ``fixed`` factor values."""

    @staticmethod
    def build(root=None, split="test", domain=None, transform=None, n: int = 1000, seed: int = 0,
              classes=None, kind: str = "object", corruption: str | None = None, severity: int = 3,
              image_size: int = 64, fixed: tuple = (), typical_texture_prob: float | None = None):
        from ..world import DOMAINS, WorldConfig

        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r} for dataset 'world'; valid splits: {', '.join(SPLITS)}")
        fixed = tuple(tuple(kv) for kv in (fixed.items() if isinstance(fixed, dict) else fixed))
        kw = {}
        if domain is not None:
            if domain not in DOMAINS:
                raise ConfigError(f"dataset 'world' has no domain {domain!r}; valid domains: {', '.join(DOMAINS)}")
            fixed = tuple(kv for kv in fixed if kv[0] != "domain") + (("domain", domain),)
            kw["domains"] = ((domain, 1.0),)
        if typical_texture_prob is not None:
            kw["typical_texture_prob"] = typical_texture_prob
        cfg = WorldConfig(seed=seed, split=split, n=check_n(n), image_size=image_size, classes=resolve_classes(classes),
                          kind=kind, fixed=fixed, corruption=corruption, severity=severity, **kw)
        return WorldData(cfg, transform=transform)

    @staticmethod
    def domains(root=None):
        from ..world import DOMAINS

        return list(DOMAINS)
