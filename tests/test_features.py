import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from clipstudy.data import build_dataset  # noqa: E402
from clipstudy.errors import DataError  # noqa: E402
from clipstudy.features import extract_features, feature_cache_path  # noqa: E402
from clipstudy.models import load_model  # noqa: E402


def make_folder(root, classes=("red square", "blue circle"), per_class=3, size=24):
    rng = np.random.default_rng(0)
    for c in classes:
        d = root / c.replace(" ", "_")
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


@pytest.fixture()
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_imagefolder_layout_and_errors(tmp_path):
    ds = build_dataset("imagefolder", root=make_folder(tmp_path / "data"))
    assert ds.classnames == ("blue circle", "red square") and len(ds) == 6
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DataError, match="does not exist; expected layout"):
        build_dataset("imagefolder", root=tmp_path / "missing")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="has no images"):
        build_dataset("imagefolder", root=tmp_path / "empty")


def test_features_cached_and_reused(tmp_path, cache_home):
    loaded = load_model("clipstudy-micro", "random")
    ds = build_dataset("imagefolder", root=make_folder(tmp_path / "data"))
    a = extract_features(loaded, ds, progress=False)
    assert not a.meta["cached"] and feature_cache_path(a.key).exists()
    b = extract_features(loaded, ds, progress=False)
    assert b.meta["cached"] and torch.equal(a.features, b.features)
    torch.testing.assert_close(a.features.norm(dim=-1), torch.ones(6))
    other = load_model("clipstudy-micro", "random", seed=5)
    assert extract_features(other, ds, progress=False).key != a.key


def test_corrupt_cache_is_recomputed(tmp_path, cache_home):
    loaded = load_model("clipstudy-micro", "random")
    ds = build_dataset("imagefolder", root=make_folder(tmp_path / "data"))
    a = extract_features(loaded, ds, progress=False)
    feature_cache_path(a.key).write_bytes(b"truncated")
    b = extract_features(loaded, ds, progress=False)
    assert not b.meta["cached"] and torch.equal(a.features, b.features)


def test_interrupted_write_leaves_no_cache(tmp_path, cache_home, monkeypatch):
    loaded = load_model("clipstudy-micro", "random")
    ds = build_dataset("imagefolder", root=make_folder(tmp_path / "data"))

    def crash(obj, f, *a, **k):
        open(f, "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_features(loaded, ds, progress=False)
    assert not list(cache_home.rglob("*.pt")) and not list(cache_home.rglob("*.tmp"))


def test_training_in_place_invalidates_the_cache(tmp_path, cache_home):
    loaded = load_model("clipstudy-micro", "random")
    ds = build_dataset("imagefolder", root=make_folder(tmp_path / "data"))
    a = extract_features(loaded, ds, progress=False)
    with torch.no_grad():
        next(loaded.model.visual.parameters()).add_(0.1)  # e.g. fine-tuned after loading
    b = extract_features(loaded, ds, progress=False)
    assert not b.meta["cached"] and b.key != a.key
