"""Notebook 01 (Ming & Li) in its smoke profile, and on the real path with a fake ImageNet/OOD tree and a
fake checkpoint file (no download)."""
import pytest

pytestmark = pytest.mark.notebook


def test_01_smoke(run_notebook, tmp_path):
    from clipstudy.models import load_model
    from clipstudy.results import load

    records = run_notebook("01")
    # zero-shot on the 30 ID classes is far above chance (1/30) even on 90 test images
    assert records["zeroshot_id_accuracy"] > 10 / 30
    scale = load_model("embedded").logit_scale
    assert records["msp_temperature"] == pytest.approx(1 / scale, rel=1e-3)  # the embedded logit scale
    # the smoke profile runs on the world suite: ID = world-shapes with its own prompt, world-sketch and
    # world-infograph as covariate shift, the three OOD sets from the world's own streams
    cells = load(tmp_path / "results")
    assert len(cells) == 14 and cells["eval_sets.id_test"].str.startswith("world-suite-v1:world-shapes:test").all()
    assert cells["eval_sets.shift:world-sketch"].str.startswith("world-suite-v1:world-sketch:test").all()
    assert cells["eval_sets.shift:world-infograph"].notna().all()
    assert all(cells[f"eval_sets.ood:{k}"].str.startswith("world:").all() for k in ("near_ood", "far_ood", "texture"))
    zs = cells[cells.method == "zeroshot"]
    assert set(zs["recipe.params.templates"]) == {"a photo of a {}."}
    # smoke: 7 methods x 2 shots x 1 seed, and full FT also yields WiSE-FT
    assert records["n_cells"] == 16  # + the WiSE-FT variant of full FT
    # detection is better than chance with MSP for the shipped model (paper-independent sanity check)
    assert records["auroc_msp_zeroshot"] > 0.6


def test_01_real_path_on_fake_imagenet(run_notebook, tmp_path):
    from clipstudy.data.fake import make_fake_checkpoint, make_fake_tree

    root = make_fake_tree(tmp_path / "data", families=["imagenet", "ood"], images_per_class=2, n_classes=3)
    ckpt = make_fake_checkpoint(tmp_path / "micro.safetensors")
    records = run_notebook("01", overrides={
        "benchmark": "imagenet", "model": "clipstudy-micro", "pretrained": str(ckpt), "data_root": str(root),
        "scale": "embedded", "shots": [1], "seeds": [1], "n_test": 0, "n_ood": 0,
        "shift_domains": ["imagenet_sketch"], "max_steps": 2,
        "methods": ["zeroshot", "coop", "linear_probe", "finetune"]})
    assert records["n_cells"] == 5 and 0 <= records["auroc_mcm_coop"] <= 1
