"""Shared pieces of the real-benchmark loaders: a file-list dataset, folder checks, resource lists.

Every real dataset is registered in :data:`~clipstudy.data.DATASETS` with ``real=True`` metadata; its
builder class carries ``LAYOUT`` (the expected folder layout, quoted in every error), ``SOURCE``
(where to get the data, one line) and ``FOLDERS`` (candidate top folders under the data root: none
present means the dataset is *missing*, see :func:`check_dataset`). What a complete copy holds is
given by ``CLASSES`` (the number of classes; 0 for sets without labels), optionally ``IMAGES``
(``{split: number of images}`` where the count is fixed) and ``CHECK_SPLITS`` (the splits
:func:`check_dataset` reads, the first one required; default ``("test",)``).

A loader that finds fewer classes than ``CLASSES`` refuses (:func:`require_classes`): a head over the
classes present scores a different task. A class subset is used on purpose with
``CLIPSTUDY_ALLOW_SUBSET=1``, a file :data:`SUBSET_MARKER` in the data root (the fake trees of
:mod:`clipstudy.data.fake` carry one) or ``with allow_subsets(): ...``.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from . import DATASETS, require_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
SUBSET_ENV = "CLIPSTUDY_ALLOW_SUBSET"
SUBSET_MARKER = "clipstudy-allow-subset"
"""A file of this name in the data root lets every loader under it read class subsets."""
_SUBSETS_ALLOWED = contextvars.ContextVar("clipstudy_subsets_allowed", default=False)


class DataNotFound(DataError):
    """A folder or file of a dataset's layout does not exist (as opposed to existing but being wrong)."""


@functools.lru_cache(maxsize=None)
def resource(name: str) -> dict:
    """A JSON data file from ``clipstudy/data/resources`` (cached; treat it as read-only)."""
    from .. import paths
    from ..io import read_json

    return read_json(paths.resources_dir() / name)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and below with ``recursive``), sorted; one directory scan, no stat per
    file where the file system reports entry types."""
    if recursive:
        return sorted(f for f in folder.rglob("*") if is_image(f) and f.is_file())
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if is_image(Path(e.name)) and e.is_file())


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
    raise DataNotFound(f"{what}: no folder {looked}; expected layout: {layout}")


def require_file(path: Path, what: str, layout: str) -> Path:
    if not path.is_file():
        raise DataNotFound(f"{what}: file {path} is missing; expected layout: {layout}")
    return path


@contextlib.contextmanager
def allow_subsets() -> Iterator[None]:
    """Within this block, loaders read datasets with fewer classes than the full set without refusing."""
    token = _SUBSETS_ALLOWED.set(True)
    try:
        yield
    finally:
        _SUBSETS_ALLOWED.reset(token)


def subsets_allowed(root) -> bool:
    """Whether a class subset is accepted under data root ``root`` (see the module docstring)."""
    if _SUBSETS_ALLOWED.get():
        return True
    if os.environ.get(SUBSET_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    return root not in (None, "") and (Path(root).expanduser() / SUBSET_MARKER).exists()


def require_classes(name: str, found: int, expected: int | None, where, root) -> None:
    """Refuse ``found`` classes of a dataset that has ``expected``, unless subsets are allowed under ``root``."""
    if not expected or found >= expected or subsets_allowed(root):
        return
    marker = Path(root).expanduser() / SUBSET_MARKER if root else SUBSET_MARKER
    at = "in" if Path(where).is_file() else "under"
    raise DataError(f"{name} has {found} of {expected} classes {at} {where}; to use a class subset on purpose, "
                    f"set {SUBSET_ENV}=1 or create the file {marker} (clipstudy check-data lists what is there)")


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
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        where = f"; expected layout: {layout}" if layout else ""
        raise DataError(f"cannot read image {path} ({type(exc).__name__}: {exc}){where}") from None


def real_datasets() -> list[str]:
    """Names of the registered real benchmarks (every dataset but the world and the generic folder)."""
    from . import list_datasets

    return [n for n in list_datasets() if DATASETS.meta(n).get("real")]


# ---------------------------------------------------------------------------------------------- check-data

CHECK_CHUNK = 256
"""Files per task of the reader threads of :func:`check_files`."""
PROCESS_MIN_FILES = 20_000
PROCESS_CHUNK = 2_000
"""From this many files on, :func:`check_files` reads them in worker processes, this many per task."""


@dataclass(frozen=True)
class CheckUnit:
    """One part of a dataset that :func:`check_dataset` builds and reads: a split of a domain (or an
    ImageNet-C cell). ``options`` are the builder's keyword arguments; None: known to be absent, because
    ``reason``. A ``required`` unit that is absent makes the dataset partial; an optional one is noted."""

    name: str
    domain: str
    split: str
    options: dict | None
    required: bool = True
    reason: str = ""


def check_file(path: Path, deep: bool = False) -> str | None:
    """None if ``path`` is a non-empty file whose image header decodes (with ``deep``: whose pixels
    decode too), else one phrase naming the file and what is wrong with it. Without ``deep`` it costs a
    stat and a header read, no pixel decoding."""
    from PIL import Image

    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return f"cannot read {path} ({type(exc).__name__}: {exc.strerror or exc})"
    if size == 0:
        return f"{path} is empty (0 bytes)"
    try:
        with Image.open(path) as im:
            if deep:
                im.load()
    except Exception as exc:  # noqa: BLE001 - whatever stops PIL from reading it is the finding
        return f"cannot read image {path} ({type(exc).__name__}: {exc})"
    return None


def _check_chunk(start: int, paths: Sequence[str], deep: bool) -> list[tuple[int, str]]:
    """:func:`check_file` over ``paths``: ``[(start + position, problem)]`` of the bad ones (a worker task)."""
    found = ((start + k, check_file(Path(p), deep)) for k, p in enumerate(paths))
    return [(i, msg) for i, msg in found if msg is not None]


def check_files(paths: Sequence[Path], deep: bool = False, workers: int | None = None) -> list[tuple[int, str]]:
    """``[(index, problem)]`` for each file of ``paths`` that :func:`check_file` rejects, in the order of
    ``paths``. A few threads read a short list (they overlap file-system waits); from
    :data:`PROCESS_MIN_FILES` files on, forked worker processes share the work where the platform forks
    (Linux), since PIL parses headers in Python: a few hundred microseconds per file on one core, minutes
    for ImageNet's 1.3 million."""
    workers = workers or min(16, os.cpu_count() or 1)
    names = [str(p) for p in paths]
    if len(names) >= PROCESS_MIN_FILES and workers > 1 and sys.platform.startswith("linux"):
        found = _check_in_processes(names, deep, workers)
        if found is not None:
            return found
    starts = range(0, len(names), CHECK_CHUNK)
    if len(starts) <= 1 or workers == 1:
        return _check_chunk(0, names, deep)
    with ThreadPoolExecutor(max_workers=min(16, 2 * workers)) as pool:
        done = pool.map(lambda i: _check_chunk(i, names[i:i + CHECK_CHUNK], deep), starts)
        return [bad for found in done for bad in found]


def _check_in_processes(names: list[str], deep: bool, workers: int) -> list[tuple[int, str]] | None:
    """:func:`check_files` in forked processes (fork: no re-import of the caller's main module); None if a
    pool cannot be started or breaks, and the caller reads the files in threads instead."""
    import multiprocessing
    import warnings
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    starts = range(0, len(names), PROCESS_CHUNK)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                done = pool.map(_check_chunk, starts, [names[i:i + PROCESS_CHUNK] for i in starts],
                                [deep] * len(starts))
                return [bad for found in done for bad in found]
    except (BrokenProcessPool, OSError, ValueError):
        return None


def check_plan(builder, root) -> list[CheckUnit]:
    """The units :func:`check_dataset` reads: the builder's own ``check_units(root)`` if it has one, else
    every domain x ``CHECK_SPLITS`` (the first split required, the others checked where present), named
    ``<domain>/<split>`` (``<split>`` for a dataset with one domain)."""
    if hasattr(builder, "check_units"):
        return list(builder.check_units(root))
    splits = tuple(getattr(builder, "CHECK_SPLITS", ("test",)))
    domains = list(builder.domains(root))
    return [CheckUnit(f"{domain}/{split}" if len(domains) > 1 else split, domain, split,
                      {"domain": domain, "split": split}, required=k == 0)
            for domain in domains for k, split in enumerate(splits)]


def _short(exc: Exception) -> str:
    return str(exc).split("; expected layout")[0]


def check_unit(builder, unit: CheckUnit, root, deep: bool = False) -> dict:
    """Build one unit (class subsets allowed) and check every file it lists: its status (``present``,
    ``partial``, ``malformed`` or ``absent``), counts against ``CLASSES``/``IMAGES`` and the first bad file."""
    expected_classes = getattr(builder, "CLASSES", None) or None
    expected_images = (getattr(builder, "IMAGES", None) or {}).get(unit.split)
    out = {"name": unit.name, "domain": unit.domain, "split": unit.split, "required": unit.required,
           "classes": None, "expected_classes": expected_classes, "images": None, "expected_images": expected_images,
           "bad_files": 0, "first_bad_file": None}
    if unit.options is None:
        return {**out, "status": "absent", "reason": unit.reason}
    try:
        with allow_subsets():
            ds = builder.build(root=root, **unit.options)
    except DataNotFound as exc:
        return {**out, "status": "absent", "reason": _short(exc)}
    except DataError as exc:
        return {**out, "status": "malformed", "reason": _short(exc)}
    files = [p for p, _ in ds.samples]
    bad = check_files(files, deep)
    out.update(classes=len(ds.classnames) if expected_classes else None, images=len(files), bad_files=len(bad),
               first_bad_file=str(files[bad[0][0]]) if bad else None)
    if bad:
        return {**out, "status": "malformed",
                "reason": f"{len(bad)} of {len(files)} files unreadable, first: {bad[0][1]}"}
    short = [f"{n} of {e} {what}" for n, e, what in ((out["classes"], expected_classes, "classes"),
                                                     (len(files), expected_images, "images")) if e and n < e]
    return {**out, "status": "partial" if short else "present", **({"reason": ", ".join(short)} if short else {})}


def _grouped(units: Sequence[dict], limit: int = 3) -> str:
    """``reason (unit, unit, +k more); reason (...)``: the units' reasons, each once, with who has it."""
    by_reason: dict[str, list[str]] = {}
    for u in units:
        by_reason.setdefault(u["reason"], []).append(u["name"])
    parts = []
    for reason, names in by_reason.items():
        more = f", +{len(names) - limit} more" if len(names) > limit else ""
        parts.append(f"{reason} ({', '.join(names[:limit])}{more})")
    return "; ".join(parts)


def unit_counts(u: dict) -> str:
    """``test: 3 of 1000 classes, 6 images``, ``train: absent``: one unit's counts, for the text report."""
    if u["images"] is None:
        return f"{u['name']}: {u['status']}"
    parts = []
    if u["classes"] is not None:
        full = u["expected_classes"] and u["classes"] < u["expected_classes"]
        parts.append(f"{u['classes']} of {u['expected_classes']} classes" if full else f"{u['classes']} classes")
    short = u["expected_images"] and u["images"] < u["expected_images"]
    parts.append(f"{u['images']} of {u['expected_images']} images" if short else f"{u['images']} images")
    if u["bad_files"]:
        parts.append(f"{u['bad_files']} unreadable")
    return f"{u['name']}: {', '.join(parts)}"


def check_dataset(name: str, root, deep: bool = False) -> dict:
    """Whether dataset ``name`` is complete and readable under data root ``root``.

    ``status``: ``missing`` (none of its top folders exists), ``malformed`` (a layout error, or files that
    are empty or whose image header does not decode; with ``deep``, whose pixels do not decode), ``partial``
    (fewer classes or images than the dataset has, or a required split/domain absent) or ``present``.
    Every file of every unit of :func:`check_plan` is checked; ``units`` holds each unit's counts,
    ``images`` the images per domain of the required units, ``reason`` (unless present) says what is wrong.
    """
    builder = DATASETS.get(name)
    info = {"dataset": name, "layout": builder.LAYOUT, "source": builder.SOURCE, "deep": bool(deep),
            "expected_classes": getattr(builder, "CLASSES", None) or None}
    base = Path(root).expanduser() if root else None
    if base is None or not any((base / f).exists() for f in builder.FOLDERS):
        looked = ", ".join(builder.FOLDERS)
        return {**info, "status": "missing", "reason": f"none of {looked} under {base}"}
    try:
        plan = check_plan(builder, root)
    except DataError as exc:
        return {**info, "status": "malformed", "reason": _short(exc)}
    units = [check_unit(builder, u, root, deep) for u in plan]
    malformed = [u for u in units if u["status"] == "malformed"]
    partial = [u for u in units if u["status"] == "partial" or (u["required"] and u["status"] == "absent")]
    status = "malformed" if malformed else "partial" if partial else "present"
    images: dict[str, int] = {}
    for u in units:
        if u["required"] and u["images"] is not None:
            images[u["domain"]] = images.get(u["domain"], 0) + u["images"]
    report = {**info, "status": status, "images": images,
              "files_checked": sum(u["images"] or 0 for u in units),
              "bad_files": sum(u["bad_files"] for u in units),
              "first_bad_file": next((u["first_bad_file"] for u in units if u["first_bad_file"]), None),
              "absent": [u["name"] for u in units if u["status"] == "absent"], "units": units}
    if status != "present":
        report["reason"] = _grouped(malformed or partial)
    if any(u["classes"] is not None and u["classes"] < u["expected_classes"] for u in units) and subsets_allowed(root):
        report["note"] = "loaders accept this class subset here (class subsets are allowed under this data root)"
    return report
