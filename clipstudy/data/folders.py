"""Real images from folders: the generic class-per-subfolder adapter (``imagefolder``)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from . import DATASETS, require_dir


def samples_digest(samples, root: Path) -> str:
    """Digest of a file-backed dataset's (path relative to ``root``, label, size, mtime) list: the part of
    its feature-cache key that changes when any image file or label changes."""
    h = hashlib.blake2b(digest_size=12)
    for path, label in samples:
        st = path.stat()
        h.update(f"{path.relative_to(root)}|{label}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
IMAGEFOLDER_LAYOUT = "ROOT/<class name>/<image files (.jpg, .png, ...)>, one subfolder per class"


def readable_classname(folder: str) -> str:
    """``golden_retriever`` -> ``golden retriever`` (folder names rarely contain spaces)."""
    return folder.replace("_", " ").strip()


class ImageFolderDataset:
    """Images in ``root/<class>/<file>``; classes sorted by folder name, as torchvision does."""

    def __init__(self, root, transform: Callable | None = None, name: str = "imagefolder",
                 domain: str | None = None, classnames: tuple[str, ...] | None = None):
        self.root = require_dir(root, name, IMAGEFOLDER_LAYOUT)
        class_dirs = sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not class_dirs:
            raise DataError(f"{self.root} has no class subfolders; expected layout: {IMAGEFOLDER_LAYOUT}")
        self.samples: list[tuple[Path, int]] = []
        for label, d in enumerate(class_dirs):
            files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(
                    f"class folder {d} has no images ({', '.join(IMAGE_SUFFIXES)}); "
                    f"expected layout: {IMAGEFOLDER_LAYOUT}"
                )
            self.samples += [(f, label) for f in files]
        self.folders = tuple(d.name for d in class_dirs)
        self.classnames = classnames or tuple(readable_classname(n) for n in self.folders)
        if len(self.classnames) != len(class_dirs):
            raise DataError(f"{len(self.classnames)} class names given for {len(class_dirs)} class folders in {self.root}")
        self.targets = np.array([lab for _, lab in self.samples], dtype=np.int64)
        self.transform = transform
        self.name = name
        self.domain = domain or name

    @property
    def cache_key(self) -> str:
        return f"{self.name}:{self.root.resolve()}:{samples_digest(self.samples, self.root)}"

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image, UnidentifiedImageError

        path, label = self.samples[i]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot read image {path}: {exc}") from None
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "label": label, "index": i}


@DATASETS.register("imagefolder")
class ImageFolderBuilder:
    """Any class-per-subfolder tree: ``--dataset imagefolder --data-root ROOT``. Domains: one,
    named ``imagefolder``. ``split`` is ignored (point ``root`` at the split's folder)."""

    @staticmethod
    def build(root=None, split="test", domain=None, transform=None):
        if domain not in (None, "imagefolder"):
            raise DataError(f"dataset 'imagefolder' has one domain, 'imagefolder'; got {domain!r}")
        return ImageFolderDataset(root, transform=transform)

    @staticmethod
    def domains(root=None):
        return ["imagefolder"]
