"""The ``clipstudy`` console command: ``info``, ``pretrain``, ``zeroshot``, ``check-data``, ``check-model``.

User errors (unknown names, missing folders, unreadable checkpoints, bad values, folders that cannot be
written) print one line ``clipstudy: error: ...`` and exit with status 2, without a traceback. Values and
the folders a command writes are checked before its work starts.
"""
from __future__ import annotations

import argparse
import json
import sys


def _registries() -> dict:
    """Every extension point a user can name, as its registry (models: see :func:`registries`)."""
    from .data import DATASETS
    from .losses import LOSSES
    from .methods import METHODS
    from .recipes import RECIPES
    from .regularizers import REGULARIZERS
    from .scores import SCORERS

    return {"datasets": DATASETS, "methods": METHODS, "scorers": SCORERS, "losses": LOSSES,
            "regularizers": REGULARIZERS, "recipes": RECIPES}


def registries() -> dict[str, list[str]]:
    """Every extension point and its registered names: models (the project's, then open_clip's), datasets,
    methods, OOD scorers, contrastive losses, regularizers (:data:`clipstudy.regularizers.REGULARIZERS`) and
    training recipes (:data:`clipstudy.recipes.RECIPES`)."""
    from .models import list_models

    return {"models": list_models(), **{key: reg.list() for key, reg in _registries().items()}}


def model_description(name: str) -> str:
    """One line about model ``name``: the shipped checkpoint, a project config's towers, or open_clip's."""
    from . import paths
    from .io import read_json
    from .models import EMBEDDED, shipped_files, shipped_models

    if name in shipped_models():
        preset, seed = shipped_models()[name]
        card = shipped_files(preset, seed)[1]
        text = read_json(card).get("config", {}).get("description", "") if card.is_file() else ""
        if not text and name != EMBEDDED:
            from .pretrain import presets

            text = presets().get(preset, {}).get("description", "")
        if name == EMBEDDED:
            return text or ("the shipped model pretrained on the embedded world "
                            "(clipstudy/assets/EMBEDDED_MODEL_CARD.md)")
        shipped = "" if card.is_file() else " (not shipped in this checkout)"
        alias = (f"the `{preset}` recipe at seed {seed}, a second run of the zoo's base. " if seed else
                 f"the shipped `{preset}` model as the zoo's base. " if preset == EMBEDDED else "")
        return f"holistic-study zoo{shipped}: {alias}{text or f'pretraining preset {preset}'}"
    cfg = paths.model_configs_dir() / f"{name}.json"
    if not cfg.is_file():
        return "open_clip architecture (open_clip's model_configs)"
    c = read_json(cfg)
    v, t = c.get("vision_cfg", {}), c.get("text_cfg", {})
    if v.get("timm_model_name"):
        vision = f"timm {v['timm_model_name']}"
    elif isinstance(v.get("layers"), (list, tuple)):
        vision = f"ResNet {'-'.join(map(str, v['layers']))} x{v.get('width')}"
    else:
        vision = f"ViT {v.get('layers')}L x{v.get('width')}/{v.get('patch_size')}"
    bias = ", SigLIP logit bias" if c.get("init_logit_bias") is not None else ""
    return (f"architecture: image {vision} at {v.get('image_size')} px, text {t.get('layers')}L "
            f"x{t.get('width')}, embed {c.get('embed_dim')}{bias}")


def descriptions(names: dict[str, list[str]] | None = None) -> dict[str, dict[str, str]]:
    """``{extension point: {name: one-line description}}`` for every registered name."""
    names = names or registries()
    out = {"models": {n: model_description(n) for n in names["models"]}}
    out.update({key: reg.descriptions() for key, reg in _registries().items()})
    return out


def _line(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def suites() -> dict[str, list[str]]:
    """Dataset suites averaged over as a paper averages its benchmarks: suite name -> its dataset names."""
    from .data.world_suite import SUITES

    return {name: list(names) for name, names in SUITES.items()}


def cmd_info(args) -> int:
    reg = registries()
    desc = descriptions(reg)
    if args.json:
        print(json.dumps({**reg, "suites": suites(), "descriptions": desc}, indent=2))
        return 0
    from .models import project_model_names
    from .recipes import RECIPES

    own = project_model_names()
    print(f"models ({len(own)} of clipstudy; open_clip's {len(reg['models']) - len(own)} architectures "
          "also load: clipstudy info --json lists them):")
    for n in own:
        print(f"  {n:<26} {_line(desc['models'][n], 110)}")
    for key in ("datasets", "methods", "scorers", "losses", "regularizers", "recipes"):
        print(f"\n{key} ({len(reg[key])}):")
        for n in reg[key]:
            if key == "recipes":  # the study the recipe belongs to tells similar names apart (zs/zeroshot, ...)
                study = RECIPES.meta(n).get("study") or "-"
                print(f"  {n:<22} {'[' + study + ']':<13} {_line(desc[key][n], 96)}")
            else:
                print(f"  {n:<22} {_line(desc[key][n], 110)}")
    print("\nsuites:")
    for name, names in suites().items():
        print(f"  {name:<22} {', '.join(names)}")
    return 0


def _load_with_notes(args):
    """``(model, notes)``: the model of ``--model``/``--pretrained`` and the ``clipstudy: warning:`` line to
    print once the command has its result (random weights that were not asked for; the JSON output also says
    ``"random_init": true``). Printed after the work, so a bad input further on still gives one error line."""
    import warnings

    from .models import RandomWeightsWarning, load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RandomWeightsWarning)
        loaded = load_model(args.model, args.pretrained, device=args.device, allow_download=args.download or None)
    notes = []
    for w in caught:
        if issubclass(w.category, RandomWeightsWarning):
            notes.append(f"clipstudy: warning: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return loaded, notes


def cmd_zeroshot(args) -> int:
    from . import paths
    from .data import DATASETS
    from .data.world_data import MAX_IMAGES
    from .errors import ConfigError
    from .evaluate import zeroshot_by_domain
    from .prompts import get_templates

    # bad inputs and an unwritable feature cache fail before the model is loaded and any image is encoded
    import inspect

    from .evaluate import OWN_TEMPLATES

    builder = DATASETS.get(args.dataset)
    takes_n = "n" in inspect.signature(builder.build).parameters  # the world and its suite render n images
    if args.n is not None and not 1 <= args.n <= MAX_IMAGES:
        raise ConfigError(f"--n must be in 1..{MAX_IMAGES:,} (world images per domain, each rendered in memory), "
                          f"got {args.n}")
    if args.n is not None and not takes_n:
        raise ConfigError(f"--n sets how many images a rendered dataset has; {args.dataset!r} is read from disk "
                          "(use --data-root)")
    if args.templates not in OWN_TEMPLATES:
        get_templates(args.templates)
    paths.require_writable(paths.cache_dir(), paths.writable_hint("cache"))
    loaded, notes = _load_with_notes(args)
    options = {"n": args.n} if args.n is not None else {}
    domains = args.domain.split(",") if args.domain else None
    results = zeroshot_by_domain(loaded, args.dataset, root=args.data_root, domains=domains,
                                 templates=args.templates, progress=not args.json, **options)
    for note in notes:
        print(note, file=sys.stderr)
    num_classes = len(next(iter(results.values())).classnames)
    acc = {d: round(r.accuracy, 4) for d, r in results.items()}
    if args.json:
        prompts = {d: r.templates for d, r in results.items()}
        print(json.dumps({"model": args.model, "pretrained": loaded.pretrained, "random_init": loaded.random_init,
                          "dataset": args.dataset, "num_classes": num_classes, "templates": prompts,
                          "accuracy": acc}))
        return 0
    shown = {str(r.templates) for r in results.values()}
    print(f"zero-shot top-1, {args.model} on {args.dataset} ({num_classes} classes, chance {1 / num_classes:.1%}; "
          f"templates: {', '.join(sorted(shown))})")
    width = max(len(d) for d in acc)
    for d, a in acc.items():
        print(f"  {d:<{width}}  {a:6.1%}  (n={len(results[d].labels)})")
    return 0


def cmd_pretrain(args) -> int:
    """Train (or resume) a preset; every value and the folders written are checked before training starts."""
    from . import paths
    from .errors import ConfigError
    from .pretrain import PretrainConfig, pretrain, ship

    cfg = PretrainConfig.from_preset(args.preset, seed=args.seed, steps=args.steps, max_minutes=args.minutes,
                                     batch_size=args.batch_size)
    if args.ship:
        from .models import shipped_runs

        runs = shipped_runs()
        if (args.preset, args.seed or 0) not in runs:
            valid = ", ".join(p if k == 0 else f"{p} --seed {k}" for p, k in runs)
            raise ConfigError(f"--ship installs a shipped model and takes only their runs ({valid}), got "
                              f"{args.preset!r} at seed {args.seed or 0}")
        paths.require_writable(paths.assets_dir(), "--ship needs a writable clipstudy installation")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be a positive number of CPU threads, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    out = args.out or cfg.run_dir()
    card = pretrain(cfg, out_dir=args.out, resume=not args.restart)
    print(json.dumps({"run_dir": str(out), "zeroshot_accuracy": card["zeroshot_accuracy"],
                      "train_minutes": card["train_minutes"]}))
    if args.ship:
        print(f"shipped to {ship(out)}")
    return 0


def cmd_check_data(args) -> int:
    """Each requested real dataset (default: all) is present, partial, malformed or missing under --data-root:
    every file is checked (non-empty, image header decodes; --deep: pixels decode) and the classes and images
    are counted against what the dataset has. Exit 0 only if every requested dataset is present."""
    from . import paths
    from .data import DATASETS
    from .data.real import check_dataset, real_datasets, unit_counts

    root = args.data_root or str(paths.data_root())
    real = real_datasets()
    names = [n for arg in args.dataset or [] for n in arg.split(",") if n] or real
    for n in names:
        if not DATASETS.meta(n).get("real"):  # unknown names raise, listing the valid ones
            raise ValueError(f"{n!r} is not a real dataset read from disk; real datasets: {', '.join(real)}")
    if not args.json:
        print(f"data root: {root}" + (" (--deep: decoding every image)" if args.deep else ""), flush=True)
    report = []
    for n in names:
        r = check_dataset(n, root, deep=args.deep)
        report.append(r)
        if args.json:
            continue
        counts = [unit_counts(u) for u in r.get("units", [])]
        shown = "; ".join(counts[:4]) + (f"; +{len(counts) - 4} more" if len(counts) > 4 else "")
        pad = f"  {'':<16} {'':<9}"
        print(f"  {r['dataset']:<16} {r['status']:<9} {shown if r['status'] == 'present' else r['reason']}")
        if r["status"] != "present":
            if counts:
                print(f"{pad} counts: {shown}")
            if r.get("note"):
                print(f"{pad} note: {r['note']}")
            print(f"{pad} expected: {r['layout']}\n{pad} get: {r['source']}", flush=True)
    if args.json:
        print(json.dumps({"data_root": root, "deep": bool(args.deep), "datasets": report}, indent=2))
    return 0 if all(r["status"] == "present" for r in report) else 2


def cmd_check_model(args) -> int:
    """Load a model as every command does (offline unless allowed) and print what it is."""
    from pathlib import Path

    loaded, notes = _load_with_notes(args)
    model = loaded.model
    embed = getattr(model.visual, "output_dim", None) or getattr(model, "embed_dim", None)
    source = "random init" if loaded.pretrained == "random" else (
        "file" if Path(loaded.pretrained).is_file() else "open_clip tag")
    info = {"model": args.model, "arch": loaded.arch, "pretrained": loaded.pretrained, "source": source,
            "image_size": loaded.image_size, "embed_dim": int(embed) if embed else None,
            "context_length": int(getattr(model, "context_length", 0)
                                  or getattr(loaded.tokenizer, "context_length", 0)),
            "parameters": int(sum(p.numel() for p in model.parameters())), "weights_id": loaded.weights_id}
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key + ':':<16} {value:,}" if key == "parameters" else f"{key + ':':<16} {value}")
    for note in notes:
        print(note, file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clipstudy", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="list registered models, datasets, methods, scorers, losses, regularizers, "
                                       "recipes, each with a one-line description")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    zs = sub.add_parser("zeroshot", help="zero-shot top-1 accuracy per domain")
    zs.add_argument("--model", required=True, help="embedded, a clipstudy-* or open_clip architecture")
    zs.add_argument("--pretrained", default="", help="open_clip tag or checkpoint file (default: model's own)")
    zs.add_argument("--dataset", default="world")
    zs.add_argument("--data-root", default=None)
    zs.add_argument("--domain", default=None, help="comma-separated subset of the dataset's domains")
    zs.add_argument("--templates", default="auto",
                    help="auto (the dataset's own prompt if it has one, else photo), dataset (its own prompt), "
                         "photo (single prompt), imagenet80, mcm, or a prompt with {}")
    zs.add_argument("--n", type=int, default=None,
                    help="images per domain of a rendered dataset (world: 1000, world suite: its test size)")
    zs.add_argument("--device", default="cpu")
    zs.add_argument("--download", action="store_true", help="allow downloading pretrained weights")
    zs.add_argument("--json", action="store_true")
    zs.set_defaults(func=cmd_zeroshot)

    pt = sub.add_parser("pretrain", help="pretrain a small CLIP on the embedded world")
    pt.add_argument("--preset", default="embedded")
    pt.add_argument("--seed", type=int, default=None)
    pt.add_argument("--steps", type=int, default=None)
    pt.add_argument("--batch-size", type=int, default=None)
    pt.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")
    pt.add_argument("--out", default=None, help="run folder (default: <checkpoints>/pretrain/<preset>-seed<k>)")
    pt.add_argument("--restart", action="store_true", help="ignore an existing state.pt instead of resuming")
    pt.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 when two runs share a 2-core machine)")
    pt.add_argument("--ship", action="store_true",
                    help="install the result in the package as the shipped model(s) of its run (embedded, zoo-*)")
    pt.set_defaults(func=cmd_pretrain)

    cd = sub.add_parser("check-data", help="which real benchmarks are present, partial, malformed or missing under a "
                                           "data root (every file checked, classes and images counted)")
    cd.add_argument("--data-root", default=None, help="folder holding the benchmarks (default: $CLIPSTUDY_DATA)")
    cd.add_argument("--dataset", action="append",
                    help="dataset name(s) to check (repeat or comma-separate; default: all)")
    cd.add_argument("--deep", action="store_true",
                    help="decode every image fully (slow); default: check each file's size and image header")
    cd.add_argument("--json", action="store_true")
    cd.set_defaults(func=cmd_check_data)

    cm = sub.add_parser("check-model", help="load a model (offline unless --download) and print its shape")
    cm.add_argument("--model", required=True, help="embedded, a clipstudy-* or open_clip architecture")
    cm.add_argument("--pretrained", default="", help="open_clip tag or checkpoint file (default: model's own)")
    cm.add_argument("--device", default="cpu")
    cm.add_argument("--download", action="store_true", help="allow downloading pretrained weights")
    cm.add_argument("--json", action="store_true")
    cm.set_defaults(func=cmd_check_model)
    return p


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: what failed, on which path, and for a refused write where to write instead."""
    import errno

    what = exc.strerror or str(exc).strip() or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    hint = ""
    if exc.errno == errno.ENOSPC:
        hint = "; free some space or set CLIPSTUDY_HOME to a folder on another disk"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):
        hint = "; set CLIPSTUDY_HOME to a writable folder"
    return f"{what}{where}{hint}"


def main(argv=None) -> int:
    from .errors import USER_ERRORS

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (*USER_ERRORS, ValueError, TypeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"clipstudy: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:  # a write that failed after all (disk full, permissions changed): one line too
        print(f"clipstudy: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clipstudy: interrupted (finished work is saved; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
