"""DomainNet (Peng et al. 2019, "Moment Matching for Multi-Source Domain Adaptation"), five domains.

Lipsum-FT (Nam et al. 2024) fine-tunes on ``real`` and evaluates on the other domains; like it, the
``quickdraw`` domain is left out. Images and labels come from the official split files; class names
are the class folder names with underscores as spaces (``aircraft_carrier`` -> ``aircraft carrier``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from . import DATASETS
from .real import (DataNotFound, FileListDataset, check_domain, check_split, classnames_by_label, find_dir,
                   require_classes, require_file, require_files_exist)

DOMAINS = ("real", "painting", "clipart", "infograph", "sketch")
N_CLASSES = 345
LAYOUT = ("ROOT/domainnet/<domain>/<class>/<image> for domains real, painting, clipart, infograph, sketch, plus "
          "the official split files ROOT/domainnet/<domain>_{train,test}.txt with lines "
          "'painting/aircraft_carrier/painting_001_000001.jpg 0' (path relative to ROOT/domainnet, label 0..344)")


def read_split_file(path: Path, base: Path) -> list[tuple[Path, int, str]]:
    """``[(image path, label, class folder)]`` from a DomainNet split file."""
    require_file(path, "domainnet", LAYOUT)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        rel = Path(parts[0])
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or len(rel.parts) < 3:
            raise DataError(f"domainnet: line {n} of {path} is not '<domain>/<class>/<file> <label>': {line!r}; "
                            f"expected layout: {LAYOUT}")
        out.append((base / rel, int(parts[1]), rel.parts[-2]))
    if not out:
        raise DataError(f"domainnet: split file {path} is empty; expected layout: {LAYOUT}")
    return out


@DATASETS.register("domainnet", real=True)
class DomainNetBuilder:
    """DomainNet; ``domain`` one of real (default), painting, clipart, infograph, sketch; ``split`` train
    or test (DomainNet has no validation split)."""

    LAYOUT = LAYOUT
    SOURCE = "DomainNet (Peng et al. 2019), per-domain zips and <domain>_{train,test}.txt from ai.bu.edu/M3SDA"
    FOLDERS = ("domainnet",)
    CLASSES, CHECK_SPLITS = N_CLASSES, ("test", "train")

    @staticmethod
    def build(root=None, split="test", domain=None, transform=None):
        check_split("domainnet", split, ("train", "test"))
        domain = check_domain("domainnet", domain, DOMAINS, "real")
        base = find_dir(root, ["domainnet"], "domainnet", LAYOUT)
        if not (base / domain).is_dir():
            raise DataNotFound(f"domainnet: domain folder {base / domain} is missing; expected layout: {LAYOUT}")
        entries = read_split_file(base / f"{domain}_{split}.txt", base)
        require_files_exist([p for p, _, _ in entries], "domainnet", LAYOUT)
        classnames = classnames_by_label(entries, "domainnet", LAYOUT)
        require_classes("domainnet", len(classnames), N_CLASSES, base / f"{domain}_{split}.txt", root)
        ds = FileListDataset([(p, y) for p, y, _ in entries], root=base, classnames=classnames,
                             name="domainnet", domain=domain, transform=transform, layout=LAYOUT)
        ds.split = split
        return ds

    @staticmethod
    def domains(root=None):
        return list(DOMAINS)
