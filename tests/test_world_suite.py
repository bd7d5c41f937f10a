"""The world suite (clipstudy/data/world_suite.py): registered downstream datasets with deterministic, disjoint,
balanced splits, prompt-ready class names, a CoOp base/new split and content-keyed caches."""
import collections
import hashlib
import json
import math

import numpy as np
import pytest

from clipstudy.data import DATASETS, build_dataset, dataset_domains
from clipstudy.data import world_suite as ws
from clipstudy.errors import ConfigError

NAMES = ws.SUITES["world-suite"]


def pixels_digests(ds, idx=None):
    idx = list(range(len(ds))) if idx is None else idx
    return [hashlib.blake2b(a.tobytes(), digest_size=8).hexdigest() for a in ds.get_batch(idx)]


def test_suite_is_registered_with_prompt_metadata():
    assert len(NAMES) >= 6 and len(set(NAMES)) == len(NAMES)
    assert ws.list_suites() == {"world-suite": list(NAMES)}
    assert ws.suite_datasets() == list(NAMES)
    with pytest.raises(ConfigError, match="valid suites: world-suite"):
        ws.suite_datasets("coop")
    registered = set(DATASETS.list())
    for name in NAMES:
        assert name in registered
        meta = DATASETS.meta(name)
        assert meta["family"] == "world-suite" and meta["suite"] == "world-suite" and meta["stands_for"]
        assert meta["template"].count("{}") == 1 and meta["template"] == ws.get_spec(name).template
        assert dataset_domains(name) == [meta["domain"]]
        assert DATASETS.describe(name).startswith("World suite")
    stands_for = {DATASETS.meta(n)["stands_for"] for n in NAMES}
    assert {"ImageNet", "Caltech101", "FGVC-Aircraft", "SUN397", "DTD", "EuroSAT"} <= stands_for


def test_every_dataset_has_the_common_interface_one_domain_and_balanced_classes():
    for name in NAMES:
        spec = ws.get_spec(name)
        k = spec.num_classes
        n = 3 * k + 1  # not a multiple of k: shares differ by one
        ds = build_dataset(name, split="val", n=n)
        assert len(ds) == n and len(ds.targets) == n and ds.name == name
        assert ds.classnames == spec.classnames and len(set(ds.classnames)) == k
        assert ds.template == spec.template and ds.domain == spec.domain
        counts = collections.Counter(ds.targets.tolist())
        assert sorted(counts) == list(range(k)) and max(counts.values()) - min(counts.values()) <= 1
        table = ds.factor_table()
        assert {r["domain"] for r in table} == {spec.domain}  # no forced factor removed the domain
        for r in table:  # the label is the scene's factor
            value = r["class_name"] if spec.label == "class" else r[spec.label]
            assert spec.values[r["label"]] == value
        item = ds[1]
        assert item["label"] == ds.targets[1] and item["index"] == 1
        assert np.array_equal(np.asarray(item["image"]), ds.get_batch([1])[0])
    exact = build_dataset("world-scenes", split="test", n=60)
    assert set(collections.Counter(exact.targets.tolist()).values()) == {10}


def test_splits_are_deterministic_and_disjoint():
    a = build_dataset("world-icons", split="train", n=24, seed=0)
    b = build_dataset("world-icons", split="train", n=24, seed=0)
    np.testing.assert_array_equal(a.targets, b.targets)
    np.testing.assert_array_equal(a.stream_indices, b.stream_indices)
    assert pixels_digests(a) == pixels_digests(b) and a.cache_key == b.cache_key
    digests = {s: set(pixels_digests(build_dataset("world-icons", split=s, n=24, seed=0))) for s in ws.SPLITS}
    assert all(len(d) == 24 for d in digests.values())
    assert not (digests["train"] & digests["val"]) and not (digests["train"] & digests["test"])
    assert not (digests["val"] & digests["test"])
    other_seed = set(pixels_digests(build_dataset("world-icons", split="train", n=24, seed=1)))
    assert not (other_seed & digests["train"])
    # suite streams are not the small-seed streams of the pretraining and the studies' world sets
    seeds = {ws.stream_seed(n, s) for n in NAMES for s in range(3)}
    assert len(seeds) == 3 * len(NAMES) and min(seeds) > 1000


def test_base_new_split_is_coops():
    from clipstudy.experiment import subsample_classes

    for name in NAMES:
        names = ws.get_spec(name).classnames
        base, new = ws.base_new_split(name)
        m = math.ceil(len(names) / 2)
        assert base == names[:m] and new == names[m:]
        assert base == tuple(names[i] for i in subsample_classes(len(names), "base"))
        ds = build_dataset(name, split="test", n=len(names))
        assert (ds.base_classnames, ds.new_classnames) == (base, new)
    # ImageNet analogue: the world's own base/new groups; siblings: whole pairs on each side
    from clipstudy.world import class_groups

    assert ws.base_new_split("world-shapes") == (tuple(class_groups()["base"]), tuple(class_groups()["new"]))
    pairs = ws.sibling_pairs()
    assert len(pairs) == 8
    base, new = ws.base_new_split("world-siblings")
    assert base == tuple(c for p in pairs[:4] for c in p) and new == tuple(c for p in pairs[4:] for c in p)


def test_class_names_read_in_their_prompts():
    prompts = {n: [ws.get_spec(n).template.format(c) for c in ws.get_spec(n).classnames] for n in NAMES}
    assert prompts["world-textures"][0] == "a photo of a striped texture."
    assert "a photo of a grassy background." in prompts["world-scenes"]
    assert "a photo of a blue sky." in prompts["world-scenes"]
    assert prompts["world-sketch"][0] == "a sketch of a triangle."
    assert prompts["world-icons"][0] == "a clipart of a mushroom."


def test_prompts_are_captions_of_the_world():
    """Each prompt (CoOp's "a {}" form, so classes taking "a") is a caption the world writes for its own
    images; a scene's class name is the caption vocabulary's phrase for that background."""
    from clipstudy.world import caption
    from clipstudy.world.captions import VOCAB, article

    for name in NAMES:
        spec = ws.get_spec(name)
        if spec.label == "background":
            for value, cls in zip(spec.values, spec.classnames):
                assert any(phrase.endswith(" " + cls) for phrase in VOCAB["background"][value])
            continue
        cfg = ws.world_config(spec, "train", 0)
        captions = {caption(cfg, i) for i in range(1500)}
        wanted = [spec.template.format(c) for c in spec.classnames if article(c) == "a"]
        assert wanted and all(p in captions for p in wanted), (name, [p for p in wanted if p not in captions])


def test_cache_key_changes_with_content():
    key = lambda **kw: build_dataset("world-textures", **{"split": "test", "n": 18, "seed": 0, **kw}).cache_key
    base = key()
    assert base == key()
    assert len({base, key(n=27), key(seed=1), key(split="val")}) == 4
    assert key(image_size=32) != base
    assert build_dataset("world-shapes", split="test", n=30).cache_key != build_dataset(
        "world-sketch", split="test", n=30).cache_key


def test_bad_options_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="has no domain 'photo'; valid domains: sketch"):
        build_dataset("world-sketch", domain="photo")
    with pytest.raises(ConfigError, match="n \\(images in the split\\) must be an integer in 6\\.\\.1,000,000"):
        build_dataset("world-scenes", n=5)
    for bad in (10 ** 7, 2.5, True):
        with pytest.raises(ConfigError, match="at least one per class"):
            build_dataset("world-scenes", n=bad)
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        build_dataset("world-scenes", n=12, seed=-1)
    with pytest.raises(ConfigError, match="valid splits: train, val, test"):
        build_dataset("world-scenes", split="holdout")
    with pytest.raises(ConfigError, match="no option\\(s\\) \\['classes'\\]"):
        build_dataset("world-scenes", classes="id")


def test_in_memory_sets_and_few_shot_draws():
    from clipstudy.data.specs import InMemory, build_set
    from clipstudy.experiment import few_shot_set, subsample_classes

    ds = build_set({"dataset": "world-siblings", "split": "train", "n": 64})
    assert isinstance(ds, InMemory) and ds.cache_key == build_dataset("world-siblings", split="train", n=64).cache_key
    train = few_shot_set(ds, 2, seed=1, label_map=subsample_classes(16, "base"))
    assert len(train) == 16 and sorted(collections.Counter(train.labels.tolist()).values()) == [2] * 8


def test_zeroshot_cli_runs_on_a_suite_dataset(monkeypatch, tmp_path, capsys):
    from clipstudy import cli

    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(ws.DEFAULT_N, "test", 16)  # the CLI passes --n to the 'world' dataset only
    assert cli.main(["zeroshot", "--model", "embedded", "--dataset", "world-icons", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "world-icons" and out["num_classes"] == 8
    assert set(out["accuracy"]) == {"clipart"} and 0.0 <= out["accuracy"]["clipart"] <= 1.0
