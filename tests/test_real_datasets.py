"""Real-benchmark loaders on fake trees: layouts, labels, class names, cache keys, clear errors."""
import json
import shutil

import numpy as np
import pytest

from clipstudy.data import build_dataset, dataset_domains, list_datasets
from clipstudy.data.fake import FAMILY_DATASETS, make_fake_checkpoint, make_fake_tree
from clipstudy.data.real import SUBSET_MARKER, real_datasets, resource
from clipstudy.errors import ConfigError, DataError

ALL = [n for names in FAMILY_DATASETS.values() for n in names]
K, N = 2, 3  # images per class, classes (make_fake_tree defaults)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_fake_tree(tmp_path_factory.mktemp("data"))


def fresh(tmp_path, *families):
    return make_fake_tree(tmp_path / "data", families=list(families))


def x_rows(root):
    lines = (root / "imagenet-x" / "imagenet_x_val_multi_factor.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# ---------------------------------------------------------------------------------------------- resources

def test_imagenet_resources():
    wnids = resource("imagenet_wnids.json")["wnids"]
    assert len(wnids) == len(set(wnids)) == 1000 and wnids == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[-1] == "n15075141"
    names = resource("imagenet_classnames.json")["classnames"]
    assert len(names) == 1000 and names[:2] == ["tench", "goldfish"]
    assert len(resource("imagenet_templates.json")["templates"]) == 80
    for kind in ("r", "a"):
        sub = resource(f"imagenet_{kind}_classes.json")
        idx = sub["indices"]
        assert len(idx) == len(set(idx)) == 200 and all(0 <= i < 1000 for i in idx)
        assert [wnids[i] for i in idx] == sub["wnids"]
    assert resource("imagenet_r_classes.json")["indices"][:3] == [1, 2, 4]


def test_coop_table_templates():
    from clipstudy.data.coop_datasets import COOP_DATASETS, coop_table

    table = coop_table()
    assert set(table) == set(COOP_DATASETS) and len(table) == 11
    assert table["oxford_pets"]["template"] == "a photo of a {}, a type of pet."
    assert table["dtd"]["template"] == "{} texture."
    assert table["eurosat"]["template"] == "a centered satellite photo of {}."
    assert table["food101"]["template"] == "a photo of {}, a type of food."
    assert table["ucf101"]["template"] == "a photo of a person doing {}."
    assert all("{}" in e["template"] for e in table.values())


def test_every_real_dataset_registered_with_layout_and_source():
    assert set(ALL) == set(real_datasets()) and {"world", "imagefolder"} <= set(list_datasets())
    from clipstudy.data import DATASETS

    for name in ALL:
        b = DATASETS.get(name)
        assert b.LAYOUT.startswith("ROOT/") and b.SOURCE and b.FOLDERS and b.__doc__, name


# ---------------------------------------------------------------------------------------------- every dataset

EXPECTED = {  # name: (images, classes) in the default (test) split of the fake tree
    **{n: (N * K, N) for n in FAMILY_DATASETS["imagenet"] + FAMILY_DATASETS["coop"]},
    "domainnet": (N * K, N), "cue_conflict": (N * K, N),
    "inaturalist": (N * K, 0), "sun": (N * K, 0), "places": (N * K, 0), "ninco": (N * K, 0),
    "textures": (N * K + 3 * N * K, 0),  # DTD's own images + the CoOp dtd splits' images (the same folder)
    "coco_captions": (N * K, 0), "flickr30k": (N * K, 0),
}


@pytest.mark.parametrize("name", ALL)
def test_loads_with_and_without_transform(root, name):
    ds = build_dataset(name, root=root)
    n, k = EXPECTED[name]
    assert len(ds) == n and len(ds.classnames) == k and isinstance(ds.classnames, tuple)
    assert ds.targets.dtype == np.int64 and ds.targets.shape == (n,)
    item = ds[len(ds) - 1]
    assert {"image", "label", "index"} <= set(item) and item["index"] == len(ds) - 1
    assert item["image"].mode == "RGB" and item["label"] == ds.targets[-1]
    if k:
        assert sorted(set(ds.targets.tolist())) == list(range(k))
    else:
        assert name in ("coco_captions", "flickr30k") or set(ds.targets.tolist()) == {-1}
    shaped = build_dataset(name, root=root, transform=lambda im: np.asarray(im.resize((8, 8))))
    assert shaped[0]["image"].shape == (8, 8, 3)
    assert shaped.cache_key == ds.cache_key == build_dataset(name, root=root).cache_key
    assert ds.domain in dataset_domains(name) and ds.name == name


@pytest.mark.parametrize("name", ALL)
def test_missing_root_names_layout(tmp_path, name):
    with pytest.raises(DataError, match="expected layout: ROOT/"):
        build_dataset(name, root=tmp_path)
    with pytest.raises(DataError, match="expected layout"):
        build_dataset(name, root=tmp_path / "nope")
    with pytest.raises(DataError, match="--data-root"):
        build_dataset(name, root=None)


def test_corrupt_image_is_one_data_error(tmp_path):
    root = fresh(tmp_path, "imagenet", "domainnet", "coop", "ood", "retrieval")
    for name in ("imagenet_r", "domainnet", "oxford_pets", "sun", "flickr30k"):
        path = build_dataset(name, root=root).samples[1][0]
        path.write_bytes(b"not an image at all")
        ds = build_dataset(name, root=root)
        assert ds[0]["image"].mode == "RGB"
        with pytest.raises(DataError, match="cannot read image .*expected layout: ROOT/"):
            ds[1]


def test_cache_key_changes_when_a_file_is_added(tmp_path):
    from PIL import Image

    root = fresh(tmp_path, "imagenet", "ood", "cue_conflict")
    img = Image.new("RGB", (8, 8), (200, 10, 10))
    for name, new in [("imagenet", root / "imagenet" / "val" / "n01498041" / "ILSVRC2012_val_00009999.JPEG"),
                      ("imagenet_a", root / "imagenet-a" / "n01498041" / "extra.jpg"),
                      ("places", root / "Places" / "images" / "extra.jpg"),
                      ("cue_conflict", root / "cue-conflict" / "bear" / "bear9-airplane9.png")]:
        before = build_dataset(name, root=root)
        img.save(new)
        after = build_dataset(name, root=root)
        assert len(after) == len(before) + 1 and after.cache_key != before.cache_key, name


def test_cache_key_changes_with_split_file(tmp_path):
    root = fresh(tmp_path, "coop", "domainnet")
    before = build_dataset("eurosat", root=root)
    split_path = root / "eurosat" / "split_zhou_EuroSAT.json"
    split = json.loads(split_path.read_text())
    split["test"].append(split["train"][0])
    split_path.write_text(json.dumps(split))
    after = build_dataset("eurosat", root=root)
    assert len(after) == len(before) + 1 and after.cache_key != before.cache_key
    a, b = build_dataset("domainnet", root=root, domain="real"), build_dataset("domainnet", root=root, domain="clipart")
    assert a.cache_key != b.cache_key


# ---------------------------------------------------------------------------------------------- ImageNet

def test_imagenet_subset_maps_to_standard_indices(root):
    from clipstudy.data.imagenet import imagenet_classnames, imagenet_wnids

    val, train = build_dataset("imagenet", root=root), build_dataset("imagenet", root=root, split="train")
    assert val.wnids == train.wnids and list(val.wnids) == sorted(val.wnids)
    std = [imagenet_wnids().index(w) for w in val.wnids]
    assert val.class_indices.tolist() == std and val.classnames == tuple(imagenet_classnames()[i] for i in std)
    assert val.template == "a photo of a {}."
    for name in ("imagenet_v2", "imagenet_sketch", "imagenet_r", "imagenet_a"):
        ds = build_dataset(name, root=root)
        assert ds.class_indices.tolist() == std and ds.classnames == val.classnames, name
    r = build_dataset("imagenet_r", root=root)
    assert set(r.class_indices.tolist()) <= set(resource("imagenet_r_classes.json")["indices"])
    logits = np.random.default_rng(0).normal(size=(len(r), 1000))
    assert logits[:, r.class_indices].shape == (len(r), N)  # the 1000-way head masked to the present classes
    with pytest.raises(ConfigError, match="valid splits"):
        build_dataset("imagenet_r", root=root, split="train")


def test_full_imagenet_has_no_class_indices(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (4, 4))
    base = tmp_path / "imagenetv2-matched-frequency-format-val"
    for i in range(1000):
        (base / str(i)).mkdir(parents=True)
        im.save(base / str(i) / "a.jpeg")
    ds = build_dataset("imagenet_v2", root=tmp_path)
    assert ds.class_indices is None and len(ds.classnames) == 1000 and ds.targets.tolist() == list(range(1000))


def test_imagenet_layout_errors(tmp_path, root):
    from PIL import Image

    shutil.copytree(root / "imagenet-r", tmp_path / "imagenet-rendition" / "imagenet-r")  # CoOp's folder works too
    shutil.copy(root / SUBSET_MARKER, tmp_path)  # a 3-class subset on purpose
    assert len(build_dataset("imagenet_r", root=tmp_path)) == N * K
    bad = tmp_path / "imagenet-rendition" / "imagenet-r" / "n01440764"  # tench: in ImageNet, not in ImageNet-R
    bad.mkdir()
    Image.new("RGB", (4, 4)).save(bad / "x.jpg")
    with pytest.raises(DataError, match="not an ImageNet wnid of the 200 imagenet_r classes"):
        build_dataset("imagenet_r", root=tmp_path)
    (tmp_path / "imagenet-a" / "n01498041").mkdir(parents=True)
    with pytest.raises(DataError, match="has no images; expected layout"):
        build_dataset("imagenet_a", root=tmp_path)
    flat = tmp_path / "imagenet" / "val"
    flat.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(flat / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DataError, match="not in class folders"):
        build_dataset("imagenet", root=tmp_path)


def test_imagenet_coop_layout(tmp_path, root):
    shutil.copytree(root / "imagenet" / "val", tmp_path / "imagenet" / "images" / "val")
    shutil.copy(root / SUBSET_MARKER, tmp_path)
    assert build_dataset("imagenet", root=tmp_path).wnids == build_dataset("imagenet", root=root).wnids


def test_imagenet_x_factors(root, tmp_path):
    from clipstudy.data.imagenet import FACTORS

    ds = build_dataset("imagenet_x", root=root)
    table = ds.factor_table()
    assert len(FACTORS) == 16 and len(table) == len(ds) == N * K
    assert all(set(FACTORS) <= set(row) and {row[f] for f in FACTORS} <= {0, 1} for row in table)
    assert [row["label"] for row in table] == ds.targets.tolist()
    top = build_dataset("imagenet_x", root=root, which="top").factor_table(as_frame=True)
    assert (top[list(FACTORS)].sum(axis=1) == 1).all()
    # a CSV with only some images: the rest are dropped, or kept with None factors
    rows = x_rows(root)
    csv = tmp_path / "x.csv"
    csv.write_text(",".join(["file_name", "class", *FACTORS]) + "\n" +
                   "".join(",".join(str(r[c]) for c in ["file_name", "class", *FACTORS]) + "\n" for r in rows[:2]))
    assert len(build_dataset("imagenet_x", root=root, annotations=str(csv))) == 2
    kept = build_dataset("imagenet_x", root=root, annotations=str(csv), annotated_only=False).factor_table()
    assert len(kept) == N * K and sum(r["annotated"] for r in kept) == 2 and kept[-1]["pose"] is None


def test_imagenet_x_errors(root, tmp_path):
    rows = x_rows(root)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({**rows[0], "class": (rows[0]["class"] + 1) % 1000}) + "\n")
    with pytest.raises(DataError, match="in the annotations but lies in folder"):
        build_dataset("imagenet_x", root=root, annotations=str(wrong))
    lacking = tmp_path / "lacking.jsonl"
    lacking.write_text(json.dumps({"file_name": rows[0]["file_name"], "class": 1}) + "\n")
    with pytest.raises(DataError, match="lacks pose.*expected layout"):
        build_dataset("imagenet_x", root=root, annotations=str(lacking))
    with pytest.raises(DataError, match="is missing; expected layout"):
        build_dataset("imagenet_x", root=root, annotations=str(tmp_path / "none.jsonl"))
    with pytest.raises(ConfigError, match="valid: multi, top"):
        build_dataset("imagenet_x", root=root, which="all")


# ---------------------------------------------------------------------------------------------- DomainNet

def test_domainnet_domains_and_splits(root):
    assert dataset_domains("domainnet") == ["real", "painting", "clipart", "infograph", "sketch"]
    assert build_dataset("domainnet", root=root).domain == "real"
    for d in dataset_domains("domainnet"):
        test, train = build_dataset("domainnet", root=root, domain=d), build_dataset("domainnet", root=root, domain=d,
                                                                                     split="train")
        assert test.classnames == train.classnames == ("aircraft carrier", "airplane", "alarm clock")
        assert {p for p, _ in test.samples}.isdisjoint(p for p, _ in train.samples)
        assert all(p.parts[-3] == d for p, _ in test.samples)
    with pytest.raises(ConfigError, match="valid splits: train, test"):
        build_dataset("domainnet", root=root, split="val")
    with pytest.raises(ConfigError, match="valid domains"):
        build_dataset("domainnet", root=root, domain="quickdraw")


def test_domainnet_errors(tmp_path):
    root = fresh(tmp_path, "domainnet")
    (root / "domainnet" / "sketch_test.txt").unlink()
    with pytest.raises(DataError, match="sketch_test.txt is missing; expected layout"):
        build_dataset("domainnet", root=root, domain="sketch")
    (root / "domainnet" / "clipart_test.txt").write_text("clipart/ant/x.jpg\n")
    with pytest.raises(DataError, match="line 1 .* is not"):
        build_dataset("domainnet", root=root, domain="clipart")
    first = (root / "domainnet" / "painting_test.txt").read_text().split()[0]
    (root / "domainnet" / first).unlink()
    with pytest.raises(DataError, match="1 image\\(s\\) listed in the split file are missing"):
        build_dataset("domainnet", root=root, domain="painting")
    shutil.rmtree(root / "domainnet" / "infograph")
    with pytest.raises(DataError, match="domain folder .*infograph is missing"):
        build_dataset("domainnet", root=root, domain="infograph")


# ---------------------------------------------------------------------------------------------- CoOp

@pytest.mark.parametrize("name", FAMILY_DATASETS["coop"])
def test_coop_splits_names_and_template(root, name):
    from clipstudy.data.coop_datasets import coop_table

    splits = {s: build_dataset(name, root=root, split=s) for s in ("train", "val", "test")}
    assert len({ds.classnames for ds in splits.values()}) == 1
    assert all(len(ds) == N * K and ds.template == coop_table()[name]["template"] for ds in splits.values())
    assert len({p for ds in splits.values() for p, _ in ds.samples}) == 3 * N * K
    if name != "fgvc_aircraft":
        assert splits["test"].classnames[0] == f"{name.replace('_', ' ')} kind a"


def test_coop_errors(tmp_path):
    root = fresh(tmp_path, "coop")
    (root / "food-101" / "split_zhou_Food101.json").unlink()
    with pytest.raises(DataError, match="split_zhou_Food101.json is missing; expected layout"):
        build_dataset("food101", root=root)
    (root / "sun397" / "split_zhou_SUN397.json").write_text("{\"train\": []}")
    with pytest.raises(DataError, match="is malformed .*expected layout"):
        build_dataset("sun397", root=root)
    (root / "fgvc_aircraft" / "images_variant_test.txt").unlink()
    with pytest.raises(DataError, match="images_variant_test.txt is missing"):
        build_dataset("fgvc_aircraft", root=root)
    shutil.rmtree(root / "ucf101" / "UCF-101-midframes")
    with pytest.raises(DataError, match="image folder .* is missing; expected layout: ROOT/ucf101/UCF-101-midframes"):
        build_dataset("ucf101", root=root)
    with pytest.raises(ConfigError, match="valid splits: train, val, test"):
        build_dataset("dtd", root=root, split="trainval")


# ------------------------------------------------------------------------------ OOD, cue-conflict, retrieval

def test_ood_sets_have_no_classes(root):
    for name in FAMILY_DATASETS["ood"]:
        ds = build_dataset(name, root=root)
        assert ds.classnames == () and (ds.targets == -1).all()


def test_cue_conflict_drops_same_texture_and_names_factors(root, tmp_path):
    from clipstudy.data.cue_conflict import parse_stimulus

    ds = build_dataset("cue_conflict", root=root)
    assert ds.classnames == ("airplane", "bear", "bicycle")
    table = ds.factor_table()
    assert all(r["shape_class"] != r["texture_class"] and r["texture_class"] in ds.classnames for r in table)
    assert [ds.classnames.index(r["shape_class"]) for r in table] == ds.targets.tolist()
    assert parse_stimulus("knife10-oven3") == ("knife", "oven") and parse_stimulus("oven.png") is None
    root2 = fresh(tmp_path, "cue_conflict")
    (root2 / "cue-conflict" / "bear" / "bear1.png").write_bytes(b"")
    with pytest.raises(DataError, match="is not named"):
        build_dataset("cue_conflict", root=root2)


def test_retrieval_captions(root):
    for name in FAMILY_DATASETS["retrieval"]:
        ds = build_dataset(name, root=root)
        captions, owner = ds.all_captions()
        assert len(captions) == 5 * len(ds) and owner.dtype == np.int64
        assert owner.tolist() == [i for i in range(len(ds)) for _ in range(5)]
        assert ds[1]["captions"] == captions[5:10] and ds.targets.tolist() == list(range(len(ds)))
    assert len(build_dataset("coco_captions", root=root, split="train")) == 3  # train + restval
    assert len(build_dataset("flickr30k", root=root, split="val")) == 2


# ---------------------------------------------------------------------------------------------- fakes + features

def test_fake_tree_is_fast_and_validated(tmp_path):
    import time

    t = time.time()
    make_fake_tree(tmp_path / "all")
    assert time.time() - t < 5
    with pytest.raises(ConfigError, match="unknown fake data families"):
        make_fake_tree(tmp_path / "x", families=["nope"])


def test_features_from_fake_checkpoint(root, tmp_path):
    pytest.importorskip("torch")
    from clipstudy.features import extract_features
    from clipstudy.models import load_model

    ckpt = make_fake_checkpoint(tmp_path / "micro.safetensors")
    loaded = load_model("clipstudy-micro", pretrained=str(ckpt))
    assert loaded.weights_id == load_model("clipstudy-micro", "random", seed=0).weights_id
    pt = make_fake_checkpoint(tmp_path / "micro.pt", seed=1)
    assert load_model("clipstudy-micro", pretrained=str(pt)).weights_id != loaded.weights_id
    for name in ("imagenet_r", "sun", "flickr30k"):
        ds = build_dataset(name, root=root)
        fs = extract_features(loaded, ds, cache=False, progress=False)
        assert tuple(fs.features.shape) == (len(ds), 32) and fs.labels.tolist() == ds.targets.tolist()
