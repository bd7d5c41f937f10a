"""Write the notebooks from their cell sources in tools/notebooks/nbXX_*.py (outputs cleared), so that
notebook diffs stay reviewable: edit the module, run `python tools/build_notebooks.py [NAME ...]`,
commit both."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.notebooks import NOTEBOOKS  # noqa: E402


def _collect() -> None:
    for module in sorted((ROOT / "tools" / "notebooks").glob("nb*.py")):
        importlib.import_module(f"tools.notebooks.{module.stem}")


def build(name: str, cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            cell = nbformat.v4.new_code_cell(src)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(name).stem[:2]}-{i:02d}"
    return nb


def main(names=None) -> int:
    _collect()
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nbformat.write(build(name, cells), ROOT / "notebooks" / name)
        print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
