"""Image-text retrieval sets on Karpathy's splits (Karpathy & Fei-Fei 2015): MS-COCO (5,000 test images)
and Flickr30k (1,000 test images), 5 captions per image, as in CLIP's retrieval evaluation.

Each item carries ``captions`` (list of str); ``label`` is the image's index in the split and
``classnames == ()``. :meth:`RetrievalDataset.all_captions` gives every caption with the index of
its image, for recall@K in both directions.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import DATASETS
from .real import FileListDataset, check_domain, check_split, find_dir, require_file, require_files_exist

KARPATHY_FORMAT = ('{"images": [{"filepath": <sub-folder, COCO only>, "filename": ..., "split": "train"|"restval"|'
                   '"val"|"test", "sentences": [{"raw": <caption>}, ...]}, ...]}')
RETRIEVAL_SETS = {
    # name: (folder, Karpathy file, image layout, where to get it)
    "coco_captions": ("coco", "dataset_coco.json", "ROOT/coco/images/<filepath>/<filename> (e.g. images/val2014/"
                      "COCO_val2014_000000391895.jpg)",
                      "MS-COCO 2014 train/val images (cocodataset.org) + Karpathy's dataset_coco.json "
                      "(caption_datasets.zip)"),
    "flickr30k": ("flickr30k", "dataset_flickr30k.json", "ROOT/flickr30k/images/<filename>.jpg",
                  "Flickr30k images (Young et al. 2014, request form) + Karpathy's dataset_flickr30k.json "
                  "(caption_datasets.zip)"),
}


TEST_IMAGES = {"coco_captions": 5_000, "flickr30k": 1_000}
"""Images in Karpathy's test split of each set."""


def layout_of(name: str) -> str:
    folder, karpathy, images, _ = RETRIEVAL_SETS[name]
    return f"{images} + ROOT/{folder}/{karpathy} in Karpathy's format {KARPATHY_FORMAT}"


class RetrievalDataset(FileListDataset):
    """Images of one Karpathy split with their captions."""

    def all_captions(self) -> tuple[list[str], np.ndarray]:
        """Every caption, image by image, and the index of each caption's image (``int64``)."""
        captions = [c for extra in self.extras for c in extra["captions"]]
        owner = np.array([i for i, extra in enumerate(self.extras) for _ in extra["captions"]], dtype=np.int64)
        return captions, owner


def read_karpathy(path: Path, split: str, layout: str, name: str) -> list[dict]:
    require_file(path, name, layout)
    wanted = {"train": {"train", "restval"}}.get(split, {split})
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
        rows = [{"file": Path(im.get("filepath", "")) / im["filename"],
                 "captions": [s["raw"].strip() for s in im["sentences"]]} for im in images if im["split"] in wanted]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{name}: {path} is not a Karpathy caption file ({type(exc).__name__}: {exc}); "
                        f"expected layout: {layout}") from None
    if not rows:
        raise DataError(f"{name}: {path} has no images in split {split!r}; expected layout: {layout}")
    return rows


def build_retrieval(name: str, root, split: str, transform=None) -> RetrievalDataset:
    folder, karpathy, _, _ = RETRIEVAL_SETS[name]
    layout = layout_of(name)
    base = find_dir(root, [folder], name, layout)
    images = base / "images"
    if not images.is_dir():
        raise DataError(f"{name}: image folder {images} is missing; expected layout: {layout}")
    rows = read_karpathy(base / karpathy, split, layout, name)
    paths = [images / r["file"] for r in rows]
    require_files_exist(paths, name, layout)
    ds = RetrievalDataset([(p, i) for i, p in enumerate(paths)], root=base, classnames=(), name=name,
                          transform=transform, layout=layout, extras=[{"captions": r["captions"]} for r in rows])
    ds.split = split
    return ds


def _register(name: str):
    folder, _, _, source = RETRIEVAL_SETS[name]

    class Builder:
        __doc__ = (f"{name}: {layout_of(name)}. ``split`` test (default), val or train (COCO's train includes "
                   f"restval). Source: {source}.")
        LAYOUT, SOURCE, FOLDERS = layout_of(name), source, (folder,)
        CLASSES, IMAGES = 0, {"test": TEST_IMAGES[name]}

        @staticmethod
        def build(root=None, split="test", domain=None, transform=None):
            check_split(name, split, ("train", "val", "test"))
            check_domain(name, domain, [name], name)
            return build_retrieval(name, root, split, transform)

        @staticmethod
        def domains(root=None):
            return [name]

    Builder.__name__ = Builder.__qualname__ = f"{name.title().replace('_', '')}Builder"
    DATASETS.register(name, obj=Builder, real=True, family="retrieval")


for _name in RETRIEVAL_SETS:
    _register(_name)
