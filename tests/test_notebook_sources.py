"""Every notebook in notebooks/ is exactly what tools/build_notebooks.py writes from its source module
(cells, tags, no outputs), and every manifest notebook has a source: edit the source, rebuild, commit both."""
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._collect()
    return module


BUILDER = _builder()


def test_every_manifest_notebook_has_a_source():
    from clipstudy.manifest import load_manifest

    missing = [s.path.name for s in load_manifest().notebooks if s.path.name not in BUILDER.NOTEBOOKS]
    assert not missing, f"notebooks without a tools/notebooks source: {missing}"


@pytest.mark.parametrize("name", sorted(BUILDER.NOTEBOOKS))
def test_committed_notebook_matches_its_source(name):
    built = BUILDER.build(name, BUILDER.NOTEBOOKS[name])
    committed = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in committed.cells] == \
        [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in built.cells], \
        f"notebooks/{name} is stale: run `python tools/build_notebooks.py {name}`"
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in committed.cells if c.cell_type == "code"), f"{name} is committed with outputs"
