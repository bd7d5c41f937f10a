"""Shared pieces of the real-benchmark loaders: a file-list dataset, folder checks, resource lists.

Every real dataset is registered in :data:`~clipstudy.data.DATASETS` with ``real=True`` metadata; its
builder class carries ``LAYOUT`` (the expected folder layout, quoted in every error), ``SOURCE``
(where to get the data, one line) and ``FOLDERS`` (candidate top folders under the data root: none
present means the dataset is *missing*, see :func:`check_dataset`).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from . import DATASETS, require_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


@functools.lru_cache(maxsize=None)
def resource(name: str) -> dict:
    """A JSON data file from ``clipstudy/data/resources`` (cached; treat it as read-only)."""
    from .. import paths
    from ..io import read_json

    return read_json(paths.resources_dir() / name)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in files if is_image(f) and f.is_file())


def class_folders(root: Path, what: str, layout: str) -> list[tuple[str, list[Path]]]:
    """``[(folder name, sorted image files)]`` for every class sub-folder of ``root``, sorted by name.
    No class folder, or a class folder without images, is a DataError naming ``layout``."""
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not dirs:
        raise DataError(f"{what}: {root} has no class sub-folders; expected layout: {layout}")
    out = []
    for d in dirs:
        files = list_images(d)
        if not files:
            raise DataError(f"{what}: class folder {d} has no images; expected layout: {layout}")
        out.append((d.name, files))
    return out


def find_dir(root, candidates: Sequence[str], what: str, layout: str) -> Path:
    """The first of ``candidates`` (paths relative to the data root) that is a folder."""
    base = require_dir(root, what, layout)
    for rel in candidates:
        if (base / rel).is_dir():
            return base / rel
    looked = " or ".join(str(base / c) for c in candidates)
    raise DataError(f"{what}: no folder {looked}; expected layout: {layout}")


def require_file(path: Path, what: str, layout: str) -> Path:
    if not path.is_file():
        raise DataError(f"{what}: file {path} is missing; expected layout: {layout}")
    return path


def check_split(name: str, split: str, valid: Sequence[str]) -> None:
    if split not in valid:
        raise ConfigError(f"unknown split {split!r} for dataset {name!r}; valid splits: {', '.join(valid)}")


def check_domain(name: str, domain, valid: Sequence[str], default: str) -> str:
    domain = default if domain is None else domain
    if domain not in valid:
        raise ConfigError(f"dataset {name!r} has no domain {domain!r}; valid domains: {', '.join(valid)}")
    return domain


def require_files_exist(paths: Sequence[Path], what: str, layout: str) -> None:
    """Split files name images; a missing one is reported at build time, with how many are missing."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{what}: {len(missing)} image(s) listed in the split file are missing, e.g. "
                        f"{missing[0]}; expected layout: {layout}")


def readable(name: str) -> str:
    """``golden_retriever`` -> ``golden retriever`` (CoOp and DomainNet folder/class-name convention)."""
    return name.replace("_", " ").strip()


class FileListDataset:
    """Images given as ``(path, label)`` pairs, with the common dataset interface.

    ``extras`` (optional, one dict per sample) are merged into each item; ``layout`` is quoted when an
    image cannot be read. ``cache_key`` hashes every file's relative path, label, size and mtime, so
    it changes when a file is added, removed or rewritten (as :class:`ImageFolderDataset` does).
    """

    def __init__(self, samples: Sequence[tuple[Path, int]], *, root: Path, classnames: Sequence[str], name: str,
                 domain: str | None = None, transform: Callable | None = None, layout: str = "",
                 extras: Sequence[dict] | None = None):
        if not samples:
            raise DataError(f"{name}: no images found under {root}; expected layout: {layout}")
        self.samples = [(Path(p), int(y)) for p, y in samples]
        self.root = Path(root)
        self.classnames = tuple(classnames)
        self.targets = np.array([y for _, y in self.samples], dtype=np.int64)
        self.name, self.domain = name, domain or name
        self.transform, self.layout = transform, layout
        self.extras = list(extras) if extras is not None else None
        self.class_indices = None

    @property
    def cache_key(self) -> str:
        from .folders import samples_digest

        return f"{self.name}:{self.domain}:{self.root.resolve()}:{samples_digest(self.samples, self.root)}"

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        path, label = self.samples[i]
        image = load_image(path, self.layout)
        if self.transform is not None:
            image = self.transform(image)
        item = {"image": image, "label": label, "index": i}
        if self.extras is not None:
            item.update(self.extras[i])
        return item

    def __repr__(self) -> str:
        return f"<{self.name} domain={self.domain!r} n={len(self)} classes={len(self.classnames)} root={self.root}>"


def classnames_by_label(entries, name: str, layout: str) -> tuple[str, ...]:
    """Readable class names from ``(file, label, class name)`` split entries, checked to be one name per
    label and labels ``0..K-1`` (CoOp's split files, DomainNet's lists)."""
    names: dict[int, str] = {}
    for _, label, cname in entries:
        if names.setdefault(label, cname) != cname:
            raise DataError(f"{name}: label {label} has two class names, {names[label]!r} and {cname!r}; "
                            f"expected layout: {layout}")
    if sorted(names) != list(range(len(names))):
        raise DataError(f"{name}: split labels are not 0..{len(names) - 1}; expected layout: {layout}")
    return tuple(readable(names[i]) for i in range(len(names)))


def load_image(path: Path, layout: str = ""):
    """An RGB PIL image; an unreadable or missing file is one DataError (never a PIL traceback)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        where = f"; expected layout: {layout}" if layout else ""
        raise DataError(f"cannot read image {path} ({type(exc).__name__}: {exc}){where}") from None


def real_datasets() -> list[str]:
    """Names of the registered real benchmarks (every dataset but the world and the generic folder)."""
    from . import list_datasets

    return [n for n in list_datasets() if DATASETS.meta(n).get("real")]


def check_dataset(name: str, root) -> dict:
    """Whether dataset ``name`` is usable under data root ``root``: ``present``, ``missing`` (none of its
    top folders exists) or ``malformed`` (with the reason). Builds every domain's default split and
    reads its first image."""
    builder = DATASETS.get(name)
    info = {"dataset": name, "layout": builder.LAYOUT, "source": builder.SOURCE}
    base = Path(root).expanduser() if root else None
    if base is None or not any((base / f).exists() for f in builder.FOLDERS):
        looked = ", ".join(builder.FOLDERS)
        return {**info, "status": "missing", "reason": f"none of {looked} under {base}"}
    counts = {}
    try:
        for domain in builder.domains(root):
            ds = builder.build(root=root, domain=domain)
            ds[0]
            counts[domain] = len(ds)
    except DataError as exc:
        return {**info, "status": "malformed", "reason": str(exc).split("; expected layout")[0]}
    return {**info, "status": "present", "images": counts}
