"""ImageNet-1k and its distribution shifts (V2, Sketch, R, A) and the ImageNet-X factor annotations.

Labels are ``0..K-1`` over the classes present (sorted by their standard ImageNet index). A tree with
a subset of the wnid folders loads only where class subsets are allowed (see
:func:`clipstudy.data.real.require_classes`), else it is one DataError. ``ds.class_indices`` maps the
labels into the 1000 ImageNet classes (``None`` when all 1000 are present):
``logits_1000[:, ds.class_indices]`` masks a 1000-way head to ImageNet-R's or ImageNet-A's 200 classes,
as Hendrycks et al. evaluate them. ``ds.wnids`` lists the present WordNet ids, ``ds.classnames`` their
CLIP names (``resources/imagenet_classnames.json``).

Getting val into class folders: extract ``ILSVRC2012_img_val.tar`` and sort the 50,000 images into
``val/<wnid>/`` with the devkit labels, e.g. ``torchvision.datasets.ImageNet(ROOT/imagenet, split="val")``
(it does this once from ``ILSVRC2012_img_val.tar`` + ``ILSVRC2012_devkit_t12.tar.gz``) or the widely
used ``valprep.sh`` from the PyTorch ImageNet example.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, DataError
from . import DATASETS
from .real import (FileListDataset, check_domain, check_split, class_folders, find_dir, list_images,
                   require_classes, require_file, resource)

IMAGENET_LAYOUT = ("ROOT/imagenet/{train,val}/<wnid>/*.JPEG, val sorted into the 1000 wnid folders like train "
                   "(CoOp's ROOT/imagenet/images/{train,val}/<wnid>/ works too)")
SPLITS = ("train", "val", "test")
IMAGENET_CLASSES = 1000
FACTORS = ("pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory", "texture",
           "larger", "darker", "object_blocking", "person_blocking", "style", "brighter", "multiple_objects")
"""The 16 ImageNet-X factors (Idrissi et al. 2023, facebookresearch/imagenetx)."""


def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 WordNet ids in standard class-index order."""
    return tuple(resource("imagenet_wnids.json")["wnids"])


def imagenet_classnames() -> tuple[str, ...]:
    """CLIP's 1000 readable ImageNet class names, in standard class-index order."""
    return tuple(resource("imagenet_classnames.json")["classnames"])


def subset_indices(kind: str) -> np.ndarray:
    """Indices into the 1000 classes of ImageNet-R (``"r"``) or ImageNet-A (``"a"``), 200 each."""
    return np.array(resource(f"imagenet_{kind}_classes.json")["indices"], dtype=np.int64)


class ImageNetDataset(FileListDataset):
    """A :class:`FileListDataset` over ImageNet classes, with ``wnids`` and ``class_indices``."""

    template = "a photo of a {}."  # CoOp's hand-crafted ImageNet prompt (resources/coop_datasets.json)


def wnid_dataset(folder: Path, *, name: str, layout: str, transform: Callable | None = None,
                 by_index: bool = False, allowed: np.ndarray | None = None, data_root=None) -> ImageNetDataset:
    """Images in ``folder/<wnid>/`` (or ``folder/<class index>/`` with ``by_index``, ImageNet-V2's format).
    ``allowed``: the standard indices a folder may name (ImageNet-R/A's 200). Fewer classes than
    ``allowed`` (or 1000) is a DataError unless subsets are allowed under ``data_root``."""
    _check_not_flat(folder, name, layout)
    wnids = imagenet_wnids()
    position = {w: i for i, w in enumerate(wnids)}
    valid = set(range(len(wnids))) if allowed is None else set(allowed.tolist())
    classes = []
    for folder_name, files in class_folders(folder, name, layout):
        idx = _folder_index(folder_name, position, by_index)
        if idx not in valid:
            kind = "a class index 0..999" if by_index else "an ImageNet wnid"
            extra = "" if allowed is None else f" of the {len(allowed)} {name} classes"
            raise DataError(f"{name}: folder {folder / folder_name} is not {kind}{extra}; expected layout: {layout}")
        classes.append((idx, files))
    classes.sort(key=lambda c: c[0])
    require_classes(name, len(classes), len(valid), folder, data_root)
    samples = [(f, label) for label, (_, files) in enumerate(classes) for f in files]
    indices = np.array([idx for idx, _ in classes], dtype=np.int64)
    names = imagenet_classnames()
    ds = ImageNetDataset(samples, root=folder, classnames=[names[i] for i in indices], name=name,
                         transform=transform, layout=layout)
    ds.wnids = tuple(wnids[i] for i in indices)
    full = allowed is None and len(indices) == len(wnids)
    ds.class_indices = None if full else indices
    return ds


def _folder_index(folder_name: str, position: dict, by_index: bool):
    if by_index:
        return int(folder_name) if folder_name.isdigit() and int(folder_name) < len(position) else None
    return position.get(folder_name)


def _check_not_flat(folder: Path, name: str, layout: str) -> None:
    if not any(d.is_dir() for d in folder.iterdir()) and list_images(folder):
        raise DataError(f"{name}: {folder} holds images directly, not in class folders; sort ImageNet val into "
                        f"<wnid>/ folders (torchvision.datasets.ImageNet(root, split='val') or valprep.sh); "
                        f"expected layout: {layout}")


def _single_domain(name: str, domain) -> None:
    check_domain(name, domain, [name], name)


@DATASETS.register("imagenet", real=True)
class ImageNetBuilder:
    """ImageNet-1k (ILSVRC2012): ``split`` train -> ``train/``, val or test -> ``val/`` (the labelled
    validation set is the test set, as in CLIP and CoOp)."""

    LAYOUT = IMAGENET_LAYOUT
    SOURCE = "ImageNet-1k (ILSVRC2012) train + val archives from image-net.org (login required)"
    FOLDERS = ("imagenet",)
    CLASSES, IMAGES, CHECK_SPLITS = IMAGENET_CLASSES, {"test": 50_000, "train": 1_281_167}, ("test", "train")

    @staticmethod
    def build(root=None, split="test", domain=None, transform=None):
        check_split("imagenet", split, SPLITS)
        _single_domain("imagenet", domain)
        sub = "train" if split == "train" else "val"
        folder = find_dir(root, [f"imagenet/{sub}", f"imagenet/images/{sub}"], "imagenet", IMAGENET_LAYOUT)
        return wnid_dataset(folder, name="imagenet", layout=IMAGENET_LAYOUT, transform=transform, data_root=root)

    @staticmethod
    def domains(root=None):
        return ["imagenet"]


def _variant(name: str, folders: list[str], layout: str, source: str, by_index: bool = False, kind: str | None = None,
             images: int | None = None):
    """Register a test-only ImageNet shift stored as one class-per-folder tree (``images``: its test images)."""

    class Builder:
        __doc__ = f"{name}: {layout}. Test-only (``split`` test or val). Source: {source}."
        LAYOUT, SOURCE, FOLDERS = layout, source, tuple(folders)
        CLASSES = 200 if kind else IMAGENET_CLASSES
        IMAGES = {"test": images} if images else {}

        @staticmethod
        def build(root=None, split="test", domain=None, transform=None):
            check_split(name, split, ("test", "val"))
            _single_domain(name, domain)
            folder = find_dir(root, folders, name, layout)
            allowed = subset_indices(kind) if kind else None
            return wnid_dataset(folder, name=name, layout=layout, transform=transform, by_index=by_index,
                                allowed=allowed, data_root=root)

        @staticmethod
        def domains(root=None):
            return [name]

    Builder.__name__ = Builder.__qualname__ = f"{name.title().replace('_', '')}Builder"
    return DATASETS.register(name, obj=Builder, real=True)


_V2 = "imagenetv2-matched-frequency-format-val"
_variant("imagenet_v2", [_V2, f"imagenetv2/{_V2}"],
         f"ROOT/{_V2}/<class index 0..999>/*.jpeg (or under ROOT/imagenetv2/, CoOp)",
         "ImageNetV2 matched-frequency, imagenetv2-matched-frequency.tar.gz (Recht et al. 2019, "
         "modestyachts/ImageNetV2)",
         by_index=True, images=10_000)
_variant("imagenet_sketch", ["sketch", "imagenet-sketch/images"],
         "ROOT/sketch/<wnid>/*.JPEG (or CoOp's ROOT/imagenet-sketch/images/<wnid>/)",
         "ImageNet-Sketch (Wang et al. 2019, HaohanWang/ImageNet-Sketch), e.g. ImageNet-Sketch.zip")
_variant("imagenet_r", ["imagenet-r", "imagenet-rendition/imagenet-r"],
         "ROOT/imagenet-r/<wnid>/*, 200 wnid folders (or CoOp's ROOT/imagenet-rendition/imagenet-r/)",
         "ImageNet-R, imagenet-r.tar (Hendrycks et al. 2021, hendrycks/imagenet-r)", kind="r", images=30_000)
_variant("imagenet_a", ["imagenet-a", "imagenet-adversarial/imagenet-a"],
         "ROOT/imagenet-a/<wnid>/*, 200 wnid folders (or CoOp's ROOT/imagenet-adversarial/imagenet-a/)",
         "ImageNet-A, imagenet-a.tar (Hendrycks et al. 2021, hendrycks/natural-adv-examples)", kind="a", images=7_500)


# ----------------------------------------------------------------------------------------------------------
# ImageNet-X: 16 binary factors per validation image (Idrissi et al. 2023, "ImageNet-X").

IMAGENET_X_LAYOUT = (IMAGENET_LAYOUT + "; plus ROOT/imagenet-x/imagenet_x_val_multi_factor.jsonl (or _top_factor, "
                     ".jsonl or .csv): one row per val image with file_name (ILSVRC2012_val_XXXXXXXX.JPEG), class "
                     "(0..999) and a 0/1 column per factor (" + ", ".join(FACTORS) + ")")


def read_imagenet_x(path) -> dict[str, dict]:
    """``{file_name: {"class": int, <factor>: 0/1, ...}}`` from an ImageNet-X JSONL or CSV file."""
    path = Path(path)
    require_file(path, "imagenet_x", IMAGENET_X_LAYOUT)
    rows = _read_rows(path)
    out = {}
    for n, row in enumerate(rows, 1):
        missing = [k for k in ("file_name", "class", *FACTORS) if k not in row]
        if missing:
            raise DataError(f"imagenet_x: row {n} of {path} lacks {', '.join(missing)}; expected layout: "
                            f"{IMAGENET_X_LAYOUT}")
        try:
            out[str(row["file_name"])] = {"class": int(row["class"]), **{f: int(row[f]) for f in FACTORS}}
        except (TypeError, ValueError):
            raise DataError(f"imagenet_x: row {n} of {path} has a non-integer class or factor; expected layout: "
                            f"{IMAGENET_X_LAYOUT}") from None
    return out


def _read_rows(path: Path) -> list[dict]:
    import csv
    import json

    try:
        with open(path, encoding="utf-8", newline="") as f:
            if path.suffix.lower() == ".csv":
                return list(csv.DictReader(f))
            return [json.loads(line) for line in f if line.strip()]
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"imagenet_x: cannot parse {path} ({exc}); expected layout: {IMAGENET_X_LAYOUT}") from None


class ImageNetXDataset(ImageNetDataset):
    """ImageNet val with the ImageNet-X factors of each image (``factor_table``)."""

    def factor_table(self, as_frame: bool = False):
        """Per image: ``index``, ``label``, ``file_name``, ``annotated`` and the 16 factors (0/1; None
        where the annotation file has no row for the image). A DataFrame with ``as_frame=True``."""
        rows = []
        for i, (path, label) in enumerate(self.samples):
            ann = self.annotations.get(path.name)
            factors = {f: (ann[f] if ann else None) for f in FACTORS}
            rows.append({"index": i, "label": label, "file_name": path.name, "annotated": ann is not None, **factors})
        if as_frame:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows


def attach_imagenet_x(ds: ImageNetDataset, annotations: dict, annotated_only: bool = True) -> ImageNetXDataset:
    """Give an ImageNet val dataset its ImageNet-X factors; check each annotated class matches the folder."""
    full = ds.class_indices if ds.class_indices is not None else np.arange(len(imagenet_wnids()))
    keep = []
    for path, label in ds.samples:
        ann = annotations.get(path.name)
        if ann is not None and ann["class"] != int(full[label]):
            raise DataError(f"imagenet_x: {path.name} is class {ann['class']} in the annotations but lies in folder "
                            f"{path.parent.name} (class {int(full[label])}); expected layout: {IMAGENET_X_LAYOUT}")
        if ann is not None or not annotated_only:
            keep.append((path, label))
    out = ImageNetXDataset(keep, root=ds.root, classnames=ds.classnames, name="imagenet_x", layout=IMAGENET_X_LAYOUT,
                           transform=ds.transform)
    out.wnids, out.class_indices, out.annotations = ds.wnids, ds.class_indices, annotations
    return out


@DATASETS.register("imagenet_x", real=True)
class ImageNetXBuilder:
    """ImageNet val images with ImageNet-X factor labels. Options: ``annotations`` (a file path; default
    ``ROOT/imagenet-x/imagenet_x_val_<which>_factor.jsonl`` or ``.csv``), ``which`` (``multi`` or ``top``),
    ``annotated_only`` (drop val images without a row; default True)."""

    LAYOUT = IMAGENET_X_LAYOUT
    SOURCE = ("ImageNet-X annotations imagenet_x_val_multi_factor.jsonl (Idrissi et al. 2023, facebookresearch/"
              "imagenetx, imagenet_x/annotations/) + ImageNet-1k val")
    FOLDERS = ("imagenet-x",)
    CLASSES = IMAGENET_CLASSES

    @staticmethod
    def build(root=None, split="test", domain=None, transform=None, annotations=None, which: str = "multi",
              annotated_only: bool = True):
        check_split("imagenet_x", split, ("val", "test"))
        _single_domain("imagenet_x", domain)
        base = ImageNetBuilder.build(root=root, split="val", transform=transform)
        path = Path(annotations) if annotations else _default_annotations(root, which)
        return attach_imagenet_x(base, read_imagenet_x(path), annotated_only=annotated_only)

    @staticmethod
    def domains(root=None):
        return ["imagenet_x"]


def _default_annotations(root, which: str) -> Path:
    if which not in ("multi", "top"):
        raise ConfigError(f"imagenet_x option which={which!r}; valid: multi, top")
    folder = find_dir(root, ["imagenet-x"], "imagenet_x", IMAGENET_X_LAYOUT)
    stem = f"imagenet_x_val_{which}_factor"
    csv = folder / f"{stem}.csv"
    return csv if csv.is_file() and not (folder / f"{stem}.jsonl").is_file() else folder / f"{stem}.jsonl"
