"""Golden numbers: a tripwire for refactors. The seeded smoke pipeline of tests/golden_pipeline.py (shipped
embedded model; zero-shot accuracy, MCM and energy AUROC against far-OOD icons, ECE, a 5-step CoOp, a 3-step
FT and its energy gap) runs in fp32 on one thread, and its numbers must equal the pinned ones.

Tolerances: tight enough that a changed formula, default, seed path or protocol moves a number out of them
(e.g. bf16 features instead of fp32 move the AUROCs by ~1e-3 and the energy gap by ~1 %), loose enough for
another CPU of the same kind (fp32 kernels of other instruction sets change unit features by ~1e-7; an
accuracy may move by one image of 90). If a change is meant to move them, rerun
``CLIPSTUDY_FEATURE_PRECISION=fp32 python tests/golden_pipeline.py`` and say why in the commit.
"""
import pytest

pytest.importorskip("torch")

GOLDEN = {
    "zeroshot_accuracy": 0.7555555555555555,
    "mcm_auroc_far": 0.6705555555555556,
    "energy_auroc_far": 0.9587037037037037,
    "zeroshot_ece15": 0.10353519708865459,
    "logit_scale": 22.67116355895996,
    "coop_2shot_accuracy": 0.7444444444444445,
    "ft_energy_gap": 0.0038164022896024917,
    "ft_accuracy": 0.7333333333333333,
}
TOLERANCE = {"zeroshot_accuracy": 1.01 / 90, "coop_2shot_accuracy": 1.01 / 90, "ft_accuracy": 1.01 / 90,
             "mcm_auroc_far": 5e-4, "energy_auroc_far": 5e-4, "zeroshot_ece15": 5e-4, "logit_scale": 1e-5,
             "ft_energy_gap": 2e-3 * 0.0038}


def test_golden_numbers(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLIPSTUDY_FEATURE_PRECISION", "fp32")
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from golden_pipeline import golden_numbers
    finally:
        sys.path.pop(0)
    got = golden_numbers()
    assert set(got) == set(GOLDEN)
    off = {k: (got[k], GOLDEN[k]) for k in GOLDEN if abs(got[k] - GOLDEN[k]) > TOLERANCE[k]}
    assert not off, f"golden numbers moved (got, pinned): {off}"
