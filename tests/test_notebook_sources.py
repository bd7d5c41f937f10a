"""Every notebook is a jupytext pair: ``notebooks/NAME.ipynb`` (committed with outputs cleared, what
papermill runs) and ``notebooks/NAME.py`` in the percent format (what is read, linted and diffed).

Edit either file in JupyterLab (jupytext keeps the other in step), or edit the ``.py`` by hand and run
``jupytext --sync notebooks/*.ipynb``. These tests fail when the two disagree."""
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.formats import guess_format

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PAIRED = "ipynb,py:percent"
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def test_every_notebook_has_its_pair():
    from clipstudy.manifest import load_manifest

    manifest = {spec.path.name for spec in load_manifest().notebooks}
    ipynb = {p.name for p in IPYNBS}
    assert manifest <= ipynb, f"manifest notebooks missing from notebooks/: {sorted(manifest - ipynb)}"
    assert {p.stem for p in NOTEBOOKS.glob("*.py")} == {p.stem for p in IPYNBS}, \
        "every notebooks/*.ipynb needs its notebooks/*.py and vice versa: `jupytext --set-formats ipynb,py:percent`"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_py_and_ipynb_hold_the_same_cells(ipynb):
    py = ipynb.with_suffix(".py")
    from_py, from_ipynb = jupytext.read(py), jupytext.read(ipynb)
    assert from_ipynb.metadata.get("jupytext", {}).get("formats") == PAIRED, f"{ipynb.name} is not paired"
    assert from_py.metadata.get("jupytext", {}).get("formats") == PAIRED, f"{py.name} is not paired"
    assert guess_format(py.read_text(encoding="utf-8"), ".py")[0] == "percent", f"{py.name} is not percent format"
    assert _cells(from_py) == _cells(from_ipynb), \
        f"{py.name} and {ipynb.name} differ: run `jupytext --sync notebooks/{ipynb.name}` (the newer file wins)"
    tagged = [c for c in from_py.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{py.name} needs one `# %% tags=[\"parameters\"]` cell"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_ipynb_is_committed_without_outputs(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), \
        f"{ipynb.name} is committed with outputs: `jupyter nbconvert --clear-output --inplace notebooks/{ipynb.name}`"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_py_is_valid_python(ipynb):
    py = ipynb.with_suffix(".py")
    compile(py.read_text(encoding="utf-8"), str(py), "exec")
