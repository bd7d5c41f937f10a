"""Notebook 04 (Tu et al., holistic robustness) in its smoke profile, and on the real path: two random
open_clip checkpoints on a fake ImageNet / ImageNet-X / ImageNet-C / OOD / cue-conflict / COCO tree."""
import shutil

import pytest

pytestmark = pytest.mark.notebook


def test_04_smoke(run_notebook):
    records = run_notebook("04")
    # 3 zero-shot runs (the base at two seeds) x 2 prompt sets + FT of each base run
    assert records["n_models"] == 5 and records["n_entries"] == 8
    assert records["n_base_seeds"] == 2
    assert 0 <= records["base_id_accuracy"] <= 1 and 0 <= records["ft_id_accuracy"] <= 1
    assert 0 <= records["zs_ece_shift_ts"] <= 1 and 0 <= records["single_ood_auroc_mcm"] <= 1
    # issue 13: both OOD scorers for every model; a supervised photo-only baseline family for the ER lines
    assert 0 <= records["base_ood_auroc_msp"] <= 1 and 0 <= records["ft_ood_auroc_mcm"] <= 1
    assert records["n_baseline"] == 3


def test_04_real_path_on_fake_imagenet(run_notebook, tmp_path):
    """The paper profile's data layout on a fake tree, with a manifest whose records allow the NaNs that
    random 3-class models can produce (e.g. no effective-robustness line when both tie)."""
    import yaml

    from clipstudy import paths
    from clipstudy.data.fake import make_fake_checkpoint, make_fake_tree

    root = make_fake_tree(tmp_path / "data", families=["imagenet", "ood", "cue_conflict", "retrieval"])
    a = make_fake_checkpoint(tmp_path / "a.safetensors", seed=0)
    b = make_fake_checkpoint(tmp_path / "b.safetensors", seed=1)
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    shutil.copy(paths.notebooks_dir() / "04_holistic_robustness.ipynb", nb_dir)
    entry = yaml.safe_load((paths.notebooks_dir() / "manifest.yaml").read_text())["notebooks"]["04_holistic_robustness.ipynb"]
    entry["records"] = {"n_models": [2, 2], "n_entries": [4, 4]}
    (nb_dir / "manifest.yaml").write_text(yaml.safe_dump({"notebooks": {"04_holistic_robustness.ipynb": entry}}))
    records = run_notebook("04", manifest=nb_dir / "manifest.yaml", overrides={
        "benchmark": "imagenet", "data_root": str(root), "severities": [], "n_test": 0, "n_val": 0,
        "models": [["clipstudy-micro", str(a)], ["clipstudy-micro", str(b), "architecture", "other seed"]]})
    assert records["n_models"] == 2 and records["n_entries"] == 4  # 2 models x (single prompt, imagenet80)
    assert records["n_baseline"] == 0  # no ID training set on the real path: no baseline line (NaN, with a note)
