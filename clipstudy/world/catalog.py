"""Reference data of the world, read once from the JSON files next to this module.

Everything that is a *list* (class names, colours, patterns, backgrounds, factor priors, what
each domain can show) lives in ``classes.json`` and ``world.json``; this module only loads and
indexes it. Loading two small JSON files is cheap, so it happens at import; the expensive texture
and background banks are built lazily elsewhere (:mod:`clipstudy.world.banks`).

Class groups
    ``id`` classes are what models are trained and evaluated on. ``near_ood`` classes are close
    siblings of one ID class each (``near`` names it: heptagon ~ hexagon, oval ~ circle, ...), so
    they are hard to tell apart from ID. ``far_ood`` classes are everyday object icons, a family
    of shapes absent from ID.

Typical appearance
    Every class has a typical (pattern, colour) pair, unique per class. Colours and patterns are
    each shared by about three ID classes, so only the *pair* identifies a class: a model can solve
    the task from shape alone or from texture alone when the object wears its typical texture.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

_HERE = Path(__file__).resolve().parent


def _load(name: str) -> dict:
    with open(_HERE / name, encoding="utf-8") as fh:
        return json.load(fh)


_CLASSES = _load("classes.json")["classes"]
_WORLD = _load("world.json")

#: Every class of the world, in a fixed order (ID first, then near-OOD, then far-OOD).
CLASS_NAMES: tuple[str, ...] = tuple(c["name"] for c in _CLASSES)
CLASS_INFO = MappingProxyType({c["name"]: MappingProxyType(c) for c in _CLASSES})
GROUPS: tuple[str, ...] = ("id", "near_ood", "far_ood")

COLORS: dict[str, tuple[int, int, int]] = {k: tuple(v) for k, v in _WORLD["colors"].items()}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
PATTERNS: tuple[str, ...] = tuple(_WORLD["patterns"])
BACKGROUNDS: tuple[str, ...] = tuple(_WORLD["backgrounds"])
DOMAINS: tuple[str, ...] = tuple(_WORLD["domains"])
DOMAIN_NOUNS: dict[str, str] = dict(_WORLD["domain_nouns"])
DEFAULT_MIXTURE: tuple[tuple[str, float], ...] = tuple(
    (k, float(v)) for k, v in _WORLD["default_mixture"].items())
PRIORS: dict[str, dict[str, float]] = _WORLD["priors"]
SIZE_RADIUS: dict[str, tuple[float, float]] = {k: tuple(v) for k, v in _WORLD["size_radius"].items()}
ROTATION_DEGREES: dict[str, tuple[float, float]] = {
    k: tuple(v) for k, v in _WORLD["rotation_degrees"].items()}
KIND_DOMAINS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _WORLD["kind_domains"].items()}
KINDS: tuple[str, ...] = tuple(KIND_DOMAINS)
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Factor -> every value it can take. ``"none"`` marks a factor that does not apply: colour and
#: pattern in a grayscale sketch, size/position/rotation in a texture-only image.
FACTORS: dict[str, tuple[str, ...]] = {
    "domain": DOMAINS,
    "color": COLOR_NAMES + ("none",),
    "pattern": PATTERNS + ("none",),
    "size": tuple(PRIORS["size"]) + ("none",),
    "position": tuple(PRIORS["position"]) + ("none",),
    "rotation": tuple(PRIORS["rotation"]) + ("none",),
    "background": BACKGROUNDS + ("none",),
    "occlusion": tuple(PRIORS["occlusion"]),
    "appearance": ("typical", "random", "conflict", "none"),
}

_DEFAULT_SUPPORT = {
    "color": COLOR_NAMES, "pattern": PATTERNS, "background": BACKGROUNDS,
    "size": tuple(PRIORS["size"]), "position": tuple(PRIORS["position"]),
    "rotation": tuple(PRIORS["rotation"]), "occlusion": tuple(PRIORS["occlusion"]),
    "appearance": ("typical", "random"),
}


def domain_support(domain: str, factor: str) -> tuple[str, ...]:
    """Values of ``factor`` that ``domain`` can render for an object image."""
    if factor == "domain":
        return (domain,)
    if factor == "appearance" and domain == "sketch":
        return ("none",)
    override = _WORLD["domain_support"][domain].get(factor)
    return tuple(override) if override is not None else _DEFAULT_SUPPORT[factor]


def class_groups() -> dict[str, list[str]]:
    """``{"id", "near_ood", "far_ood", "base", "new"}`` -> class names in :data:`CLASS_NAMES` order.

    ``base``/``new`` split the ID classes as CoOp's ``subsample_classes`` does (docs/protocols.md §0.5):
    labels in order, the first ceil(n/2) are base, the rest new.
    """
    groups = {g: [c["name"] for c in _CLASSES if c["group"] == g] for g in GROUPS}
    ids = groups["id"]
    half = -(-len(ids) // 2)
    groups.update(base=ids[:half], new=ids[half:])
    return groups


def typical_appearance(class_name: str) -> tuple[str, str]:
    """The (pattern, colour) a class wears by default."""
    t = CLASS_INFO[class_name]["typical"]
    return t["pattern"], t["color"]
