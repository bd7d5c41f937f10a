"""Common and geometric image corruptions at severities 1..5, deterministic given a seed.

The common corruptions follow Hendrycks & Dietterich's ImageNet-C/CIFAR-10-C recipes, with the
parameters rescaled for small (64 px) images; blur and pixel sizes scale with the image side.
Geometric corruptions (rotate, zoom, occlude) probe invariances the world itself varies.

Determinism: each corruption draws the *same* random numbers at every severity (only the
strength changes), so severities of one image are nested versions of one another and any
difference from the clean image grows with severity. ``scipy`` is imported only when a blur runs.
"""
from __future__ import annotations

import io
import math
from typing import Callable

import numpy as np
from PIL import Image

_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.07, 0.10, 0.14, 0.19),
    "shot_noise": (60, 30, 15, 8, 4),
    "impulse_noise": (0.01, 0.03, 0.06, 0.10, 0.16),
    "defocus_blur": (1.0, 1.5, 2.0, 2.6, 3.2),
    "motion_blur": (3, 5, 7, 9, 12),
    "fog": ((0.25, 2.2), (0.45, 2.0), (0.65, 1.9), (0.85, 1.8), (1.1, 1.7)),
    "snow": ((2.4, 0.15), (2.1, 0.25), (1.85, 0.35), (1.65, 0.45), (1.45, 0.55)),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.6, 0.45, 0.3, 0.2, 0.1),
    "jpeg": (40, 25, 15, 10, 6),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.22),
    "rotate": (15, 30, 45, 60, 90),
    "zoom": (1.15, 1.3, 1.5, 1.75, 2.0),
    "occlude": (0.05, 0.1, 0.16, 0.24, 0.34),
}

#: Every corruption name; the first eleven are photometric, the last three geometric.
CORRUPTIONS: tuple[str, ...] = tuple(_PARAMS)
GEOMETRIC_CORRUPTIONS: tuple[str, ...] = ("rotate", "zoom", "occlude")


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _gaussian_noise(x, c, rng):
    return x + rng.standard_normal(x.shape) * (c * 255)


def _shot_noise(x, c, rng):
    return rng.poisson(x / 255.0 * c) / c * 255.0


def _impulse_noise(x, c, rng):
    u, salt = rng.random(x.shape), rng.random(x.shape) < 0.5
    out = x.copy()
    hit = u < c
    out[hit] = np.where(salt[hit], 255.0, 0.0)
    return out


def _convolve(x, kernel):
    from scipy import ndimage

    return ndimage.convolve(x, kernel[..., None] / kernel.sum(), mode="reflect")


def _defocus_blur(x, c, rng):
    r = c * x.shape[0] / 64.0
    k = int(math.ceil(r))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    disk = np.clip(r + 0.5 - np.sqrt(xx ** 2 + yy ** 2), 0, 1)
    return _convolve(x, disk)


def _motion_blur(x, c, rng):
    length = max(2.0, c * x.shape[0] / 64.0)
    angle = rng.uniform(0, math.pi)
    k = int(math.ceil(length / 2))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    along = xx * math.cos(angle) + yy * math.sin(angle)
    across = -xx * math.sin(angle) + yy * math.cos(angle)
    kernel = np.clip(1 - np.abs(across), 0, 1) * (np.abs(along) <= length / 2)
    return _convolve(x, kernel)


def _plasma(rng, n, decay):
    """Fractal noise in [0, 1]: octaves of upsampled random grids, amplitude / decay per octave."""
    out, amp, cells = np.zeros((n, n), np.float32), 1.0, 2
    while cells <= n:
        grid = rng.random((cells, cells)).astype(np.float32)
        out += amp * np.asarray(Image.fromarray(grid, mode="F").resize((n, n), Image.BICUBIC))
        amp, cells = amp / decay, cells * 2
    out -= out.min()
    return out / (out.max() + 1e-6)


def _fog(x, c, rng):
    strength, decay = c
    m = x.max()
    fog = _plasma(rng, x.shape[0], decay)[..., None] * strength * 255
    return (x + fog) * m / (m + strength * 255)


def _snow(x, c, rng):
    thr, frost = c
    field = rng.standard_normal(x.shape[:2]).astype(np.float32)
    angle = rng.uniform(0.3, 1.2)
    flakes = (field > thr).astype(np.float32)[..., None]
    length = max(2, x.shape[0] // 16)
    k = np.zeros((2 * length + 1, 2 * length + 1))
    for t in np.linspace(-length, length, 4 * length + 1):
        k[int(round(length + t * math.sin(angle))), int(round(length + t * math.cos(angle)))] = 1
    streaks = np.clip(_convolve(flakes, k) * 3.0, 0, 1)
    gray = x.mean(-1, keepdims=True) * 1.5 + 64.0
    x = (1 - frost) * x + frost * np.maximum(x, gray)
    return x + (255 - x) * streaks


def _hsv_value(x, delta):
    hsv = np.asarray(Image.fromarray(_to_u8(x)).convert("HSV"), np.float32)
    hsv[..., 2] = np.clip(hsv[..., 2] + delta * 255, 0, 255)
    return np.asarray(Image.fromarray(_to_u8(hsv), "HSV").convert("RGB"), np.float32)


def _brightness(x, c, rng):
    return _hsv_value(x, c)


def _contrast(x, c, rng):
    mean = x.mean(axis=(0, 1), keepdims=True)
    return (x - mean) * c + mean


def _jpeg(x, c, rng):
    buf = io.BytesIO()
    Image.fromarray(_to_u8(x)).save(buf, format="JPEG", quality=int(c))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32)


def _pixelate(x, c, rng):
    h, w = x.shape[:2]
    img = Image.fromarray(_to_u8(x))
    small = img.resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST), np.float32)


def _border_fill(x):
    border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
    return tuple(int(v) for v in border.mean(0))


def _rotate(x, c, rng):
    sign = 1 if rng.random() < 0.5 else -1
    img = Image.fromarray(_to_u8(x))
    return np.asarray(img.rotate(sign * c, Image.BILINEAR, fillcolor=_border_fill(x)), np.float32)


def _zoom(x, c, rng):
    """Zoom in (centre crop) or out (shrink onto the border colour) by factor ``c``."""
    zoom_in = rng.random() < 0.5
    h, w = x.shape[:2]
    img = Image.fromarray(_to_u8(x))
    if zoom_in:
        cw, ch = w / c, h / c
        box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
        return np.asarray(img.resize((w, h), Image.BILINEAR, box=box), np.float32)
    sw, sh = max(1, round(w / c)), max(1, round(h / c))
    canvas = Image.new("RGB", (w, h), _border_fill(x))
    canvas.paste(img.resize((sw, sh), Image.BOX), ((w - sw) // 2, (h - sh) // 2))
    return np.asarray(canvas, np.float32)


def _occlude(x, c, rng):
    """A flat square covering fraction ``c`` of the image, placed in its central region."""
    h, w = x.shape[:2]
    side = math.sqrt(c) * w
    cx, cy = rng.uniform(0.3, 0.7, 2) * [w, h]
    colour = rng.uniform(0, 255, 3)
    out = x.copy()
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    out[max(0, y0):max(0, y0 + s), max(0, x0):max(0, x0 + s)] = colour
    return out


_FUNCS: dict[str, Callable] = {name: globals()["_" + name] for name in CORRUPTIONS}


def _as_rng(rng_or_seed) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def corrupt(img: np.ndarray, name: str, severity: int, rng_or_seed=0) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1..5) to a uint8 ``H x W x 3`` image.

    ``rng_or_seed`` is a ``numpy.random.Generator`` or anything ``default_rng`` accepts (an int or
    a sequence of ints); the same seed gives the same output. Returns a new uint8 array.
    """
    if name not in _FUNCS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not 1 <= severity <= 5:
        raise ValueError(f"severity must be one of 1, 2, 3, 4, 5; got {severity!r}")
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 image, got {arr.dtype} {arr.shape}")
    out = _FUNCS[name](arr.astype(np.float32), _PARAMS[name][severity - 1], _as_rng(rng_or_seed))
    return _to_u8(out)
