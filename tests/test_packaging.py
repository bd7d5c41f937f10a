"""environment.yml (conda) and pyproject.toml (pip) must name the same dependencies."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch", "open_clip_torch": "open-clip-torch"}


def _name(req: str) -> str:
    name = re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return CONDA_TO_PIP.get(name, CONDA_TO_PIP.get(name.replace("-", "_"), name)).replace("_", "-")


def test_environment_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in py["dependencies"] + py["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = {_name(d) for d in env if isinstance(d, str)} - {"python", "pip"}
    pip_section = {_name(d) for block in env if isinstance(block, dict) for d in block["pip"] if not d.startswith("-e")}
    assert conda | pip_section == pip_names


def test_open_clip_pinned_below_4():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.replace(" ", "") == "open_clip_torch>=3,<4" for r in py["dependencies"])


def test_ci_calls_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert "make figures" in readme


def test_package_data_holds_every_shipped_model_file():
    """Every file a shipped model lives in (the embedded model in assets/, the zoo in assets/zoo/) is matched by
    a package-data pattern, so an installed clipstudy has the weights and cards a checkout has."""
    from pathlib import PurePosixPath

    from clipstudy import paths
    from clipstudy.models import shipped_files, shipped_runs

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["clipstudy"]
    pkg = paths.PACKAGE_DIR
    for run in shipped_runs():
        for f in shipped_files(*run):
            rel = PurePosixPath(f.relative_to(pkg).as_posix())
            assert any(rel.match(p) and len(rel.parts) == len(PurePosixPath(p).parts) for p in patterns), rel
