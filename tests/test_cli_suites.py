"""`clipstudy info` lists the suites; `zeroshot` uses a dataset's own prompt and renders --n suite images."""
import json

import pytest

from clipstudy import cli
from clipstudy.data import DATASETS
from clipstudy.data.world_suite import SUITES


def test_info_json_has_the_suites(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["suites"] == {k: list(v) for k, v in SUITES.items()}
    assert set(info["suites"]["world-suite"]) <= set(info["datasets"])


def test_zeroshot_uses_the_suite_datasets_own_prompt_and_n(capsys):
    name = "world-icons"
    assert cli.main(["zeroshot", "--model", "clipstudy-micro", "--pretrained", "random", "--dataset", name,
                     "--n", "16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["templates"].values()) == [DATASETS.meta(name)["template"]]
    assert out["num_classes"] == 8


def test_zeroshot_photo_prompt_on_request_and_own_prompt_required_where_asked(capsys):
    assert cli.main(["zeroshot", "--model", "clipstudy-micro", "--pretrained", "random", "--dataset", "world",
                     "--domain", "photo", "--n", "8", "--templates", "dataset"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no prompt of its own" in err[0]


def test_n_on_a_dataset_read_from_disk_is_one_line(capsys, tmp_path):
    assert cli.main(["zeroshot", "--model", "clipstudy-micro", "--dataset", "imagefolder",
                     "--data-root", str(tmp_path), "--n", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--n" in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize("name", SUITES["world-suite"])
def test_every_suite_dataset_has_a_prompt(name):
    assert "{}" in DATASETS.meta(name)["template"]
