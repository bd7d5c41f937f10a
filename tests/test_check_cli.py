"""``clipstudy check-data`` and ``clipstudy check-model``: one report per dataset/model, exit 0 or 2."""
import json
import shutil

import pytest

from clipstudy.cli import main
from clipstudy.data.fake import FAMILY_DATASETS, make_fake_checkpoint, make_fake_tree
from clipstudy.data.real import real_datasets


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_fake_tree(tmp_path_factory.mktemp("data"))


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_data_fake_tree_is_partial(root, capsys):
    # the fake tree holds 3 classes (a few images) of each set: every set is there, none is complete
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--json")
    report = json.loads(out)
    assert code == 2 and report["data_root"] == str(root)
    assert [r["dataset"] for r in report["datasets"]] == real_datasets()
    assert all(r["status"] == "partial" for r in report["datasets"])
    domainnet = next(r for r in report["datasets"] if r["dataset"] == "domainnet")
    assert set(domainnet["images"]) == {"real", "painting", "clipart", "infograph", "sketch"}
    assert domainnet["expected_classes"] == 345 and "3 of 345 classes" in domainnet["reason"]
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--dataset", "imagenet_r,sun",
                       "--dataset", "dtd")
    assert code == 2 and out.count("partial") == 3 and "imagenet_r" in out
    assert "3 of 200 classes" in out and "6 of 10000 images" in out and "3 of 47 classes" in out


def test_check_data_missing_and_malformed(root, tmp_path, capsys):
    code, out, _ = run(capsys, "check-data", "--data-root", str(tmp_path), "--json")
    report = json.loads(out)["datasets"]
    assert code == 2 and {r["status"] for r in report} == {"missing"}
    assert all(r["layout"].startswith("ROOT/") and r["source"] for r in report)
    shutil.copytree(root / "imagenet-r", tmp_path / "imagenet-r")
    shutil.copytree(root / "cue-conflict", tmp_path / "cue-conflict")
    (tmp_path / "imagenet-r" / "not_a_wnid").mkdir()
    sorted((tmp_path / "cue-conflict").rglob("*.png"))[0].write_bytes(b"broken")  # the first sample
    code, out, _ = run(capsys, "check-data", "--data-root", str(tmp_path), "--dataset", "imagenet_r,cue_conflict,ninco")
    assert code == 2
    lines = out.splitlines()
    assert any("imagenet_r" in ln and "malformed" in ln and "not_a_wnid" in ln for ln in lines)
    assert any("cue_conflict" in ln and "malformed" in ln and "cannot read image" in ln for ln in lines)
    assert any("ninco" in ln and "missing" in ln for ln in lines)
    assert "expected: ROOT/NINCO/NINCO_OOD_classes" in out and "get: NINCO" in out


def test_check_data_one_family_is_enough(tmp_path, capsys):
    root = make_fake_tree(tmp_path / "d", families=["coop"], n_classes=10, images_per_class=1)
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--json", *[
        a for n in FAMILY_DATASETS["coop"] for a in ("--dataset", n)])
    status = {r["dataset"]: r["status"] for r in json.loads(out)["datasets"]}
    assert code == 2 and len(status) == 10 and status.pop("eurosat") == "present"  # EuroSAT has 10 classes
    assert set(status.values()) == {"partial"}
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--dataset", "eurosat")
    assert code == 0 and "eurosat          present   test: 10 classes, 10 images" in out


@pytest.mark.parametrize("args, expected", [
    (["check-data", "--dataset", "nope"], "unknown dataset 'nope'; valid datasets:"),
    (["check-data", "--dataset", "world"], "'world' is not a real dataset"),
    (["check-model", "--model", "no-such-model"], "unknown model 'no-such-model'"),
])
def test_bad_names_are_one_clear_line(args, expected, capsys):
    code, out, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("clipstudy: error:")
    assert expected in lines[0]


def test_check_model_fake_checkpoint(tmp_path, capsys):
    pytest.importorskip("torch")
    ckpt = make_fake_checkpoint(tmp_path / "micro.safetensors")
    code, out, _ = run(capsys, "check-model", "--model", "clipstudy-micro", "--pretrained", str(ckpt), "--json")
    info = json.loads(out)
    assert code == 0 and info["arch"] == "clipstudy-micro" and info["pretrained"] == str(ckpt)
    assert info["source"] == "file" and info["image_size"] == 32 and info["embed_dim"] == 32
    assert info["context_length"] == 16 and info["parameters"] > 100_000
    code, out, _ = run(capsys, "check-model", "--model", "clipstudy-micro")
    assert code == 0 and "random init" in out and "parameters:" in out


def test_check_model_errors_exit_2_with_one_line(tmp_path, capsys):
    # in-process: an exception escaping main() would fail the test, so one printed line means no traceback
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    code, out, err = run(capsys, "check-model", "--model", "clipstudy-micro", "--pretrained", str(bad))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "cannot read checkpoint" in err
    code, out, err = run(capsys, "check-model", "--model", "clipstudy-micro", "--pretrained", str(tmp_path / "no.pt"))
    assert code == 2 and "checkpoint file not found" in err
