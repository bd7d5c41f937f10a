"""One JSON file per experiment cell, skipped if present, loaded into one tidy DataFrame.

The layout follows CLIP_benchmark: a cell is a plain dict ``spec`` (model, dataset, method, seed,
...); its file is named from a readable template of a few key fields plus a short hash of the whole
canonical spec, and holds the full spec, the metrics, the library versions, a timestamp and a checksum of
the spec and metrics. Because files are written atomically and skipped when present, a crashed sweep
resumes where it stopped; a file whose checksum no longer matches (edited or damaged after it was written)
is treated as missing and recomputed, with a one-line warning. Files of earlier versions, which have no
checksum, are trusted as they are: they were written atomically and hold finished work.

Example::

    store = ResultStore()                        # clipstudy.paths.results_dir()
    for seed in range(3):
        spec = {"experiment": "zeroshot", "model": "embedded", "dataset": "photo", "seed": seed}
        metrics = store.run(spec, lambda: evaluate(**spec))   # computed once, then read back
    df = load()                                  # one row per cell: spec columns + metric columns
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from . import io, paths

NAME_KEYS = ("experiment", "model", "pretrained", "dataset", "method", "scorer", "seed")
"""Spec fields, in this order, that make up the readable part of a result file name."""


def canonical(obj: Any) -> Any:
    """``obj`` as plain JSON types (dataclasses, paths and numpy/torch scalars converted)."""
    return json.loads(json.dumps(obj, default=io._json_default))


def spec_hash(spec: Mapping[str, Any], n: int = 12) -> str:
    """A short hash of the canonical spec that is stable across processes and key order."""
    text = json.dumps(canonical(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """Versions of python, torch, open_clip, numpy and clipstudy, read without importing torch."""
    from importlib import metadata

    from . import __version__

    def dist(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "torch": dist("torch"),
        "open_clip": dist("open_clip_torch"),
        "numpy": dist("numpy"),
        "clipstudy": __version__,
    }


class ResultStore:
    """A folder of result files (default :func:`clipstudy.paths.results_dir`)."""

    def __init__(self, root: str | Path | None = None, name_keys: tuple[str, ...] = NAME_KEYS):
        self.root = Path(root) if root is not None else paths.results_dir()
        self.name_keys = name_keys

    def path_for(self, spec: Mapping[str, Any]) -> Path:
        """``<root>/<model>__<dataset>__...__seed0__<hash>.json``: readable and unique."""
        spec = _as_dict(spec)
        parts = [_slug(k, spec[k]) for k in self.name_keys if _is_scalar(spec.get(k))]
        return self.root / ("__".join([p for p in parts if p] + [spec_hash(spec)]) + ".json")

    def get(self, spec: Mapping[str, Any]) -> dict | None:
        """The stored record (spec, metrics, versions, created) or ``None`` if absent or unreadable."""
        path = self.path_for(spec)
        if not path.exists():
            return None
        record = _read_record(path)
        if record is not None and record["spec"] != canonical(_as_dict(spec)):
            warnings.warn(f"result file {path} holds a different spec; it will be recomputed", stacklevel=2)
            return None
        return record

    def put(self, spec: Mapping[str, Any], metrics: Mapping[str, Any]) -> Path:
        """Write one cell's result atomically (a crash never leaves a partial file)."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a dict of name -> value, got {type(metrics).__name__}")
        spec = canonical(_as_dict(spec))
        record = {
            "spec": spec,
            "metrics": canonical(dict(metrics)),
            "versions": versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "spec_hash": spec_hash(spec),
        }
        record["checksum"] = payload_checksum(record)
        return io.write_json(self.path_for(spec), record)

    def run(self, spec: Mapping[str, Any], fn: Callable[[], Mapping[str, Any]]) -> dict:
        """The metrics of ``spec``: read back if stored, else ``fn()`` computed and stored first.

        Either way the metrics come back as they read from JSON, so a resumed run sees the same values.
        """
        record = self.get(spec)
        if record is None:
            self.put(spec, fn())
            record = _read_record(self.path_for(spec))
        return record["metrics"]

    def put_arrays(self, spec: Mapping[str, Any], arrays: Mapping[str, Any]) -> Path:
        """Keep a cell's arrays (e.g. similarity matrices for histograms) next to its JSON, as a compressed
        ``.npz`` written atomically. Keys may contain ``/``."""
        import numpy as np

        path = self.path_for(spec).with_suffix(".npz")
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        if ARRAYS_CHECKSUM in arrays:
            raise ValueError(f"{ARRAYS_CHECKSUM!r} is reserved for the arrays' checksum")
        with io.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays, **{ARRAYS_CHECKSUM: np.array(arrays_checksum(arrays))})
        return path

    def get_arrays(self, spec: Mapping[str, Any]) -> dict:
        """The arrays of a cell (``{}`` if none were kept or the file is unreadable)."""
        import numpy as np

        path = self.path_for(spec).with_suffix(".npz")
        if not path.exists():
            return {}
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as e:
            warnings.warn(f"unreadable arrays {path} ({e})", stacklevel=2)
            return {}
        stored = arrays.pop(ARRAYS_CHECKSUM, None)  # absent in files of earlier versions
        if stored is not None and str(stored) != arrays_checksum(arrays):
            warnings.warn(f"arrays {path} fail their checksum (changed after they were written); ignored",
                          stacklevel=2)
            return {}
        return arrays

    def load(self):
        return load(self.root)


def load(root: str | Path | None = None):
    """All result files under ``root`` as a tidy DataFrame: one row per cell.

    Spec fields and metrics become columns (nested dicts flattened as ``a.b``; a metric whose name
    clashes with a spec field becomes ``metrics.<name>``), plus ``_created`` and ``_path``.
    Unreadable files are skipped with a warning.
    """
    import pandas as pd

    root = Path(root) if root is not None else paths.results_dir()
    rows = []
    for path in sorted(root.glob("*.json")):
        record = _read_record(path, then="skipped")
        if record is None:
            continue
        spec, metrics = _flatten(record["spec"]), _flatten(record["metrics"])
        metrics = {(f"metrics.{k}" if k in spec else k): v for k, v in metrics.items()}
        rows.append({**spec, **metrics, "_created": record.get("created"), "_path": str(path)})
    return pd.DataFrame(rows)


ARRAYS_CHECKSUM = "__checksum__"
"""The entry of a cell's ``.npz`` that holds :func:`arrays_checksum` of the other entries."""


def payload_checksum(record: Mapping[str, Any]) -> str:
    """A hash of a result record's payload (its canonical spec and metrics), stored with it and checked on read."""
    payload = {"spec": record.get("spec"), "metrics": record.get("metrics")}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def arrays_checksum(arrays: Mapping[str, Any]) -> str:
    """A hash of named arrays (names, dtypes, shapes and bytes), independent of their order."""
    import numpy as np

    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read_record(path: Path, then: str = "it will be recomputed") -> dict | None:
    try:
        record = io.read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        warnings.warn(f"unreadable result file {path} ({e}); {then}", stacklevel=3)
        return None
    if not (isinstance(record, dict) and isinstance(record.get("spec"), dict)
            and isinstance(record.get("metrics"), dict)):
        warnings.warn(f"result file {path} lacks 'spec'/'metrics'; {then}", stacklevel=3)
        return None
    if "checksum" in record and record["checksum"] != payload_checksum(record):  # files without one predate it
        warnings.warn(f"result file {path} fails its checksum (changed after it was written); {then}",
                      stacklevel=3)
        return None
    return record


def _as_dict(spec: Any) -> dict:
    if hasattr(spec, "__dataclass_fields__"):
        import dataclasses

        spec = dataclasses.asdict(spec)
    if not isinstance(spec, Mapping):
        raise TypeError(f"a result spec must be a dict or dataclass, got {type(spec).__name__}")
    return dict(spec)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and value != ""


def _slug(key: str, value: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-.")[:40]
    return text if isinstance(value, str) else f"{key}{text}"


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
