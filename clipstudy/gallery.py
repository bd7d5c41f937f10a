"""Figures that show the embedded world itself (notebook 00)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

GALLERY_FACTORS = ("domain", "color", "size", "position", "rotation", "pattern", "background", "occlusion")
GALLERY_CLASS = "arrow"  # asymmetric, so the rotation row shows something


def factor_rows(class_name: str = GALLERY_CLASS, seed: int = 0, image_size: int = 64,
                factors: Sequence[str] = GALLERY_FACTORS, max_values: int = 8) -> list[tuple[str, list]]:
    """For each factor, ``(factor, [(value, image), ...])`` with every other factor held fixed."""
    from .world import FACTORS, make_image

    rows = []
    for factor in factors:
        values = [v for v in FACTORS[factor] if v != "none"][:max_values]
        fixed = {} if factor == "domain" else {"domain": "photo"}
        images = []
        for v in values:
            try:
                images.append((v, make_image(class_name, image_size, seed, **{**fixed, factor: v})))
            except ValueError:  # a value this domain cannot show
                continue
        rows.append((factor, images))
    return rows


def class_row(classnames: Sequence[str], seed: int = 0, image_size: int = 64, domain: str = "photo"):
    from .world import make_image

    return [(c, make_image(c, image_size, seed, domain=domain)) for c in classnames]


def cue_conflict_row(n: int = 8, seed: int = 0, image_size: int = 64):
    """``(label, image)`` pairs of cue-conflict images: shape of one class, texture of another."""
    from .world import WorldConfig, render, sample_factors

    cfg = WorldConfig(seed=seed, split="test", n=n, image_size=image_size, kind="cue_conflict",
                      domains=(("photo", 1.0),))
    out = []
    for i in range(n):
        f = sample_factors(cfg, i)
        out.append((f"{f['shape_class']}\n+ {f['texture_class']} texture", render(cfg, i)))
    return out


def corruption_rows(class_name: str = GALLERY_CLASS, corruptions: Sequence[str] = ("gaussian_noise", "defocus_blur",
                    "fog", "pixelate", "rotate", "occlude"), seed: int = 0, image_size: int = 64):
    from .world import make_image

    rows = []
    for c in corruptions:
        images = [("clean", make_image(class_name, image_size, seed, domain="photo"))]
        images += [(f"{c} s{s}", make_image(class_name, image_size, seed, domain="photo", corruption=c, severity=s))
                   for s in range(1, 6)]
        rows.append((c, images))
    return rows


def image_grid(rows: list[tuple[str, list]], cell: float = 1.05, title: str | None = None):
    """Plot rows of ``(row_label, [(caption, image), ...])`` as one matplotlib figure."""
    import matplotlib.pyplot as plt

    ncols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(cell * ncols + 1.2, cell * len(rows) * 1.18), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(images):
                caption, img = images[c]
                ax.imshow(np.asarray(img), interpolation="nearest")
                ax.set_title(caption, fontsize=7, pad=2)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985 if title else 1))
    if title:
        fig.suptitle(title, fontsize=11, y=0.999)
    return fig


def world_gallery(class_name: str = GALLERY_CLASS, seed: int = 0, image_size: int = 64):
    """One row per nuisance factor (others fixed), then all classes, cue conflicts and corruptions."""
    from .world import CLASS_NAMES

    rows = factor_rows(class_name, seed, image_size, GALLERY_FACTORS, 10)
    names = list(CLASS_NAMES)
    per = 10
    rows += [(f"classes {i + 1}-{min(i + per, len(names))}", class_row(names[i:i + per], seed, image_size))
             for i in range(0, len(names), per)]
    rows.append(("cue conflict", cue_conflict_row(10, seed, image_size)))
    return image_grid(rows, title=f"The embedded world (seed {seed}): one factor varies per row")


def corruption_gallery(class_name: str = GALLERY_CLASS, seed: int = 0, image_size: int = 64, corruptions=None):
    from .world import CORRUPTIONS

    rows = corruption_rows(class_name, corruptions or CORRUPTIONS, seed, image_size)
    return image_grid(rows, title="Corruptions at severities 1-5")


def plot_factor_accuracy(by_factor, chance: float, title: str, ncols: int = 4):
    """Accuracy per factor value (x, in the world's factor order), one panel per factor, one
    marker colour per domain; ``by_factor`` is :func:`clipstudy.evaluate.accuracy_by_factor` output."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .world import DOMAINS, FACTORS

    factors = list(dict.fromkeys(by_factor["factor"]))
    nrows = -(-len(factors) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), sharey=True, squeeze=False)
    palette = dict(zip(DOMAINS, sns.color_palette("colorblind", len(DOMAINS))))
    for ax, factor in zip(axes.flat, factors):
        sub = by_factor[by_factor.factor == factor]
        order = [v for v in FACTORS[factor] if v in set(sub["value"])]
        pos = {v: i for i, v in enumerate(order)}
        domains = list(dict.fromkeys(sub["domain"]))
        for j, (domain, g) in enumerate(sub.groupby("domain", sort=False)):
            x = g["value"].map(pos) + (j - (len(domains) - 1) / 2) * 0.12
            ax.plot(x, g["accuracy"], "o", ms=4, color=palette.get(domain), label=domain)
        ax.axhline(chance, ls="--", c="k", lw=0.8)
        ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
        ax.set_title(factor, fontsize=10)
        ax.set_ylim(0, 1)
    for ax in list(axes.flat)[len(factors):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", bbox_to_anchor=(0.98, 0.08), title="domain", frameon=False)
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 accuracy")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def plot_corruption_accuracy(rows, clean_accuracy: float, chance: float, title: str):
    """Accuracy vs severity (0 = clean) for each corruption; ``rows`` from
    :func:`clipstudy.evaluate.corruption_accuracy`. Geometric corruptions are dashed."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from .world import GEOMETRIC_CORRUPTIONS

    df = pd.DataFrame(rows)
    names = list(dict.fromkeys(df["corruption"]))
    palette = dict(zip(names, sns.color_palette("tab20", len(names))))
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for name in names:
        g = df[df.corruption == name].sort_values("severity")
        x = [0] + g["severity"].tolist()
        y = [clean_accuracy] + g["accuracy"].tolist()
        ax.plot(x, y, marker="o", ms=3, lw=1.3, color=palette[name], label=name,
                ls="--" if name in GEOMETRIC_CORRUPTIONS else "-")
    ax.axhline(chance, ls=":", c="k", lw=0.8, label="chance")
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel("top-1 accuracy")
    ax.set_ylim(0, 1)
    ax.legend(ncol=2, fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
