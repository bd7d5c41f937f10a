"""Notebook harness: helpers called inside notebooks, and the papermill driver behind ``run_all.py``.

Inside a notebook (the second cell, right after the cell tagged ``parameters``)::

    from clipstudy import notebook as nb
    session = nb.setup_notebook("00_embedded_world.ipynb", globals())
    ...
    session.save_figure(fig, "00_world_gallery")
    session.record("chance", 0.1)

:func:`setup_notebook` checks the parameter values against the types of the defaults in the
notebook's own ``parameters`` cell, so ``papermill -p n_per_domain many`` fails at once with a
:class:`~clipstudy.errors.ConfigError` naming the parameter (and ``-p n_per_domian 64``, a name the
cell does not declare, names the close match). The driver side (:func:`plan`, :func:`execute`,
:func:`run_manifest_notebook`) runs manifest notebooks with papermill, and checks the same names and
types, the model and the device before any kernel starts.
"""
from __future__ import annotations

import ast
import contextlib
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping

from . import io, paths
from .errors import ClipstudyError, ConfigError
from .manifest import Manifest, NotebookSpec, check_records, load_manifest, notebook_params

RECORDS_FILE = "records.json"
REQUIRED_PARAMETERS = ("out_dir", "figures_dir")
"""Every manifest notebook declares these; the driver points them at the run's folders."""

INJECTED_MARK = "# Parameters"
"""How papermill's injected-parameters cell starts (its Python translator's comment)."""

NOT_LITERAL = object()
"""Stands for a default that is an expression rather than a literal; its type is not checked."""

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list",
               dict: "dict"}


class NotebookRunError(ClipstudyError):
    """A notebook failed, or did not write its figures or records."""


# --------------------------------------------------------------------------- parameters

def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Name -> default of every assignment in the cell tagged ``parameters`` (papermill's convention).

    Defaults are read with :func:`ast.literal_eval`; non-literal ones map to :data:`NOT_LITERAL`.
    """
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        raise ConfigError(f"notebook not found: {path}")
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ConfigError(f"{path.name} has no cell tagged 'parameters'")
    defaults: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) and node.value is not None else None)
        if isinstance(target, ast.Name):
            try:
                defaults[target.id] = ast.literal_eval(node.value)
            except ValueError:
                defaults[target.id] = NOT_LITERAL
    return defaults


def check_parameters(params: Mapping[str, Any], defaults: Mapping[str, Any], where: str = "notebook") -> None:
    """Raise :class:`ConfigError` if a value's type differs from its default's.

    Types: bool, int, float (an int is accepted), str, list (a tuple is accepted), dict; a ``None``
    or non-literal default accepts anything. Unknown names are errors too.
    """
    problems = []
    for key, value in params.items():
        if key not in defaults:
            problems.append(f"{key!r} is not a parameter of {where}{did_you_mean(key, defaults)}; "
                            f"parameters: {', '.join(defaults)}")
            continue
        expected = _type_name(defaults[key])
        if expected and not _has_type(value, expected):
            problems.append(
                f"parameter {key!r} of {where} must be {expected} (default {defaults[key]!r}), "
                f"got {type(value).__name__} {value!r}"
            )
    if problems:
        raise ConfigError("; ".join(problems))


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x' or 'y'?)`` for the names of ``valid`` close to ``name`` (ignoring case, so
    ``vit-b-16`` finds ``ViT-B-16`` first); ``""`` if none is."""
    import difflib

    by_lower: dict[str, str] = {}
    for v in valid:
        by_lower.setdefault(str(v).lower(), str(v))
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(by_lower[c]) for c in close)}?)" if close else ""


def injected_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """Names papermill injected into a kernel, read from its input history (``In``).

    papermill runs the parameters it is given as a cell of assignments that starts with the comment
    ``# Parameters`` (the cell tagged ``injected-parameters``), unknown names included (it only logs a
    warning for them). The last such cell in ``namespace["In"]`` is parsed; ``[]`` outside IPython or
    when nothing was injected.
    """
    history = namespace.get("In")
    if not isinstance(history, (list, tuple)):
        return []
    for source in reversed(history):
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_MARK):
            try:
                body = ast.parse(source).body
            except SyntaxError:
                return []
            return [t.id for node in body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)]
    return []


def coerce_value(value: Any, default: Any) -> Any:
    """Parse a command-line string for a non-string parameter (``"64"`` -> 64, ``"true"`` -> True).

    Strings that do not parse stay strings, so :func:`check_parameters` reports them.
    """
    if not isinstance(value, str) or isinstance(default, str) or default is NOT_LITERAL:
        return value
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


def _type_name(default: Any) -> str | None:
    return None if default is None or default is NOT_LITERAL else _TYPE_NAMES.get(type(default))


def _has_type(value: Any, expected: str) -> bool:
    if isinstance(value, bool):
        return expected == "bool"
    if expected == "float":
        return isinstance(value, (int, float))
    kinds = {"bool": bool, "int": int, "str": str, "list": (list, tuple), "dict": dict}
    return isinstance(value, kinds[expected])


# --------------------------------------------------------------------------- run options

def check_model_name(name: Any) -> None:
    """Raise :class:`ConfigError` unless a notebook's kernel can load the model ``name``: the project's
    models, open_clip's architectures, or a ``local-dir:`` / ``hf-hub:`` name; the error lists close
    matches. A fresh kernel knows exactly open_clip's shipped configs and the project's, so they are read
    from the two config folders (open_clip is imported only if its folder cannot be found)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"model must be a model name such as 'embedded' or 'ViT-B-32', got {name!r}")
    if name.startswith(("local-dir:", "hf-hub:")):
        return
    from .models import list_models, project_model_names

    own = project_model_names()
    theirs = _open_clip_config_names()
    if not theirs:
        try:
            theirs = set(list_models())
        except ImportError:  # no open_clip: load_model says so when the notebook runs
            return
    valid = own + sorted(theirs - set(own))
    if name not in valid:
        raise ConfigError(f"unknown model {name!r}{did_you_mean(name, valid)}; valid: {', '.join(own)}, or one "
                          "of open_clip's architectures such as ViT-B-16, RN50 (`clipstudy info --json` lists all)")


def _open_clip_config_names() -> set[str]:
    """Stems of open_clip's shipped model configs, read from its package folder without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        return set()
    folders = [Path(p) / "model_configs" for p in (spec.submodule_search_locations or [])] if spec else []
    return {f.stem for folder in folders if folder.is_dir() for f in folder.glob("*.json")}


DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def check_device(device: Any) -> None:
    """Raise :class:`ConfigError` unless ``device`` is one of :data:`DEVICES` and is present here
    (``cuda``/``cuda:N`` need a visible GPU with that index, ``mps`` Apple's backend). ``auto`` and
    ``cpu`` are always fine and import nothing."""
    import re

    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", device) if isinstance(device, str) else None
    if device == "auto" or (match and match.group(1) == "cpu"):
        return
    if not match:
        raise ConfigError(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    import torch

    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ConfigError(f"device {device!r} asked for, but no CUDA GPU is visible; use cpu or auto")
        if index is not None and int(index) >= count:
            raise ConfigError(f"device {device!r} asked for, but only {count} CUDA GPU(s) are visible "
                              f"(cuda:0 to cuda:{count - 1})")
    elif not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {device!r} asked for, but Apple's MPS backend is not available; use cpu or auto")


def run_option_problems(params: Mapping[str, Any]) -> list[str]:
    """What is wrong with the ``model`` and ``device`` of a notebook's parameters (checked before any
    kernel starts, so a typo fails in seconds, not inside the notebook)."""
    problems = []
    for key, check in (("model", check_model_name), ("device", check_device)):
        if key in params:
            try:
                check(params[key])
            except ConfigError as e:
                problems.append(str(e))
    return problems


# --------------------------------------------------------------------------- inside a notebook

def default_out_dir(notebook: str) -> Path:
    """Where records go when the ``out_dir`` parameter is ``""``: ``<results>/notebooks/<stem>``."""
    return paths.results_dir() / "notebooks" / Path(notebook).stem


def records_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / RECORDS_FILE


def record(key: str, value: Any, out_dir: str | Path) -> Any:
    """Store one recorded number in ``<out_dir>/records.json`` (atomic, merged) and print it."""
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"record keys are identifiers like 'photo_accuracy', got {key!r}")
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalar
        value = value.item()
    records = load_records(out_dir)
    records[key] = value
    io.write_json(records_path(out_dir), records)
    shown = f"{value:.6g}" if isinstance(value, float) and math.isfinite(value) else repr(value)
    print(f"record  {key} = {shown}")
    return value


def load_records(out_dir: str | Path) -> dict[str, Any]:
    """The records written to ``out_dir`` so far; ``{}`` if none (a corrupt file warns, reads as ``{}``)."""
    path = records_path(out_dir)
    if not path.exists():
        return {}
    try:
        data = io.read_json(path)
    except (OSError, ValueError) as e:
        warnings.warn(f"ignoring unreadable {path}: {e}", stacklevel=2)
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class NotebookSession:
    """What a notebook needs after setup: checked parameters and where its outputs go."""

    name: str
    params: Mapping[str, Any]
    out_dir: Path
    figures_dir: Path

    def record(self, key: str, value: Any) -> Any:
        return record(key, value, self.out_dir)

    def save_figure(self, fig, name: str) -> list[Path]:
        from .plotting import save_figure

        return save_figure(fig, name, self.figures_dir)

    def caption(self, text: str) -> str:
        """Show a caption computed from this run's numbers as Markdown under the figure (plain text outside
        a notebook); returns the text. Captions are rendered, never typed in, so they always quote the run
        that drew the figure."""
        try:
            from IPython import get_ipython
            from IPython.display import Markdown, display
        except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
            get_ipython = None
        if get_ipython is not None and get_ipython() is not None:
            display(Markdown(text))
        else:
            print(text)
        return text


def setup_notebook(notebook: str, namespace: Mapping[str, Any], *, style: bool = True,
                   verbose: bool = True) -> NotebookSession:
    """Check the notebook's parameters, apply the figure style and say what is running.

    ``notebook`` is the notebook's own file name, looked up in the working directory (where
    JupyterLab and ``run_all.py`` start kernels) and then in :func:`clipstudy.paths.notebooks_dir`;
    its ``parameters`` cell gives the expected types. ``namespace`` is the notebook's ``globals()``.
    Names papermill injected that the ``parameters`` cell does not declare (a misspelled ``-p``) are
    errors too (:func:`injected_parameters`).
    """
    path = next((p for p in (Path(notebook), paths.notebooks_dir() / notebook) if p.is_file()), None)
    if path is None:
        warnings.warn(f"cannot find {notebook} to read its parameter types; not checking them")
        defaults: dict[str, Any] = {k: NOT_LITERAL for k in REQUIRED_PARAMETERS if k in namespace}
    else:
        defaults = declared_parameters(path)
    params = {k: namespace[k] for k in defaults if k in namespace}
    injected = injected_parameters(namespace) if path is not None else []
    unknown = {k: namespace.get(k) for k in injected if k not in defaults}
    check_parameters({**params, **unknown}, defaults, where=Path(notebook).name)
    if style:
        from .plotting import set_style

        set_style()
    session = NotebookSession(
        name=Path(notebook).stem,
        params=MappingProxyType(params),
        out_dir=Path(params.get("out_dir") or default_out_dir(notebook)),
        figures_dir=Path(params.get("figures_dir") or paths.figures_dir()),
    )
    if verbose:
        from .results import versions

        print(" | ".join([session.name] + [f"{k} {v or '-'}" for k, v in versions().items()]))
        print("parameters: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    return session


# --------------------------------------------------------------------------- driver (run_all.py)

@dataclass(frozen=True)
class Job:
    spec: NotebookSpec
    params: Mapping[str, Any]
    out_dir: Path


@dataclass
class NotebookRun:
    """One notebook's outcome; ``status``: ok, failed (it raised) or incomplete (outputs missing)."""

    name: str
    status: str
    seconds: float
    output: Path
    figures_written: list[str] = field(default_factory=list)
    figures_missing: list[str] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self) -> str:
        return f"{self.name}: {self.status}" + "".join(f"\n  {p}" for p in self.problems)


def plan(manifest: Manifest, only: Iterable[str] | None, profile: str, overrides: Mapping[str, Any],
         out_root: str | Path, figures_dir: str | Path) -> list[Job]:
    """Parameters and output folder of each selected notebook, all checked before anything runs.

    Overrides go only to the notebooks that declare them (an override no selected notebook declares
    is an error, with close matches); string overrides are parsed for non-string parameters
    (:func:`coerce_value`); ``model`` and ``device`` must exist (:func:`run_option_problems`).
    Raises :class:`ConfigError` listing every problem, one per line.
    """
    specs = manifest.select(only)
    out_root, figures_dir = Path(out_root).resolve(), Path(figures_dir).resolve()  # kernels run elsewhere
    problems, declared = [], {}
    for spec in specs:
        try:
            declared[spec.name] = declared_parameters(spec.path)
        except ConfigError as e:
            problems.append(str(e))
    known = set().union(*declared.values()) if declared else set()
    problems += [f"parameter {k!r} is not declared by any selected notebook{did_you_mean(k, known)}; "
                 f"declared: {', '.join(sorted(known))}" for k in overrides if declared and k not in known]
    jobs = []
    for spec in (s for s in specs if s.name in declared):
        defaults = declared[spec.name]
        problems += [f"{spec.path.name} must declare parameter {k!r}" for k in REQUIRED_PARAMETERS
                     if k not in defaults]
        mine = {k: coerce_value(v, defaults[k]) for k, v in overrides.items() if k in defaults}
        out_dir = Path(out_root) / spec.name
        params = notebook_params(spec, profile, mine)
        params.update(out_dir=str(out_dir), figures_dir=str(figures_dir))
        try:
            check_parameters(params, defaults, where=spec.path.name)
        except ConfigError as e:
            problems.append(str(e))
        else:
            problems += run_option_problems(params)
        jobs.append(Job(spec, MappingProxyType(params), out_dir))
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))  # one line per problem, each once
    return jobs


def execute(job: Job, *, progress_bar: bool = True, kernel_name: str = "python3",
            start_timeout: int = 120) -> NotebookRun:
    """Run one planned notebook with papermill and check that its figures and records appeared.

    The executed notebook (with tracebacks, if any) is saved as ``<out_dir>/<name>.ipynb``. The
    kernel is the current interpreter's ipykernel (``python3``), so a fresh venv needs no registered
    kernel; the package folder is put on the kernel's ``PYTHONPATH`` so an uninstalled checkout works.
    Ctrl-C interrupts the running cell, shuts the kernel down and raises :class:`KeyboardInterrupt`
    (:class:`_InterruptForwarder`); finished result cells stay in the result store.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    spec, out_dir = job.spec, job.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path(out_dir).unlink(missing_ok=True)  # records must come from this run
    output = out_dir / spec.path.name
    problems: list[str] = []
    start = time.time()
    with _forward_interrupts() as ctrl_c:
        try:
            with _kernel_environment(kernel_name):
                papermill.execute_notebook(
                    str(spec.path), str(output), parameters=dict(job.params), kernel_name=kernel_name,
                    progress_bar=progress_bar, cwd=str(spec.path.parent), start_timeout=start_timeout,
                    **ctrl_c.engine_kwargs(),
                )
        except PapermillExecutionError as e:
            problems.append(f"{e.ename}: {e.evalue}")
        except Exception as e:  # kernel died, timeout, ...: report it and let the other notebooks run
            problems.append(f"{type(e).__name__}: {e}")
    if ctrl_c.pressed:  # the kernel was interrupted and shut down cleanly: now stop the driver
        raise KeyboardInterrupt
    seconds = time.time() - start
    figures_dir = Path(job.params["figures_dir"])
    written = [f for f in spec.figures if _written_since(figures_dir, f, start)]
    missing = [f for f in spec.figures if f not in written]
    records = load_records(out_dir)
    status = "failed" if problems else "ok"
    if not problems:
        problems += [f"figure {f!r} not written to {figures_dir}" for f in missing]
        problems += check_records(spec, records)
        status = "incomplete" if problems else "ok"
    return NotebookRun(spec.name, status, seconds, output, written, missing, records, problems)


def run_manifest_notebook(name: str, out_root: str | Path, *, profile: str = "smoke",
                          manifest: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                          progress_bar: bool = False) -> dict[str, Any]:
    """Execute one manifest notebook (smoke profile by default) under ``out_root``; return its records.

    Figures go to ``<out_root>/figures``. Raises :class:`NotebookRunError` if the notebook fails,
    misses a figure or records a number outside its manifest range. Made for one-line tests.
    """
    out_root = Path(out_root)
    [job] = plan(load_manifest(manifest), [name], profile, overrides or {}, out_root, out_root / "figures")
    run = execute(job, progress_bar=progress_bar)
    if not run.ok:
        raise NotebookRunError(run.describe() + f"\n  executed notebook: {run.output}")
    return run.records


def format_summary(runs: list[NotebookRun], records_width: int = 72) -> str:
    """A plain-text table: notebook, status, seconds, figures written, recorded numbers (wrapped to
    ``records_width`` characters under their column)."""
    import textwrap

    rows = [("notebook", "status", "seconds", "figures", "records")]
    for r in runs:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in r.records.items() if isinstance(v, (int, float)))
        n = len(r.figures_written) + len(r.figures_missing)
        rows.append((r.name, r.status, f"{r.seconds:.1f}", f"{len(r.figures_written)}/{n}", shown))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    indent = sum(widths) + 2 * 4
    lines = []
    for row in rows:
        wrapped = textwrap.wrap(row[4], records_width, break_on_hyphens=False) or [""]
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + wrapped[0])
        lines += [" " * indent + more for more in wrapped[1:]]
    lines.insert(1, "-" * max(len(line) for line in lines))
    for r in runs:
        lines += [f"{r.name}: {p}" for p in r.problems]
    return "\n".join(lines)


def summary_records(runs: list[NotebookRun]) -> list[dict]:
    """The summary as JSON-ready dicts (what ``run_all.py`` writes to ``summary.json``)."""
    return [{"notebook": r.name, "status": r.status, "seconds": round(r.seconds, 2),
             "output": str(r.output), "figures_written": r.figures_written,
             "figures_missing": r.figures_missing, "records": r.records, "problems": r.problems}
            for r in runs]


def _written_since(folder: Path, stem: str, start: float) -> bool:
    files = [folder / f"{stem}.{fmt}" for fmt in ("png", "pdf")]
    return all(f.exists() and f.stat().st_mtime >= start - 1 for f in files)


class _InterruptForwarder:
    """Ctrl-C while papermill runs a notebook: interrupt the kernel's cell, run no further cell, let
    papermill shut the kernel down, then (in :func:`execute`) raise :class:`KeyboardInterrupt`.

    The kernel runs in a session of its own (jupyter_client starts it so), so the terminal's SIGINT
    reaches only this process; left alone, it would stop the driver in the middle of papermill's
    kernel shutdown, with tracebacks from both sides. A second Ctrl-C raises at once.
    """

    def __init__(self) -> None:
        self.pressed = False
        self.kernels: list = []

    def engine_kwargs(self) -> dict:
        """papermill engine options: a kernel manager that records its kernel, and a cell-start hook."""
        from jupyter_client.manager import AsyncKernelManager

        started = self.kernels

        class TrackedKernelManager(AsyncKernelManager):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                started.append(self)

        return {"kernel_manager_class": TrackedKernelManager, "on_cell_start": self.before_cell}

    def before_cell(self, **_ignored) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def on_sigint(self, signum, frame) -> None:
        if self.pressed or not self.kernels:
            raise KeyboardInterrupt
        self.pressed = True
        for km in self.kernels:
            _signal_kernel(km, signum)


def _signal_kernel(km, signum: int) -> None:
    """Send ``signum`` to a local kernel's process group (what ``interrupt_kernel`` does), quietly."""
    provisioner = getattr(km, "provisioner", None)
    pgid, process = getattr(provisioner, "pgid", None), getattr(provisioner, "process", None)
    try:
        if pgid and hasattr(os, "killpg"):
            os.killpg(pgid, signum)
        elif process is not None:
            process.send_signal(signum)
    except OSError:  # the kernel is already gone
        pass


@contextlib.contextmanager
def _forward_interrupts() -> Iterator[_InterruptForwarder]:
    """Install :class:`_InterruptForwarder` as the SIGINT handler (main thread, and only over Python's
    default handler: an ignored SIGINT or an application's own handler is left alone)."""
    import signal
    import threading

    forwarder = _InterruptForwarder()
    mine = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if mine:
        signal.signal(signal.SIGINT, forwarder.on_sigint)
    try:
        yield forwarder
    finally:
        if mine:
            signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _kernel_environment(kernel_name: str) -> Iterator[None]:
    """Put this package on the kernel's PYTHONPATH; warn if the kernel is another interpreter."""
    _warn_if_foreign_kernel(kernel_name)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.PACKAGE_DIR.parent), old) if p)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _warn_if_foreign_kernel(kernel_name: str) -> None:
    # jupyter_client swaps a bare "python"/"python3" in a kernelspec for sys.executable, but a
    # kernelspec in ~/.local/share/jupyter may name another interpreter, without our packages.
    from jupyter_client.kernelspec import KernelSpecManager

    exe = KernelSpecManager().get_kernel_spec(kernel_name).argv[0]
    bare = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    if exe not in bare and os.path.abspath(exe) != os.path.abspath(sys.executable):
        warnings.warn(f"kernel {kernel_name!r} runs {exe}, not this interpreter ({sys.executable})")
