"""One contract for every study: cells -> spec -> run_cell -> tidy tables -> key numbers -> verdicts (and
captions), with one resumable cell runner over :class:`clipstudy.results.ResultStore`.

A study is a frozen dataclass of everything that defines it (a :class:`StudyConfig`; the studies that train
recipes extend :class:`RecipeStudyConfig`), plus what is its own:

* :meth:`Study.load_data` builds the model and every dataset once (errors name what is missing before
  anything trains);
* :meth:`Study.cells` lists the cells (one trained configuration each: a method, a shot count, a seed, ...);
  :meth:`Study.prepare` turns a cell into what its spec and its run need (the recipe, the training set);
  :meth:`Study.spec` is the cell's identity (what :class:`~clipstudy.results.ResultStore` hashes: a cell
  whose spec is stored is read back, not recomputed) and :meth:`Study.run_cell` computes its metrics;
* :meth:`Study.tables` turns the ``(cell, spec, metrics)`` records into the study's tidy DataFrames (the
  results object every figure reads); :meth:`Study.key_numbers`, :meth:`Study.verdicts` and
  :meth:`Study.captions` read those tables.

:func:`run` (also :meth:`Study.run`) is the one runner: load the data, list the cells, fill each cell through
the store with a progress bar (a crashed sweep resumes where it stopped, since cells are skipped when
present), return the tidy tables. Every study module exposes the same entry points: ``BENCHMARKS`` (a
:class:`clipstudy.registry.Registry`), ``make_study(benchmark, **params)`` and ``run(study)``. How to add a
study, a method or a scorer: ``docs/extending.md``.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from .errors import ConfigError


class Record(NamedTuple):
    """One filled cell: the study's cell object (after :meth:`Study.prepare`), its spec and its metrics
    (as read back from JSON, so a resumed run sees the same values)."""

    cell: Any
    spec: dict
    metrics: dict


class Study:
    """The contract every study implements (the shared fields live in :class:`StudyConfig`)."""

    desc: str = "study cells"
    """The progress bar's label."""

    # ---- what every study supplies
    def load_data(self, progress: bool = True):
        """The model and every dataset of the study, built once (checked before any training)."""
        raise NotImplementedError

    def cells(self, data) -> Sequence:
        """The study's cells, in run order (light keys: :meth:`prepare` expands each one when it runs)."""
        raise NotImplementedError

    def spec(self, data, cell) -> dict:
        """The identity of one cell: every field that changes its numbers (hashed by the result store)."""
        raise NotImplementedError

    def run_cell(self, data, cell, spec: dict, store, progress: bool = True) -> dict:
        """Compute one cell's metrics (called only when the store does not hold ``spec``)."""
        raise NotImplementedError

    def tables(self, records: Sequence[Record], data, store):
        """The records as the study's tidy tables (its results object)."""
        raise NotImplementedError

    # ---- optional hooks
    def prepare(self, data, cell):
        """What :meth:`spec` and :meth:`run_cell` need of a cell (default: the cell itself)."""
        return cell

    def before(self, data, cells: Sequence, progress: bool = True) -> None:
        """Work shared by the cells, done once before the first (default: nothing)."""

    # ---- reading the tables (each study module defines the functions; these are the same)
    # Reading the tables: a study module defines module-level ``key_numbers(res)``, ``verdicts(res, ...)`` and
    # ``captions(res, claims, ...)`` (usable without a study object, e.g. on results read back); these
    # methods call the ones of the module that defines the study class, and return {} where it has none.
    def _reader(self, name: str):
        import sys

        return getattr(sys.modules[type(self).__module__], name, None)

    def key_numbers(self, res) -> dict:
        fn = self._reader("key_numbers")
        return fn(res) if fn else {}

    def verdicts(self, res, *args, **kwargs) -> dict[str, str]:
        fn = self._reader("verdicts")
        return fn(res, *args, **kwargs) if fn else {}

    def captions(self, res, claims: Mapping[str, str], *args, **kwargs) -> dict[str, str]:
        fn = self._reader("captions")
        return fn(res, claims, *args, **kwargs) if fn else {}

    def run(self, store=None, progress: bool = True, data=None):
        """:func:`run` this study."""
        return run(self, store, progress, data)


def run_cells(study, cells: Iterable, data, store, progress: bool = True, desc: str | None = None) -> list[Record]:
    """Fill every cell through ``store`` (read back when present, else computed and stored first), with a
    progress bar. ``study`` supplies ``prepare``, ``spec`` and ``run_cell`` (a :class:`Study`, or any object
    with those three, e.g. a study's second family of cells)."""
    from tqdm.auto import tqdm

    cells = list(cells)
    records = []
    for key in tqdm(cells, desc=desc or getattr(study, "desc", "study cells"), disable=not progress):
        cell = study.prepare(data, key)
        spec = study.spec(data, cell)
        metrics = store.run(spec, lambda: study.run_cell(data, cell, spec, store, progress))
        records.append(Record(cell, spec, metrics))
    return records


def run(study: Study, store=None, progress: bool = True, data=None):
    """Run ``study``: load its data (unless given), fill one result cell per cell of :meth:`Study.cells`
    through ``store`` (default :class:`~clipstudy.results.ResultStore` at
    :func:`clipstudy.paths.results_dir`) and return its tidy tables (:meth:`Study.tables`). A study whose cells
    come in several families (the holistic study's zoo and baseline) overrides :meth:`Study.run` and calls
    :func:`run_cells` once per family."""
    if type(study).run is not Study.run:
        return study.run(store, progress, data)
    return _run(study, store, progress, data)


def _run(study: Study, store=None, progress: bool = True, data=None):
    from .results import ResultStore

    store = store or ResultStore()
    data = data if data is not None else study.load_data(progress)
    cells = list(study.cells(data))
    study.before(data, cells, progress)
    return study.tables(run_cells(study, cells, data, store, progress), data, store)


# --------------------------------------------------------------------------- shared configuration

@dataclass(frozen=True)
class StudyConfig(Study):
    """The fields every study has. ``data_root``: the folder of the real datasets (``""``: each dataset's
    default); ``device``: where models run; ``scale``: the recipe scale (``embedded``: the CPU budget of the
    embedded world; ``paper``: the papers' settings, docs/protocols.md)."""

    data_root: str = ""
    device: str = "cpu"
    scale: str = "embedded"


@dataclass(frozen=True)
class RecipeStudyConfig(StudyConfig):
    """The fields of a study that trains recipes on one model: ``model`` / ``pretrained`` (as for
    :func:`clipstudy.models.load_model`), ``methods`` (recipe names, ``data/resources/recipes*.json``, trained
    at ``scale``), ``seeds`` and ``recipe_overrides`` (recipe name -> settings replacing its defaults, e.g.
    ``{"coop": {"max_steps": 100}}``)."""

    model: str = "embedded"
    pretrained: str = ""
    methods: tuple = ()
    seeds: tuple = (1, 2, 3)
    recipe_overrides: Mapping[str, Mapping] = field(default_factory=dict)

    def __post_init__(self):
        self.check_fields()

    def check_fields(self) -> None:
        """The shared fields have usable values (a study's own ``__post_init__`` calls this first):
        ``model`` a name, ``methods`` at least one recipe name, ``seeds`` at least one integer >= 0,
        ``recipe_overrides`` a mapping of mappings. Raises a :class:`ConfigError` naming the field."""
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model must be a model name such as 'embedded', got {self.model!r}")
        if not isinstance(self.pretrained, str):
            raise ConfigError(f"pretrained must be a string ('' for the model's default weights), got "
                              f"{self.pretrained!r}")
        check_names("methods", self.methods, "recipe names")
        check_int_list("seeds", self.seeds, low=0)
        if not isinstance(self.recipe_overrides, Mapping) or not all(
                isinstance(v, Mapping) for v in self.recipe_overrides.values()):
            raise ConfigError("recipe_overrides must map recipe names to settings, e.g. "
                              f"{{'coop': {{'max_steps': 100}}}}, got {self.recipe_overrides!r}")

    def recipe(self, name: str):
        """The recipe ``name`` at the study's scale with its overrides."""
        from .experiment import get_recipe

        return get_recipe(name, self.scale, **dict(self.recipe_overrides.get(name, {})))

    def check_recipes(self, names: Iterable[str] | None = None, also: Iterable[str] = ()) -> None:
        """Overrides name only recipes of the study (``methods`` and ``also``), and every recipe of ``names``
        (default ``methods``) builds: unknown recipes or settings fail before anything runs."""
        unknown = sorted(set(self.recipe_overrides) - set(self.methods) - set(also))
        if unknown:
            raise ConfigError(f"recipe_overrides names {unknown}, which are not among methods {list(self.methods)}")
        for name in (self.methods if names is None else names):
            self.recipe(name)


def _shown(value) -> str:
    """A value as the user wrote it: tuples (lists converted by :func:`frozen`) shown as lists."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def _is_int(value) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int_list(name: str, values, low: int = 0, what: str = "") -> None:
    """Raise :class:`ConfigError` unless ``values`` is a non-empty list or tuple of integers >= ``low``; the
    message names the parameter ``name`` and what it accepts (``what``, default "a non-empty list of
    integers >= low")."""
    if not isinstance(values, (list, tuple)) or not values or not all(_is_int(v) and v >= low for v in values):
        what = what or f"a non-empty list of integers >= {low}, e.g. [{max(low, 1)}]"
        raise ConfigError(f"{name} must be {what}, got {_shown(values)}")


def check_names(name: str, values, what: str = "names") -> None:
    """Raise :class:`ConfigError` unless ``values`` is a non-empty list or tuple of non-empty strings."""
    if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{name} must be a non-empty list of {what}, got {_shown(values)}")


def check_shots(shots) -> None:
    """Shots per class: a non-empty list of integers >= 1."""
    check_int_list("shots", shots, low=1, what="positive integers (a non-empty list, e.g. [1, 2, 4])")


def check_max_steps(max_steps) -> None:
    """``max_steps`` (a notebook parameter): an integer >= 0 (0 keeps the recipes' budgets)."""
    if not _is_int(max_steps) or max_steps < 0:
        raise ConfigError(f"max_steps must be an integer >= 0 (0 keeps the recipe budgets), got {max_steps!r}")


def max_steps_overrides(methods: Iterable[str], max_steps: int = 0,
                        recipe_overrides: Mapping[str, Mapping] | None = None) -> dict:
    """``recipe_overrides`` with ``max_steps`` (when > 0) capping every method:
    ``{m: {"max_steps": max_steps, **recipe_overrides[m]}}`` for each method that is capped or overridden."""
    check_max_steps(max_steps)
    recipe_overrides = dict(recipe_overrides or {})
    return {m: {**({"max_steps": int(max_steps)} if max_steps else {}), **recipe_overrides.get(m, {})}
            for m in methods if max_steps or m in recipe_overrides}


# --------------------------------------------------------------------------- make_study helpers

def frozen(value):
    """Lists (notebook parameters) as tuples, recursively inside lists; dicts are left as they are."""
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    return value


def split_params(config: type, benchmarks, params: Mapping[str, Any],
                 extra: Iterable[str] = ()) -> tuple[dict, dict]:
    """``(benchmark options, study fields)`` of ``make_study``'s ``params``: the study dataclass's fields go
    to the study (lists as tuples), the options of any benchmark builder of the registry ``benchmarks`` to the
    benchmark (a name that is both, e.g. ``data_root``, to both); ``extra`` are names ``make_study`` reads
    itself. Any other name is a :class:`ConfigError` listing the valid ones."""
    fields = {f.name for f in dataclasses.fields(config)}
    options = set()
    for name in benchmarks:
        sig = inspect.signature(benchmarks.get(name)).parameters.values()
        options |= {p.name for p in sig if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(params) - fields - options - set(extra))
    if unknown:
        raise ConfigError(f"unknown parameters {unknown}; valid: study fields {', '.join(sorted(fields))}; "
                          f"benchmark options {', '.join(sorted(options))}")
    to_study = {k: frozen(v) for k, v in params.items() if k in fields}
    to_bench = {k: frozen(v) for k, v in params.items() if k in options}
    return to_bench, to_study


def call_with(fn: Callable, kwargs: Mapping[str, Any]):
    """``fn(**kwargs)`` with only the keyword arguments ``fn`` names (all of them if it takes ``**kwargs``)."""
    sig = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in sig.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in sig})
