"""Notebook 02 (calibration and DOR) runs in its smoke profile on part of the world suite and records
consistent numbers."""
import pytest

pytestmark = pytest.mark.notebook


@pytest.fixture(autouse=True)
def _tmp_home(tmp_path, monkeypatch):
    for var, sub in (("CLIPSTUDY_HOME", "home"), ("CLIPSTUDY_RESULTS", "results"), ("CLIPSTUDY_CHECKPOINTS", "ckpt")):
        monkeypatch.setenv(var, str(tmp_path / sub))


def _smoke_datasets():
    from clipstudy.manifest import load_manifest

    return list(load_manifest().get("02").profiles["smoke"]["datasets"])


def test_02_calibration_dor(run_notebook):
    from clipstudy.data.world_suite import SUITES, base_new_split

    datasets = _smoke_datasets()
    r = run_notebook("02")
    # the smoke profile runs part of the world suite, each dataset as its own study, averaged
    assert 2 <= len(datasets) <= 3 and set(datasets) <= set(SUITES["world-suite"])
    assert r["datasets"] == datasets and r["n_datasets"] == len(datasets)
    assert r["sweep_datasets"] == ["world-shapes"]  # the λ and outlier-pool sweeps run on one of them
    # MaPLe cannot prompt the embedded ResNet: it is skipped, with its reason, and the rest runs
    assert r["maple_skipped"] is True
    # smoke: zero-shot, CoOp, CoOp+DOR, KgCoOp, one seed, per dataset, plus one lambda and the oracle pool of CoOp+DOR
    # on the sweep dataset
    assert r["n_cells"] == 4 * len(datasets) + 2
    # zero-shot is well above chance on both class groups, averaged over the datasets
    chance = {g: sum(1 / len(base_new_split(d)[i]) for d in datasets) / len(datasets)
              for i, g in enumerate(("base", "new"))}
    assert r["base_accuracy_zeroshot"] > 1.5 * chance["base"] and r["new_accuracy_coop"] > 1.5 * chance["new"]
    # ECE is at most the mean |confidence - accuracy| bound: |gap| <= ECE (also for the means over datasets)
    assert abs(r["new_gap_coop"]) <= r["new_ece_coop"] + 1e-9
    assert abs(r["base_gap_zeroshot"]) <= r["base_ece_zeroshot"] + 1e-9
    # DOR pulls the new-class text features toward zero-shot: less divergence than CoOp's, never negative
    assert 0 < r["new_fd_coop_dor"] <= r["new_fd_coop"] + 0.02
