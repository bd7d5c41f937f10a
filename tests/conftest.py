"""Shared fixtures. ``run_notebook`` makes a manifest notebook's test a few lines::

    @pytest.mark.notebook
    def test_00_embedded_world(run_notebook):
        records = run_notebook("00")          # smoke profile, into a tmp dir; raises if it fails,
        assert records["zeroshot_photo_accuracy"] > records["chance"]  # misses a figure or a range
"""
import pytest


@pytest.fixture(scope="module")
def micro():
    """The random-weight micro CLIP (``clipstudy-micro``, seed 0), loaded once per test module."""
    pytest.importorskip("torch")
    from clipstudy.models import load_model

    return load_model("clipstudy-micro", "random", seed=0)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A fresh ``CLIPSTUDY_HOME`` (caches, results, checkpoints) under ``tmp_path``."""
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """Execute a notebook of notebooks/manifest.yaml (smoke profile) under tmp_path; return its records.

    Result cells and trained checkpoints go to tmp_path (the kernel inherits the environment), so every
    test computes its numbers afresh; the feature cache stays shared (it is keyed by content)."""
    from clipstudy.notebook import run_manifest_notebook

    monkeypatch.setenv("CLIPSTUDY_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("CLIPSTUDY_CHECKPOINTS", str(tmp_path / "checkpoints"))

    def run(name, profile="smoke", **kwargs):
        return run_manifest_notebook(name, tmp_path, profile=profile, **kwargs)

    return run
