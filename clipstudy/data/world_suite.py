"""The world suite: few-shot downstream datasets on the embedded world, the analogue of CoOp's 11 datasets.

Each dataset is a task the world can pose that differs from the others in domain and in *what is to be
recognised* (docs/world_suite.md justifies each by the CoOp dataset it stands for):

* ``world-shapes`` (ImageNet): the 30 ID shapes as photos, ``a photo of a {}.``;
* ``world-icons`` (Caltech101): the 8 object icons as centred, unoccluded cliparts, ``a clipart of a {}.``;
* ``world-siblings`` (FGVC-Aircraft): 8 ID shapes and their near-OOD siblings, pair by pair, ``a photo of a {}.``;
* ``world-scenes`` (SUN397): photos labelled by their background (6), ``a photo of a {}.``;
* ``world-textures`` (DTD): texture fields labelled by their pattern (9), ``a photo of a {} texture.``;
* ``world-infograph`` (EuroSAT): the 30 ID shapes as infographics, ``an infographic of a {}.``;
* ``world-sketch`` (ImageNet-Sketch): the 30 ID shapes as sketches, ``a sketch of a {}.``.

How a split is made (:class:`SuiteData`): a world stream (:class:`clipstudy.world.WorldConfig`) with the
dataset's kind, its one domain and its fixed factors is read in index order, each image is labelled by the
dataset's label factor (the shape class, the pattern or the background) and the first images of each label
are kept until every class has its share of ``n`` (shares differ by at most one image). The other factors
keep the world's priors. Splits are the world's split streams (``train``, ``val``, ``test``: disjoint random
streams) and the stream seed is derived from the dataset name and ``seed``, so no suite image is an image of
the pretraining stream, of another suite dataset or of the world sets of the studies. Labels are in the
order of :attr:`SuiteData.classnames`; the CoOp base/new split takes the first ``ceil(n/2)`` as base
(docs/protocols.md §0.5; :func:`base_new_split`).

Every dataset carries ``template``, its hand-crafted prompt in the phrasing of the world's captions (CoOp's
``CUSTOM_TEMPLATES``; also the registry metadata key ``template``). :data:`SUITES` maps a suite name to its
datasets (:func:`list_suites`).
"""
from __future__ import annotations

import functools
import hashlib
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import ConfigError, DataError
from . import DATASETS

SPLITS = ("train", "val", "test")
DEFAULT_N = {"train": 1600, "val": 400, "test": 900}
"""Images per split when ``n`` is not given."""
SUITE_VERSION = 1
"""Part of every cache key: bump it when the selection of images changes."""
STREAM_LENGTH = 10 ** 9
"""Length of the world stream a split is selected from (only the first few thousand images are read)."""
MAX_IMAGES = 1_000_000
"""Most images one split may have (every label is computed when it is built, as for the ``world`` dataset)."""
SCAN_FACTOR = 200
"""A split reads at most ``SCAN_FACTOR * n + 1000`` stream images before giving up (a label never drawn)."""


@dataclass(frozen=True)
class SuiteSpec:
    """One suite dataset: what it shows and how it is labelled.

    ``label`` is ``"class"`` (the shape class; ``values`` are world class names) or a factor of the scene
    (``"pattern"``, ``"background"``; ``values`` are that factor's values). ``classnames`` are the names the
    prompt uses, in label order. ``shown`` are the object classes drawn when the label is a factor (``None``:
    no object, or the label classes themselves). ``fixed`` are forced factor values; the dataset has one
    ``domain``, so a forced value that domain cannot render is an error, never a silently dropped domain.
    """

    name: str
    stands_for: str
    kind: str
    domain: str
    label: str
    values: tuple
    classnames: tuple
    template: str
    shown: tuple | None = None
    fixed: tuple = ()
    typical_texture_prob: float = 0.7

    @property
    def num_classes(self) -> int:
        return len(self.values)


# The static part of each dataset (registered at import without touching the world's data); the class
# lists are read from the world's catalog when a dataset is first built (:func:`suite_specs`).
_STATIC = {
    "world-shapes": ("ImageNet", "photo", "a photo of a {}.",
                     "the 30 in-distribution shapes as photos"),
    "world-icons": ("Caltech101", "clipart", "a clipart of a {}.",
                    "the 8 object icons as centred, unoccluded cliparts"),
    "world-siblings": ("FGVC-Aircraft", "photo", "a photo of a {}.",
                       "8 in-distribution shapes and their near-OOD siblings, in pairs"),
    "world-scenes": ("SUN397", "photo", "a photo of a {}.",
                     "photos labelled by their background, whatever object stands in them"),
    "world-textures": ("DTD", "photo", "a photo of a {} texture.",
                       "full-frame pattern fields labelled by their pattern"),
    "world-infograph": ("EuroSAT", "infograph", "an infographic of a {}.",
                        "the 30 in-distribution shapes as infographics, the rarest pretraining domain "
                        "(EuroSAT analogue)"),
    "world-sketch": ("ImageNet-Sketch", "sketch", "a sketch of a {}.",
                     "the 30 in-distribution shapes as grayscale sketches"),
}

SUITES: dict[str, tuple[str, ...]] = {"world-suite": tuple(_STATIC)}
"""Suite name -> its datasets, in the order of CoOp's tables (ImageNet first)."""


def list_suites() -> dict[str, list[str]]:
    """``{suite name: [dataset names]}`` of every suite."""
    return {k: list(v) for k, v in SUITES.items()}


def suite_datasets(suite: str = "world-suite") -> list[str]:
    """The datasets of ``suite``; an unknown suite is a :class:`ConfigError` listing the valid ones."""
    if suite not in SUITES:
        raise ConfigError(f"unknown suite {suite!r}; valid suites: {', '.join(SUITES)}")
    return list(SUITES[suite])


def _phrase_noun(phrase: str) -> str:
    """'on a grassy background' -> 'grassy background', 'against a blue sky' -> 'blue sky'."""
    words = phrase.split()
    for i, w in enumerate(words):
        if w in ("a", "an", "the"):
            return " ".join(words[i + 1:])
    return phrase


def sibling_pairs() -> tuple[tuple[str, str], ...]:
    """``(ID class, its near-OOD sibling)`` pairs, in the catalog order of the ID classes."""
    from ..world.catalog import CLASS_INFO, class_groups

    near = {CLASS_INFO[c]["near"]: c for c in class_groups()["near_ood"]}
    return tuple((c, near[c]) for c in class_groups()["id"] if c in near)


@functools.lru_cache(maxsize=None)
def suite_specs() -> dict[str, SuiteSpec]:
    """Every suite dataset's :class:`SuiteSpec`, its class lists read from the world's catalog and its class
    names from the caption vocabulary (``clipstudy/world/captions.json``)."""
    from ..world.captions import VOCAB
    from ..world.catalog import BACKGROUNDS, PATTERNS, class_groups

    groups = class_groups()
    ids, far = tuple(groups["id"]), tuple(groups["far_ood"])
    siblings = tuple(c for pair in sibling_pairs() for c in pair)
    patterns = tuple(p for p in PATTERNS if p != "solid")  # a texture field always has a texture
    specs = {}

    def add(name, kind, label, values, classnames, **kw):
        stands_for, domain, template, _ = _STATIC[name]
        specs[name] = SuiteSpec(name, stands_for, kind, domain, label, tuple(values), tuple(classnames),
                                template, **kw)

    add("world-shapes", "object", "class", ids, ids)
    add("world-icons", "object", "class", far, far, fixed=(("occlusion", "none"), ("position", "center")))
    add("world-siblings", "object", "class", siblings, siblings)
    add("world-scenes", "object", "background", BACKGROUNDS,
        [_phrase_noun(VOCAB["background"][b][0]) for b in BACKGROUNDS], shown=ids)
    add("world-textures", "texture_only", "pattern", patterns, [VOCAB["pattern"][p][0] for p in patterns],
        fixed=(("background", "none"),))
    add("world-infograph", "object", "class", ids, ids)
    add("world-sketch", "object", "class", ids, ids)
    return specs


def get_spec(name: str) -> SuiteSpec:
    specs = suite_specs()
    if name not in specs:
        raise ConfigError(f"unknown suite dataset {name!r}; valid: {', '.join(specs)}")
    return specs[name]


def base_new_split(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(base class names, new class names)`` of a suite dataset: labels in order, the first ``ceil(n/2)``
    are base (CoOp's ``subsample_classes``, docs/protocols.md §0.5)."""
    names = get_spec(name).classnames
    m = math.ceil(len(names) / 2)
    return names[:m], names[m:]


def stream_seed(name: str, seed: int) -> int:
    """The world seed of dataset ``name`` at ``seed``: a 31-bit hash, so suite streams are disjoint from each
    other and from the small seeds the pretraining and the studies' world sets use."""
    digest = hashlib.blake2b(f"world-suite:{name}:{int(seed)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2 ** 31 - 1)


def world_config(spec: SuiteSpec, split: str, seed: int, image_size: int = 64):
    """The world stream a split of ``spec`` is selected from."""
    from ..world import WorldConfig

    classes = spec.values if spec.label == "class" else spec.shown
    fixed = tuple(spec.fixed) + (("domain", spec.domain),)
    try:
        cfg = WorldConfig(seed=stream_seed(spec.name, seed), split=split, n=STREAM_LENGTH, image_size=image_size,
                          classes=classes, domains=((spec.domain, 1.0),), kind=spec.kind, fixed=fixed,
                          typical_texture_prob=spec.typical_texture_prob)
    except ValueError as exc:
        raise ConfigError(f"suite dataset {spec.name!r}: {exc}") from None
    if tuple(d for d, _ in cfg.mixture) != (spec.domain,):
        raise ConfigError(f"suite dataset {spec.name!r} would render {cfg.mixture}, not its domain {spec.domain!r}")
    return cfg


def class_counts(n: int, k: int) -> list[int]:
    """``n`` images over ``k`` classes as evenly as possible: the first ``n % k`` classes get one more."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not k <= n <= MAX_IMAGES:
        raise ConfigError(f"n (images in the split) must be an integer in {k}..{MAX_IMAGES:,} (at least one "
                          f"per class), got {n!r}")
    q, r = divmod(int(n), k)
    return [q + (1 if c < r else 0) for c in range(k)]


def scene_label(spec: SuiteSpec, scene) -> int:
    """The suite label of a world scene, or -1 if the scene shows none of the dataset's label values."""
    value = scene.class_name if spec.label == "class" else scene.factors[spec.label]
    try:
        return spec.values.index(value)
    except ValueError:
        return -1


def select(spec: SuiteSpec, cfg, n: int) -> tuple[list[int], list[int]]:
    """Stream indices and labels of a split: the stream read in index order, each label kept until it has
    its share of ``n`` (:func:`class_counts`)."""
    from ..world.sampling import sample_scene

    need = class_counts(n, spec.num_classes)
    left = n
    indices, labels = [], []
    limit = SCAN_FACTOR * n + 1000
    i = 0
    while left:
        if i >= limit:
            missing = [spec.classnames[c] for c, k in enumerate(need) if k]
            raise DataError(f"suite dataset {spec.name!r}: {limit} stream images hold too few of {missing}")
        y = scene_label(spec, sample_scene(cfg, i))
        if y >= 0 and need[y]:
            need[y] -= 1
            left -= 1
            indices.append(i)
            labels.append(y)
        i += 1
    return indices, labels


class SuiteData:
    """One split of a suite dataset, with the common dataset interface (``classnames``, ``targets``,
    ``cache_key``, ``name``, ``domain``) plus ``template``, ``get_batch`` and ``factor_table``.

    Item ``i`` is the world image at ``stream_indices[i]`` with ``label`` set to its suite label."""

    def __init__(self, spec: SuiteSpec, split: str, n: int, seed: int, image_size: int = 64,
                 transform: Callable | None = None):
        import numpy as np

        from ..world import WorldDataset

        self.spec, self.split, self.n, self.seed = spec, split, int(n), int(seed)
        self.cfg = world_config(spec, split, seed, image_size)
        self._world = WorldDataset(self.cfg, transform=transform)
        indices, labels = select(spec, self.cfg, self.n)
        self.stream_indices = np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(labels, dtype=np.int64)
        self.name, self.domain, self.template = spec.name, spec.domain, spec.template
        self.classnames = tuple(spec.classnames)
        self.base_classnames, self.new_classnames = base_new_split(spec.name)

    @property
    def cache_key(self) -> str:
        digest = hashlib.blake2b(self.stream_indices.tobytes() + self.targets.tobytes(), digest_size=8).hexdigest()
        return (f"world-suite-v{SUITE_VERSION}:{self.name}:{self.split}:n={self.n}:seed={self.seed}:"
                f"{self.spec.label}={','.join(self.spec.values)}:{self.cfg!r}:{digest}")

    def __len__(self) -> int:
        return len(self.stream_indices)

    def __repr__(self) -> str:
        return f"SuiteData({self.name!r}, split={self.split!r}, n={self.n}, seed={self.seed})"

    def _local(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {self.name} ({len(self)} images)")
        return i

    def __getitem__(self, i: int) -> dict:
        i = self._local(i)
        item = dict(self._world[int(self.stream_indices[i])])
        item["label"], item["index"] = int(self.targets[i]), i
        return item

    def get_batch(self, indices: Sequence[int]):
        """Images ``indices`` as one uint8 ``(B, H, W, 3)`` array (the fast path of :class:`specs.InMemory`)."""
        return self._world.get_batch([int(self.stream_indices[self._local(i)]) for i in indices])

    def factor_table(self) -> list[dict]:
        """Per image: ``index``, the suite ``label``, ``class_name`` (the shape, "texture" for a texture field),
        every world factor and ``stream_index``."""
        from ..world.sampling import sample_scene

        rows = []
        for i, (j, y) in enumerate(zip(self.stream_indices.tolist(), self.targets.tolist())):
            sc = sample_scene(self.cfg, j)
            rows.append({"index": i, "label": y, "class_name": sc.class_name, **sc.factors, "stream_index": j})
        return rows


def build_suite(name: str, split: str = "test", domain: str | None = None, transform=None, n: int | None = None,
                seed: int = 0, image_size: int = 64) -> SuiteData:
    """A split of suite dataset ``name`` (``n`` images, default :data:`DEFAULT_N`)."""
    spec = get_spec(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r} for dataset {name!r}; valid splits: {', '.join(SPLITS)}")
    if domain not in (None, spec.domain):
        raise ConfigError(f"dataset {name!r} has no domain {domain!r}; valid domains: {spec.domain}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    n = DEFAULT_N[split] if n is None else n
    class_counts(n, spec.num_classes)  # a bad n fails before the stream is read
    return SuiteData(spec, split, int(n), int(seed), image_size, transform)


def _register(name: str) -> None:
    stands_for, domain, template, what = _STATIC[name]

    class Builder:
        __doc__ = (f"World suite, {stands_for} analogue: {what}. Prompt {template!r}; options ``n`` images per "
                   f"split (train {DEFAULT_N['train']}, val {DEFAULT_N['val']}, test {DEFAULT_N['test']}), "
                   "``seed``, ``image_size``.")

        @staticmethod
        def build(root=None, split="test", domain=None, transform=None, n: int | None = None, seed: int = 0,
                  image_size: int = 64):
            return build_suite(name, split, domain, transform, n=n, seed=seed, image_size=image_size)

        @staticmethod
        def domains(root=None):
            return [domain]

    Builder.__name__ = Builder.__qualname__ = "".join(w.title() for w in name.split("-")) + "Builder"
    DATASETS.register(name, obj=Builder, family="world-suite", suite="world-suite", stands_for=stands_for,
                      domain=domain, template=template)


for _name in _STATIC:
    _register(_name)
