"""One registry primitive for every extension point (models, datasets, methods, scorers, losses,
regularizers, recipes).

Each registry is instantiated once, next to what it holds, e.g. ``SCORERS = Registry("scorer")`` in
``clipstudy/scores.py``. Unknown names raise :class:`UnknownNameError`, whose message lists the valid
names, so a typo on the command line or in a notebook parameter is answered with what is available.

A registry whose entries live in the submodules of a package is built with ``package=__name__`` (e.g.
``METHODS = Registry("method", package="clipstudy.methods")``): its first lookup imports every submodule
of the package (:func:`import_submodules`), so a new module dropped into the package registers itself
without being added to any list, and nothing is imported before a name is asked for (``import clipstudy``
stays light). A registry filled from files (the recipes) takes a ``loader`` callable instead, called once on
first lookup. Like open_clip's model registry (``open_clip/factory.py``: configs found by scanning a folder).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator, Mapping


def import_submodules(package: str) -> list[str]:
    """Import ``package`` and every direct submodule (and subpackage) of it whose name does not start with
    ``_``; return the submodules' full names (``pkgutil.iter_modules`` + ``importlib.import_module``)."""
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    names = [f"{package}.{m.name}" for m in pkgutil.iter_modules(getattr(pkg, "__path__", []))
             if not m.name.startswith("_")]
    for name in sorted(names):
        importlib.import_module(name)
    return sorted(names)


def first_doc_line(obj: Any) -> str:
    """The first sentence of ``obj``'s own docstring, on one line (classes and functions only; a class or
    function without a docstring falls back to its module's); ``""`` if there is none."""
    import re
    import sys

    if not (inspect.isclass(obj) or inspect.isroutine(obj)):
        return ""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    if not doc:
        doc = getattr(sys.modules.get(getattr(obj, "__module__", "") or ""), "__doc__", None)
    if not doc:
        return ""
    paragraph = " ".join(inspect.cleandoc(doc).split("\n\n", 1)[0].split())
    # a sentence ends at . ! ? followed by a capital letter or a quote (not "e.g. the", "et al. 2021")
    return re.split(r"(?<=[.!?])\s+(?=[A-Z`\"'])", paragraph, maxsplit=1)[0]


class UnknownNameError(KeyError):
    """An unknown name was asked of a registry; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a readable sentence
        return str(self.args[0])


class Registry:
    """A named collection of objects with a ``register`` decorator.

    >>> R = Registry("scorer")
    >>> @R.register("mcm")
    ... def mcm(x): return x
    >>> R.get("mcm") is mcm
    True
    """

    def __init__(self, kind: str, *, package: str | None = None, loader: Callable[["Registry"], Any] | None = None):
        if package is not None and loader is not None:
            raise ValueError("a registry takes a package or a loader, not both")
        self.kind = kind
        self.package = package
        self._items: dict[str, Any] = {}
        self._meta: dict[str, dict] = {}
        self._loader = (lambda reg: import_submodules(package)) if package is not None else loader
        self._loaded = self._loader is None
        self._loading = False

    def load(self) -> "Registry":
        """Import the package's submodules (or call the loader) once; later calls do nothing.

        Called by every lookup. A lookup made while loading (a submodule asking the registry at import time)
        sees what is registered so far; a failed load is retried by the next lookup."""
        if not self._loaded and not self._loading:
            self._loading = True
            try:
                self._loader(self)
                self._loaded = True
            finally:
                self._loading = False
        return self

    def register(self, name: str | None = None, *, obj: Any = None, **meta) -> Callable:
        """Register ``obj`` (or decorate it) under ``name`` (default: its ``__name__``)."""

        def _add(o):
            key = name or getattr(o, "name", None) or o.__name__
            if key in self._items and self._items[key] is not o:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[key] = o
            self._meta[key] = dict(meta)
            return o

        return _add(obj) if obj is not None else _add

    def unregister(self, name: str) -> Any:
        """Remove ``name`` (e.g. a test's toy entry) and return what it held; unknown names list the valid ones."""
        obj = self.get(name)
        del self._items[name]
        self._meta.pop(name, None)
        return obj

    def get(self, name: str) -> Any:
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a string, got {type(name).__name__}: {name!r}")
        self.load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def meta(self, name: str) -> dict:
        self.get(name)
        return dict(self._meta[name])

    def describe(self, name: str) -> str:
        """One line about ``name``: its ``description`` metadata, else the first paragraph of its docstring."""
        return str(self.meta(name).get("description") or first_doc_line(self.get(name)))

    def descriptions(self) -> dict[str, str]:
        """``{name: one-line description}`` of every registered name."""
        return {n: self.describe(n) for n in self.list()}

    def list(self) -> list[str]:
        self.load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        self.load()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"


def resolve_extends(table: Mapping, name: str, what: str, plural: str, merge: Callable[[dict, dict], dict],
                    unknown: type = UnknownNameError, _seen: tuple = ()) -> dict:
    """Entry ``name`` of ``table`` (named entries of a data file) with ``"extends": "<parent>"`` resolved:
    ``merge(parent, own)`` of the parent entry (itself resolved) and the entry's own keys. Errors name
    ``what`` (e.g. "zoo") and list the valid names (``plural``: "zoos"): an unknown entry (``unknown``), an
    unknown parent, or a cycle (:class:`clipstudy.errors.ConfigError`)."""
    from .errors import ConfigError

    if name not in table:
        raise unknown(f"unknown {what} {name!r}; valid {plural}: {', '.join(sorted(table))}")
    entry = dict(table[name])
    parent = entry.pop("extends", None)
    if parent is None:
        return entry
    if parent in _seen + (name,):
        raise ConfigError(f"{what} {name!r} extends {parent!r}, which forms a cycle")
    if parent not in table:
        raise ConfigError(f"{what} {name!r} extends unknown {what} {parent!r}; valid {plural}: "
                          f"{', '.join(sorted(table))}")
    return merge(resolve_extends(table, parent, what, plural, merge, unknown, _seen + (name,)), entry)

