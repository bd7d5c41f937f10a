"""One figure style for every notebook, and ``save_figure`` writing PNG + PDF atomically.

matplotlib and seaborn are imported inside the functions, so importing this module is cheap.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import io, paths

FORMATS = ("png", "pdf")

METHOD_ORDER = (
    "zeroshot", "linearprobe", "coop", "cocoop", "clipadapter", "tipadapter", "finetune", "lpft",
    "flyp", "wiseft", "lipsumft", "dor", "temperaturescaling",
)
"""Methods with a fixed slot in the palette, so they keep their colour whatever subset is plotted.
Names are compared after lower-casing and dropping non-alphanumerics ("WiSE-FT" == "wise_ft")."""

_RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.dpi": 110,  # on screen
    "savefig.dpi": 300,  # PNGs good enough for print
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by journals
    "ps.fonttype": 42,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def set_style(context: str = "paper", font_scale: float = 1.2) -> None:
    """Apply the clipstudy style: seaborn ticks, colorblind palette, despined axes, 300-dpi PNGs."""
    import seaborn as sns

    sns.set_theme(context=context, style="ticks", palette="colorblind", font_scale=font_scale, rc=_RC)


def method_palette(names: Iterable[str], palette: str = "colorblind") -> dict[str, Any]:
    """A colour per method name that does not depend on which other methods are in the figure.

    Known methods (:data:`METHOD_ORDER`) own fixed slots; any other name is placed by a stable hash
    (not Python's salted ``hash``), so it also gets the same colour in every figure and session;
    two such names can share a colour; give them fixed slots in :data:`METHOD_ORDER` if they do.
    """
    import seaborn as sns

    colors = sns.color_palette(palette, 10) + sns.color_palette("dark", 10)
    out: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        key = _method_key(name)
        if key in METHOD_ORDER:
            slot = METHOD_ORDER.index(key)
        else:
            slot = int(hashlib.sha1(key.encode()).hexdigest(), 16) % len(colors)
        out[name] = colors[slot % len(colors)]
    return out


def title_figure(fig, title: str, caption: str | None = None) -> None:
    """A left-aligned title and an optional one-line caption in smaller grey text, the same everywhere."""
    fig.suptitle(title, x=0.01, ha="left", fontsize="large", fontweight="semibold")
    if caption:
        fig.text(0.01, -0.02, caption, ha="left", va="top", fontsize="small", color="0.35", wrap=True)


def save_figure(
    fig, name: str, figures_dir: str | Path | None = None, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` atomically into ``figures_dir``; return the paths.

    ``figures_dir`` defaults to :func:`clipstudy.paths.figures_dir`; ``""`` means the default too, so
    a notebook can pass its ``figures_dir`` parameter straight through. PDFs carry no creation date, so
    rerunning a notebook with the same numbers rewrites the same bytes.
    """
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name) or name.endswith(tuple(f".{f}" for f in FORMATS)):
        raise ValueError(f"figure name must be a file stem like '00_world_gallery', got {name!r}")
    folder = Path(figures_dir) if figures_dir else paths.figures_dir()
    written = []
    for fmt in formats:
        target = folder / f"{name}.{fmt}"
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        with io.atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, metadata=metadata)
        written.append(target)
    return written


def _method_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())
