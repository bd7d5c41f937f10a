"""Sampling the *scene* of image ``i``: class, domain, nuisance factors and continuous pose.

Every image gets its own generator, ``default_rng([seed, split, kind, index, stream])``, so an
image depends only on (config, index): not on access order, on other images or on the process.
Separate ``stream`` numbers feed the scene (here), the renderer, the caption and the corruption,
so :func:`sample_factors` is cheap (no rendering) and captions can change without moving pixels.

All scene randomness is drawn up front as one vector of uniforms, each factor reading its own
slots. Forcing one factor (``fixed``) therefore leaves every other factor of the image unchanged,
which is what galleries need ("the same object, rotated").
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .catalog import (BACKGROUNDS, COLOR_NAMES, PATTERNS, PRIORS,
                      ROTATION_DEGREES, SIZE_RADIUS, domain_support, typical_appearance)
from .config import WorldConfig, texture_variants_implied

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
KIND_CODES = {"object": 0, "cue_conflict": 1, "texture_only": 2}
STREAM_SCENE, STREAM_RENDER, STREAM_CAPTION, STREAM_CORRUPT = 0, 1, 2, 3
TEXTURE_LABEL = -1  # label of texture-only images (no class)
_SAMPLED = ("color", "pattern", "size", "position", "rotation", "background", "occlusion")


def stream(cfg: WorldConfig, index: int, purpose: int) -> np.random.Generator:
    """The generator of image ``index`` for one purpose (scene, render, caption, corruption)."""
    return np.random.default_rng(
        [cfg.seed, SPLIT_CODES[cfg.split], KIND_CODES[cfg.kind], int(index), purpose])


@dataclass(frozen=True)
class Scene:
    """What image ``index`` shows; ``radius``, ``cx``, ``cy`` are fractions of the image side."""

    index: int
    label: int
    class_name: str
    texture_class: str | None
    factors: dict
    radius: float = 0.0
    cx: float = 0.0
    cy: float = 0.0
    angle: float = 0.0

    @property
    def has_object(self) -> bool:
        return self.label != TEXTURE_LABEL


class _Plan:
    """Per-config lookup tables: the domain mixture and each domain's choices after ``fixed``."""

    def __init__(self, cfg: WorldConfig):
        self.classes = cfg.classnames
        self.domains = tuple(d for d, _ in cfg.mixture)
        self.domain_cum = np.cumsum([w for _, w in cfg.mixture])
        self.fixed = dict(cfg.fixed)
        self.choices = {d: {f: self._choice(d, f) for f in _SAMPLED} for d in self.domains}
        self.cropped_positions = self._weighted("position", [p for p in PRIORS["position"]
                                                            if p != "center"])

    def _choice(self, domain: str, factor: str):
        if factor in self.fixed:
            return (self.fixed[factor],), np.array([1.0])
        return self._weighted(factor, domain_support(domain, factor))

    @staticmethod
    def _weighted(factor: str, values):
        prior = PRIORS.get(factor, {})
        w = np.array([prior.get(v, 1.0) for v in values], float)
        return tuple(values), np.cumsum(w / w.sum())


@functools.lru_cache(maxsize=256)
def plan(cfg: WorldConfig) -> _Plan:
    return _Plan(cfg)


def _pick(choice, u: float) -> str:
    values, cum = choice
    return values[min(int(np.searchsorted(cum, u, side="right")), len(values) - 1)]


def _lerp(bounds, u: float) -> float:
    return bounds[0] + (bounds[1] - bounds[0]) * u


def sample_scene(cfg: WorldConfig, index: int) -> Scene:
    """The scene of image ``index`` (no rendering)."""
    if not 0 <= index < cfg.n:
        raise IndexError(f"index {index} out of range for a world of n={cfg.n} images")
    u = stream(cfg, index, STREAM_SCENE).random(24)
    p = plan(cfg)
    domain = p.domains[min(int(np.searchsorted(p.domain_cum, u[1], side="right")),
                           len(p.domains) - 1)]
    if cfg.kind == "texture_only":
        return _texture_scene(cfg, p, index, domain, u)
    return _object_scene(cfg, p, index, domain, u)


def _object_scene(cfg, p: _Plan, index: int, domain: str, u) -> Scene:
    k = len(p.classes)
    ci = min(int(u[0] * k), k - 1)
    shape = p.classes[ci]
    ch = p.choices[domain]
    texture_class = None
    if cfg.kind == "cue_conflict":
        texture_class = p.classes[(ci + 1 + min(int(u[2] * (k - 1)), k - 2)) % k]
        pattern, color = typical_appearance(texture_class)
        appearance = "conflict"
    else:
        pattern, color, appearance = _appearance(cfg, p, domain, shape, u[2:5])
    f = {"domain": domain, "color": color, "pattern": pattern, "appearance": appearance}
    f["occlusion"] = _pick(ch["occlusion"], u[5])
    f["size"] = _pick(ch["size"], u[6])
    radius = _lerp(SIZE_RADIUS[f["size"]], u[7])
    f["rotation"] = _pick(ch["rotation"], u[8])
    angle = _lerp(ROTATION_DEGREES[f["rotation"]], u[9]) * (1 if u[10] < 0.5 else -1)
    pos_choice = p.cropped_positions if (f["occlusion"] == "cropped" and "position" not in p.fixed) \
        else ch["position"]
    f["position"] = _pick(pos_choice, u[11])
    radius, cx, cy = _offset(f["position"], f["occlusion"], radius, u[12:15])
    f["background"] = _pick(ch["background"], u[15])
    label = ci
    return Scene(index, label, shape, texture_class, f, radius, cx, cy, angle)


def _appearance(cfg, p: _Plan, domain: str, cls: str, u):
    """(pattern, colour, appearance) of an object; see :mod:`clipstudy.world.catalog`."""
    pats, cols = p.choices[domain]["pattern"][0], p.choices[domain]["color"][0]
    if cols == ("none",):  # sketch: no colour, no texture
        return "none", "none", "none"
    tp, tc = typical_appearance(cls)
    tp = tp if tp in domain_support(domain, "pattern") else domain_support(domain, "pattern")[0]
    forced = p.fixed.get("appearance")
    typical = forced == "typical" if forced else u[0] < cfg.typical_texture_prob
    if typical:
        pattern = tp if tp in pats else pats[0]
        color = tc if tc in cols else cols[0]
    else:
        ci, pi = min(int(u[1] * len(cols)), len(cols) - 1), min(int(u[2] * len(pats)), len(pats) - 1)
        if (pats[pi], cols[ci]) == (tp, tc):  # "random" means: not the typical look
            if len(cols) > 1:
                ci = (ci + 1) % len(cols)
            else:
                pi = (pi + 1) % len(pats)
        pattern, color = pats[pi], cols[ci]
    return pattern, color, ("typical" if (pattern, color) == (tp, tc) else "random")


_DIRECTIONS = {"center": (0, 0), "left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1)}


def _offset(position: str, occlusion: str, radius: float, u):
    """Continuous centre offset for a position bin; 'cropped' pushes the object over the border.

    A cropped object keeps 55-75% of its extent in view. A cropped object whose position is forced
    to 'center' is instead enlarged 1.7x, a close-up that overflows every border.
    """
    dx, dy = _DIRECTIONS[position]
    room = max(0.5 - radius - 0.03, 0.1)
    perp = (u[1] - 0.5) * 2 * min(0.05, room)
    if occlusion == "cropped":
        if position == "center":
            return radius * 1.7, perp, (u[2] - 0.5) * 0.1
        along = 0.5 - radius + 2 * radius * (0.25 + 0.2 * u[0])
    elif position == "center":
        return radius, (u[0] - 0.5) * 2 * min(0.04, room), perp
    else:
        along = (0.55 + 0.45 * u[0]) * room
    return radius, dx * along + dy * perp, dy * along + dx * perp


_TEXTURE_PATTERNS = tuple(x for x in PATTERNS if x != "solid")
_TEXTURE_BACKGROUNDS = tuple(b for b in BACKGROUNDS if b != "plain")


def _texture_scene(cfg, p: _Plan, index: int, domain: str, u) -> Scene:
    """A texture-only image: a full-frame pattern field (60%) or a natural background (40%)."""
    fx = p.fixed
    implied = texture_variants_implied(fx)
    variant = implied.pop() if implied else ("pattern" if u[2] < 0.6 else "background")
    f = {"domain": domain, "size": "none", "position": "none", "rotation": "none",
         "occlusion": "none", "appearance": "none"}
    if variant == "pattern":
        f["pattern"] = fx.get("pattern") or _TEXTURE_PATTERNS[int(u[3] * len(_TEXTURE_PATTERNS))]
        f["color"] = fx.get("color") or COLOR_NAMES[int(u[4] * len(COLOR_NAMES))]
        f["background"] = "none"
    else:
        f["pattern"] = f["color"] = "none"
        f["background"] = fx.get("background") or _TEXTURE_BACKGROUNDS[
            int(u[15] * len(_TEXTURE_BACKGROUNDS))]
    return Scene(index, TEXTURE_LABEL, "texture", None, f)


def sample_factors(cfg: WorldConfig, index: int) -> dict:
    """Labels and caption of image ``index`` without rendering it (tens of microseconds).

    Keys: ``label`` (int; -1 for texture-only), ``class_name`` (the shape class, "texture" for
    texture-only), every factor of :data:`FACTORS`, ``caption``, and for cue-conflict images
    ``shape_class`` and ``texture_class``.
    """
    from .captions import caption_scene  # captions builds on this module

    sc = sample_scene(cfg, index)
    out = {"label": sc.label, "class_name": sc.class_name, **sc.factors}
    if cfg.kind == "cue_conflict":
        out["shape_class"], out["texture_class"] = sc.class_name, sc.texture_class
    out["caption"] = caption_scene(sc, stream(cfg, index, STREAM_CAPTION), cfg.simple_caption_prob, cfg.caption_names)
    return out
