"""Texture, background and noise banks, built lazily and cached per process.

Generating a striped or marbled field per image would dominate the render time, so every
pattern and background is generated once per image size as a handful of *variants* at twice the
image side. An image then takes a random ``size x size`` window of a random variant (a free numpy
slice), which gives plenty of variety. Banks are seeded from fixed constants, never from the
config, so every process builds bit-identical banks and renders stay deterministic across
processes. Nothing here runs at import time.

Feature sizes (stripe period, dot radius, ...) are specified at 64 px and scaled with the image.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .catalog import BACKGROUNDS, CLASS_NAMES, COLORS, PATTERNS

N_VARIANTS = 8
_BANK_SEED = 20240607


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([_BANK_SEED, *key])


def _grid(n: int, scale: float):
    """Pixel coordinates of an n x n field, in units of 64-px pixels."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / scale
    return x, y


def _soft_square(t: np.ndarray, sharp: float = 3.0) -> np.ndarray:
    """Antialiased square wave in [0, 1] from a phase ``t`` (period 1)."""
    return np.clip(0.5 + sharp * np.sin(2 * math.pi * t), 0.0, 1.0)


def _smooth_noise(rng, n: int, cells: int) -> np.ndarray:
    """Band-limited noise in [-1, 1]: a random ``cells x cells`` grid upsampled bicubically."""
    low = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray(low, mode="F").resize((n, n), Image.BICUBIC)
    arr = np.asarray(img)
    return (arr - arr.mean()) / (np.abs(arr - arr.mean()).max() + 1e-6)


def _rotated(x, y, deg):
    a = math.radians(deg)
    return x * math.cos(a) + y * math.sin(a), -x * math.sin(a) + y * math.cos(a)


def _pattern_field(name: str, n: int, scale: float, v: int) -> np.ndarray:
    """One variant of a pattern as weights in [0, 1] (0 = base colour, 1 = shade)."""
    rng = _rng(1, PATTERNS.index(name), v, n)
    x, y = _grid(n, scale)
    ang = rng.uniform(0, 180)
    u, w = _rotated(x, y, ang)
    if name == "solid":
        return np.zeros((n, n), np.float32)
    if name == "stripes":
        return _soft_square(u / rng.uniform(6.5, 10.0))
    if name == "checker":
        p = rng.uniform(9.0, 13.0)
        return np.clip(0.5 + 3 * np.sin(2 * math.pi * u / p) * np.sin(2 * math.pi * w / p), 0, 1)
    if name == "dots":
        p, r = rng.uniform(6.5, 8.5), rng.uniform(1.6, 2.2)
        du, dw = (u % p) - p / 2, (w % p) - p / 2
        return np.clip(r + 0.5 - np.sqrt(du * du + dw * dw), 0, 1)
    if name == "grid":
        p = rng.uniform(7.0, 10.0)
        lu, lw = np.abs((u % p) - p / 2), np.abs((w % p) - p / 2)
        return np.clip(np.maximum(lu, lw) - (p / 2 - 1.4), 0, 1)
    if name == "zigzag":
        p, amp = rng.uniform(7.0, 9.0), rng.uniform(2.5, 4.0)
        tri = np.abs(((u / p) % 1.0) - 0.5) * 2 * amp
        return _soft_square((w + tri) / rng.uniform(6.0, 8.0))
    if name == "speckle":
        noise = _smooth_noise(rng, n, int(n / scale / 1.6))
        return np.clip((noise - 0.35) * 5.0, 0, 1)
    if name == "gradient":
        return (0.5 + 0.5 * np.sin(2 * math.pi * u / rng.uniform(60.0, 80.0))).astype(np.float32)
    if name == "waves":
        p, lam, amp = rng.uniform(6.5, 9.0), rng.uniform(14.0, 20.0), rng.uniform(2.0, 3.5)
        return _soft_square((w + amp * np.sin(2 * math.pi * u / lam)) / p)
    if name == "marble":
        turb = _smooth_noise(rng, n, int(n / scale / 10)) * 2.5
        return (0.5 + 0.5 * np.sin(2 * math.pi * (u / 14.0 + turb))) ** 3
    raise ValueError(f"unknown pattern {name!r}; valid: {PATTERNS}")


@functools.lru_cache(maxsize=None)
def pattern_bank(name: str, size: int) -> np.ndarray:
    """``(N_VARIANTS, 2*size, 2*size)`` float32 pattern weights in [0, 1]."""
    n, scale = 2 * size, size / 64.0
    bank = np.stack([_pattern_field(name, n, scale, v) for v in range(N_VARIANTS)])
    return bank.astype(np.float32)


def shade_of(rgb) -> np.ndarray:
    """Second colour of a pattern: a dark shade of light colours, a pale tint of dark ones."""
    rgb = np.asarray(rgb, np.float32)
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return rgb * 0.42 if lum > 120 else rgb + (255.0 - rgb) * 0.62


# ----------------------------------------------------------------------------- backgrounds
_PLAIN_TONES = [(228, 226, 220), (205, 210, 216), (236, 228, 206), (190, 196, 186),
                (92, 98, 108), (214, 200, 186), (170, 182, 200), (60, 64, 70)]


def _bg_plain(rng, n, scale, v):
    tone = np.array(_PLAIN_TONES[v % len(_PLAIN_TONES)], np.float32)
    shade = 1.0 + 0.05 * _smooth_noise(rng, n, 3)
    return tone * shade[..., None]


def _bg_gradient(rng, n, scale, v):
    a, b = rng.uniform(40, 235, 3), rng.uniform(40, 235, 3)
    x, y = _grid(n, n)
    u, _ = _rotated(x - 0.5, y - 0.5, rng.uniform(0, 360))
    t = np.clip(u + 0.5, 0, 1)[..., None]
    return (a + (b - a) * t).astype(np.float32)


def _bg_grass(rng, n, scale, v):
    base = np.array([70, 128, 48], np.float32) * rng.uniform(0.8, 1.15)
    img = Image.fromarray(np.clip(base * (1 + 0.15 * _smooth_noise(rng, n, 6)[..., None]),
                                  0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(2.2 * n * n / (scale * 40))):
        x, y = rng.uniform(0, n, 2)
        h, lean = rng.uniform(3, 8) * scale, rng.uniform(-2, 2) * scale
        g = tuple(int(c) for c in base * rng.uniform(0.55, 1.45) * [1, 1, 0.9])
        draw.line([(x, y), (x + lean, y - h)], fill=g, width=max(1, int(scale)))
    return np.asarray(img, np.float32)


def _bg_sky(rng, n, scale, v):
    x, y = _grid(n, n)
    top, bottom = np.array([60, 120, 215], np.float32), np.array([170, 205, 240], np.float32)
    t = np.clip(y * rng.uniform(0.6, 1.0) + rng.uniform(-0.2, 0.3), 0, 1)[..., None]
    sky = top + (bottom - top) * t
    clouds = np.clip(_smooth_noise(rng, n, int(4 + v % 4)) * 1.6 - 0.3, 0, 1)[..., None]
    return sky + (248.0 - sky) * clouds


def _bg_wood(rng, n, scale, v):
    x, y = _grid(n, scale)
    u, w = _rotated(x, y, rng.choice([0, 90]) + rng.uniform(-10, 10))
    turb = _smooth_noise(rng, n, max(2, int(n / scale / 24))) * 1.8
    grain = 0.5 + 0.5 * np.sin(2 * math.pi * (w / rng.uniform(5, 8) + turb))
    fine = 0.08 * _smooth_noise(rng, n, int(n / scale / 2))
    light, dark = np.array([196, 146, 92], np.float32), np.array([122, 78, 40], np.float32)
    t = np.clip(grain ** 1.5 + fine, 0, 1)[..., None]
    return light + (dark - light) * t


def _bg_clutter(rng, n, scale, v):
    img = Image.new("RGB", (n, n), tuple(int(c) for c in rng.uniform(90, 200, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(n * n / (scale * scale * 140))):
        x, y = rng.uniform(0, n, 2)
        w, h = rng.uniform(4, 22, 2) * scale
        col = tuple(int(c) for c in rng.uniform(30, 230, 3))
        box = [x - w / 2, y - h / 2, x + w / 2, y + h / 2]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=col)
    img = img.filter(ImageFilter.GaussianBlur(1.3 * scale))
    return np.asarray(img, np.float32)


_BG_FUNCS = {"plain": _bg_plain, "gradient": _bg_gradient, "grass": _bg_grass, "sky": _bg_sky,
             "wood": _bg_wood, "clutter": _bg_clutter}


@functools.lru_cache(maxsize=None)
def background_bank(name: str, size: int) -> np.ndarray:
    """``(N_VARIANTS, 2*size, 2*size, 3)`` float32 backgrounds in 0..255."""
    n, scale = 2 * size, size / 64.0
    fn = _BG_FUNCS[name]
    out = [fn(_rng(2, BACKGROUNDS.index(name), v, n), n, scale, v) for v in range(N_VARIANTS)]
    return np.clip(np.stack(out), 0, 255).astype(np.float32)


@functools.lru_cache(maxsize=None)
def painted_background_bank(name: str, size: int) -> np.ndarray:
    """Backgrounds simplified as a painter would: blurred, then blocky at half resolution.

    (PIL's rank filters, e.g. ``ModeFilter``, look more painterly but take seconds per bank.)
    """
    out = []
    for arr in background_bank(name, size):
        img = Image.fromarray(arr.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5 * size / 64))
        n = img.size[0]
        img = img.reduce(2).resize((n, n), Image.BILINEAR)
        out.append(np.asarray(img, np.float32))
    return np.stack(out)


# ----------------------------------------------------------------------------- noise & strokes
@functools.lru_cache(maxsize=None)
def noise_bank(size: int) -> np.ndarray:
    """``(2*size, 2*size, 3)`` standard normal noise (sensor noise, paper grain)."""
    return _rng(3, size).standard_normal((2 * size, 2 * size, 3)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def stroke_bank(size: int) -> np.ndarray:
    """``(N_VARIANTS, 2*size, 2*size, 3)`` brush-stroke fields in about [-1, 1].

    White noise smeared along one direction per variant (a motion blur), so the field is made of
    short parallel streaks, like the dabs of a brush; channels are partly independent, which adds
    the colour variation of mixed paint.
    """
    n, scale = 2 * size, size / 64.0
    out = []
    for v in range(N_VARIANTS):
        rng = _rng(4, v, n)
        half = rng.standard_normal((n // 2, n // 2, 3)).astype(np.float32)
        noise = np.repeat(np.repeat(half, 2, 0), 2, 1)
        noise[..., 1:] = 0.6 * noise[..., :1] + 0.4 * noise[..., 1:]
        a = rng.uniform(0, math.pi)
        acc = np.zeros_like(noise)
        length = max(2, int(7 * scale))
        for k in range(-length, length + 1):
            acc += np.roll(noise, (int(round(k * math.sin(a))), int(round(k * math.cos(a)))), (0, 1))
        acc /= acc.std() * 2.5
        out.append(np.clip(acc, -1, 1))
    return np.stack(out)


@functools.lru_cache(maxsize=None)
def hatch_bank(size: int) -> np.ndarray:
    """``(N_VARIANTS, 2*size, 2*size)`` pencil hatching weights in [0, 1]."""
    n, scale = 2 * size, size / 64.0
    out = []
    for v in range(N_VARIANTS):
        rng = _rng(5, v, n)
        x, y = _grid(n, scale)
        u, _ = _rotated(x, y, rng.uniform(25, 65) + 90 * (v % 2))
        jitter = 0.35 * _smooth_noise(rng, n, int(n / scale / 6))
        phase = (u / rng.uniform(3.5, 4.5) + jitter) % 1.0
        out.append(np.clip(1.0 - 5.6 * np.abs(phase - 0.5), 0, 1))
    return np.stack(out).astype(np.float32)


@functools.lru_cache(maxsize=None)
def infograph_bank(size: int) -> np.ndarray:
    """``(4*N_VARIANTS, size, size, 3)`` infographic pages: charts, text lines and small icons."""
    from .shapes import class_mask  # local: shapes and banks are siblings

    pages = []
    for v in range(4 * N_VARIANTS):
        rng = _rng(6, v, size)
        page = Image.new("RGB", (size, size), tuple(int(c) for c in rng.uniform(222, 252, 3)))
        draw = ImageDraw.Draw(page)
        palette = [tuple(int(c) for c in rng.uniform(40, 220, 3)) for _ in range(4)]
        _title_band(draw, rng, size, palette[0])
        for _ in range(rng.integers(1, 3)):
            (_bar_chart if rng.random() < 0.7 else _line_chart)(draw, rng, size, palette)
        _text_lines(draw, rng, size)
        arr = np.asarray(page, np.float32).copy()
        for _ in range(rng.integers(3, 8)):
            _stamp_icon(arr, rng, size, class_mask, CLASS_NAMES[rng.integers(len(CLASS_NAMES))])
        pages.append(arr)
    return np.stack(pages)


def _title_band(draw, rng, s, colour):
    k, side = s / 64.0, rng.integers(4)
    t = rng.uniform(3, 7) * k
    box = [(0, 0, s, t), (0, s - t, s, s), (0, 0, t, s), (s - t, 0, s, s)][side]
    draw.rectangle(box, fill=colour)


def _bar_chart(draw, rng, s, palette):
    k, horizontal = s / 64.0, rng.random() < 0.3
    x0, y0 = rng.uniform(0, s * 0.6, 2)
    step, span = rng.uniform(4, 7) * k, rng.uniform(14, 26) * k
    for i in range(rng.integers(3, 7)):
        h, a = rng.uniform(0.2, 1.0) * span, i * step
        box = (x0, y0 + a, x0 + h, y0 + a + step * 0.7) if horizontal else \
            (x0 + a, y0 + span - h, x0 + a + step * 0.7, y0 + span)
        draw.rectangle(box, fill=palette[i % len(palette)])
    draw.line([(x0, y0 + span), (x0 + 6 * step, y0 + span)], fill=(60, 60, 70), width=max(1, int(k)))


def _line_chart(draw, rng, s, palette):
    k = s / 64.0
    x0, y0 = rng.uniform(0, s * 0.5, 2)
    xs = x0 + np.arange(6) * rng.uniform(4, 6) * k
    ys = y0 + rng.uniform(0, 18, 6) * k
    draw.line(list(zip(xs.tolist(), ys.tolist())), fill=palette[1], width=max(1, int(1.5 * k)))


def _text_lines(draw, rng, s):
    k = s / 64.0
    for _ in range(rng.integers(2, 4)):  # paragraphs of "text"
        tx, ty = rng.uniform(0, s * 0.75), rng.uniform(0, s * 0.9)
        for j in range(rng.integers(2, 5)):
            draw.line([(tx, ty + 3 * k * j), (tx + rng.uniform(8, 22) * k, ty + 3 * k * j)],
                      fill=(70, 70, 80), width=max(1, int(k)))


def _stamp_icon(arr, rng, s, class_mask, name):
    r = rng.uniform(0.05, 0.08)
    alpha = class_mask(name, s, r, rng.uniform(0, 360), *rng.uniform(-0.42, 0.42, 2))
    colour = np.array(COLORS[list(COLORS)[rng.integers(len(COLORS))]], np.float32)
    arr += (colour - arr) * alpha[..., None]
