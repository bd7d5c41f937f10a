"""The notebook manifest (``notebooks/manifest.yaml``): which notebooks exist, what they must produce.

One YAML file maps each notebook to its title, the figures it must write, its papermill parameters
per profile and the numbers it records (with sanity ranges). ``run_all.py`` and the tests read it
through :func:`load_manifest`; nothing else hard-codes a notebook name or a figure name.

Parameter precedence, lowest first: the notebook's own ``parameters`` cell, the entry's ``params``,
``profiles.<profile>``, then explicit overrides (``run_all.py`` options).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from . import paths
from .errors import ConfigError
from .registry import UnknownNameError

PROFILES = ("smoke", "default", "paper")
"""smoke: seconds on a laptop CPU (tests, CI); default: the figures in the README; paper: full size."""

MANIFEST_NAME = "manifest.yaml"
_ENTRY_KEYS = {"title", "figures", "params", "profiles", "records"}


@dataclass(frozen=True)
class RecordRange:
    """A recorded number and the closed interval ``[low, high]`` it must fall in."""

    key: str
    low: float
    high: float

    def problem(self, records: Mapping[str, Any]) -> str | None:
        """A one-line description of what is wrong with ``records[key]``, or ``None`` if fine."""
        if self.key not in records:
            return f"record {self.key!r} was not written"
        value = records[self.key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return f"record {self.key!r} = {value!r} is not a number"
        if not self.low <= value <= self.high:
            return f"record {self.key!r} = {value:.6g} is outside [{self.low:g}, {self.high:g}]"
        return None


@dataclass(frozen=True)
class NotebookSpec:
    """One manifest entry. ``path`` is absolute; ``name`` is the file stem (``00_embedded_world``)."""

    path: Path
    title: str
    figures: tuple[str, ...]
    params: Mapping[str, Any]
    profiles: Mapping[str, Mapping[str, Any]]
    records: tuple[RecordRange, ...]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def number(self) -> str:
        """The leading number (``00``), accepted by ``run_all.py --only``."""
        return self.name.split("_", 1)[0]

    def matches(self, query: str) -> bool:
        return query in (self.path.name, self.name, self.number)


@dataclass(frozen=True)
class Manifest:
    path: Path
    notebooks: tuple[NotebookSpec, ...]

    def names(self) -> list[str]:
        return [spec.name for spec in self.notebooks]

    def get(self, query: str) -> NotebookSpec:
        """Look a notebook up by file name, stem or leading number (``00``)."""
        for spec in self.notebooks:
            if spec.matches(query):
                return spec
        raise UnknownNameError(
            f"unknown notebook {query!r}; valid notebooks: {', '.join(self.names()) or '(none)'}"
        )

    def select(self, queries: Iterable[str] | None = None) -> tuple[NotebookSpec, ...]:
        """The notebooks named by ``queries`` in manifest order (all of them for ``None``)."""
        if not queries:
            return self.notebooks
        chosen = {self.get(q).name for q in queries}
        return tuple(spec for spec in self.notebooks if spec.name in chosen)


def default_manifest_path() -> Path:
    return paths.notebooks_dir() / MANIFEST_NAME


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate a manifest; notebook paths are resolved relative to its folder."""
    import yaml

    path = Path(path) if path is not None else default_manifest_path()
    if not path.is_file():
        raise FileNotFoundError(f"notebook manifest not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    entries = data.get("notebooks") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: expected a mapping under 'notebooks:'")
    specs = tuple(_parse_entry(path, name, entry or {}) for name, entry in entries.items())
    return Manifest(path=path.resolve(), notebooks=specs)


def notebook_params(
    spec: NotebookSpec, profile: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The papermill parameters of ``spec`` under ``profile``: params < profile < overrides."""
    if profile not in PROFILES:
        raise UnknownNameError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return {**spec.params, **spec.profiles.get(profile, {}), **(overrides or {})}


def check_records(spec: NotebookSpec, records: Mapping[str, Any]) -> list[str]:
    """Problems with the recorded numbers of one run (missing, not a number, out of range)."""
    return [p for p in (r.problem(records) for r in spec.records) if p]


def _parse_entry(manifest: Path, filename: str, entry: dict) -> NotebookSpec:
    where = f"{manifest}: notebook {filename!r}"
    if not str(filename).endswith(".ipynb"):
        raise ConfigError(f"{where}: keys under 'notebooks:' must be .ipynb file names")
    if not isinstance(entry, dict) or set(entry) - _ENTRY_KEYS:
        unknown = sorted(set(entry) - _ENTRY_KEYS) if isinstance(entry, dict) else entry
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys: {', '.join(sorted(_ENTRY_KEYS))}")
    profiles = entry.get("profiles") or {}
    bad = sorted(set(profiles) - set(PROFILES))
    if bad:
        raise ConfigError(f"{where}: unknown profiles {bad}; valid profiles: {', '.join(PROFILES)}")
    figures = entry.get("figures") or []
    if not all(isinstance(f, str) and f and "/" not in f and "." not in f for f in figures):
        raise ConfigError(f"{where}: figures must be file stems without extension, got {figures}")
    return NotebookSpec(
        path=(manifest.parent / filename).resolve(),
        title=str(entry.get("title", filename)),
        figures=tuple(figures),
        params=MappingProxyType(dict(entry.get("params") or {})),
        profiles=MappingProxyType({k: MappingProxyType(dict(v or {})) for k, v in profiles.items()}),
        records=tuple(_parse_range(where, k, v) for k, v in (entry.get("records") or {}).items()),
    )


def _parse_range(where: str, key: str, value: Any) -> RecordRange:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or value[0] > value[1]:
        raise ConfigError(f"{where}: record {key!r} needs a range [low, high], got {value!r}")
    return RecordRange(key=str(key), low=float(value[0]), high=float(value[1]))
