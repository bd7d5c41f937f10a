"""ImageNet-C (Hendrycks & Dietterich 2019): the ImageNet val images under 15 (+4 extra) common corruptions
at five severities, as distributed (``ROOT/imagenet-c/<corruption>/<severity>/<wnid>/*.JPEG``).

One dataset per (corruption, severity): ``build_dataset("imagenet_c", root=R, corruption="fog", severity=3)``.
The domains are the corruptions present under the root; :func:`available` lists every (corruption,
severity) pair present. ImageNet-3DCC (Kar et al. 2022, the paper's 3D corruptions) uses the same layout:
pass ``folder="imagenet-3dcc"``. Labels and ``class_indices`` follow :mod:`clipstudy.data.imagenet`.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from . import DATASETS
from .imagenet import IMAGENET_CLASSES, wnid_dataset
from .real import CheckUnit, check_split, find_dir

CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate")
"""ImageNet-C's 15 benchmark corruptions followed by its 4 extra ones."""
BENCHMARK = CORRUPTIONS[:15]
SEVERITIES = (1, 2, 3, 4, 5)
FOLDER = "imagenet-c"
FOLDER_3DCC = "imagenet-3dcc"
LAYOUT = ("ROOT/imagenet-c/<corruption>/<severity 1..5>/<wnid>/*.JPEG (ImageNet-C's tar files extracted; "
          "ImageNet-3DCC in the same layout under ROOT/imagenet-3dcc/ with folder='imagenet-3dcc')")


def _corruption_dirs(root, folder: str) -> list[Path]:
    base = find_dir(root, [folder], "imagenet_c", LAYOUT)
    dirs = sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not dirs:
        raise DataError(f"imagenet_c: {base} has no corruption folders; expected layout: {LAYOUT}")
    return dirs


def available(root, folder: str = FOLDER) -> list[tuple[str, int]]:
    """Every ``(corruption, severity)`` present under ``root`` (severity folders named 1..5)."""
    return [(d.name, int(s.name)) for d in _corruption_dirs(root, folder)
            for s in sorted(d.iterdir()) if s.is_dir() and s.name.isdigit()]


@DATASETS.register("imagenet_c", real=True)
class ImageNetCBuilder:
    """ImageNet-C: one (``corruption``, ``severity``) cell of ImageNet val; ``domain`` may name the corruption
    instead of ``corruption``. Test-only. ``folder`` (default ``imagenet-c``) reads ImageNet-3DCC too."""

    LAYOUT = LAYOUT
    SOURCE = ("ImageNet-C tar files (Hendrycks & Dietterich 2019, hendrycks/robustness; zenodo 2235448); "
              "ImageNet-3DCC (Kar et al. 2022, EPFL-VILAB/3DCommonCorruptions)")
    FOLDERS = (FOLDER,)
    CLASSES, IMAGES = IMAGENET_CLASSES, {"test": 50_000}

    @staticmethod
    def build(root=None, split="test", domain=None, transform=None, corruption: str | None = None,
              severity: int = 3, folder: str = FOLDER):
        check_split("imagenet_c", split, ("test", "val"))
        corruption = corruption or domain
        names = [d.name for d in _corruption_dirs(root, folder)]
        if corruption is None:
            corruption = names[0]
        if corruption not in names:
            raise ConfigError(f"imagenet_c has no corruption {corruption!r} under {root}; present: {', '.join(names)}")
        if isinstance(severity, bool) or int(severity) not in range(1, 6):
            raise ConfigError(f"imagenet_c severity must be 1..5, got {severity!r}")
        sub = find_dir(root, [f"{folder}/{corruption}/{int(severity)}"], "imagenet_c", LAYOUT)
        ds = wnid_dataset(sub, name="imagenet_c", layout=LAYOUT, transform=transform, data_root=root)
        ds.domain, ds.corruption, ds.severity = corruption, corruption, int(severity)
        return ds

    @staticmethod
    def domains(root=None):
        """The corruptions present under ``root``; ImageNet-C's list without a root."""
        if not root or not (Path(root).expanduser() / FOLDER).is_dir():
            return list(CORRUPTIONS)
        return [d.name for d in _corruption_dirs(root, FOLDER)]

    @staticmethod
    def check_units(root) -> list[CheckUnit]:
        """Every (corruption, severity) cell for ``clipstudy check-data``: the 75 cells of the 15 benchmark
        corruptions are required (absent ones make the set partial), the extra corruptions' cells optional."""
        present = [(c, s) for c, s in available(root) if s in SEVERITIES]
        extra = sorted({c for c, _ in present} - set(BENCHMARK), 
                       key=lambda c: (CORRUPTIONS.index(c) if c in CORRUPTIONS else len(CORRUPTIONS), c))
        have = set(present)
        units = []
        for c in (*BENCHMARK, *extra):
            for s in SEVERITIES:
                if (c, s) in have:
                    units.append(CheckUnit(f"{c}/{s}", c, "test", {"corruption": c, "severity": s},
                                           required=c in BENCHMARK))
                elif c in BENCHMARK:
                    units.append(CheckUnit(f"{c}/{s}", c, "test", None, reason="corruption/severity folder absent"))
        return units
