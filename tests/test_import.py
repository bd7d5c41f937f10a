import subprocess
import sys
import time


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_is_light():
    code = (
        "import sys, time; t=time.time(); import clipstudy, clipstudy.paths, clipstudy.registry, clipstudy.io;"
        "print(time.time()-t); print(','.join(m for m in ('torch','open_clip','torchvision','pandas') if m in sys.modules))"
    )
    lines = _run(code).splitlines()
    seconds, heavy = lines[0], (lines[1] if len(lines) > 1 else "")
    assert heavy == "", f"import clipstudy pulled in {heavy}"
    assert float(seconds) < 2.0


def test_paths_env_overrides(tmp_path, monkeypatch):
    from clipstudy import paths

    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path))
    assert paths.cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("CLIPSTUDY_CACHE", str(tmp_path / "c2"))
    assert paths.cache_dir() == tmp_path / "c2"
    monkeypatch.setenv("CLIPSTUDY_FIGURES", str(tmp_path / "figs"))
    assert paths.figures_dir() == tmp_path / "figs"


def test_registry_packages_import_nothing_before_a_lookup():
    """Method, dataset and regularizer modules register themselves on the first lookup (issue 14), so importing
    their packages, the recipes and the losses pulls in neither torch nor any of those modules."""
    code = (
        "import sys; import clipstudy.methods, clipstudy.data, clipstudy.regularizers, clipstudy.recipes,"
        " clipstudy.losses;"
        "print(','.join(m for m in sys.modules if m in ('torch', 'open_clip', 'numpy')"
        " or m.startswith(('clipstudy.methods.', 'clipstudy.data.', 'clipstudy.regularizers.'))))"
    )
    assert _run(code).strip() == ""
