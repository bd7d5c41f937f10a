"""Tests of the procedural world (``clipstudy.world``): determinism, labels, domains, corruptions."""
from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from clipstudy.world import (CLASS_NAMES, CORRUPTIONS, DOMAIN_NOUNS, DOMAINS, FACTORS, TEXTURE_LABEL,
                             WorldConfig, WorldDataset, caption, class_groups, class_mask, corrupt,
                             make_image, render, sample_factors, typical_appearance)

FACTOR_KEYS = tuple(FACTORS)


def _digest(images) -> str:
    h = hashlib.sha256()
    for im in images:
        h.update(np.ascontiguousarray(im).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- import & catalogue
def test_import_does_not_pull_torch():
    code = ("import sys; import clipstudy.world as w; w.render(w.WorldConfig(n=2), 1);"
            "print(','.join(m for m in ('torch', 'torchvision', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_class_groups_partition_the_classes():
    groups = class_groups()
    assert set(groups) == {"id", "near_ood", "far_ood", "base", "new"}
    assert len(groups["id"]) >= 25 and len(groups["near_ood"]) >= 6 and len(groups["far_ood"]) >= 6
    flat = [c for g in ("id", "near_ood", "far_ood") for c in groups[g]]
    assert sorted(flat) == sorted(CLASS_NAMES) and len(set(flat)) == len(flat)
    assert all(c == c.lower() and 1 <= len(c.split()) <= 2 for c in CLASS_NAMES)


def test_base_new_split_follows_coop():
    # CoOp subsample_classes: labels in order, first ceil(n/2) are base, the rest new
    groups = class_groups()
    ids = groups["id"]
    assert groups["base"] + groups["new"] == ids
    assert len(groups["base"]) == -(-len(ids) // 2) and len(groups["new"]) == len(ids) // 2


def test_typical_appearance_is_unique_per_class():
    looks = [typical_appearance(c) for c in CLASS_NAMES]
    assert len(set(looks)) == len(looks)
    for pattern, color in looks:
        assert pattern in FACTORS["pattern"] and color in FACTORS["color"]


def test_every_class_has_a_nonempty_distinct_mask():
    masks = {c: class_mask(c, 64, radius=0.42) for c in CLASS_NAMES}
    for c, m in masks.items():
        assert m.shape == (64, 64) and 0.0 <= m.min() and m.max() <= 1.0
        assert m.sum() > 64, c  # at least ~64 px of ink
        assert m[0].max() < 0.5 and m[-1].max() < 0.5 and m[:, 0].max() < 0.5, c  # stays in frame
    for a, b in itertools.combinations(CLASS_NAMES, 2):
        iou = np.minimum(masks[a], masks[b]).sum() / np.maximum(masks[a], masks[b]).sum()
        assert iou < 0.95, (a, b, iou)


# ----------------------------------------------------------------------------- determinism
def test_same_index_same_image_caption_factors():
    cfg = WorldConfig(n=50, seed=3)
    a = [render(cfg, i) for i in (7, 3, 41)]
    fresh = WorldConfig(n=50, seed=3)  # an equal config built anew
    b = [render(fresh, i) for i in (41, 3, 7)][::-1]  # other order
    assert _digest(a) == _digest(b)
    for i in (7, 3, 41):
        assert sample_factors(cfg, i) == sample_factors(fresh, i)
        assert caption(cfg, i) == caption(fresh, i)
    assert all(im.dtype == np.uint8 and im.shape == (64, 64, 3) for im in a)


def test_determinism_across_processes():
    cfg = WorldConfig(n=30, seed=5, split="val")
    code = ("import hashlib, numpy as np; from clipstudy.world import WorldConfig, render\n"
            "cfg = WorldConfig(n=30, seed=5, split='val'); h = hashlib.sha256()\n"
            "[h.update(np.ascontiguousarray(render(cfg, i)).tobytes()) for i in range(0, 30, 3)]\n"
            "print(h.hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(render(cfg, i) for i in range(0, 30, 3))


def test_seeds_splits_and_kinds_give_different_streams():
    base = WorldConfig(n=20)
    variants = [base.replace(seed=1), base.replace(split="val"), base.replace(split="test"),
                base.replace(kind="cue_conflict")]
    ref = _digest(render(base, i) for i in range(5))
    for cfg in variants:
        assert _digest(render(cfg, i) for i in range(5)) != ref
    labels = [sample_factors(base, i)["label"] for i in range(20)]
    assert labels != [sample_factors(base.replace(seed=1), i)["label"] for i in range(20)]


# ----------------------------------------------------------------------------- factors
def test_factor_labels_are_valid_and_respect_domains():
    cfg = WorldConfig(n=400, seed=1)
    seen = {k: set() for k in FACTOR_KEYS}
    for i in range(cfg.n):
        f = sample_factors(cfg, i)
        assert 0 <= f["label"] < len(CLASS_NAMES) and CLASS_NAMES[f["label"]] == f["class_name"]
        for k in FACTOR_KEYS:
            assert f[k] in FACTORS[k], (k, f[k])
            seen[k].add(f[k])
        if f["domain"] == "sketch":
            assert f["color"] == f["pattern"] == f["appearance"] == "none"
        else:
            assert "none" not in (f["color"], f["pattern"], f["size"], f["position"], f["rotation"])
        if f["domain"] == "clipart":
            assert f["pattern"] == "solid" and f["background"] == "plain"
        if f["appearance"] == "typical":
            assert (f["pattern"], f["color"]) == typical_appearance(f["class_name"]) or \
                f["domain"] == "clipart" and f["color"] == typical_appearance(f["class_name"])[1]
    assert seen["domain"] == set(DOMAINS)
    assert {"small", "medium", "large"} <= seen["size"] and {"occluded", "cropped"} <= seen["occlusion"]


def test_typical_texture_probability():
    cfg = WorldConfig.for_domain("photo", n=600, typical_texture_prob=0.7)
    rate = np.mean([sample_factors(cfg, i)["appearance"] == "typical" for i in range(cfg.n)])
    assert 0.62 < rate < 0.78
    never = WorldConfig.for_domain("photo", n=100, typical_texture_prob=0.0)
    assert all(sample_factors(never, i)["appearance"] == "random" for i in range(100))


def test_fixed_factors_are_respected():
    cfg = WorldConfig(n=60, fixed=(("domain", "sketch"), ("occlusion", "none"), ("rotation", "upright")))
    for i in range(cfg.n):
        f = sample_factors(cfg, i)
        assert (f["domain"], f["occlusion"], f["rotation"]) == ("sketch", "none", "upright")
    red = WorldConfig(n=60, fixed={"color": "red"})  # sketches cannot be red: sketch leaves the mixture
    assert "sketch" not in dict(red.mixture)
    assert {sample_factors(red, i)["color"] for i in range(60)} == {"red"}


def test_make_image_varies_one_factor_only():
    cfg = WorldConfig(n=1, classes=("star",), seed=2)
    base = sample_factors(cfg, 0)
    for rot in ("upright", "sideways"):
        f = sample_factors(cfg.replace(fixed=(("rotation", rot),)), 0)
        assert f["rotation"] == rot
        assert {k: v for k, v in f.items() if k not in ("rotation", "caption")} == \
            {k: v for k, v in base.items() if k not in ("rotation", "caption")}
    up = make_image("star", seed=2, rotation="upright")
    side = make_image("star", seed=2, rotation="sideways")
    assert up.shape == (64, 64, 3) and not np.array_equal(up, side)
    assert np.array_equal(up, make_image("star", seed=2, rotation="upright"))


def test_class_subset_relabels():
    classes = ("hexagon", "circle", "star")
    cfg = WorldConfig(n=60, classes=classes)
    for i in range(cfg.n):
        f = sample_factors(cfg, i)
        assert classes[f["label"]] == f["class_name"]


# ----------------------------------------------------------------------------- cue conflict & textures
def test_cue_conflict_labels():
    cfg = WorldConfig(n=200, kind="cue_conflict", classes=tuple(class_groups()["id"]))
    assert set(dict(cfg.mixture)) <= {"photo", "painting", "infograph"}
    for i in range(cfg.n):
        f = sample_factors(cfg, i)
        a, b = f["shape_class"], f["texture_class"]
        assert a != b and a == f["class_name"] and cfg.classnames[f["label"]] == a
        assert (f["pattern"], f["color"]) == typical_appearance(b) != typical_appearance(a)
        assert f["appearance"] == "conflict"
    item = WorldDataset(cfg)[0]
    assert item["factors"]["texture_class"]
    assert item["factors"]["shape_class"] == cfg.classnames[item["label"]]


def test_texture_only_has_no_object():
    cfg = WorldConfig(n=80, kind="texture_only")
    for i in range(cfg.n):
        f = sample_factors(cfg, i)
        assert f["label"] == TEXTURE_LABEL and f["class_name"] == "texture"
        assert f["size"] == f["position"] == f["rotation"] == "none" and f["occlusion"] == "none"
        assert (f["pattern"] == "none") != (f["background"] == "none")  # a pattern OR a background
        assert not any(c in f["caption"].split() for c in CLASS_NAMES if " " not in c)
    ds = WorldDataset(cfg)
    assert (ds.targets == TEXTURE_LABEL).all()
    img = ds.get_array(0)
    assert img.shape == (64, 64, 3) and img.std() > 3


def test_shifted_domains_render_differently():
    imgs = {d: render(WorldConfig(n=1, fixed=(("domain", d),)), 0) for d in DOMAINS}
    sketch = imgs["sketch"].astype(int)
    assert (sketch[..., 0] == sketch[..., 1]).all() and (sketch[..., 1] == sketch[..., 2]).all()
    assert imgs["sketch"].mean() > 200  # mostly white paper
    for a, b in itertools.combinations(DOMAINS, 2):
        assert not np.array_equal(imgs[a], imgs[b])


# ----------------------------------------------------------------------------- corruptions
@pytest.fixture(scope="module")
def clean():
    return make_image("hexagon", seed=1, size="large", occlusion="none", domain="photo")


def test_corruptions_are_deterministic_and_valid(clean):
    for name in CORRUPTIONS:
        a, b = corrupt(clean, name, 3, 11), corrupt(clean, name, 3, np.random.default_rng(11))
        assert a.dtype == np.uint8 and a.shape == clean.shape
        assert np.array_equal(a, b), name
        assert not np.array_equal(a, clean), name
    assert not np.array_equal(corrupt(clean, "gaussian_noise", 3, 1), corrupt(clean, "gaussian_noise", 3, 2))


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur",
                                  "motion_blur", "contrast", "occlude", "fog"])
def test_corruption_strength_grows_with_severity(clean, name):
    diffs = [np.abs(corrupt(clean, name, s, 3).astype(float) - clean).mean() for s in range(1, 6)]
    assert all(x < y for x, y in zip(diffs, diffs[1:])), diffs


def test_corruption_errors_name_valid_values(clean):
    with pytest.raises(ValueError, match="gaussian_noise"):
        corrupt(clean, "gaussian_nosie", 3, 0)
    for bad in (0, 6):
        with pytest.raises(ValueError, match="1, 2, 3, 4, 5"):
            corrupt(clean, "fog", bad, 0)


def test_config_corruption_is_applied_deterministically():
    cfg = WorldConfig(n=3, corruption="jpeg", severity=5)
    assert np.array_equal(render(cfg, 1), render(cfg, 1))
    assert not np.array_equal(render(cfg, 1), render(cfg.replace(corruption=None), 1))


# ----------------------------------------------------------------------------- config validation
@pytest.mark.parametrize("kwargs, valid", [
    ({"classes": ("hexagon", "hexagone")}, "hexagon"),
    ({"domains": (("photo", 1.0), ("cartoon", 1.0))}, "sketch"),
    ({"domains": (("photo", -1.0),)}, ">= 0"),
    ({"kind": "objects"}, "cue_conflict"),
    ({"split": "training"}, "val"),
    ({"fixed": (("colour", "red"),)}, "color"),
    ({"fixed": (("color", "crimson"),)}, "red"),
    ({"fixed": (("domain", "sketch"), ("color", "red"))}, "domains that can"),
    ({"corruption": "blur"}, "defocus_blur"),
    ({"severity": 0}, "1..5"),
    ({"typical_texture_prob": 1.5}, r"\[0, 1\]"),
    ({"kind": "texture_only", "fixed": (("size", "large"),)}, "none"),
    ({"kind": "cue_conflict", "classes": ("star",)}, "two classes"),
])
def test_invalid_config_raises_with_valid_values(kwargs, valid):
    with pytest.raises(ValueError, match=valid):
        WorldConfig(**kwargs)


# ----------------------------------------------------------------------------- captions & dataset
def test_captions():
    simple = WorldConfig(n=40, simple_caption_prob=1.0)
    for i in range(simple.n):
        f = sample_factors(simple, i)
        noun = DOMAIN_NOUNS[f["domain"]]
        art = "an" if f["class_name"][0] in "aeiou" or f["class_name"].startswith("hour") else "a"
        assert f["caption"] == f"{'an' if noun[0] in 'aeiou' else 'a'} {noun} of {art} {f['class_name']}."
    assert DOMAIN_NOUNS == {"photo": "photo", "painting": "painting", "clipart": "clipart",
                            "sketch": "sketch", "infograph": "infographic"}
    rich = WorldConfig(n=60, simple_caption_prob=0.0)
    texts = [caption(rich, i) for i in range(rich.n)]
    assert len(set(texts)) > 50
    for i, t in enumerate(texts):
        assert sample_factors(rich, i)["class_name"] in t and t.endswith(".")


def test_dataset_api():
    cfg = WorldConfig(n=12, seed=4)
    ds = WorldDataset(cfg, transform=lambda im: np.asarray(im).mean())
    item = ds[5]
    assert set(item) == {"image", "label", "caption", "factors"} and isinstance(item["image"], float)
    plain = WorldDataset(cfg)[5]
    assert isinstance(plain["image"], Image.Image) and plain["image"].size == (64, 64)
    assert all(isinstance(v, str) for v in plain["factors"].values())
    assert len(ds) == 12 and ds.classnames == CLASS_NAMES
    assert ds.targets.tolist() == [sample_factors(cfg, i)["label"] for i in range(12)]
    batch = ds.get_batch([0, 5, 11])
    assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.uint8
    assert np.array_equal(batch[1], ds.get_array(5))
    assert np.array_equal(ds.get_array(5), np.asarray(plain["image"]))
    assert np.array_equal(ds.get_array(-1), ds.get_array(11))
    table = ds.factor_table()
    assert len(table) == 12 and set(FACTOR_KEYS) <= set(table[0])
    assert set(ds.domains) == set(DOMAINS)
    with pytest.raises(IndexError):
        ds[12]


def test_other_image_sizes():
    for size in (32, 96):
        img = render(WorldConfig(n=2, image_size=size), 1)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
