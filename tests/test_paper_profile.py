"""`run_all.py --profile paper` end to end on a generated fake data root and random checkpoint files: the
command of the README's "Real data" section, with nothing downloaded.

The paper profile's protocol is kept (benchmarks, datasets, methods, scorers, shots, templates, recipes at
paper scale); only the budget is cut so that the run takes minutes on a CPU: a ViT-B-16-shaped toy model
(``clipstudy-fake-b16``: 77-token context, 16-pixel patches, 12 layers per tower so MaPLe fits its prompt depth 9), 2 training steps per method, one seed, and
for notebook 04 two toy checkpoints in place of the nine real open_clip models. The fake tree has 16
images per class, as 16-shot sampling needs. The manifest is the repository's with its record ranges
dropped: they are sanity bounds for real and embedded runs, and a random 3-class toy model legitimately
records NaN where they expect numbers (no correlation when every model has the same accuracy).
"""
import json
import shutil

import pytest
import yaml

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    import run_all
    from clipstudy import paths
    from clipstudy.data.fake import make_fake_checkpoint, make_fake_tree

    tmp = tmp_path_factory.mktemp("paper")
    nb_dir = tmp / "notebooks"
    nb_dir.mkdir()
    manifest = yaml.safe_load((paths.notebooks_dir() / "manifest.yaml").read_text())
    for name, entry in manifest["notebooks"].items():
        shutil.copy(paths.notebooks_dir() / name, nb_dir)
        entry.pop("records", None)
    (nb_dir / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    root = make_fake_tree(tmp / "data", images_per_class=16, n_classes=3)
    a = make_fake_checkpoint(tmp / "fake-b16.safetensors", arch="clipstudy-fake-b16", seed=0)
    b = make_fake_checkpoint(tmp / "fake-b16-seed1.pt", arch="clipstudy-fake-b16", seed=1)
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPSTUDY_HOME", str(tmp / "home"))  # caches, results and checkpoints of this run only
    for var in ("CLIPSTUDY_RESULTS", "CLIPSTUDY_CHECKPOINTS", "CLIPSTUDY_CACHE"):
        mp.delenv(var, raising=False)
    models = [["clipstudy-fake-b16", str(a)], ["clipstudy-fake-b16", str(b), "architecture", "other seed"]]
    try:
        rc = run_all.main([
            "--profile", "paper", "--only", "01", "02", "03", "04",
            "--model", "clipstudy-fake-b16", "--pretrained", str(a), "--data-root", str(root), "--device", "cpu",
            "--manifest", str(nb_dir / "manifest.yaml"), "--out", str(tmp / "runs"), "--figures-dir", str(tmp / "figures"), "--no-progress",
            "--param", "max_steps=2", "seeds=[1]", f"models={models!r}", "n_corrupt=2", "dynamics_images=4",
            "n_random_texts=32"])
    finally:
        mp.undo()
    summary = json.loads((tmp / "runs" / "summary.json").read_text())
    return rc, {n["notebook"]: n for n in summary["notebooks"]}


def test_paper_profile_completes_for_every_paper_notebook(paper_run):
    rc, runs = paper_run
    problems = {name: (r["status"], r["problems"]) for name, r in runs.items() if r["status"] != "ok"}
    assert rc == 0 and not problems, problems
    assert set(runs) == {"01_ood_finetuning", "02_calibration_dor", "03_lipsum_energy_gap", "04_holistic_robustness"}
    for r in runs.values():
        assert not r["figures_missing"]


def test_paper_profile_ran_the_papers_protocol(paper_run):
    _, runs = paper_run
    ood = runs["01_ood_finetuning"]["records"]
    assert ood["n_cells"] == 8  # 7 methods at 16 shots, one seed, + WiSE-FT of full fine-tuning
    cal = runs["02_calibration_dor"]["records"]
    assert cal["maple_skipped"] is False  # MaPLe runs: the toy model has a ViT image tower
    assert cal["n_cells"] >= 11 * 9  # CoOp's 11 datasets x the paper's 9 methods (+ the DOR sweeps)
    rft = runs["03_lipsum_energy_gap"]["records"]
    assert rft["zs_shift_energy_gap"] == 0 and rft["lipsum_ft_shift_energy_gap"] >= 0
    hol = runs["04_holistic_robustness"]["records"]
    assert hol["n_models"] == 2
