"""The few-shot benchmark of CoOp (Zhou et al. 2022), read in CoOp's own layout (its DATASETS.md).

Ten datasets are registered here under their CoOp folder-style names (``caltech101``, ``oxford_pets``,
``stanford_cars``, ``oxford_flowers``, ``food101``, ``fgvc_aircraft``, ``sun397``, ``dtd``, ``eurosat``,
``ucf101``); the eleventh, ImageNet, is the ``imagenet`` dataset (it reads CoOp's
``imagenet/images/{train,val}`` too). :data:`COOP_DATASETS` lists all eleven.

Per dataset, ``resources/coop_datasets.json`` holds the folder, the image sub-folder, the split file
and the hand-crafted prompt (``ds.template``, CoOp's ``CUSTOM_TEMPLATES``). A split file
``split_zhou_<Name>.json`` is ``{"train"|"val"|"test": [[image path relative to the image folder,
label, class name], ...]}``; FGVC-Aircraft instead uses its own ``variants.txt`` and
``images_variant_{train,val,test}.txt``, as CoOp reads it. Class names are the split file's names
with underscores as spaces (CoOp's prompt learner does the same).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from . import DATASETS
from .real import (FileListDataset, check_domain, check_split, classnames_by_label, find_dir, require_classes,
                   require_file, require_files_exist, resource)

SPLITS = ("train", "val", "test")
COOP_CLASSES = {"caltech101": 100, "oxford_pets": 37, "stanford_cars": 196, "oxford_flowers": 102, "food101": 101,
                "fgvc_aircraft": 100, "sun397": 397, "dtd": 47, "eurosat": 10, "ucf101": 101}
"""The number of classes of each CoOp dataset read here (CoOp's Caltech101 leaves out its two background and
face classes)."""


def coop_table() -> dict[str, dict]:
    """name -> {dassl, folder, image_dir, split_file, template, get}, for all eleven datasets."""
    return resource("coop_datasets.json")["datasets"]


COOP_DATASETS = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                 "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")
"""CoOp's eleven datasets, in the order of its tables."""


def layout_of(name: str) -> str:
    e = coop_table()[name]
    if name == "fgvc_aircraft":
        return ("ROOT/fgvc_aircraft/images/<image id>.jpg, ROOT/fgvc_aircraft/variants.txt (one class per line) and "
                "ROOT/fgvc_aircraft/images_variant_{train,val,test}.txt (lines '<image id> <variant>'), i.e. the "
                "data/ folder of fgvc-aircraft-2013b renamed (CoOp DATASETS.md)")
    images = f"ROOT/{e['folder']}/{e['image_dir']}/..." if e["image_dir"] else f"ROOT/{e['folder']}/<image paths>"
    return (f"{images} + ROOT/{e['folder']}/{e['split_file']} with {{\"train\", \"val\", \"test\"}} lists of "
            f"[image path relative to {e['image_dir'] or e['folder']}/, label, class name] (CoOp DATASETS.md)")


def read_split_json(path: Path, layout: str, name: str) -> dict[str, list[tuple[str, int, str]]]:
    """``{split: [(image path, label, class name)]}`` from a CoOp ``split_zhou_*.json`` file."""
    require_file(path, name, layout)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {s: [(str(p), int(y), str(c)) for p, y, c in data[s]] for s in SPLITS}
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{name}: split file {path} is malformed ({type(exc).__name__}: {exc}); "
                        f"expected layout: {layout}") from None


def read_aircraft(base: Path, split: str, layout: str) -> tuple[list[tuple[str, int, str]], list[str]]:
    """FGVC-Aircraft's own split files, read as CoOp reads them: entries and the variant (class) list."""
    variants = [v.strip() for v in require_file(base / "variants.txt", "fgvc_aircraft", layout)
                .read_text(encoding="utf-8").splitlines() if v.strip()]
    label = {v: i for i, v in enumerate(variants)}
    lines = require_file(base / f"images_variant_{split}.txt", "fgvc_aircraft", layout).read_text(encoding="utf-8")
    out = []
    for line in filter(str.strip, lines.splitlines()):
        image_id, _, variant = line.strip().partition(" ")
        if variant not in label:
            raise DataError(f"fgvc_aircraft: variant {variant!r} of image {image_id} is not in variants.txt; "
                            f"expected layout: {layout}")
        out.append((f"{image_id}.jpg", label[variant], variant))
    return out, variants


class CoOpDataset(FileListDataset):
    """A CoOp benchmark split; ``template`` is CoOp's hand-crafted prompt for the dataset."""

    template = "a photo of a {}."


def build_coop(name: str, root, split: str, transform=None) -> CoOpDataset:
    e, layout = coop_table()[name], layout_of(name)
    base = find_dir(root, [e["folder"]], name, layout)
    image_dir = base / e["image_dir"] if e["image_dir"] else base
    if not image_dir.is_dir():
        raise DataError(f"{name}: image folder {image_dir} is missing; expected layout: {layout}")
    if name == "fgvc_aircraft":
        entries, variants = read_aircraft(base, split, layout)
        classnames, listed = tuple(variants), base / "variants.txt"
    else:
        splits = read_split_json(base / e["split_file"], layout, name)
        entries = splits[split]
        classnames = classnames_by_label([x for s in SPLITS for x in splits[s]], name, layout)
        listed = base / e["split_file"]
    require_classes(name, len(classnames), COOP_CLASSES[name], listed, root)
    paths = [image_dir / p for p, _, _ in entries]
    require_files_exist(paths, name, layout)
    ds = CoOpDataset([(p, y) for p, (_, y, _) in zip(paths, entries)], root=base, classnames=classnames,
                     name=name, transform=transform, layout=layout)
    ds.template, ds.split = e["template"], split
    return ds


def _register(name: str):
    e = coop_table()[name]

    class Builder:
        __doc__ = f"CoOp's {e['dassl']}: {layout_of(name)}. ``split`` train, val or test. Get: {e['get']}."
        LAYOUT, SOURCE, FOLDERS = layout_of(name), e["get"], (e["folder"],)
        CLASSES, CHECK_SPLITS = COOP_CLASSES[name], ("test", "train", "val")

        @staticmethod
        def build(root=None, split="test", domain=None, transform=None):
            check_split(name, split, SPLITS)
            check_domain(name, domain, [name], name)
            return build_coop(name, root, split, transform)

        @staticmethod
        def domains(root=None):
            return [name]

    Builder.__name__ = Builder.__qualname__ = f"{e['dassl']}Builder"
    DATASETS.register(name, obj=Builder, real=True, family="coop")


for _name in COOP_DATASETS[1:]:
    _register(_name)
