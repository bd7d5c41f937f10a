"""Every on-disk location clipstudy uses, in one place.

Each location is a function (nothing is computed at import time) and can be overridden by an
environment variable:

============================  ====================================  ===========================
function                      environment variable                  default
============================  ====================================  ===========================
``root()``                    ``CLIPSTUDY_HOME``                    ``~/.cache/clipstudy``
``cache_dir()``               ``CLIPSTUDY_CACHE``                   ``<root>/cache``
``results_dir()``             ``CLIPSTUDY_RESULTS``                 ``<root>/results``
``checkpoints_dir()``         ``CLIPSTUDY_CHECKPOINTS``             ``<root>/checkpoints``
``data_root()``               ``CLIPSTUDY_DATA``                    ``<root>/data``
``figures_dir()``             ``CLIPSTUDY_FIGURES``                 ``<repo>/figures`` or ``./figures``
``notebooks_dir()``           ``CLIPSTUDY_NOTEBOOKS``               ``<repo>/notebooks`` or ``./notebooks``
============================  ====================================  ===========================

:func:`require_writable` checks, before any work, that a command can write where it will write.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


#: The environment variable that moves each writable location (what an error about it names).
WRITABLE_VARS = {"cache": "CLIPSTUDY_CACHE", "results": "CLIPSTUDY_RESULTS", "checkpoints": "CLIPSTUDY_CHECKPOINTS"}


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else default


def root() -> Path:
    return _env_path("CLIPSTUDY_HOME", Path.home() / ".cache" / "clipstudy")


def cache_dir() -> Path:
    return _env_path("CLIPSTUDY_CACHE", root() / "cache")


def results_dir() -> Path:
    return _env_path("CLIPSTUDY_RESULTS", root() / "results")


def checkpoints_dir() -> Path:
    return _env_path("CLIPSTUDY_CHECKPOINTS", root() / "checkpoints")


def data_root() -> Path:
    return _env_path("CLIPSTUDY_DATA", root() / "data")


def repo_dir() -> Path | None:
    """The source checkout holding this package, if it is one (has ``run_all.py``)."""
    candidate = PACKAGE_DIR.parent
    return candidate if (candidate / "run_all.py").exists() else None


def figures_dir() -> Path:
    repo = repo_dir()
    return _env_path("CLIPSTUDY_FIGURES", (repo or Path.cwd()) / "figures")


def assets_dir() -> Path:
    """Files shipped inside the package (the embedded checkpoint and its model card)."""
    return PACKAGE_DIR / "assets"


def resources_dir() -> Path:
    """Reference lists shipped as data (templates, class names)."""
    return PACKAGE_DIR / "data" / "resources"


def model_configs_dir() -> Path:
    return PACKAGE_DIR / "model_configs"


def notebooks_dir() -> Path:
    """The notebooks and their ``manifest.yaml`` (override: ``CLIPSTUDY_NOTEBOOKS``)."""
    repo = repo_dir()
    return _env_path("CLIPSTUDY_NOTEBOOKS", (repo or Path.cwd()) / "notebooks")


def writable_hint(kind: str) -> str:
    """How to move location ``kind`` (cache, results, checkpoints) somewhere writable."""
    var = WRITABLE_VARS.get(kind)
    if var and os.environ.get(var):
        return f"set {var} to a writable folder"
    return "set CLIPSTUDY_HOME to a writable folder"


def require_writable(folder: str | os.PathLike, hint: str = "set CLIPSTUDY_HOME to a writable folder") -> Path:
    """``folder``, created if missing, after checking that a file can be written in it.

    Raises :class:`clipstudy.errors.ClipstudyError` with one line naming the folder and ``hint`` (what to do
    instead) when it cannot be created or written to (a read-only mount, missing permissions, a file in
    the way). A probe file is created and removed again, so permissions, read-only file systems and
    root's exemption from permissions are all judged as the real write would be.
    """
    import tempfile

    from .errors import ClipstudyError

    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".clipstudy-write-check-"):
            pass
    except OSError:
        raise ClipstudyError(f"cannot write to {path} (read-only?); {hint}") from None
    return path
