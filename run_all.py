#!/usr/bin/env python
"""Regenerate every figure: run each notebook in notebooks/manifest.yaml with papermill.

    python run_all.py                              # default profile, all notebooks
    python run_all.py --profile smoke --only 00    # one notebook, seconds on a CPU
    python run_all.py --list                       # what would run, with its parameters

Executed notebooks and their records go to runs/<profile>/<notebook>/, figures to figures/ (smoke
profile: runs/smoke/figures/, so the committed gallery is never overwritten by a quick try), and a
summary table is printed and written to runs/<profile>/summary.json. Every option is checked before
any notebook starts (parameter names and types, --model, --device). Exit status: 0 if every notebook
wrote its figures and records, 1 if any did not (the others still run), 2 for bad options, 130 on
Ctrl-C (the summary still says which notebooks finished; finished result cells are kept, so a rerun
resumes).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from clipstudy import io, paths
from clipstudy.errors import USER_ERRORS
from clipstudy.manifest import PROFILES, load_manifest
from clipstudy.notebook import REQUIRED_PARAMETERS, Job, NotebookRun, execute, format_summary, plan, summary_records

ROOT = Path(__file__).resolve().parent
PASS_THROUGH = ("model", "pretrained", "data_root", "device")  # options given to notebooks declaring them
INTERRUPTED = "clipstudy: interrupted (finished work is saved; rerun to resume)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=PROFILES, default="default", help="parameter profile")
    p.add_argument("--only", nargs="+", action="extend", metavar="NAME",
                   help="notebooks to run: 00, 00_embedded_world or 00_embedded_world.ipynb")
    p.add_argument("--model", help="model name or open_clip tag for every notebook that takes one")
    p.add_argument("--pretrained", help="pretrained tag or local checkpoint file")
    p.add_argument("--data-root", help="folder holding the real datasets")
    p.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--param", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="any other notebook parameter (values parsed like Python literals)")
    p.add_argument("--out", type=Path, help="executed notebooks and records (default: runs/<profile>)")
    p.add_argument("--figures-dir", type=Path, help="where figures go (default: figures/; smoke profile: <out>/figures)")
    p.add_argument("--manifest", type=Path, help="notebook manifest (default: notebooks/manifest.yaml)")
    p.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    p.add_argument("--list", action="store_true", help="list the notebooks and their parameters, run nothing")
    return p.parse_args(argv)


def overrides_from(args: argparse.Namespace) -> dict[str, str]:
    overrides = {k: getattr(args, k) for k in PASS_THROUGH if getattr(args, k) is not None}
    for key in ("data_root", "pretrained"):  # kernels start in the notebooks folder: make paths absolute
        if overrides.get(key) and (key == "data_root" or Path(overrides[key]).exists()):
            overrides[key] = str(Path(overrides[key]).expanduser().resolve())
    for pair in args.param:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


def default_figures_dir(profile: str, out_root: Path) -> Path:
    """Where a profile's figures go: the committed gallery (``figures/``, or ``CLIPSTUDY_FIGURES``) for the
    default and paper profiles; ``<out>/figures`` for the smoke profile, so a quick try never replaces the
    gallery with smoke-quality plots (``CLIPSTUDY_FIGURES`` or ``--figures-dir`` still decide if given)."""
    import os

    if profile == "smoke" and not os.environ.get("CLIPSTUDY_FIGURES"):
        return Path(out_root) / "figures"
    return paths.figures_dir()


def shown_params(job: Job) -> dict:
    """A planned notebook's parameters as ``--list`` shows them: profile and overrides applied, without
    the output folders every notebook gets."""
    return {k: v for k, v in job.params.items() if k not in REQUIRED_PARAMETERS}


def unfinished(job: Job, status: str, seconds: float = 0.0) -> NotebookRun:
    """The summary row of a notebook that did not finish: ``interrupted`` or ``not run``."""
    return NotebookRun(job.spec.name, status, seconds, job.out_dir / job.spec.path.name,
                       figures_missing=list(job.spec.figures))


def run_jobs(jobs: list[Job], profile: str, progress_bar: bool) -> tuple[list[NotebookRun], bool]:
    """Run every job in order; on Ctrl-C stop, and mark the notebook it stopped and the rest.
    Returns ``(runs, interrupted)``."""
    runs: list[NotebookRun] = []
    start = time.time()
    try:
        for i, job in enumerate(jobs, 1):
            start = time.time()
            print(f"[{i}/{len(jobs)}] {job.spec.name} ({profile}) -> {job.out_dir}", flush=True)
            runs.append(execute(job, progress_bar=progress_bar))
    except KeyboardInterrupt:
        if len(runs) < len(jobs):
            runs.append(unfinished(jobs[len(runs)], "interrupted", time.time() - start))
        runs += [unfinished(rest, "not run") for rest in jobs[len(runs):]]
        return runs, True
    return runs, False


def main(argv: list[str] | None = None) -> int:
    """Run the selected notebooks; the exit status as in the module docstring."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before or after the notebooks ran (during them: run_jobs)
        print(INTERRUPTED, file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    out_root = args.out or ROOT / "runs" / args.profile
    figures_dir = args.figures_dir or default_figures_dir(args.profile, out_root)
    try:
        manifest = load_manifest(args.manifest)
        jobs = plan(manifest, args.only, args.profile, overrides_from(args), out_root, figures_dir)
    except (*USER_ERRORS, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for job in jobs:
            spec = job.spec
            print(f"{spec.name}  {spec.title}\n    figures: {', '.join(spec.figures)}"
                  f"\n    {args.profile}: {shown_params(job)}")
        return 0
    runs, interrupted = run_jobs(jobs, args.profile, progress_bar=not args.no_progress)
    print("\n" + format_summary(runs))
    summary = {"profile": args.profile, "interrupted": interrupted, "notebooks": summary_records(runs)}
    io.write_json(Path(out_root) / "summary.json", summary)
    if interrupted:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
