"""``WorldConfig``: everything that defines a stream of world images, validated on construction."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any

from .catalog import (CLASS_NAMES, DEFAULT_MIXTURE, DOMAINS, FACTORS, KIND_DOMAINS, KINDS,
                      SPLITS, domain_support)
from .corruptions import CORRUPTIONS

#: What ``caption_names`` can make captions name less often: the class of an object of each class group,
#: the class of an object in each domain (``domain:<name>``), the pattern, the background.
NAMING_KEYS = ("id", "near_ood", "far_ood", *(f"domain:{d}" for d in DOMAINS), "pattern", "background")

#: Factors a texture-only image has no use for; they are always "none" there.
_OBJECT_ONLY = ("size", "position", "rotation")


def texture_variants_implied(fixed: dict) -> set:
    """Which texture-only variants ("pattern" field / "background" field) ``fixed`` allows."""
    out = set()
    for k in ("pattern", "color"):
        if k in fixed:
            out.add("pattern" if fixed[k] != "none" else "background")
    if "background" in fixed:
        out.add("background" if fixed["background"] != "none" else "pattern")
    return out


def _as_pairs(value: Any, what: str) -> tuple:
    if isinstance(value, dict):
        value = tuple(value.items())
    try:
        pairs = tuple((k, v) for k, v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a dict or a sequence of (name, value) pairs, "
                         f"got {value!r}") from None
    return pairs


def _check_choice(value: Any, valid, what: str) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(repr, valid))}")


@dataclass(frozen=True)
class WorldConfig:
    """A deterministic stream of ``n`` world images.

    ``seed``/``split``/``kind`` select independent random streams; image ``i`` depends only on
    the config and ``i``. ``classes`` restricts (and orders) the label set: labels are indices
    into it (``None`` = all of :data:`CLASS_NAMES`). ``domains`` is a mixture of (domain, weight).
    ``fixed`` forces factor values, e.g. ``(("domain", "sketch"), ("occlusion", "none"))``; a
    forced value that a domain cannot render (a colour in a grayscale sketch) removes that domain
    from the mixture, and a config left with no domain is rejected. ``kind`` is "object",
    "cue_conflict" (shape of one class, typical texture of another; only domains that render
    texture: photo, painting, infograph) or "texture_only" (no object; photo and painting).
    ``corruption``/``severity`` apply one of :data:`CORRUPTIONS` to every image.
    Dicts and lists are accepted for the tuple fields and normalised.
    """

    seed: int = 0
    split: str = "train"
    n: int = 10000
    image_size: int = 64
    classes: tuple[str, ...] | None = None
    domains: tuple[tuple[str, float], ...] = DEFAULT_MIXTURE
    typical_texture_prob: float = 0.7
    simple_caption_prob: float = 0.5
    kind: str = "object"
    fixed: tuple[tuple[str, str], ...] = ()
    corruption: str | None = None
    severity: int = 3
    # Caption-only knob (pretraining presets): left out of repr because repr is the image-cache key and it
    # never changes a pixel. See NAMING_KEYS and clipstudy.world.captions.caption_scene.
    caption_names: tuple[tuple[str, float], ...] = field(default=(), repr=False)
    _mixture: tuple[tuple[str, float], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_scalars()
        self._normalise_collections()
        self._check_fixed()
        object.__setattr__(self, "_mixture", self._effective_mixture())

    # -- validation ---------------------------------------------------------------------------
    def _check_scalars(self) -> None:
        for name in ("seed", "n", "image_size", "severity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an int, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.seed < 0 or self.n < 0:
            raise ValueError(f"seed and n must be >= 0, got seed={self.seed}, n={self.n}")
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be in 16..1024, got {self.image_size}")
        _check_choice(self.split, SPLITS, "split")
        _check_choice(self.kind, KINDS, "kind")
        for name in ("typical_texture_prob", "simple_caption_prob"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        if self.corruption is not None:
            _check_choice(self.corruption, CORRUPTIONS, "corruption")
        if not 1 <= self.severity <= 5:
            raise ValueError(f"severity must be in 1..5, got {self.severity}")

    def _normalise_collections(self) -> None:
        if self.classes is not None:
            classes = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
            for c in classes:
                _check_choice(c, CLASS_NAMES, "class")
            if not classes or len(set(classes)) != len(classes):
                raise ValueError(f"classes must be non-empty and without duplicates, got {classes}")
            if self.kind == "cue_conflict" and len(classes) < 2:
                raise ValueError("kind='cue_conflict' needs at least two classes")
            object.__setattr__(self, "classes", classes)
        domains = _as_pairs(self.domains, "domains")
        for d, w in domains:
            _check_choice(d, DOMAINS, "domain")
            if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"domain weights must be finite and >= 0, got {d!r}: {w!r}")
        if len({d for d, _ in domains}) != len(domains):
            raise ValueError(f"domains lists a domain twice: {domains}")
        object.__setattr__(self, "domains", tuple((d, float(w)) for d, w in domains))
        fixed = _as_pairs(self.fixed, "fixed")
        if len({k for k, _ in fixed}) != len(fixed):
            raise ValueError(f"fixed sets a factor twice: {fixed}")
        object.__setattr__(self, "fixed", tuple(sorted(fixed)))
        names = _as_pairs(self.caption_names, "caption_names")
        for k, p in names:
            _check_choice(k, NAMING_KEYS, "caption_names key")
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"caption_names[{k!r}] must be a probability in [0, 1], got {p!r}")
        object.__setattr__(self, "caption_names", tuple(sorted((k, float(p)) for k, p in names)))

    def _check_fixed(self) -> None:
        for k, v in self.fixed:
            _check_choice(k, tuple(FACTORS), "factor")
            _check_choice(v, FACTORS[k], f"value for factor {k!r}")
        fx = dict(self.fixed)
        if self.kind == "texture_only":
            for k in _OBJECT_ONLY + ("occlusion", "appearance"):
                if fx.get(k, "none") != "none":
                    raise ValueError(f"texture_only images have no object: {k!r} can only be "
                                     f"'none', got {fx[k]!r}")
            if fx.get("pattern") == "solid":
                raise ValueError("texture_only images need a texture; pattern 'solid' is not one")
            if fx.get("background") == "plain":
                raise ValueError("texture_only images need a texture; background 'plain' is not one")
            if len(texture_variants_implied(fx)) > 1:
                raise ValueError("a texture_only image is either a pattern field (pattern and colour "
                                 "set, background 'none') or a background field (pattern and colour "
                                 f"'none'); fixed={fx} asks for both")
            return
        for k in _OBJECT_ONLY:
            if fx.get(k) == "none":
                raise ValueError(f"{self.kind!r} images always have an object: {k!r} cannot be 'none'")
        if self.kind == "cue_conflict" and {"color", "pattern", "appearance"} & set(fx):
            raise ValueError("cue_conflict takes colour and pattern from the texture class; "
                             "they (and 'appearance') cannot be fixed")
        if "appearance" in fx and {"color", "pattern"} & set(fx):
            raise ValueError("fix either 'appearance' or 'color'/'pattern', not both")

    def _supports(self, domain: str) -> bool:
        """Can ``domain`` render this kind with the fixed factor values (domain aside)?"""
        if domain not in KIND_DOMAINS[self.kind]:
            return False
        if self.kind == "texture_only":
            return True
        return all(v in domain_support(domain, k) for k, v in self.fixed if k != "domain")

    def _effective_mixture(self) -> tuple[tuple[str, float], ...]:
        fixed_domain = dict(self.fixed).get("domain")
        if fixed_domain is not None:
            mixture = ((fixed_domain, 1.0),)
        else:
            mixture = tuple((d, w) for d, w in self.domains if w > 0)
            if not mixture:
                raise ValueError(f"domains needs at least one positive weight, got {self.domains}")
        kept = tuple((d, w) for d, w in mixture if self._supports(d))
        if not kept:
            valid = [d for d in DOMAINS if self._supports(d)]
            others = {k: v for k, v in self.fixed if k != "domain"}
            raise ValueError(
                f"no domain of {[d for d, _ in mixture]} can render kind={self.kind!r} with "
                f"fixed={others}; domains that can: {valid or 'none'}")
        total = sum(w for _, w in kept)
        return tuple((d, w / total) for d, w in kept)

    # -- conveniences -------------------------------------------------------------------------
    @property
    def classnames(self) -> tuple[str, ...]:
        """The label set: ``classes`` or every class."""
        return self.classes if self.classes is not None else CLASS_NAMES

    @property
    def mixture(self) -> tuple[tuple[str, float], ...]:
        """Domains actually sampled, with normalised weights (after ``kind``/``fixed`` filters)."""
        return self._mixture

    @classmethod
    def for_domain(cls, domain: str, **kw) -> "WorldConfig":
        """A config whose images all come from ``domain``."""
        _check_choice(domain, DOMAINS, "domain")
        return cls(domains=((domain, 1.0),), **kw)

    def replace(self, **changes) -> "WorldConfig":
        """A copy with some fields changed (re-validated)."""
        return replace(self, **changes)
