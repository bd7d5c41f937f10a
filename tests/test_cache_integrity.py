"""Integrity of what is kept between runs: feature-cache entries and result cells carry checksums that are
checked on read (a mismatch is recomputed with one warning line), and a fine-tuned model reloaded from its
finished checkpoint finds the features its first run cached."""
import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipstudy import experiment as ex  # noqa: E402
from clipstudy import features as feats  # noqa: E402
from clipstudy.features import extract_features, feature_cache_path  # noqa: E402
from clipstudy.models import load_model, weights_hash  # noqa: E402
from clipstudy.results import ResultStore  # noqa: E402




def world(n=12, seed=0):
    return ex.dataset_from_spec({"dataset": "world", "n": n, "seed": seed, "classes": "circle,square,star"})


def one_warning(record) -> str:
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert len(messages) == 1, messages
    assert "\n" not in messages[0]
    return messages[0]


# --------------------------------------------------------------------------- feature cache

def _rerecord(blob, key=None):
    """Make the entry's integrity record match its (edited) tensors, as a careful forger would."""
    if "integrity" in blob:
        blob["integrity"] = feats.integrity_record(blob, key or blob["integrity"]["key"])


def _swap_rows(blob):
    blob["features"] = blob["features"][[1, 0, *range(2, len(blob["features"]))]].clone()


def _perturb_and_renormalise(blob):
    f = blob["features"] + 0.05 * torch.randn(blob["features"].shape, generator=torch.Generator().manual_seed(0))
    blob["features"] = torch.nn.functional.normalize(f, dim=-1)


def _relabel(blob):
    blob["labels"] = (blob["labels"] + 1) % 3


def _drop_rows_consistently(blob):  # a record that matches its tensors but not the dataset
    blob["features"], blob["labels"] = blob["features"][:-2].clone(), blob["labels"][:-2].clone()
    _rerecord(blob)


def _not_unit_norm_consistently(blob):
    blob["features"] = blob["features"] * 2
    _rerecord(blob)


def _half_precision_consistently(blob):
    blob["features"] = blob["features"].half()
    _rerecord(blob)


def _written_by_an_older_version(blob):
    del blob["integrity"]


def _another_entrys_file(blob):
    _rerecord(blob, "0" * 32)


EDITS = {"swapped rows": (_swap_rows, "checksum"), "perturbed": (_perturb_and_renormalise, "checksum"),
         "relabelled": (_relabel, "checksum"), "fewer rows": (_drop_rows_consistently, "rows"),
         "not unit-norm": (_not_unit_norm_consistently, "unit-norm"),
         "fp16": (_half_precision_consistently, "float16"),
         "no record": (_written_by_an_older_version, "no integrity record"),
         "other key": (_another_entrys_file, "holds the entry of key")}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_feature_cache_edited_in_place_is_recomputed_with_one_warning(home, micro, edit):
    change, reason = EDITS[edit]
    ds = world()
    first = extract_features(micro, ds, progress=False)
    path = feature_cache_path(first.key)
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)  # loadable, but no longer what was computed
    with pytest.warns(UserWarning) as record:
        again = extract_features(micro, ds, progress=False)
    message = one_warning(record)
    assert str(path) in message and reason in message and "recomputing" in message
    assert not again.meta["cached"]
    assert torch.equal(again.features, first.features) and torch.equal(again.labels, first.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten entry verifies
        assert extract_features(micro, ds, progress=False).meta["cached"]


def test_a_local_entry_serving_plain_requests_is_verified_too(home, micro):
    ds = world()
    full = extract_features(micro, ds, progress=False, local=True)
    path = feature_cache_path(full.key)
    blob = torch.load(path, weights_only=True)
    _swap_rows(blob)
    torch.save(blob, path)
    with pytest.warns(UserWarning, match="checksum"):
        plain = extract_features(micro, ds, progress=False)
    assert not plain.meta["cached"] and torch.equal(plain.features, full.features)


def test_cache_entries_record_their_integrity(home, micro):
    ds = world()
    fs = extract_features(micro, ds, progress=False, local=True)
    record = torch.load(feature_cache_path(fs.key), weights_only=True)["integrity"]
    assert record["key"] == fs.key and record["rows"] == len(ds)
    assert record["tensors"]["features"] == {"shape": list(fs.features.shape), "dtype": "torch.float32"}
    assert record["tensors"]["local"]["dtype"] == "torch.float16" and len(record["checksum"]) == 32


# --------------------------------------------------------------------------- result cells

SPEC = {"experiment": "integrity", "model": "embedded", "dataset": "photo", "seed": 0}


def test_a_result_edited_in_place_is_recomputed_with_one_warning(tmp_path):
    store = ResultStore(tmp_path)
    store.run(SPEC, lambda: {"acc": 0.7444})
    path = store.path_for(SPEC)
    record = json.loads(path.read_text())
    record["metrics"]["acc"] = 0.7333
    path.write_text(json.dumps(record))
    calls = []
    with pytest.warns(UserWarning) as warned:
        metrics = store.run(SPEC, lambda: calls.append(1) or {"acc": 0.7444})
    message = one_warning(warned)
    assert str(path) in message and "checksum" in message and "recomputed" in message
    assert calls == [1] and metrics == {"acc": 0.7444}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get(SPEC)["metrics"] == {"acc": 0.7444}


def test_an_edited_result_is_skipped_by_load(tmp_path):
    store = ResultStore(tmp_path)
    store.put(SPEC, {"acc": 0.5})
    store.put({**SPEC, "seed": 1}, {"acc": 0.6})
    path = store.path_for(SPEC)
    path.write_text(path.read_text().replace("0.5", "0.9"))
    with pytest.warns(UserWarning, match="checksum.*skipped"):
        df = store.load()
    assert df["acc"].tolist() == [0.6]


def test_a_result_without_checksum_from_an_earlier_version_is_kept(tmp_path):
    store = ResultStore(tmp_path)
    store.put(SPEC, {"acc": 0.5})
    path = store.path_for(SPEC)
    record = json.loads(path.read_text())
    assert "checksum" in record
    del record["checksum"]
    path.write_text(json.dumps(record))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.run(SPEC, lambda: pytest.fail("recomputed a finished cell")) == {"acc": 0.5}


def test_edited_arrays_are_not_returned(tmp_path):
    store = ResultStore(tmp_path)
    sims = np.arange(6, dtype=np.float16).reshape(2, 3)
    store.put_arrays(SPEC, {"v0/id/sims": sims, "v0/id/labels": np.array([0, 2])})
    got = store.get_arrays(SPEC)
    assert set(got) == {"v0/id/sims", "v0/id/labels"} and np.array_equal(got["v0/id/sims"], sims)
    path = store.path_for(SPEC).with_suffix(".npz")
    with np.load(path) as data:
        kept = {k: data[k] for k in data.files}
    kept["v0/id/sims"] = kept["v0/id/sims"][::-1].copy()
    np.savez_compressed(path, **kept)
    with pytest.warns(UserWarning, match="checksum"):
        assert store.get_arrays(SPEC) == {}


# --------------------------------------------------------------------------- reloaded fine-tuned cells

@pytest.fixture(scope="module")
def rn_tiny():
    return load_model("clipstudy-rn-tiny", "random", seed=0)  # BatchNorm layers: their counters train


def _run_image_cell(loaded, ds, train):
    """What a study does for one fine-tuning cell: train (or reload the finished checkpoint), evaluate."""
    recipe = ex.get_recipe("finetune", steps=2, precision="fp32")
    spec = ex.cell_spec(loaded, recipe, train, 1, experiment="integrity")
    method, _, theta0 = ex.train_method(loaded, recipe, train, ds.classnames, 1, checkpoint=ex.checkpoint_path(spec),
                                        progress=False)
    for _, mixed in ex.wise_variants(method, theta0, recipe.wise_alphas):
        ex.method_outputs(mixed, loaded, ds, progress=False)
    return method, ex.method_outputs(method, loaded, ds, progress=False)


def test_a_rerun_of_a_finetuning_cell_reuses_its_cached_features(home, rn_tiny, monkeypatch):
    ds = world(18)
    train = ex.few_shot_set(ds, 2, 1)
    first, out1 = _run_image_cell(rn_tiny, ds, train)
    cache = home / "cache" / "features"
    files = sorted(p.name for p in cache.glob("*.pt"))

    def no_extraction(*a, **k):
        raise AssertionError("features were extracted again on a rerun")

    monkeypatch.setattr(feats, "_encode", no_extraction)
    again, out2 = _run_image_cell(rn_tiny, ds, train)  # a fresh method, reloaded from the finished checkpoint
    assert weights_hash(again.encoder) == weights_hash(first.encoder)
    assert sorted(p.name for p in cache.glob("*.pt")) == files
    np.testing.assert_array_equal(out1.sims, out2.sims)
