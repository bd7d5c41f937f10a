"""The console command: registries as JSON, and one clear line + non-zero exit on bad input."""
import json
import subprocess
import sys

import pytest

from tests.test_features import make_folder


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "clipstudy.cli", *args], capture_output=True, text=True, env=env)


def test_info_json_lists_every_registry():
    out = run_cli("info", "--json")
    assert out.returncode == 0, out.stderr
    reg = json.loads(out.stdout)
    assert set(reg) == {"models", "datasets", "methods", "scorers", "losses"}
    assert "embedded" in reg["models"] and "ViT-B-16" in reg["models"]
    assert {"world", "imagefolder"} <= set(reg["datasets"])
    assert {"zeroshot", "linear_probe"} <= set(reg["methods"])
    assert {"mcm", "msp", "energy"} <= set(reg["scorers"]) and {"clip", "siglip"} <= set(reg["losses"])


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
