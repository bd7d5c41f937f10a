"""Notebook 02 (calibration and DOR) runs in its smoke profile and records consistent numbers."""
import pytest

pytestmark = pytest.mark.notebook


@pytest.fixture(autouse=True)
def _tmp_home(tmp_path, monkeypatch):
    for var, sub in (("CLIPSTUDY_HOME", "home"), ("CLIPSTUDY_RESULTS", "results"), ("CLIPSTUDY_CHECKPOINTS", "ckpt")):
        monkeypatch.setenv(var, str(tmp_path / sub))


def test_02_calibration_dor(run_notebook):
    r = run_notebook("02")
    # MaPLe cannot prompt the embedded ResNet: it is skipped, with its reason, and the rest runs
    assert r["maple_skipped"] is True
    # smoke: zero-shot, CoOp, CoOp+DOR, KgCoOp, one seed, plus one lambda and the oracle pool of CoOp+DOR
    assert r["n_cells"] == 6
    # the world's zero-shot model is far above chance (1/15) on both class groups
    assert r["base_accuracy_zeroshot"] > 0.5 and r["new_accuracy_coop"] > 0.3
    # ECE is at most the mean |confidence - accuracy| bound: |gap| <= ECE
    assert abs(r["new_gap_coop"]) <= r["new_ece_coop"] + 1e-9
    assert abs(r["base_gap_zeroshot"]) <= r["base_ece_zeroshot"] + 1e-9
    # DOR pulls the new-class text features toward zero-shot: less divergence than CoOp's, never negative
    assert 0 < r["new_fd_coop_dor"] <= r["new_fd_coop"] + 0.02
