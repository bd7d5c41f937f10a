"""The model zoo of the holistic robustness study (Tu, Deng & Gedeon, TPAMI 2025; docs/protocols.md §3.1): models
that differ in one of the six factors while the others stay fixed.

The zoo is data (``data/resources/zoo.json``). Each model is

* a **preset** model: pretrained from scratch on the embedded world by :func:`clipstudy.pretrain.pretrain`
  with a preset of ``pretrain_presets.json`` (architecture, loss, domain mixture, number of unique
  training images, steps), trained on demand and cached in ``<checkpoints>/pretrain/<preset>-seed<k>/``
  (a folder holding ``weights.safetensors`` and ``card.json`` is never trained again);
* a **derived** model: a preset model fine-tuned on the ID classes with a training recipe
  (``data/resources/recipes*.json``) through :func:`clipstudy.experiment.train_method` (resumable,
  cached checkpoint);
* an **external** model: an open_clip architecture with a tag or checkpoint file, or the shipped
  ``embedded`` model (the real path's zoo, and reference points of the embedded one).

A preset model may also name the **shipped** model that is its run (``"shipped": "zoo-vit"``: a registered
model of :func:`clipstudy.models.shipped_models` whose preset is the model's ``preset``). Such a model is
loaded from the package's weights, and pretrained (on demand, cached, resumable) only when the caller asks
to retrain the zoo (``retrain=True``: notebook 04's ``retrain_zoo``); a shipped run of another seed than the
model's is an error that says so. A model's ``seed`` (default: the zoo's) is its own run's: a preset model's
pretraining seed, a derived model's fine-tuning seed (base replicates at several seeds, each fine-tuned with
its own seed, give the fine-tuning and prompt factors a spread over seeds).

Every model names the factor it varies with respect to the zoo's ``base`` model and its value; the
base model has factor ``"base"``, models outside the comparison ``"reference"``. The sixth factor,
test-time prompts, needs no model: every zero-shot model is evaluated with each of the study's
prompt sets.

A zoo also names its **baseline family** (``"baseline"``, an entry of ``baselines`` in ``zoo.json``): the
models the effective-robustness lines are fitted on. Taori et al. (2020) fit them on standard
ImageNet-trained models; on the embedded world their analogue is a classifier trained *supervised* on the ID
classes' photos only (:mod:`clipstudy.methods.supervised`: the base model's image tower from random init and
a linear head) at several step budgets, each trained through :func:`clipstudy.experiment.train_method`
(resumable, cached checkpoint) by :func:`load_baseline_member`.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import paths
from ..errors import ConfigError
from ..io import read_json

KINDS = ("preset", "derived", "external")
ROLES = ("base", "reference")


@functools.lru_cache(maxsize=None)
def zoo_table() -> dict:
    """``zoo.json`` as read (factors and zoos)."""
    return read_json(paths.resources_dir() / "zoo.json")


def factor_names() -> tuple[str, ...]:
    """The six factors of Tu et al. (docs/protocols.md §3.1), in the order of ``zoo.json``."""
    return tuple(zoo_table()["factors"])


def list_zoos() -> list[str]:
    return sorted(zoo_table()["zoos"])


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo; exactly one of ``preset`` / ``base`` + ``recipe`` / ``model`` is set."""

    name: str
    factor: str
    value: str = ""
    preset: str = ""
    base: str = ""
    recipe: str = ""
    recipe_overrides: tuple = ()
    model: str = ""
    pretrained: str = ""
    shipped: str = ""
    seed: int | None = None

    def run_seed(self, zoo_seed: int) -> int:
        """The seed of this model's own run (a preset model's pretraining, a derived model's fine-tuning):
        ``seed`` if given, else the zoo's."""
        return zoo_seed if self.seed is None else int(self.seed)

    @property
    def kind(self) -> str:
        return "preset" if self.preset else "derived" if self.base else "external"

    @property
    def zero_shot(self) -> bool:
        """Zero-shot models are evaluated with every prompt set; fine-tuned ones with their own head."""
        return self.kind != "derived"

    def overrides(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.recipe_overrides}


@dataclass(frozen=True)
class Zoo:
    """A validated zoo: its models (base first), the base model's value of every factor, and the seed of
    every pretraining and fine-tuning run."""

    name: str
    models: tuple
    base: str
    base_values: tuple = ()
    seed: int = 0
    description: str = ""
    baseline: str = ""

    def __post_init__(self):
        validate_zoo(self)
        if self.baseline:
            load_baseline(self.baseline)  # unknown names list the valid ones

    def get(self, name: str) -> ZooModel:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigError(f"zoo {self.name!r} has no model {name!r}; models: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def values(self, name: str) -> dict:
        """The value of every factor for model ``name``: the base model's, except the factor it varies."""
        values = dict(self.base_values)
        m = self.get(name)
        if m.factor in values:
            values[m.factor] = m.value
        return values

    def base_value(self, factor: str) -> str:
        return str(dict(self.base_values).get(factor, "base"))


def _fields(entry: Mapping, where: str) -> dict:
    names = {f.name for f in dataclasses.fields(ZooModel)} - {"name"}
    unknown = sorted(set(entry) - names - {"_doc"})
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys: {', '.join(sorted(names))}")
    out = {k: v for k, v in entry.items() if k in names}
    if "recipe_overrides" in out:
        out["recipe_overrides"] = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                               for k, v in dict(out["recipe_overrides"]).items()))
    return out


def load_zoo(name: str) -> Zoo:
    """The zoo ``name`` of ``zoo.json`` (unknown names list the valid ones), validated. A zoo with
    ``"extends": "<zoo>"`` is that zoo with its own ``models`` added (and its other keys replacing)."""
    z = _zoo_entry(name)
    models = tuple(ZooModel(name=k, **_fields(v, f"zoo {name!r} model {k!r}")) for k, v in z["models"].items())
    return Zoo(name, models, z.get("base", ""), tuple(sorted(z.get("base_values", {}).items())),
               int(z.get("seed", 0)), z.get("description", ""), z.get("baseline", ""))


def _zoo_entry(name: str) -> dict:
    from ..registry import resolve_extends

    def merge(parent: dict, own: dict) -> dict:
        merged = {**parent, **{k: v for k, v in own.items() if k != "models"}}
        merged["models"] = {**parent.get("models", {}), **own.get("models", {})}
        return merged

    return resolve_extends(zoo_table()["zoos"], name, "zoo", "zoos", merge)


def zoo_from_models(models: Sequence[Sequence[str]], name: str = "real", seed: int = 0) -> Zoo:
    """A zoo of external models from ``[arch, pretrained]`` or ``[arch, pretrained, factor, value]`` rows
    (the real path: open_clip checkpoints); the first row is the base."""
    rows = []
    for i, row in enumerate(models):
        row = list(row)
        if len(row) not in (2, 4) or not all(isinstance(x, str) for x in row):
            raise ConfigError(f"real model {i}: expected [arch, pretrained] or [arch, pretrained, factor, value] "
                              f"strings, got {row!r}")
        factor, value = (row[2], row[3]) if len(row) == 4 else ("base" if i == 0 else "reference", "")
        label = f"{row[0]}:{Path(row[1]).name or 'default'}" if row[1] else row[0]
        rows.append(ZooModel(name=label, factor=factor, value=value, model=row[0], pretrained=row[1]))
    if not rows:
        raise ConfigError("the real path needs at least one [arch, pretrained] model")
    return Zoo(name, tuple(rows), rows[0].name, (), seed, "open_clip checkpoints")


def validate_zoo(zoo: Zoo) -> None:
    """Every model is of one kind, names a known factor (or base/reference), a known preset, recipe and
    base model; the base model exists. Errors list the valid choices."""
    from ..experiment import list_recipes
    from ..pretrain import presets

    names = [m.name for m in zoo.models]
    if len(set(names)) != len(names):
        raise ConfigError(f"zoo {zoo.name!r} names a model twice: {names}")
    if zoo.base not in names:
        raise ConfigError(f"zoo {zoo.name!r}: base model {zoo.base!r} is not among its models {names}")
    factors = factor_names()
    bad_base = sorted(set(dict(zoo.base_values)) - set(factors))
    if bad_base:
        raise ConfigError(f"zoo {zoo.name!r}: unknown factors {bad_base} in base_values; factors: {', '.join(factors)}")
    for m in zoo.models:
        where = f"zoo {zoo.name!r} model {m.name!r}"
        if m.factor not in factors + ROLES:
            raise ConfigError(f"{where}: unknown factor {m.factor!r}; valid: {', '.join(factors + ROLES)}")
        if sum(bool(x) for x in (m.preset, m.base, m.model)) != 1:
            raise ConfigError(f"{where}: give exactly one of preset (pretrained here), base + recipe (fine-tuned) "
                              "or model (+ pretrained: an external checkpoint)")
        if m.preset and m.preset not in presets():
            raise ConfigError(f"{where}: unknown pretraining preset {m.preset!r}; valid presets: "
                              f"{', '.join(sorted(presets()))}")
        if m.shipped:
            from ..models import shipped_models

            ships = [k for k, (p, k_seed) in shipped_models().items()
                     if p == m.preset and (m.seed is None or k_seed == m.seed)]
            if m.shipped not in ships:
                seed = "" if m.seed is None else f" at seed {m.seed}"
                raise ConfigError(f"{where}: shipped model {m.shipped!r} is not a shipped run of preset "
                                  f"{m.preset!r}{seed}; shipped runs of it: {', '.join(ships) or 'none'}")
        if m.seed is not None and not (isinstance(m.seed, int) and not isinstance(m.seed, bool) and m.seed >= 0):
            raise ConfigError(f"{where}: seed must be an integer >= 0 (or absent: the zoo's seed), got {m.seed!r}")
        if m.base:
            if m.base not in names or zoo.get(m.base).kind == "derived":
                raise ConfigError(f"{where}: base {m.base!r} must be a preset or external model of the zoo")
            if m.recipe not in list_recipes():
                raise ConfigError(f"{where}: unknown recipe {m.recipe!r}; valid recipes: {', '.join(list_recipes())}")
        if m.factor == "test_time_prompts":
            raise ConfigError(f"{where}: test-time prompts need no model; the study evaluates every zero-shot "
                              "model with each prompt set")


# --------------------------------------------------------------------------- training on demand

def preset_run_dir(preset: str, seed: int) -> Path:
    from ..pretrain import PretrainConfig

    return PretrainConfig.from_preset(preset, seed=seed).run_dir()


def is_trained(preset: str, seed: int) -> bool:
    """A finished pretraining run of the preset, reused as is (:func:`clipstudy.pretrain.finished_run`: every
    step taken, the card's config the preset's; a run stopped by its time limit also writes weights and a card,
    with fewer ``steps_done``)."""
    from ..pretrain import PretrainConfig, finished_run

    return finished_run(preset_run_dir(preset, seed), PretrainConfig.from_preset(preset, seed=seed))


def ensure_pretrained(preset: str, seed: int = 0, progress: bool = True) -> tuple[Path, dict]:
    """The run folder and model card of ``preset`` at ``seed``: read back when finished, else trained now
    to its last step (resuming an interrupted run from its ``state.pt``; the preset's time limit is lifted,
    so the run always ends finished) with :func:`clipstudy.pretrain.pretrain`."""
    from ..pretrain import PretrainConfig, pretrain

    cfg = dataclasses.replace(PretrainConfig.from_preset(preset, seed=seed), max_minutes=None)
    out = cfg.run_dir()
    if is_trained(preset, seed):
        return out, read_json(out / "card.json")
    return out, pretrain(cfg, out_dir=out, progress=progress)


def pretraining_runs(zoo: Zoo, retrain: bool = False) -> list[tuple[str, int]]:
    """The pretraining runs ``(preset, seed)`` that :func:`load_member` trains for ``zoo``: every preset model's
    run, except a shipped model's unless ``retrain``; in the zoo's order, each run once."""
    runs = []
    for m in zoo.models:
        run = (m.preset, m.run_seed(zoo.seed))
        if m.kind == "preset" and (retrain or not m.shipped) and run not in runs:
            runs.append(run)
    return runs


def expected_minutes(zoo: Zoo, runs: list[tuple[str, int]]) -> dict[tuple[str, int], float]:
    """Minutes each run of ``runs`` is expected to train with one torch thread: the ``train_minutes`` of its
    shipped model's card (a previous training of the same run), scaled by
    :func:`clipstudy.pretrain.one_thread_ratio` where that run had more threads; 0 where no shipped card
    records it."""
    from ..models import is_shipped, shipped_card, shipped_models
    from ..pretrain import one_thread_minutes, one_thread_ratio

    ratio = one_thread_ratio([shipped_card(n) for n in shipped_models() if is_shipped(n)])[0]
    minutes = {}
    for m in zoo.models:
        run = (m.preset, m.run_seed(zoo.seed))
        if run in runs and run not in minutes and m.shipped and is_shipped(m.shipped):
            minutes[run] = one_thread_minutes(shipped_card(m.shipped), ratio)
    return {run: minutes.get(run, 0.0) for run in runs}


#: The command a side-by-side run executes in its own process: one :func:`ensure_pretrained` with a set number of
#: torch threads (argv: preset, seed, threads).
_RUN_ONE = ("import sys, torch; torch.set_num_threads(int(sys.argv[3])); "
            "from clipstudy.studies.zoo import ensure_pretrained; "
            "ensure_pretrained(sys.argv[1], int(sys.argv[2]), progress=False)")


def pretrain_zoo(zoo: Zoo, *, retrain: bool = False, jobs: int = 1, threads: int | None = None,
                 progress: bool = True, poll_seconds: float = 5.0) -> list[tuple[str, int]]:
    """Train ``zoo``'s unfinished pretraining runs (:func:`pretraining_runs`) to their last step and return them.

    ``jobs=1``: one after another in this process (what :func:`load_member` does on demand). ``jobs > 1``: that
    many runs side by side, each in its own process with ``threads`` torch threads (default: the CPU cores
    divided among the jobs, at least 1), the longest runs first (by their shipped cards' minutes: greedy
    longest-first scheduling, which keeps a long run from starting last). On a 2-core CPU two one-thread runs
    together make about 1.25x the image-caption pairs per second of one two-thread run, since a small model's
    step leaves a core idle part of the time (``benchmarks/pretrain_parallel.py`` measures it on the machine at hand); on a GPU keep ``jobs=1``.
    A side-by-side run writes its log next to its run folder (``<checkpoints>/pretrain/<preset>-seed<k>.log``);
    an interrupted retrain resumes every run from its last checkpoint. A run that fails raises after the runs
    already started have ended, with the end of its log."""
    import os
    import subprocess
    import sys
    import time

    from tqdm.auto import tqdm

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"jobs must be a positive whole number of runs trained side by side, got {jobs!r}")
    todo = [run for run in pretraining_runs(zoo, retrain) if not is_trained(*run)]
    if jobs > 1:  # longest first (by the shipped cards' minutes; zoo order among equals): a shorter makespan
        expected = expected_minutes(zoo, todo)
        todo.sort(key=lambda run: -expected[run])
    if jobs == 1 or len(todo) <= 1:
        for preset, seed in todo:
            ensure_pretrained(preset, seed, progress)
        return todo
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"threads must be a positive number of torch threads per run, got {threads!r}")
    waiting, running, failed = list(todo), {}, []
    bar = tqdm(total=len(todo), desc=f"pretrain zoo {zoo.name!r} ({jobs} runs side by side)", disable=not progress)
    while waiting or running:
        while waiting and len(running) < jobs:
            preset, seed = waiting.pop(0)
            log = preset_run_dir(preset, seed).with_suffix(".log")
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "w") as fh:
                proc = subprocess.Popen([sys.executable, "-c", _RUN_ONE, preset, str(seed), str(threads)],
                                        stdout=fh, stderr=subprocess.STDOUT)
            running[(preset, seed)] = (proc, log)
            bar.set_postfix_str(", ".join(f"{p}@{k}" for p, k in running))
        time.sleep(poll_seconds)
        for run, (proc, log) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[run]
            bar.update(1)
            if proc.returncode != 0:
                failed.append((run, proc.returncode, log))
    bar.close()
    if failed:
        (preset, seed), rc, log = failed[0]
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        others = f" ({len(failed) - 1} more failed, logs next to their run folders)" if len(failed) > 1 else ""
        raise RuntimeError(f"zoo {zoo.name!r}: pretraining {preset} at seed {seed} failed (exit code {rc}; log: "
                           f"{log}){others}; rerunning resumes it. End of its log:\n{tail}")
    return todo


@dataclass
class Member:
    """A zoo model ready for evaluation: the loaded CLIP model, the trained method of a derived model
    (``None`` for zero-shot models) and facts about its training (``info``)."""

    entry: ZooModel
    loaded: Any
    method: Any = None
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def scale(self) -> float:
        return float(self.method.scale) if self.method is not None else self.loaded.logit_scale

    def text_model(self):
        """The CLIP model whose text tower encodes captions (FLYP fine-tunes its own copy)."""
        return getattr(self.method, "model", None) or self.loaded.model


def load_member(zoo: Zoo, name: str, *, train=None, classnames=(), scale: str = "embedded", device: str = "cpu",
                progress: bool = True, retrain: bool = False, _bases: dict | None = None) -> Member:
    """Load (training on demand) zoo model ``name``. A preset model with a shipped run is loaded from the
    package unless ``retrain`` (then it is pretrained like any preset model: cached, resumable). Derived
    models need ``train`` (a :class:`~clipstudy.experiment.TrainSet` over ``classnames``); ``_bases`` memoises
    loaded base models."""
    from ..models import load_model

    entry = zoo.get(name)
    if entry.kind == "external":
        loaded = load_model(entry.model, entry.pretrained, device=device)
        return Member(entry, _named(loaded, name), info={"source": loaded.pretrained})
    if entry.kind == "preset":
        if entry.shipped and not retrain:
            return _shipped(zoo, entry, device)
        run_dir, card = ensure_pretrained(entry.preset, entry.run_seed(zoo.seed), progress)
        loaded = load_model(card["arch"], str(run_dir / "weights.safetensors"), device=device)
        return Member(entry, _named(loaded, name), info=_card_info(entry.preset, card, "trained here"))
    return _derived(zoo, entry, train, classnames, scale, device, progress, _bases, retrain)


def _card_info(preset: str, card: dict, source: str) -> dict:
    return {"preset": preset, "source": source, "train_minutes": card.get("train_minutes"),
            "steps": card.get("steps_done"), "seed": card.get("seed"),
            "card_accuracy": card.get("zeroshot_accuracy", {})}


def _shipped(zoo: Zoo, entry: ZooModel, device: str) -> Member:
    """A preset model read from its shipped run; an error says how to get it when it is not in this checkout
    or was shipped for another seed than the zoo's."""
    from ..errors import CheckpointError
    from ..models import load_model, shipped_card

    try:
        card = shipped_card(entry.shipped)
    except CheckpointError as exc:
        raise CheckpointError(f"zoo {zoo.name!r} model {entry.name!r}: {exc}, or retrain the zoo (notebook 04: "
                              "retrain_zoo=True)") from None
    seed = entry.run_seed(zoo.seed)
    if int(card.get("seed", 0)) != seed:
        raise ConfigError(f"zoo {zoo.name!r} model {entry.name!r}: the shipped {entry.shipped!r} is the run of seed "
                          f"{card.get('seed', 0)}, the model's seed is {seed}; retrain the zoo (retrain_zoo=True) "
                          "for another seed")
    loaded = load_model(entry.shipped, device=device)
    return Member(entry, _named(loaded, entry.name), info=_card_info(entry.preset, card, f"shipped {entry.shipped}"))


def _named(loaded, name: str):
    loaded.name = name
    return loaded


def _derived(zoo, entry, train, classnames, scale, device, progress, bases, retrain=False) -> Member:
    import time

    from ..experiment import cell_spec, checkpoint_path, get_recipe, train_method

    if train is None:
        raise ConfigError(f"zoo model {entry.name!r} is fine-tuned and needs a training set (the study's 'train')")
    bases = {} if bases is None else bases
    if entry.base not in bases:
        bases[entry.base] = load_member(zoo, entry.base, device=device, progress=progress, retrain=retrain)
    base = bases[entry.base]
    recipe = get_recipe(entry.recipe, scale, **entry.overrides())
    seed = entry.run_seed(zoo.seed)
    spec = cell_spec(base.loaded, recipe, train, seed, experiment="holistic-zoo", zoo_model=entry.name)
    t0 = time.time()
    method, history, _ = train_method(base.loaded, recipe, train, classnames, seed,
                                      checkpoint=checkpoint_path(spec), progress=progress)
    info = {"recipe": recipe.label, "steps": history[-1]["step"] if history else 0,
            "train_minutes": round((history[-1]["seconds"] if history else time.time() - t0) / 60, 2),
            "base": entry.base, "seed": seed}
    return Member(entry, base.loaded, method, info)


# --------------------------------------------------------------------------- the baseline family

@dataclass(frozen=True)
class BaselineFamily:
    """Supervised models trained on the ID classes' photos only at several step budgets: the family the
    effective-robustness lines are fitted on (Taori et al. 2020; the analogue of ImageNet-trained models).

    ``steps`` are the budgets (one model each, trained from scratch with its own schedule); ``recipe`` holds
    :class:`~clipstudy.experiment.Recipe` fields (batch size, optimiser, lr, ...) as sorted pairs; ``arch``
    is the image tower's architecture (empty: the zoo's base model's); ``method`` a registered method
    (``supervised``)."""

    name: str
    steps: tuple
    recipe: tuple = ()
    arch: str = ""
    method: str = "supervised"
    description: str = ""

    def model_name(self, steps: int) -> str:
        return f"{self.method}@{int(steps)}"

    def recipe_for(self, steps: int):
        """The :class:`~clipstudy.experiment.Recipe` of the budget ``steps`` (a fixed step count)."""
        from ..experiment import Recipe

        return Recipe(method=self.method, label=f"{self.name}:{self.model_name(steps)}", steps=int(steps),
                      **dict(self.recipe))


BASELINE_KEYS = ("steps", "recipe", "arch", "method", "description", "_doc")


def _baseline_table() -> dict:
    return {k: v for k, v in zoo_table().get("baselines", {}).items() if not k.startswith("_")}


def list_baselines() -> list[str]:
    return sorted(_baseline_table())


def load_baseline(name: str) -> BaselineFamily:
    """The baseline family ``name`` of ``zoo.json``'s ``baselines``, validated (errors list the valid
    names, keys and recipe fields)."""
    from ..experiment import Recipe
    from ..methods import list_methods
    from ..registry import UnknownNameError

    table = _baseline_table()
    if name not in table:
        raise UnknownNameError(f"unknown baseline family {name!r}; valid baselines: {', '.join(sorted(table))}")
    entry = dict(table[name])
    where = f"baseline {name!r}"
    unknown = sorted(set(entry) - set(BASELINE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys: {', '.join(BASELINE_KEYS[:-1])}")
    steps = entry.get("steps", [])
    if not steps or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in steps) \
            or len(set(steps)) != len(steps):
        raise ConfigError(f"{where}: steps must be distinct positive integers (one model per budget), got {steps!r}")
    recipe = dict(entry.get("recipe", {}))
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"method", "label", "steps"}
    bad = sorted(set(recipe) - fields)
    if bad:
        raise ConfigError(f"{where}: unknown recipe fields {bad}; valid: {', '.join(sorted(fields))}")
    method = entry.get("method", "supervised")
    if method not in list_methods():
        raise ConfigError(f"{where}: unknown method {method!r}; valid methods: {', '.join(list_methods())}")
    return BaselineFamily(name, tuple(sorted(steps)), tuple(sorted(recipe.items())), entry.get("arch", ""), method,
                          entry.get("description", ""))


def baseline_arch(zoo: Zoo, family: BaselineFamily) -> str:
    """The baseline's image-tower architecture: the family's ``arch``, else the zoo's base model's."""
    if family.arch:
        return family.arch
    base = zoo.get(zoo.base)
    if base.kind == "preset":
        from ..pretrain import PretrainConfig

        return PretrainConfig.from_preset(base.preset, seed=zoo.seed).arch
    if base.kind == "external":
        from ..models import shipped_models

        if base.model in shipped_models():  # a shipped model: its preset's architecture (no weights needed)
            from ..pretrain import PretrainConfig

            return PretrainConfig.from_preset(shipped_models()[base.model][0]).arch
        return base.model
    raise ConfigError(f"zoo {zoo.name!r}: the base model must be a preset or external model to give the baseline "
                      "family its architecture")


@dataclass(frozen=True)
class BaselineModel:
    """One model of the baseline family (a :class:`Member`'s ``entry``)."""

    name: str
    family: str
    steps: int
    arch: str
    factor: str = "baseline"
    kind: str = "baseline"
    zero_shot: bool = False


def load_baseline_member(zoo: Zoo, family: BaselineFamily, steps: int, *, train, classnames, device: str = "cpu",
                         progress: bool = True) -> Member:
    """The baseline model of budget ``steps``: built with seed ``zoo.seed`` (its random init, its batches)
    and trained through :func:`clipstudy.experiment.train_method` on ``train`` (the study's ID photos) with a
    checkpoint, so a finished model is read back and an interrupted one resumes."""
    import time

    from ..experiment import cell_spec, checkpoint_path, train_method
    from ..methods import build_method
    from ..models import load_model

    if train is None:
        raise ConfigError(f"baseline family {family.name!r} trains on the study's ID training set ('train'), "
                          "which this study has none of")
    arch = baseline_arch(zoo, family)
    seed = int(zoo.seed)
    loaded = load_model(arch, "random", device=device, seed=seed)  # architecture, preprocessing, logit scale
    recipe = family.recipe_for(steps)
    entry = BaselineModel(family.model_name(steps), family.name, int(steps), arch)
    loaded.name = entry.name
    spec = cell_spec(loaded, recipe, train, seed, experiment="holistic-baseline", baseline=family.name)
    method = build_method(family.method, loaded, classnames, seed=seed)
    t0 = time.time()
    method, history, _ = train_method(loaded, recipe, train, classnames, seed, checkpoint=checkpoint_path(spec),
                                      progress=progress, method=method)
    info = {"recipe": recipe.label, "steps": history[-1]["step"] if history else 0,
            "train_minutes": round((history[-1]["seconds"] if history else time.time() - t0) / 60, 2),
            "arch": arch}
    return Member(entry, loaded, method, info)
