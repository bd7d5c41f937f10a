import time

import pytest

torch = pytest.importorskip("torch")

from clipstudy.errors import CheckpointError  # noqa: E402
from clipstudy.models import load_model, list_models, save_weights, weights_hash  # noqa: E402
from clipstudy.registry import UnknownNameError  # noqa: E402


def test_project_configs_listed_with_open_clip():
    names = list_models()
    assert {"embedded", "clipstudy-rn-tiny", "clipstudy-vit-tiny", "clipstudy-micro"} <= set(names)
    assert "ViT-B-32" in names


def test_random_init_is_seeded():
    a = load_model("clipstudy-micro", "random", seed=1)
    b = load_model("clipstudy-micro", "random", seed=1)
    c = load_model("clipstudy-micro", "random", seed=2)
    assert a.weights_id == b.weights_id != c.weights_id


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_roundtrip_through_checkpoint_file(tmp_path, suffix):
    src = load_model("clipstudy-micro", "random", seed=3)
    path = tmp_path / f"w{suffix}"
    if suffix == ".pt":
        torch.save(src.model.state_dict(), path)
    else:
        save_weights(src.model, path, half=False)
    dst = load_model("clipstudy-micro", str(path))
    assert dst.weights_id == src.weights_id
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(dst.model.encode_image(x), src.model.encode_image(x))


def test_open_clip_architecture_from_local_file(tmp_path):
    # A real open_clip architecture (RN50's layout) at a tiny width, saved and reloaded from a file.
    src = load_model("clipstudy-rn-tiny", "random", seed=0)
    path = tmp_path / "rn.pt"
    torch.save({"state_dict": src.model.state_dict()}, path)
    assert load_model("clipstudy-rn-tiny", str(path)).weights_id == src.weights_id


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model("clipstudy-micro", str(bad))


def test_wrong_architecture_checkpoint(tmp_path):
    path = tmp_path / "vit.pt"
    torch.save(load_model("clipstudy-micro", "random").model.state_dict(), path)
    with pytest.raises(CheckpointError, match="is for architecture clipstudy-micro, not clipstudy-rn-tiny"):
        load_model("clipstudy-rn-tiny", str(path))


def test_missing_file_and_unknown_names(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model("clipstudy-micro", str(tmp_path / "nope.pt"))
    with pytest.raises(UnknownNameError, match="valid models"):
        load_model("no-such-model")
    with pytest.raises(CheckpointError, match="valid tags"):
        load_model("ViT-B-32", "no-such-tag")


def test_offline_tag_fails_fast(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIPSTUDY_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: the weights cannot be there
    t = time.time()
    with pytest.raises(CheckpointError, match="--pretrained /path/to"):
        load_model("RN50", "openai")
    assert time.time() - t < 20


def test_weights_hash_changes_with_values():
    m = load_model("clipstudy-micro", "random", seed=0).model
    h = weights_hash(m)
    with torch.no_grad():
        next(m.parameters()).add_(1e-3)
    assert weights_hash(m) != h
