"""Class shapes as unions and differences of polygons, rasterised with ``PIL.ImageDraw``.

Why polygons
    Every primitive (ellipse, arc, sector, star, ...) is turned into a polygon once, when the class
    catalogue is loaded. Rotation, scaling and translation are then exact affine maps of a few
    hundred points, the painting/sketch "wobble" is a smooth warp of the same points, and the
    rasteriser is PIL's C scan-line filler, which is fast at 64 px. Holes (ring, crescent, gear)
    are ``sub`` primitives painted with 0 after the ``add`` ones, in catalogue order.

Antialiasing
    Masks are drawn at ``SUPERSAMPLE`` x the target size and box-reduced, which gives soft,
    subpixel-accurate edges (a circle and an octagon differ by about one pixel at 64 px).

Normalisation
    Each class is recentred on the centre of its bounding box and scaled so that its farthest
    point lies at radius 1. An object of "radius" r therefore stays inside a disc of radius r at
    any rotation, which makes the size factor and the in-frame guarantees rotation-invariant.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .catalog import CLASS_INFO

SUPERSAMPLE = 2
_MAX_SEGMENT = 0.12  # edges are subdivided to this length so that warps bend them smoothly


@dataclass(frozen=True)
class Geometry:
    """A class shape: all polygon vertices in one array and the (start, stop, is_add) spans."""

    points: np.ndarray
    spans: tuple[tuple[int, int, bool], ...]


def _arc_points(c, rx, ry, start, end, rot=0.0, n=None):
    n = n or max(8, int(abs(end - start) / 7.5) + 1)
    t = np.radians(np.linspace(start, end, n))
    pts = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
    return _rotate(pts, rot) + np.asarray(c, float)


def _rotate(pts, deg):
    if not deg:
        return pts
    a = math.radians(deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    return pts @ rot


def _regular(sides, r, rot, c, inner=None):
    """Regular polygon (or star if ``inner``), first vertex straight up (y points down)."""
    k = sides * (2 if inner else 1)
    ang = np.radians(rot - 90 + 360.0 * np.arange(k) / k)
    rad = np.where(np.arange(k) % 2 == 1, inner, r) if inner else np.full(k, r)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1) + np.asarray(c, float)


def _primitive_points(p: dict) -> np.ndarray:
    kind = p["type"]
    if kind == "polygon":
        return np.asarray(p["points"], float)
    if kind == "regular":
        return _regular(p["sides"], p["r"], p.get("rot", 0), p.get("c", (0, 0)))
    if kind == "star":
        return _regular(p["points"], p["r"], p.get("rot", 0), p.get("c", (0, 0)), p["inner"])
    if kind == "ellipse":
        return _arc_points(p["c"], *p["r"], 0, 360, p.get("rot", 0), n=48)[:-1]
    if kind == "rect":
        w, h = p["size"]
        pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
        return _rotate(pts, p.get("rot", 0)) + np.asarray(p["c"], float)
    if kind == "sector":
        arc = _arc_points(p["c"], *p["r"], p["start"], p["end"])
        return arc if p.get("chord") else np.vstack([arc, [p["c"]]])
    if kind == "arc":
        (rx, ry), w = p["r"], p["width"] / 2
        outer = _arc_points(p["c"], rx + w, ry + w, p["start"], p["end"])
        inner = _arc_points(p["c"], rx - w, ry - w, p["start"], p["end"])
        return np.vstack([outer, inner[::-1]])
    raise ValueError(f"unknown primitive type {kind!r}; valid: polygon, regular, star, ellipse, "
                     "rect, sector, arc")


def _densify(pts: np.ndarray) -> np.ndarray:
    """Subdivide long edges so that a smooth warp bends them instead of moving only corners."""
    nxt = np.roll(pts, -1, 0)
    seg = np.linalg.norm(nxt - pts, axis=1)
    out = []
    for a, b, length in zip(pts, nxt, seg):
        k = max(1, int(math.ceil(length / _MAX_SEGMENT)))
        t = np.arange(k)[:, None] / k
        out.append(a + (b - a) * t)
    return np.vstack(out)


@functools.lru_cache(maxsize=None)
def geometry(class_name: str) -> Geometry:
    """Normalised polygons of ``class_name`` (cached; see the module docstring)."""
    prims = CLASS_INFO[class_name]["primitives"]
    polys = [_densify(_primitive_points(p)) for p in prims]
    adds = np.vstack([q for q, p in zip(polys, prims) if p.get("op", "add") == "add"])
    lo, hi = adds.min(0), adds.max(0)
    centre = (lo + hi) / 2
    scale = np.linalg.norm(adds - centre, axis=1).max()
    spans, start = [], 0
    for q, p in zip(polys, prims):
        spans.append((start, start + len(q), p.get("op", "add") == "add"))
        start += len(q)
    points = (np.vstack(polys) - centre) / scale
    points.setflags(write=False)
    return Geometry(points, tuple(spans))


def warp_points(points: np.ndarray, params: np.ndarray, amount: float) -> np.ndarray:
    """Smooth random warp (two sinusoids per axis) used for hand-made 'wobbly' edges.

    ``params`` holds 8 numbers in [0, 1) (frequencies and phases); ``amount`` is the displacement
    in normalised units. One warp moves every primitive consistently, so holes stay aligned.
    """
    f = 1.5 + 3.0 * params[:4]
    ph = 2 * math.pi * params[4:8]
    x, y = points[:, 0], points[:, 1]
    dx = np.sin(f[0] * y + ph[0]) + 0.5 * np.sin(f[1] * x + ph[1])
    dy = np.sin(f[2] * x + ph[2]) + 0.5 * np.sin(f[3] * y + ph[3])
    return points + amount * np.stack([dx, dy], 1) / 1.5


def place(points: np.ndarray, size: int, cx: float, cy: float, radius: float,
          angle: float) -> np.ndarray:
    """Map normalised points to supersampled pixel coordinates.

    ``cx, cy`` are offsets of the centre from the image centre and ``radius`` the object's radius,
    all as fractions of the image side; ``angle`` is in degrees, clockwise on screen.
    """
    s = size * SUPERSAMPLE
    a = math.radians(angle)
    c, si = math.cos(a) * radius * s, math.sin(a) * radius * s
    mat = np.array([[c, si], [-si, c]])
    return points @ mat + np.array([(0.5 + cx) * s - 0.5, (0.5 + cy) * s - 0.5])


def draw_mask(px: np.ndarray, spans, size: int) -> Image.Image:
    """Rasterise placed polygons into a supersampled 'L' mask (255 inside)."""
    s = size * SUPERSAMPLE
    img = Image.new("L", (s, s), 0)
    draw = ImageDraw.Draw(img)
    flat = px.ravel().tolist()
    for start, stop, add in spans:
        draw.polygon(flat[2 * start:2 * stop], fill=255 if add else 0)
    return img


def to_alpha(mask_ss: Image.Image) -> np.ndarray:
    """Box-reduce a supersampled mask to an antialiased float32 alpha in [0, 1]."""
    small = mask_ss.reduce(SUPERSAMPLE) if SUPERSAMPLE > 1 else mask_ss
    return np.asarray(small, dtype=np.float32) * (1.0 / 255.0)


def class_mask(class_name: str, size: int = 64, radius: float = 0.4, angle: float = 0.0,
               cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    """Alpha mask of one class at a given pose (for tests, galleries and shape-only probes)."""
    g = geometry(class_name)
    return to_alpha(draw_mask(place(g.points, size, cx, cy, radius, angle), g.spans, size))
