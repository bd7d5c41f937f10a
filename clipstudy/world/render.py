"""Rendering a :class:`~clipstudy.world.sampling.Scene` in one of five DomainNet-like styles.

=========  =====================================================================================
photo      textured object on a natural background, soft drop shadow, lighting gradient,
           slight optical blur and sensor noise
painting   wobbly hand-drawn edges, softened background, brush-stroke streaks, colour jitter
           and posterisation (few paint tones)
clipart    flat colour, thick dark outline, plain light background, no noise
sketch     grayscale pencil outline (sometimes doubled) with optional hatching, on paper
infograph  small object on an infographic page full of bars, text lines and other icons
=========  =====================================================================================

Shifted domains remove cues the photo domain offers (texture in clipart, colour and texture in
sketch) or add distractors (infograph), while the silhouette, which defines the class, is kept.
All per-image randomness comes from the render stream of the image (see ``sampling``); the
banks it reads are deterministic per process.

Textures live in image coordinates: the object is a stencil cut out of a pattern field rather
than a pattern mapped onto the shape. That keeps a pattern a pure texture cue (it carries no
information about the shape's orientation) and costs one array slice per image.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageFilter

from . import banks
from .catalog import COLOR_NAMES, COLORS, PATTERNS
from .config import WorldConfig
from .corruptions import corrupt
from .sampling import STREAM_CORRUPT, STREAM_RENDER, Scene, sample_scene, stream
from .shapes import SUPERSAMPLE, draw_mask, geometry, place, to_alpha, warp_points

_PASTELS = [(250, 246, 232), (236, 244, 250), (244, 236, 248), (238, 248, 236), (252, 240, 236),
            (246, 246, 246), (255, 250, 220), (232, 240, 246)]
_OUTLINE = np.array([32, 30, 38], np.float32)
_OUTLINE_GRAY = {"sketch": np.float32(60), "clipart": _OUTLINE}


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def _unit_grid(size: int):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    return x, y


def _crop(bank_item: np.ndarray, size: int, nxt) -> np.ndarray:
    ox, oy = int(nxt() * size), int(nxt() * size)
    return bank_item[oy:oy + size, ox:ox + size]


def _pick_variant(bank: np.ndarray, nxt) -> np.ndarray:
    return bank[min(int(nxt() * len(bank)), len(bank) - 1)]


def _texture(pattern: str, color: str, size: int, jitter: float, nxt) -> np.ndarray:
    """Object fill: ``color`` mixed with its shade by a pattern window; (3,) for solid.

    Always consumes the same number of draws, so changing the pattern of an image leaves the
    rest of its randomness (occluder, lighting, noise) untouched.
    """
    base = np.asarray(COLORS[color], np.float32) + (np.array([nxt(), nxt(), nxt()], np.float32)
                                                     - 0.5) * 2 * jitter
    variant, ox, oy = nxt(), int(nxt() * size), int(nxt() * size)
    if pattern == "solid":
        return np.clip(base, 0, 255)
    bank = banks.pattern_bank(pattern, size)
    w = bank[min(int(variant * len(bank)), len(bank) - 1), oy:oy + size, ox:ox + size]
    shade = banks.shade_of(base)
    return base + (shade - base) * w[..., None]


def _mask_ss(sc: Scene, size: int, nxt=None, wobble: float = 0.0) -> Image.Image:
    """Supersampled object mask; ``wobble`` > 0 warps the outline like a hand-drawn one."""
    g = geometry(sc.class_name)
    pts = g.points
    if wobble:
        pts = warp_points(pts, np.array([nxt() for _ in range(8)]), wobble)
    return draw_mask(place(pts, size, sc.cx, sc.cy, sc.radius, sc.angle), g.spans, size)


def _composite(img: np.ndarray, fill, alpha: np.ndarray) -> np.ndarray:
    """``img`` with ``fill`` laid over it at opacity ``alpha`` (gray or RGB images)."""
    a = alpha if img.ndim == 2 else alpha[..., None]
    return img + (fill - img) * a


# ------------------------------------------------------------------------------ occluders
def _occluder_mask(sc: Scene, size: int, nxt) -> Image.Image:
    """A foreign patch (rectangle or ellipse) centred near the object's rim."""
    phi = 2 * math.pi * nxt()
    d = sc.radius * (0.65 + 0.3 * nxt())
    r = sc.radius * (0.45 + 0.25 * nxt())
    if nxt() < 0.5:
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t) * (0.6 + 0.4 * nxt())], 1)
    else:
        pts = np.array([[-1, -0.7], [1, -0.7], [1, 0.7], [-1, 0.7]]) * [1, 0.6 + 0.5 * nxt()]
    px = place(pts, size, sc.cx + d * math.cos(phi), sc.cy + d * math.sin(phi), r, 360 * nxt())
    return draw_mask(px, ((0, len(pts), True),), size)


def _occlude(img: np.ndarray, sc: Scene, size: int, nxt, style: str) -> np.ndarray:
    """Lay a foreign patch over part of the object when the scene is 'occluded'.

    The patch is drawn in the domain's style: a textured patch of another colour (photo,
    painting, infograph), a flat outlined one (clipart), or blank outlined paper (sketch).
    """
    if sc.factors["occlusion"] != "occluded":
        return img
    mask = _occluder_mask(sc, size, nxt)
    alpha = to_alpha(mask)
    others = [c for c in COLOR_NAMES if c != sc.factors["color"]]
    color = others[min(int(nxt() * len(others)), len(others) - 1)]
    if style in ("sketch", "clipart"):
        img = _composite(img, _OUTLINE_GRAY[style], _outline(mask, size, 2 if style == "clipart" else 1))
        fill = np.float32(248) if style == "sketch" else np.asarray(COLORS[color], np.float32)
        return _composite(img, fill, alpha)
    pattern = PATTERNS[min(int(nxt() * len(PATTERNS)), len(PATTERNS) - 1)]
    return _composite(img, _texture(pattern, color, size, 12, nxt), alpha)


def _outline(mask_ss: Image.Image, size: int, px_width: float) -> np.ndarray:
    """Alpha of the mask grown by about ``px_width`` output pixels (a soft dilation).

    A box blur followed by a steep ramp dilates with antialiased edges; PIL's rank filters
    (``MaxFilter``) would do the same exactly but cost ~1 ms per call.
    """
    r = px_width * size / 64
    blurred = np.asarray(mask_ss.reduce(SUPERSAMPLE).filter(ImageFilter.BoxBlur(r)), np.float32)
    return np.clip(blurred * (4.0 / 255.0), 0.0, 1.0)


def _edges(mask_ss: Image.Image, size: int) -> np.ndarray:
    """Alpha of a pencil line (~1.5 px) along every edge of a mask, rims and holes alike."""
    blurred = mask_ss.reduce(SUPERSAMPLE).filter(ImageFilter.BoxBlur(size / 64))
    b = np.asarray(blurred, np.float32) * (1.0 / 255.0)
    return np.clip(1.7 - 3.4 * np.abs(b - 0.5) * 2, 0.0, 1.0)


def _blur3(img: np.ndarray, a: float) -> np.ndarray:
    """Separable 3-tap blur ``[a, 1-2a, a]`` with edge replication (cheap optical softness)."""
    out = img * (1 - 2 * a)
    out[1:] += a * img[:-1]
    out[:-1] += a * img[1:]
    out[0] += a * img[0]
    out[-1] += a * img[-1]
    res = out * (1 - 2 * a)
    res[:, 1:] += a * out[:, :-1]
    res[:, :-1] += a * out[:, 1:]
    res[:, 0] += a * out[:, 0]
    res[:, -1] += a * out[:, -1]
    return res


# ------------------------------------------------------------------------------ domains
def _photo_finish(img: np.ndarray, size: int, nxt) -> np.ndarray:
    """Lighting gradient, slight optical blur and sensor noise."""
    x, y = _unit_grid(size)
    a, th = 0.15 + 0.3 * nxt(), 2 * math.pi * nxt()
    img = img * (1.0 + a * (math.cos(th) * x + math.sin(th) * y))[..., None]
    img = _blur3(img, 0.08 + 0.14 * nxt())
    noise = _crop(banks.noise_bank(size), size, nxt) * (2.0 + 5.0 * nxt())
    return _u8(img + noise)


def _render_photo(sc: Scene, size: int, nxt, onxt) -> np.ndarray:
    f = sc.factors
    bg = _crop(_pick_variant(banks.background_bank(f["background"], size), nxt), size, nxt)
    mask = _mask_ss(sc, size)
    alpha = to_alpha(mask)
    shadow = mask.reduce(4 * SUPERSAMPLE).resize((size, size), Image.BILINEAR)  # soft, cheap
    d = max(1, int(round((1 + 2 * nxt()) * size / 64)))
    sh = np.zeros((size, size), np.float32)
    sh[d:, d:] = np.asarray(shadow, np.float32)[:-d, :-d] * (0.45 / 255)
    img = bg * (1.0 - sh)[..., None]
    img = _composite(img, _texture(f["pattern"], f["color"], size, 12, nxt), alpha)
    img = _occlude(img, sc, size, onxt, "photo")
    return _photo_finish(img, size, nxt)


def _paint_finish(img: np.ndarray, size: int, nxt) -> np.ndarray:
    """Brush-stroke streaks, colour jitter and posterisation to a few paint tones."""
    strokes = _crop(_pick_variant(banks.stroke_bank(size), nxt), size, nxt)
    img = img + strokes * (16.0 + 16.0 * nxt())
    gain = 0.85 + 0.3 * np.array([nxt(), nxt(), nxt()], np.float32)
    img = img * gain + (nxt() - 0.5) * 30
    q = 256.0 / (4 + int(4 * nxt()))
    return _u8(np.floor(img / q) * q + q / 2)


def _render_painting(sc: Scene, size: int, nxt, onxt) -> np.ndarray:
    f = sc.factors
    bg = _crop(_pick_variant(banks.painted_background_bank(f["background"], size), nxt), size, nxt)
    alpha = to_alpha(_mask_ss(sc, size, nxt, wobble=0.04 + 0.04 * nxt()))
    img = _composite(bg, _texture(f["pattern"], f["color"], size, 25, nxt), alpha)
    img = _occlude(img, sc, size, onxt, "painting")
    return _paint_finish(img, size, nxt)


def _render_clipart(sc: Scene, size: int, nxt, onxt) -> np.ndarray:
    paper = np.asarray(_PASTELS[min(int(nxt() * len(_PASTELS)), len(_PASTELS) - 1)], np.float32)
    img = np.empty((size, size, 3), np.float32)
    img[:] = paper
    mask = _mask_ss(sc, size)
    img = _composite(img, _OUTLINE, _outline(mask, size, 1.5 + 1.0 * nxt()))
    img = _composite(img, _texture("solid", sc.factors["color"], size, 6, nxt), to_alpha(mask))
    return _u8(_occlude(img, sc, size, onxt, "clipart"))


def _render_sketch(sc: Scene, size: int, nxt, onxt) -> np.ndarray:
    paper = 246.0 + 3.0 * _crop(banks.noise_bank(size)[..., 0], size, nxt)
    mask = _mask_ss(sc, size, nxt, wobble=0.03 + 0.03 * nxt())
    ink = _edges(mask, size) * (0.75 + 0.25 * nxt())
    if nxt() < 0.5:  # a second, slightly different pass of the pencil
        ink = np.maximum(ink, 0.7 * _edges(_mask_ss(sc, size, nxt, wobble=0.05), size))
    if nxt() < 0.6:  # hatching inside the outline
        hatch = _crop(_pick_variant(banks.hatch_bank(size), nxt), size, nxt)
        ink = np.maximum(ink, hatch * to_alpha(mask) * (0.25 + 0.35 * nxt()))
    img = _composite(paper, np.float32(40 + 50 * nxt()), ink)
    img = _occlude(img, sc, size, onxt, "sketch")
    return np.repeat(_u8(img)[..., None], 3, axis=2)


def _render_infograph(sc: Scene, size: int, nxt, onxt) -> np.ndarray:
    f = sc.factors
    page = _pick_variant(banks.infograph_bank(size), nxt)
    if nxt() < 0.5:
        page = page[:, ::-1]
    img = _composite(page, _texture(f["pattern"], f["color"], size, 8, nxt), to_alpha(_mask_ss(sc, size)))
    return _u8(_occlude(img, sc, size, onxt, "infograph"))


def _render_texture(sc: Scene, size: int, nxt) -> np.ndarray:
    """Texture-only image: a full-frame pattern field or a background, in photo/painting style."""
    f = sc.factors
    painting = f["domain"] == "painting"
    if f["pattern"] != "none":
        img = _texture(f["pattern"], f["color"], size, 25 if painting else 12, nxt)
    else:
        bank = banks.painted_background_bank if painting else banks.background_bank
        img = _crop(_pick_variant(bank(f["background"], size), nxt), size, nxt)
    return _paint_finish(img, size, nxt) if painting else _photo_finish(img, size, nxt)


_RENDERERS = {"photo": _render_photo, "painting": _render_painting, "clipart": _render_clipart,
              "sketch": _render_sketch, "infograph": _render_infograph}


def render_scene(sc: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render a scene with the render generator ``rng`` (uint8, ``size x size x 3``)."""
    draws = rng.random(128).tolist()
    nxt = iter(draws[:96]).__next__
    if not sc.has_object:
        return _render_texture(sc, size, nxt)
    # the occluder has its own draws, so occluding an image leaves the rest of it unchanged
    return _RENDERERS[sc.factors["domain"]](sc, size, nxt, iter(draws[96:]).__next__)


def render(cfg: WorldConfig, index: int) -> np.ndarray:
    """Image ``index`` of ``cfg`` as a uint8 ``(image_size, image_size, 3)`` array."""
    sc = sample_scene(cfg, index)
    img = render_scene(sc, cfg.image_size, stream(cfg, index, STREAM_RENDER))
    if cfg.corruption is not None:
        img = corrupt(img, cfg.corruption, cfg.severity, stream(cfg, index, STREAM_CORRUPT))
    return img


def make_image(class_name: str, image_size: int = 64, seed: int = 0, *, index: int = 0,
               **factor_overrides) -> np.ndarray:
    """One image of ``class_name`` for galleries; keyword arguments force factor values.

    Unforced factors are drawn from ``seed``/``index`` and stay the same when another factor is
    forced, so ``make_image("star", rotation="sideways")`` and ``make_image("star",
    rotation="upright")`` show the same star. ``corruption``/``severity`` are accepted as well.
    """
    extra = {k: factor_overrides.pop(k) for k in ("corruption", "severity") if k in factor_overrides}
    cfg = WorldConfig(seed=seed, n=index + 1, image_size=image_size, classes=(class_name,),
                      fixed=tuple(factor_overrides.items()), **extra)
    return render(cfg, index)
