"""Training recipes: one JSON file per recipe in this folder (``<name>.json``), registered in :data:`RECIPES`.

Like open_clip's model configs (``open_clip/model_configs/*.json``, found by scanning their folder), a new
recipe is a new file, registered on the first lookup without being added to any list. A file holds

* ``description``: one line about the recipe (``clipstudy info`` shows it), and ``study``: the study whose
  protocol defines it (``ood``, ``calibration``, ``robust_ft``); neither is a training setting;
* the recipe's settings: ``method``, ``params``, optimisation fields of :class:`clipstudy.experiment.Recipe`,
  and the per-scale blocks ``paper`` and ``embedded`` (see ``README.md`` in this folder);
* optionally ``"extends": "<recipe>"``: that recipe's settings with this file's merged over them (dicts
  such as ``params``, ``paper`` and ``embedded`` merged key by key, recursively; other values replaced).

:data:`RECIPES` maps each name to its resolved settings (``extends`` applied; treat them as read-only), with
``description``, ``study`` and ``source`` as metadata; :func:`clipstudy.experiment.get_recipe` builds the
:class:`~clipstudy.experiment.Recipe` of one scale from them. Unknown names raise an error listing the valid
ones.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from ..registry import Registry

META_FIELDS = ("description", "study")
"""Fields of a recipe file that describe the recipe and are not training settings."""


def recipes_dir() -> Path:
    """The folder of recipe files (this package's folder)."""
    return Path(__file__).resolve().parent


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``base`` with ``over`` merged over it: mappings key by key, recursively; other values replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def resolve_extends(table: Mapping[str, Mapping], name: str) -> dict:
    """Recipe ``name`` of ``table`` (raw entries) with its ``extends`` chain applied (dicts merged key by key,
    :func:`deep_merge`; :func:`clipstudy.registry.resolve_extends`)."""
    from ..errors import ConfigError
    from ..registry import resolve_extends as resolve

    return resolve(table, name, "recipe", "recipes", deep_merge, unknown=ConfigError)


def _short(source: str, width: int = 100) -> str:
    line = " ".join(str(source).split())
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


def load_recipe_files(registry: Registry, folder: Path | None = None) -> None:
    """Register every ``*.json`` recipe of ``folder`` (default :func:`recipes_dir`) in ``registry``."""
    from ..errors import ConfigError

    raw, meta = {}, {}
    for path in sorted(Path(folder or recipes_dir()).glob("*.json")):
        if path.stem.startswith("_"):
            continue
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"recipe file {path} is not valid JSON: {exc}") from None
        if not isinstance(entry, dict):
            raise ConfigError(f"recipe file {path} must hold one JSON object (the recipe's fields)")
        meta[path.stem] = {k: entry.pop(k) for k in META_FIELDS if k in entry}
        meta[path.stem]["file"] = path.name
        raw[path.stem] = entry
    resolved = {name: resolve_extends(raw, name) for name in raw}  # every file checked before any is registered
    for name, entry in resolved.items():
        info = dict(meta[name], source=entry.get("source", ""))
        info.setdefault("description", _short(info["source"]))
        info.setdefault("study", "")
        registry.register(name, obj=entry, **info)


RECIPES = Registry("recipe", loader=load_recipe_files)
