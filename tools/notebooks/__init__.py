"""One module per notebook (``nbXX_<name>.py``), each calling :func:`notebook` with its cells.

Cells are written as Python strings here so notebook diffs stay reviewable; ``python
tools/build_notebooks.py`` writes ``notebooks/*.ipynb`` with outputs cleared.
"""
from __future__ import annotations

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}


def notebook(name: str, *cells: tuple[str, str]) -> None:
    NOTEBOOKS[name] = list(cells)


def md(text: str) -> tuple[str, str]:
    return ("markdown", text.strip())


def code(text: str, tag: str | None = None) -> tuple[str, str]:
    return ("parameters" if tag == "parameters" else "code", text.strip())
