"""The console command: registries as JSON, and one clear line + non-zero exit on bad input."""
import json
import subprocess
import sys

import pytest

from tests.test_features import make_folder


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "clipstudy.cli", *args], capture_output=True, text=True, env=env)


POINTS = ("models", "datasets", "methods", "scorers", "losses", "regularizers", "recipes")


def test_info_json_lists_every_registry():
    out = run_cli("info", "--json")
    assert out.returncode == 0, out.stderr
    reg = json.loads(out.stdout)
    assert set(reg) == {*POINTS, "suites", "descriptions"}
    assert "embedded" in reg["models"] and "ViT-B-16" in reg["models"]
    assert {"world", "imagefolder"} <= set(reg["datasets"])
    assert {"zeroshot", "linear_probe"} <= set(reg["methods"])
    assert {"mcm", "msp", "energy"} <= set(reg["scorers"])
    assert reg["losses"] == ["clip", "siglip"]  # contrastive losses only: regularizers have their own registry
    assert reg["regularizers"] == ["car_ft", "dor", "kd", "kgcoop", "l2sp", "lipsum"]
    assert {"lp_ft", "ft", "lipsum_ft", "coop", "coop_dor", "zeroshot", "zeroshot_ensemble"} <= set(reg["recipes"])
    # values stay lists of names; one-line descriptions per extension point and name
    assert all(isinstance(reg[k], list) for k in POINTS)
    desc = reg["descriptions"]
    assert set(desc) == set(POINTS) and all(set(desc[k]) == set(reg[k]) for k in POINTS)
    for k in ("datasets", "methods", "scorers", "losses", "regularizers", "recipes"):
        assert all(d and "\n" not in d for d in desc[k].values()), k
    assert "Lipsum-FT" in desc["regularizers"]["lipsum"] and "LP-FT" in desc["recipes"]["lp_ft"]


def test_info_human_form_describes_regularizers_and_recipes():
    out = run_cli("info")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for header in ("datasets", "methods", "scorers", "losses", "regularizers", "recipes"):
        assert any(line.startswith(f"{header} (") for line in lines), header

    def row(name, section):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{section} ("))
        return next(line for line in lines[start + 1:] if line.split()[:1] == [name])

    assert "Lipsum-FT" in row("lipsum", "regularizers") and "DOR" in row("dor", "regularizers")
    assert "[robust_ft]" in row("lp_ft", "recipes") and "LP-FT" in row("lp_ft", "recipes")
    # the similar recipes of two studies are told apart by their study
    assert "[ood]" in row("zeroshot", "recipes") and "[robust_ft]" in row("lp", "recipes")
    assert "[ood]" in row("finetune", "recipes") and "[robust_ft]" in row("ft", "recipes")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["zeroshot", "--model", "no-such-model", "--dataset", "world"], "unknown model 'no-such-model'"),
        (["zeroshot", "--model", "clipstudy-micro", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["zeroshot", "--model", "clipstudy-micro", "--dataset", "imagefolder", "--data-root", "/no/such/dir"],
         "does not exist; expected layout"),
        (["zeroshot", "--model", "clipstudy-micro", "--pretrained", "/no/such/file.pt"], "not found"),
        (["zeroshot", "--model", "RN50", "--pretrained", "openai"], "--pretrained /path/to"),
        (["pretrain", "--preset", "nope"], "unknown pretraining preset 'nope'"),
    ],
)
def test_bad_input_is_one_clear_line(args, expected, tmp_path):
    import os

    env = dict(os.environ, HF_HOME=str(tmp_path), CLIPSTUDY_HOME=str(tmp_path))
    env.pop("CLIPSTUDY_ALLOW_DOWNLOAD", None)
    out = run_cli(*args, env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clipstudy: error:") and expected in lines[0], out.stderr


def test_corrupt_checkpoint_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    out = run_cli("zeroshot", "--model", "clipstudy-micro", "--pretrained", str(bad), "--dataset", "world")
    assert out.returncode == 2 and "cannot read checkpoint" in out.stderr and "Traceback" not in out.stderr


def test_zeroshot_on_imagefolder_json(tmp_path):
    root = make_folder(tmp_path / "data")
    import os

    env = dict(os.environ, CLIPSTUDY_HOME=str(tmp_path / "home"))
    out = run_cli("zeroshot", "--model", "clipstudy-micro", "--dataset", "imagefolder", "--data-root", str(root),
                  "--json", env=env)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["num_classes"] == 2 and list(res["accuracy"]) == ["imagefolder"]
    assert 0.0 <= res["accuracy"]["imagefolder"] <= 1.0


def test_random_weights_are_never_silent(tmp_path):
    """An architecture without default weights and no --pretrained runs with random weights: one warning line,
    "random_init": true; an explicit --pretrained random is meant and stays quiet (JSON still says so)."""
    import os

    root = make_folder(tmp_path / "data")
    env = dict(os.environ, CLIPSTUDY_HOME=str(tmp_path / "home"))
    base = ("zeroshot", "--model", "clipstudy-micro", "--dataset", "imagefolder", "--data-root", str(root), "--json")
    implicit = run_cli(*base, env=env)
    assert implicit.returncode == 0, implicit.stderr
    assert json.loads(implicit.stdout)["random_init"] is True
    warnings = [line for line in implicit.stderr.splitlines() if line.startswith("clipstudy: warning:")]
    assert len(warnings) == 1 and "random weights" in warnings[0] and "Traceback" not in implicit.stderr
    explicit = run_cli(*base, "--pretrained", "random", env=env)
    assert json.loads(explicit.stdout)["random_init"] is True and "warning" not in explicit.stderr
    shipped = run_cli("zeroshot", "--model", "embedded", "--dataset", "world", "--n", "30", "--json", env=env)
    assert shipped.returncode == 0 and json.loads(shipped.stdout)["random_init"] is False


def test_load_model_warns_only_when_random_weights_were_not_asked_for():
    import warnings

    from clipstudy.models import RandomWeightsWarning, load_model

    with pytest.warns(RandomWeightsWarning, match="random weights"):
        assert load_model("clipstudy-micro").random_init
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        assert load_model("clipstudy-micro", "random").random_init
        assert not load_model("embedded").random_init
