"""Out-of-distribution image sets for ImageNet-1k OOD detection, in the layout of MOS (Huang & Li 2021)
and MCM (Ming et al. 2022): the iNaturalist, SUN and Places subsets with concepts disjoint from
ImageNet, and Textures (DTD). NINCO (Bitterwolf et al. 2023) is optional.

Every image has label ``-1`` and ``classnames == ()``: score them against an in-distribution head.
"""
from __future__ import annotations

from . import DATASETS
from .real import FileListDataset, check_domain, check_split, find_dir, list_images

OOD_IMAGES = {"inaturalist": 10_000, "sun": 10_000, "places": 10_000, "textures": 5_640, "ninco": 5_879}
"""Images in each complete OOD set (``clipstudy check-data`` calls a set with fewer partial)."""
OOD_SETS = {
    # name: (folder under ROOT, layout, where to get it)
    "inaturalist": ("iNaturalist/images", "ROOT/iNaturalist/images/*.jpg (10,000 images)",
                    "iNaturalist OOD subset iNaturalist.tar.gz from MOS (deeplearning-wisc/large_scale_ood)"),
    "sun": ("SUN/images", "ROOT/SUN/images/*.jpg (10,000 images)",
            "SUN OOD subset SUN.tar.gz from MOS (deeplearning-wisc/large_scale_ood)"),
    "places": ("Places/images", "ROOT/Places/images/*.jpg (10,000 images)",
               "Places OOD subset Places.tar.gz from MOS (deeplearning-wisc/large_scale_ood)"),
    "textures": ("dtd/images", "ROOT/dtd/images/<class>/*.jpg (5,640 images; the DTD release)",
                 "DTD dtd-r1.0.1.tar.gz (Cimpoi et al. 2014, VGG Oxford)"),
    "ninco": ("NINCO/NINCO_OOD_classes", "ROOT/NINCO/NINCO_OOD_classes/<class>/* (optional)",
              "NINCO NINCO_all.tar.gz (Bitterwolf et al. 2023, j-cb/NINCO)"),
}


def build_ood(name: str, root, transform=None) -> FileListDataset:
    folder_rel, layout, _ = OOD_SETS[name]
    folder = find_dir(root, [folder_rel], name, layout)
    files = list_images(folder, recursive=True)
    ds = FileListDataset([(f, -1) for f in files], root=folder, classnames=(), name=name, transform=transform,
                         layout=layout)
    ds.ood = True
    return ds


def _register(name: str):
    folder_rel, layout, source = OOD_SETS[name]

    class Builder:
        __doc__ = f"OOD set {name}: {layout}; every label is -1. Source: {source}."
        LAYOUT, SOURCE, FOLDERS = layout, source, (folder_rel.split("/")[0],)
        CLASSES, IMAGES = 0, {"test": OOD_IMAGES[name]}

        @staticmethod
        def build(root=None, split="test", domain=None, transform=None):
            check_split(name, split, ("test", "val"))
            check_domain(name, domain, [name], name)
            return build_ood(name, root, transform)

        @staticmethod
        def domains(root=None):
            return [name]

    Builder.__name__ = Builder.__qualname__ = f"{name.title()}OODBuilder"
    DATASETS.register(name, obj=Builder, real=True, family="ood")


for _name in OOD_SETS:
    _register(_name)
