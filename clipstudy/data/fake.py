"""Tiny, correctly laid out stand-ins for the real benchmarks, for tests and dry runs.

:func:`make_fake_tree` writes a few generated images per class in the exact layout each real loader
expects (small class subsets where the real set is large: ImageNet uses ``n_classes`` wnids that are
in both ImageNet-R and ImageNet-A, so every ImageNet loader finds them), with the split files,
annotation files and caption files the loaders read. :func:`make_fake_checkpoint` saves a random
small open_clip model that ``clipstudy.models.load_model(arch, pretrained=path)`` loads.

    root = make_fake_tree(tmp_path / "data")                 # every family, ~0.5 s
    ckpt = make_fake_checkpoint(tmp_path / "micro.safetensors")
    build_dataset("imagenet_r", root=root).class_indices      # indices into the 1000 classes
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FAMILY_DATASETS = {
    "imagenet": ("imagenet", "imagenet_v2", "imagenet_sketch", "imagenet_r", "imagenet_a", "imagenet_x", "imagenet_c"),
    "domainnet": ("domainnet",),
    "coop": ("caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft", "sun397",
             "dtd", "eurosat", "ucf101"),
    "ood": ("inaturalist", "sun", "places", "textures", "ninco"),
    "cue_conflict": ("cue_conflict",),
    "retrieval": ("coco_captions", "flickr30k"),
}
"""Which registered datasets each family of :func:`make_fake_tree` makes loadable."""
FAMILIES = tuple(FAMILY_DATASETS)
DOMAINNET_CLASSES = ("aircraft_carrier", "airplane", "alarm_clock", "ambulance", "angel", "animal_migration", "ant",
                     "anvil", "apple", "arm")  # the first ten of DomainNet's 345, alphabetical as its labels


class _Images:
    """Writes small random images (JPEG or PNG by suffix), deterministically from a seed."""

    def __init__(self, seed: int, size: int = 16):
        self.rng, self.size, self.count = np.random.default_rng(seed), size, 0

    def __call__(self, path: Path) -> Path:
        from PIL import Image

        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = self.rng.integers(0, 256, (self.size, self.size, 3), dtype=np.uint8)
        fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
        Image.fromarray(pixels).save(path, format=fmt)
        self.count += 1
        return path


def make_fake_tree(root, families=None, images_per_class: int = 2, n_classes: int = 3, seed: int = 0) -> Path:
    """Write a fake data root with the given ``families`` (default: all of :data:`FAMILIES`)."""
    from ..errors import ConfigError

    unknown = sorted(set(families or ()) - set(FAMILIES))
    if unknown:
        raise ConfigError(f"unknown fake data families {unknown}; valid: {', '.join(FAMILIES)}")
    if n_classes < 2 or images_per_class < 1:
        raise ConfigError("make_fake_tree needs n_classes >= 2 and images_per_class >= 1")
    root = Path(root)
    write = _Images(seed)
    for family in families or FAMILIES:
        _WRITERS[family](root, write, images_per_class, n_classes)
    from .real import SUBSET_MARKER

    (root / SUBSET_MARKER).write_text("a fake tree: its loaders read class subsets on purpose\n")
    return root


def _imagenet(root: Path, write: _Images, k: int, n: int) -> None:
    from .imagenet import FACTORS, imagenet_wnids
    from .real import resource

    both = sorted(set(resource("imagenet_r_classes.json")["wnids"]) & set(resource("imagenet_a_classes.json")["wnids"]))
    position = {w: i for i, w in enumerate(imagenet_wnids())}
    rows, val_id = [], 0
    for wnid in both[:n]:
        for j in range(k):
            val_id += 1
            write(root / "imagenet" / "train" / wnid / f"{wnid}_{j}.JPEG")
            name = f"ILSVRC2012_val_{val_id:08d}.JPEG"
            write(root / "imagenet" / "val" / wnid / name)
            factors = {f: int(write.rng.random() < 0.3) for f in FACTORS}
            rows.append({"file_name": name, "class": position[wnid], **factors, "justification": "", "one_word": ""})
            write(root / "imagenetv2-matched-frequency-format-val" / str(position[wnid]) / f"{val_id:040x}.jpeg")
            write(root / "sketch" / wnid / f"sketch_{j}.JPEG")
            write(root / "imagenet-r" / wnid / f"art_{j}.jpg")
            write(root / "imagenet-a" / wnid / f"0.{j}.jpg")
    (root / "imagenet-a" / "README.txt").write_text("ImageNet-A (fake)\n")
    x = root / "imagenet-x"
    x.mkdir(parents=True, exist_ok=True)
    (x / "imagenet_x_val_multi_factor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    top = [{**r, **{f: int(f == FACTORS[i % len(FACTORS)]) for f in FACTORS}} for i, r in enumerate(rows)]
    (x / "imagenet_x_val_top_factor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in top))
    _imagenet_c(root, _Images(7), both[:n], k)  # its own pixel stream: the other images stay as they were


IMAGENET_C_CELLS = (("gaussian_noise", (1, 3, 5)), ("motion_blur", (1, 3, 5)))
"""The (corruption, severities) of the fake ImageNet-C tree (part of the ``imagenet`` family)."""


def _imagenet_c(root: Path, write: _Images, wnids, k: int) -> None:
    for corruption, severities in IMAGENET_C_CELLS:
        for s in severities:
            for wnid in wnids:
                for j in range(k):
                    write(root / "imagenet-c" / corruption / str(s) / wnid / f"{corruption}_{s}_{j}.JPEG")


def _domainnet(root: Path, write: _Images, k: int, n: int) -> None:
    from .domainnet import DOMAINS

    base = root / "domainnet"
    for domain in DOMAINS:
        for split in ("train", "test"):
            lines = []
            for label, cls in enumerate(DOMAINNET_CLASSES[:n]):
                for j in range(k):
                    rel = f"{domain}/{cls}/{domain}_{label:03d}_{split}{j:05d}.jpg"
                    write(base / rel)
                    lines.append(f"{rel} {label}\n")
            (base / f"{domain}_{split}.txt").write_text("".join(lines))


def _coop(root: Path, write: _Images, k: int, n: int) -> None:
    from .coop_datasets import coop_table

    for name, e in coop_table().items():
        if name == "imagenet":
            continue  # CoOp's ImageNet is the imagenet family
        if name == "fgvc_aircraft":
            _aircraft(root / e["folder"], write, k, n)
            continue
        base = root / e["folder"]
        split = {}
        for s in ("train", "val", "test"):
            split[s] = []
            for label in range(n):
                cname = f"{name}_kind_{chr(97 + label)}"
                for j in range(k):
                    sub = {"": f"cars_{'test' if s == 'test' else 'train'}"}.get(e["image_dir"], cname)
                    rel = f"{sub}/{s}_{label}_{j}.jpg"
                    write(base / e["image_dir"] / rel)
                    split[s].append([rel, label, cname])
        (base / e["split_file"]).write_text(json.dumps(split))


def _aircraft(base: Path, write: _Images, k: int, n: int) -> None:
    variants = [f"A{300 + 10 * i}-{i}00" for i in range(n)]
    (base).mkdir(parents=True, exist_ok=True)
    (base / "variants.txt").write_text("".join(v + "\n" for v in variants))
    image_id = 1000000
    for s in ("train", "val", "test"):
        lines = []
        for v in variants:
            for _ in range(k):
                image_id += 1
                write(base / "images" / f"{image_id}.jpg")
                lines.append(f"{image_id} {v}\n")
        (base / f"images_variant_{s}.txt").write_text("".join(lines))


def _ood(root: Path, write: _Images, k: int, n: int) -> None:
    for folder in ("iNaturalist", "SUN", "Places"):
        for j in range(n * k):
            write(root / folder / "images" / f"{folder.lower()}_{j:04d}.jpg")
    for c in range(n):
        for j in range(k):
            write(root / "dtd" / "images" / f"texture_{c}" / f"texture_{c}_{j:04d}.jpg")
            write(root / "NINCO" / "NINCO_OOD_classes" / f"ninco_class_{c}" / f"{j}.jpg")


def _cue_conflict(root: Path, write: _Images, k: int, n: int) -> None:
    from .cue_conflict import CLASSES

    classes = CLASSES[:min(max(n, 2), len(CLASSES))]
    for s, shape in enumerate(classes):
        for j in range(k):
            texture = classes[(s + 1 + j % (len(classes) - 1)) % len(classes)]
            write(root / "cue-conflict" / shape / f"{shape}{j + 1}-{texture}{j + 1}.png")
        write(root / "cue-conflict" / shape / f"{shape}{k + 1}-{shape}{k + 1}.png")  # shape == texture: dropped


def _retrieval(root: Path, write: _Images, k: int, n: int) -> None:
    counts = {"test": n * k, "val": 2, "train": 2, "restval": 1}
    sets = (("coco", "dataset_coco.json", "val2014"), ("flickr30k", "dataset_flickr30k.json", ""))
    for folder, karpathy, sub in sets:
        images, i = [], 0
        for split, count in counts.items():
            for _ in range(count):
                i += 1
                filename = f"COCO_val2014_{i:012d}.jpg" if sub else f"{1000000 + i}.jpg"
                write(root / folder / "images" / sub / filename)
                sentences = [{"raw": f"a fake photo number {i}, caption {c}.", "tokens": []} for c in range(5)]
                images.append({"filepath": sub, "filename": filename, "split": split, "sentences": sentences,
                               "imgid": i - 1} if sub else
                              {"filename": filename, "split": split, "sentences": sentences, "imgid": i - 1})
        (root / folder / karpathy).write_text(json.dumps({"images": images, "dataset": folder}))


_WRITERS = {"imagenet": _imagenet, "domainnet": _domainnet, "coop": _coop, "ood": _ood,
            "cue_conflict": _cue_conflict, "retrieval": _retrieval}


def make_fake_checkpoint(path, arch: str = "clipstudy-micro", seed: int = 0) -> Path:
    """Save a randomly initialised ``arch`` (seeded) to ``path``: safetensors for ``.safetensors``, else a
    ``torch.save`` state dict (``.pt``, ``.pth``, ``.bin``). ``load_model(arch, pretrained=str(path))``
    loads it back with the same weights."""
    from ..io import torch_save
    from ..models import load_model, save_weights

    path = Path(path)
    model = load_model(arch, "random", seed=seed).model
    if path.suffix == ".safetensors":
        save_weights(model, path, half=False, metadata={"arch": arch, "seed": seed, "fake": True})
    else:
        torch_save(model.state_dict(), path)
    return path
