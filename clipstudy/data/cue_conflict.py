"""The cue-conflict stimuli of Geirhos et al. 2019 ("ImageNet-trained CNNs are biased towards texture"),
as distributed by model-vs-human (bethgelab/model-vs-human, ``datasets/cue-conflict``).

Each image has the shape of one of 16 classes and the texture of another; the file name says which:
``<shape class>/<shape><k>-<texture><m>.png``. Images whose shape and texture class agree are left
out, as in Geirhos et al. ``label`` is the shape class; :meth:`CueConflictDataset.factor_table` gives
``shape_class`` and ``texture_class`` (class names), the keys the world's cue-conflict images use, so
one shape-bias function serves both.
"""
from __future__ import annotations

import re

from ..errors import DataError
from . import DATASETS
from .real import FileListDataset, check_domain, check_split, class_folders, find_dir, require_classes

CLASSES = ("airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock", "dog",
           "elephant", "keyboard", "knife", "oven", "truck")
"""The 16 entry-level classes of Geirhos et al. (model-vs-human)."""
N_CLASSES = len(CLASSES)
LAYOUT = ("ROOT/cue-conflict/<shape class>/<shape><k>-<texture><m>.png, one folder per class (16: "
          + ", ".join(CLASSES) + ")")
_NAME = re.compile(r"^([a-z_]+?)\d+-([a-z_]+?)\d+$")


def parse_stimulus(stem: str) -> tuple[str, str] | None:
    """``"airplane1-bicycle2"`` -> ``("airplane", "bicycle")``; None if the name does not fit."""
    m = _NAME.match(stem)
    return (m.group(1), m.group(2)) if m else None


class CueConflictDataset(FileListDataset):
    """Cue-conflict images with their shape (label) and texture classes."""

    def factor_table(self, as_frame: bool = False):
        """Per image: ``index``, ``label``, ``class_name``, ``shape_class``, ``texture_class``."""
        rows = [{"index": i, "label": y, "class_name": self.classnames[y], "shape_class": self.classnames[y],
                 "texture_class": t} for i, ((_, y), t) in enumerate(zip(self.samples, self.texture_classes))]
        if as_frame:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows


def build_cue_conflict(root, transform=None) -> CueConflictDataset:
    folder = find_dir(root, ["cue-conflict"], "cue_conflict", LAYOUT)
    classes = class_folders(folder, "cue_conflict", LAYOUT)
    require_classes("cue_conflict", len(classes), N_CLASSES, folder, root)
    names = [c for c, _ in classes]
    samples, textures = [], []
    for label, (shape, files) in enumerate(classes):
        for f in files:
            parsed = parse_stimulus(f.stem)
            if parsed is None or parsed[0] != shape or parsed[1] not in names:
                raise DataError(f"cue_conflict: {f} is not named <{shape}><k>-<texture><m> with a texture among the "
                                f"class folders; expected layout: {LAYOUT}")
            if parsed[1] != shape:
                samples.append((f, label))
                textures.append(parsed[1])
    ds = CueConflictDataset(samples, root=folder, classnames=names, name="cue_conflict", transform=transform,
                            layout=LAYOUT)
    ds.texture_classes = tuple(textures)
    ds.texture_targets = [names.index(t) for t in textures]
    return ds


@DATASETS.register("cue_conflict", real=True)
class CueConflictBuilder:
    """Geirhos et al.'s cue-conflict stimuli (1,280 files, those whose shape and texture class agree
    dropped); test-only, one domain. Layout: see ``LAYOUT``."""

    LAYOUT = LAYOUT
    SOURCE = "model-vs-human cue-conflict stimuli (Geirhos et al. 2019; bethgelab/model-vs-human datasets/cue-conflict)"
    FOLDERS = ("cue-conflict",)
    CLASSES = N_CLASSES

    @staticmethod
    def build(root=None, split="test", domain=None, transform=None):
        check_split("cue_conflict", split, ("test", "val"))
        check_domain("cue_conflict", domain, ["cue_conflict"], "cue_conflict")
        return build_cue_conflict(root, transform)

    @staticmethod
    def domains(root=None):
        return ["cue_conflict"]
