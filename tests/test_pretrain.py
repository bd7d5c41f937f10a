import json

import pytest

torch = pytest.importorskip("torch")

from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.pretrain import PretrainConfig, pretrain, presets  # noqa: E402


def test_presets_are_data_and_validated():
    assert {"embedded", "smoke", "vit-tiny", "rn-tiny-siglip"} <= set(presets())
    cfg = PretrainConfig.from_preset("embedded", seed=3)
    assert cfg.seed == 3 and cfg.arch == "clipstudy-rn-tiny" and cfg.preset == "embedded"
    with pytest.raises(ConfigError, match="valid presets"):
        PretrainConfig.from_preset("nope")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pretrain")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    cfg = PretrainConfig.from_preset("smoke")
    card = pretrain(cfg, out_dir=tmp_path / "run", progress=False)
    yield cfg, card, tmp_path
    mp.undo()


def test_smoke_pretrain_writes_card_and_resumes(smoke_run):
    cfg, card, tmp_path = smoke_run
    assert set(card["zeroshot_accuracy"]) == {"photo", "painting", "clipart", "sketch", "infograph"}
    assert card["steps_done"] == cfg.steps and card["num_classes"] >= 40
    for name in ("weights.safetensors", "card.json", "card.md", "state.pt"):
        assert (tmp_path / "run" / name).exists()
    assert json.loads((tmp_path / "run" / "card.json").read_text())["seed"] == 0
    # a finished run resumes at its last step: nothing is trained again, same weights
    from safetensors.torch import load_file

    before = load_file(tmp_path / "run" / "weights.safetensors")
    again = pretrain(cfg, out_dir=tmp_path / "run", progress=False)
    after = load_file(tmp_path / "run" / "weights.safetensors")
    assert again["history"] == card["history"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_same_seed_same_weights(smoke_run, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    cfg, card, first = smoke_run
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    again = pretrain(cfg, out_dir=tmp_path / "b", progress=False)
    a, b = load_file(first / "run" / "weights.safetensors"), load_file(tmp_path / "b" / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again["zeroshot_accuracy"] == card["zeroshot_accuracy"]
