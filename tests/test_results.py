"""One JSON file per experiment cell: naming, resume, atomicity, corrupt files, tidy loading."""
import json
from dataclasses import dataclass

import numpy as np
import pytest

from clipstudy.results import ResultStore, load, spec_hash, versions

SPEC = {"experiment": "zeroshot", "model": "embedded", "dataset": "photo", "seed": 0, "opts": {"T": 1.0}}


def test_path_is_readable_stable_and_unique(tmp_path):
    store = ResultStore(tmp_path)
    path = store.path_for(SPEC)
    assert path.parent == tmp_path
    assert path.name == f"zeroshot__embedded__photo__seed0__{spec_hash(SPEC)}.json"
    assert store.path_for(dict(reversed(list(SPEC.items())))) == path  # key order does not matter
    assert store.path_for({**SPEC, "opts": {"T": 2.0}}) != path  # every field is in the hash
    assert store.path_for({"model": "ViT-B/32"}).name.startswith("ViT-B-32__")


def test_run_resumes_and_fn_runs_once(tmp_path):
    calls = []

    def fn():
        calls.append(1)
        return {"acc": np.float32(0.5), "n": 3}

    first = ResultStore(tmp_path).run(SPEC, fn)
    second = ResultStore(tmp_path).run(SPEC, fn)  # a fresh process would see the same
    assert len(calls) == 1
    assert first == second == {"acc": 0.5, "n": 3}
    stored = json.loads(ResultStore(tmp_path).path_for(SPEC).read_text())
    assert stored["spec"] == SPEC and set(stored) >= {"metrics", "versions", "created", "spec_hash"}
    assert stored["versions"]["python"] and {"torch", "open_clip", "clipstudy"} <= set(stored["versions"])


def test_exception_inside_fn_leaves_no_file(tmp_path):
    def crash():
        raise RuntimeError("killed mid-evaluation")

    with pytest.raises(RuntimeError):
        ResultStore(tmp_path).run(SPEC, crash)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ['{"spec": {"model": ', "", "[1, 2]", '{"spec": {}, "metrics": 3}'])
def test_corrupt_file_is_recomputed_with_a_warning(tmp_path, content):
    store = ResultStore(tmp_path)
    store.path_for(SPEC).write_text(content)
    with pytest.warns(UserWarning, match="recomputed"):
        assert store.run(SPEC, lambda: {"acc": 1.0}) == {"acc": 1.0}
    assert store.get(SPEC)["metrics"] == {"acc": 1.0}


def test_load_gives_one_row_per_cell(tmp_path):
    store = ResultStore(tmp_path)
    for seed in range(3):
        for method in ("zeroshot", "wise_ft"):
            store.put({"model": "embedded", "method": method, "seed": seed, "opts": {"T": 1.0}},
                      {"acc": 0.1 * seed, "seed": seed, "ece": {"15": 0.02}})
    (tmp_path / "broken.json").write_text("{")
    with pytest.warns(UserWarning, match="broken.json"):
        df = load(tmp_path)
    assert df.shape[0] == 6
    columns = {"model", "method", "seed", "opts.T", "acc", "ece.15", "metrics.seed", "_created", "_path"}
    assert columns <= set(df)
    assert sorted(df["seed"]) == [0, 0, 1, 1, 2, 2]
    with pytest.warns(UserWarning, match="skipped"):
        assert df.equals(store.load())


def test_load_empty_folder(tmp_path):
    assert load(tmp_path).empty


def test_dataclass_specs_and_bad_metrics(tmp_path):
    @dataclass(frozen=True)
    class Spec:
        model: str = "embedded"
        seed: int = 1

    store = ResultStore(tmp_path)
    assert store.path_for(Spec()) == store.path_for({"model": "embedded", "seed": 1})
    with pytest.raises(TypeError, match="metrics must be a dict"):
        store.put(Spec(), 0.5)
    assert versions()["clipstudy"]


def test_file_with_another_spec_is_not_trusted(tmp_path):
    store = ResultStore(tmp_path)
    store.put({"model": "other"}, {"acc": 0.0})
    store.path_for({"model": "other"}).rename(store.path_for(SPEC))
    with pytest.warns(UserWarning, match="different spec"):
        assert store.get(SPEC) is None
