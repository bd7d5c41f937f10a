"""Notebook 03 (Lipsum-FT, robust fine-tuning under domain shift) runs in its smoke profile and records sane
numbers."""
import pytest

pytestmark = pytest.mark.notebook


def test_03_lipsum_energy_gap(run_notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))  # results and checkpoints of this run only
    records = run_notebook("03")
    # the zero-shot model is its own theta0: no energy gap; fine-tuning moves away from it
    assert records["zs_shift_energy_gap"] == 0
    assert records["ft_shift_energy_gap"] > 0 and records["lipsum_ft_shift_energy_gap"] > 0
    # the regulariser shrinks the gap it penalises (smoke: 3 steps, still a clear factor)
    assert records["lipsum_ft_shift_energy_gap"] < records["ft_shift_energy_gap"]
    # WiSE-FT's path contains alpha = 0 (zero-shot): its best shift accuracy is at least zero-shot's
    for m in ("ft", "lipsum_ft"):
        assert records[f"{m}_wise_best_shift_accuracy"] >= records["zs_shift_accuracy"] - 1e-9
    assert records["best_method_shift"] in ("ft", "lp_ft", "lipsum_ft")
    assert -1 <= records["energy_gap_shift_pearson"] <= 1
