"""One registry primitive for every extension point (models, datasets, methods, scorers, losses).

Each registry is instantiated once, next to what it holds, e.g. ``SCORERS = Registry("scorer")`` in
``clipstudy/scores.py``. Unknown names raise :class:`UnknownNameError`, whose message lists the valid
names, so a typo on the command line or in a notebook parameter is answered with what is available.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator


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

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._meta: dict[str, dict] = {}

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

    def get(self, name: str) -> Any:
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a string, got {type(name).__name__}: {name!r}")
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def meta(self, name: str) -> dict:
        self.get(name)
        return dict(self._meta[name])

    def list(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"
