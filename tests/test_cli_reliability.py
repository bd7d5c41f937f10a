"""Bad input to the console command ends in one line and exit code 2, before any work is done.

Every case runs ``clipstudy.cli.main`` in-process: exit code 2, exactly one stderr line, starting with
``clipstudy: error:``, and no traceback. Values are checked where the Python API gets them too.
"""
import os

import pytest

torch = pytest.importorskip("torch")

from clipstudy import cli  # noqa: E402
from clipstudy.errors import ConfigError  # noqa: E402

MICRO = ("--model", "clipstudy-micro", "--pretrained", "random")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh CLIPSTUDY_HOME per test, with no per-folder overrides from the caller's environment."""
    for var in ("CLIPSTUDY_CACHE", "CLIPSTUDY_RESULTS", "CLIPSTUDY_CHECKPOINTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def one_error_line(capsys, *argv) -> str:
    """Run the command; check the one-line error contract; return that line."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert "Traceback" not in captured.err
    assert len(lines) == 1 and lines[0].startswith("clipstudy: error:"), captured.err
    return lines[0]


def files_under(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --------------------------------------------------------------------------- bad numbers


@pytest.mark.parametrize("args, expected", [
    (["--batch-size", "0"], "batch_size must be an integer in 1..n_train (256), got 0"),
    (["--batch-size", "-4"], "batch_size must be an integer in 1..n_train"),
    (["--minutes", "-1"], "max_minutes must be a number > 0"),
    (["--minutes", "0"], "max_minutes must be a number > 0"),
    (["--minutes", "nan"], "max_minutes must be a number > 0"),
    (["--steps", "0"], "steps must be an integer >= 1, got 0"),
    (["--steps", "-2"], "steps must be an integer >= 1, got -2"),
    (["--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["--ship"], "--ship installs a shipped model and takes only their runs (embedded, embedded --seed 1, zoo-vit, "),
])
def test_bad_pretrain_values_fail_before_training(args, expected, home, capsys):
    line = one_error_line(capsys, "pretrain", "--preset", "smoke", *args)
    assert expected in line
    assert files_under(home) == []  # nothing trained, nothing written


@pytest.mark.parametrize("n", ["0", "-3", "1000001", "1000000000000"])
def test_zeroshot_n_out_of_range_is_one_line(n, home, capsys):
    line = one_error_line(capsys, "zeroshot", *MICRO, "--n", n, "--json")
    assert "--n must be in 1..1,000,000" in line and f"got {n}" in line
    assert files_under(home) == []


def test_unknown_templates_fail_before_features_are_computed(home, capsys):
    line = one_error_line(capsys, "zeroshot", *MICRO, "--n", "4", "--templates", "nope", "--json")
    assert "unknown template set 'nope'" in line
    assert files_under(home / "cache") == []


def test_world_n_is_checked_in_the_python_api():
    from clipstudy.data import build_dataset
    from clipstudy.evaluate import zeroshot_by_domain

    for n in (0, -1, 10**12, 2.5, True):
        with pytest.raises(ConfigError, match=r"n \(world images per domain\) must be an integer in 1\.\.1,000,000"):
            build_dataset("world", n=n)
    with pytest.raises(ConfigError, match="must be an integer in 1"):  # every domain is checked before a model is used
        zeroshot_by_domain(None, "world", n=0)
    with pytest.raises(Exception, match="unknown template set"):
        zeroshot_by_domain(None, "world", n=4, templates="nope")
    assert len(build_dataset("world", n=3)) == 3


# --------------------------------------------------------------------------- folders that cannot be written


def blocked_home(tmp_path, monkeypatch):
    """A CLIPSTUDY_HOME below a regular file: nothing can be created there, not even by root."""
    (tmp_path / "file").write_text("in the way")
    home = tmp_path / "file" / "home"
    monkeypatch.setenv("CLIPSTUDY_HOME", str(home))
    return home


@pytest.mark.parametrize("argv, folder", [
    (["zeroshot", *MICRO, "--n", "4", "--json"], "cache"),
    (["pretrain", "--preset", "smoke"], "checkpoints/pretrain/smoke-seed0"),
])
def test_unwritable_home_is_one_line_before_the_work(argv, folder, tmp_path, monkeypatch, capsys):
    home = blocked_home(tmp_path, monkeypatch)
    import clipstudy.models

    def no_work(*a, **k):
        raise AssertionError("the model was loaded before the folders were checked")

    monkeypatch.setattr(clipstudy.models, "load_model", no_work)
    line = one_error_line(capsys, *argv)
    assert line == (f"clipstudy: error: cannot write to {home / folder} (read-only?); "
                    "set CLIPSTUDY_HOME to a writable folder")


def test_unwritable_override_names_its_variable(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("CLIPSTUDY_CACHE", str(tmp_path / "file" / "cache"))
    line = one_error_line(capsys, "zeroshot", *MICRO, "--n", "4", "--json")
    assert line.endswith("set CLIPSTUDY_CACHE to a writable folder")
    line = one_error_line(capsys, "pretrain", "--preset", "smoke", "--out", str(tmp_path / "file" / "run"))
    assert line.endswith("choose a writable --out folder")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_home_is_one_line(tmp_path, monkeypatch, capsys):
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o555)
    monkeypatch.setenv("CLIPSTUDY_HOME", str(home))
    try:
        for argv, folder in [(["zeroshot", *MICRO, "--n", "4", "--json"], "cache"),
                             (["pretrain", "--preset", "smoke"], "checkpoints/pretrain/smoke-seed0")]:
            line = one_error_line(capsys, *argv)
            assert f"cannot write to {home / folder} (read-only?)" in line
    finally:
        home.chmod(0o755)


def test_a_failed_write_after_the_check_is_one_line(home, capsys):
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "features").write_text("a file where the feature cache's folder goes")
    line = one_error_line(capsys, "zeroshot", *MICRO, "--n", "4", "--domain", "photo", "--json")
    assert line == f"clipstudy: error: File exists: {home / 'cache' / 'features'}"


# --------------------------------------------------------------------------- resuming another config


def fake_state(cfg, config: dict | None):
    """A ``state.pt`` in ``cfg``'s run folder holding only ``config`` (all the check reads)."""
    state = cfg.run_dir() / "state.pt"
    state.parent.mkdir(parents=True)
    torch.save({} if config is None else {"pretrain_config": config}, state)
    return state


def test_resume_with_another_config_is_one_line(capsys):
    import dataclasses
    import json

    from clipstudy.pretrain import PretrainConfig

    cfg = PretrainConfig.from_preset("smoke")
    state = fake_state(cfg, json.loads(json.dumps(dataclasses.asdict(cfg))))
    line = one_error_line(capsys, "pretrain", "--preset", "smoke", "--steps", "8", "--batch-size", "8")
    assert f"{state} was trained with another config (steps 6 -> 8, batch_size 16 -> 8)" in line
    assert "--restart" in line and "--out" in line
    assert sorted(p.name for p in state.parent.iterdir()) == ["state.pt"]  # nothing trained or written


def test_resume_of_a_state_without_config_is_one_line(capsys):
    from clipstudy.pretrain import PretrainConfig

    state = fake_state(PretrainConfig.from_preset("smoke"), None)
    line = one_error_line(capsys, "pretrain", "--preset", "smoke")
    assert f"cannot verify that {state} was trained with this config" in line and "--restart" in line
