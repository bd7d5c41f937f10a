"""Pretraining a small CLIP from scratch on the embedded world (``clipstudy pretrain``).

Presets are data (``data/resources/pretrain_presets.json``). A run writes into its own folder
(``<checkpoints>/pretrain/<preset>-seed<k>/``): ``state.pt`` (resumable training state, saved
every ``eval_every`` steps), ``weights.safetensors`` (fp16), ``card.json`` and ``card.md``.
``ship`` copies the weights and card of the ``embedded`` preset into the package.

The recipe (measured on a 2-core CPU while the suite was built; a ViT tower with free rotation learned
colours and backgrounds, not shapes): a convolutional image tower (open_clip's ModifiedResNet), class-focused
captions (half of them only "a {domain} of a {class}."), AdamW with warm-up and cosine decay, weight decay
0.1, initial temperature 0.07 (CLIP's).

Resuming never mixes configurations: ``state.pt`` stores the run's :class:`PretrainConfig` (under
``pretrain_config``), and a resumed run whose config differs in anything but :data:`RESUMABLE_CHANGES` is
refused with one error naming each differing field (old -> new). Every other field shapes the steps already
taken: ``steps`` sets the cosine schedule's length (extending a run would have trained its first steps
under another schedule), ``batch_size``, ``n_train``, ``world`` and ``seed`` the data, ``eval_every`` and
``eval_per_domain`` the training curve already recorded. A ``state.pt`` written before the config was
stored cannot be verified and is refused too. Start fresh with ``--restart`` (``resume=False``), by
deleting ``state.pt``, or by writing to another ``--out`` folder.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths
from .data.world_data import MAX_IMAGES
from .errors import CheckpointError, ConfigError
from .io import read_json, write_json, write_text

#: Most training images: each epoch holds a shuffled permutation of all of them (8 bytes each).
MAX_TRAIN_IMAGES = 10_000_000


@functools.lru_cache(maxsize=None)
def presets() -> dict:
    """The presets of ``pretrain_presets.json``, each with its ``extends`` resolved (see :func:`resolve_preset`)."""
    raw = read_json(paths.resources_dir() / "pretrain_presets.json")
    table = {k: v for k, v in raw.items() if not k.startswith("_")}
    return {k: resolve_preset(table, k) for k in table}


def resolve_preset(table: dict, name: str) -> dict:
    """Preset ``name`` of ``table`` with ``"extends": "<parent>"`` resolved
    (:func:`clipstudy.registry.resolve_extends`): the parent's fields (itself resolved) updated with the preset's
    own; ``world`` is merged one level deep (the preset's world keys replace the parent's, the others are kept),
    so a preset that varies one factor of another names only that factor. A preset's description is its own."""
    from .registry import resolve_extends

    def merge(parent: dict, own: dict) -> dict:
        merged = {k: v for k, v in parent.items() if k != "description"}
        world = {**merged.get("world", {}), **own.pop("world", {})}
        merged.update(own)
        if world:
            merged["world"] = world
        return merged

    return resolve_extends(table, name, "pretraining preset", "presets", merge, unknown=ConfigError)


@dataclass(frozen=True)
class PretrainConfig:
    arch: str
    loss: str = "clip"
    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1
    n_train: int = 400_000
    precision: str = "bf16"
    seed: int = 0
    max_minutes: float | None = None
    eval_every: int = 250
    eval_per_domain: int = 200
    card_eval_n: int | None = None  # images per domain of the model card's evaluation (None: see model_card)
    texture_fraction: float = 0.0  # share of every batch that is texture-only images (see world_batches)
    card_suite: str = ""  # dataset suite whose zero-shot calibration the model card reports ("" = none)
    scale_fit: str = ""  # final logit scale: "" learned, "pretrain-val" fitted (clipstudy.evaluate.SCALE_FITS)
    scale_fit_n: int = 3000  # images of the held-out pretraining stream the scale is fitted on
    world: tuple = ()  # WorldConfig overrides as (key, value) pairs
    preset: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        _check_int("steps", self.steps, 1)
        _check_int("n_train", self.n_train, 1, MAX_TRAIN_IMAGES)
        _check_int("batch_size", self.batch_size, 1, self.n_train, "n_train")
        _check_int("warmup_steps", self.warmup_steps, 0)
        _check_int("seed", self.seed, 0)
        _check_int("eval_every", self.eval_every, 1)
        _check_int("eval_per_domain", self.eval_per_domain, 1, MAX_IMAGES)
        if self.card_eval_n is not None:
            _check_int("card_eval_n", self.card_eval_n, 1, MAX_IMAGES)
        _check_positive("lr", self.lr)
        if self.max_minutes is not None:
            _check_positive("max_minutes", self.max_minutes, "minutes; None for no time limit", finite=False)
        if self.card_suite:
            from .data.world_suite import SUITES

            if self.card_suite not in SUITES:
                raise ConfigError(f"unknown card_suite {self.card_suite!r}; valid: '' (none), {', '.join(SUITES)}")
        from .evaluate import SCALE_FITS

        if self.scale_fit not in SCALE_FITS:
            raise ConfigError(f"unknown scale_fit {self.scale_fit!r}; valid: {', '.join(map(repr, SCALE_FITS))}")
        _check_int("scale_fit_n", self.scale_fit_n, 1, MAX_IMAGES)
        if not (_is_number(self.texture_fraction) and 0 <= self.texture_fraction < 1):
            raise ConfigError(f"texture_fraction must be a number in [0, 1), got {self.texture_fraction!r}")
        if self.texture_fraction and self.batch_size < 2:
            raise ConfigError(f"texture_fraction > 0 needs batch_size >= 2 (texture and object images), "
                              f"got {self.batch_size}")
        if not (_is_number(self.weight_decay) and 0 <= self.weight_decay < math.inf):
            raise ConfigError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        from .train import PRECISIONS

        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        archs = sorted(f.stem for f in paths.model_configs_dir().glob("*.json"))
        if self.arch not in archs:
            raise ConfigError(f"unknown pretraining architecture {self.arch!r}; valid: {', '.join(archs)}")
        try:
            self.world_config()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid world overrides {dict(self.world)}: {exc}") from None

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "PretrainConfig":
        table = presets()
        if name not in table:
            raise ConfigError(f"unknown pretraining preset {name!r}; valid presets: {', '.join(sorted(table))}")
        values = dict(table[name], preset=name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["world"] = tuple(sorted(dict(values.get("world", {})).items()))
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"preset {name!r} has unknown keys {sorted(unknown)}")
        return cls(**values)

    def world_config(self, split: str = "train", n: int | None = None, **kw):
        from .world import WorldConfig

        base = dict(seed=self.seed, split=split, n=n or self.n_train, image_size=self.image_size)
        base.update(dict(self.world))
        base.update(kw)
        return WorldConfig(**base)

    @property
    def texture_batch(self) -> int:
        """Texture-only images per batch: ``round(texture_fraction * batch_size)``, at least one when the
        fraction is > 0 and at most ``batch_size - 1`` (0 without textures)."""
        if not self.texture_fraction:
            return 0
        return min(self.batch_size - 1, max(1, int(round(self.texture_fraction * self.batch_size))))

    @property
    def image_size(self) -> int:
        return int(read_json(paths.model_configs_dir() / f"{self.arch}.json")["vision_cfg"]["image_size"])

    def run_dir(self) -> Path:
        return paths.checkpoints_dir() / "pretrain" / f"{self.preset or self.arch}-seed{self.seed}"


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(name: str, value, low: int, high: int | None = None, high_name: str = "") -> None:
    """A ConfigError naming ``name``, its value and the valid range unless ``value`` is an int in it."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and value >= low and (high is None or value <= high):
        return
    valid = f">= {low}" if high is None else f"in {low}..{high_name} ({high})" if high_name else f"in {low}..{high:,}"
    raise ConfigError(f"{name} must be an integer {valid}, got {value!r}")


def _check_positive(name: str, value, unit: str = "", finite: bool = True) -> None:
    """A ConfigError naming ``name`` and its value unless ``value`` is a number > 0 (and finite if asked)."""
    if not (_is_number(value) and value > 0 and (math.isfinite(value) or not finite)):  # NaN fails value > 0
        kind = "a finite number" if finite else "a number"
        raise ConfigError(f"{name} must be {kind} > 0{f' ({unit})' if unit else ''}, got {value!r}")


#: Fields a resumed run may change: when training stops, how the finished model's logit scale is set (after
#: the last step; ``state.pt`` keeps the learned one) and how it is described and evaluated for its card.
#: None of them touches the steps already taken or the curve already recorded.
RESUMABLE_CHANGES = ("max_minutes", "card_eval_n", "card_suite", "scale_fit", "scale_fit_n", "description")


def config_record(cfg: PretrainConfig) -> dict:
    """``cfg`` as plain JSON values (tuples as lists): what ``state.pt`` stores and resuming compares."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_changes(stored: dict, cfg: PretrainConfig) -> dict[str, tuple]:
    """``{field: (stored, new)}`` for each field that differs, apart from :data:`RESUMABLE_CHANGES`."""
    new = config_record(cfg)
    missing = "<not stored>"
    # a field added after a state was written reads as its default there (the run was trained without it)
    defaults = {f.name: f.default for f in dataclasses.fields(PretrainConfig)
                if f.default is not dataclasses.MISSING and f.name not in stored}
    stored = {**json.loads(json.dumps(defaults)), **stored}
    return {k: (stored.get(k, missing), new.get(k, missing)) for k in [*new, *(k for k in stored if k not in new)]
            if k not in RESUMABLE_CHANGES and stored.get(k, missing) != new.get(k, missing)}


def check_resumable(state: Path, cfg: PretrainConfig) -> None:
    """Refuse to resume ``state`` (a ``state.pt``) under a config other than the one it was trained with.

    One error line names every differing field as ``old -> new`` (fields of :data:`RESUMABLE_CHANGES`
    may differ) and says how to start fresh; a state without a stored config cannot be verified and
    is refused the same way."""
    import torch

    fresh = "to start fresh pass --restart (pretrain(..., resume=False)) or delete it, or write to another --out folder"
    try:
        blob = torch.load(state, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one line
        why = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"cannot resume from {state} ({type(exc).__name__}: {why}); {fresh}") from None
    stored = blob.get("pretrain_config") if isinstance(blob, dict) else None
    if not isinstance(stored, dict):
        raise CheckpointError(f"cannot verify that {state} was trained with this config (it was saved without "
                              f"one, by an older clipstudy); {fresh}")
    changes = config_changes(stored, cfg)
    if changes:
        diff = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())
        raise ConfigError(f"{state} was trained with another config ({diff}); resuming would mix the two; {fresh}")


def images_to_tensor(batch, mean, std):
    """uint8 ``[B, H, W, 3]`` -> normalised float ``[B, 3, H, W]`` (what the model's preprocess does)."""
    import torch

    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


#: Most bytes of rendered training images :func:`world_batches` keeps per stream to reuse in later epochs
#: (2 GiB: up to about 175k images of 64 px; a larger training set is rendered anew in every epoch).
RENDER_CACHE_BYTES = 2 << 30


class RenderCache:
    """A dataset's rendered images by index, kept for the later epochs of a small training set: a world image
    is a function of its index, so a kept image is the one rendering would give again, and a training set of
    25k images seen 18 times is rendered once. Off (every batch rendered) when ``n`` images would need more than
    ``max_bytes``. One writer at a time (the batch stream's prefetch thread)."""

    def __init__(self, ds, n: int, size: int, max_bytes: int | None = None):
        self.ds = ds
        limit = RENDER_CACHE_BYTES if max_bytes is None else max_bytes
        self.enabled = n * size * size * 3 <= limit
        self.images = np.empty((n, size, size, 3), np.uint8) if self.enabled else None
        self.filled = np.zeros(n, bool) if self.enabled else None

    def get_batch(self, indices) -> np.ndarray:
        if not self.enabled:
            return self.ds.get_batch(list(indices))
        idx = np.asarray(indices, dtype=np.int64)
        todo = np.unique(idx[~self.filled[idx]])
        if len(todo):
            self.images[todo] = self.ds.get_batch(todo.tolist())
            self.filled[todo] = True
        return self.images[idx]


def world_batches(cfg: PretrainConfig, tokenizer, mean, std):
    """``step -> {"images", "tokens"}``: shuffled epochs over ``n_train`` world images and captions (rendered
    once and kept for later epochs when they fit :data:`RENDER_CACHE_BYTES`, :class:`RenderCache`).

    With ``texture_fraction`` > 0, :attr:`PretrainConfig.texture_batch` images of every batch come from a
    second stream of ``n_train`` texture-only images (pattern and background fields with their captions, in
    the domains of the mixture that render them), with its own shuffled epochs: pretraining then sees
    textures and scenes without an object, as CLIP's web data holds texture and scene photos."""
    from .batches import epoch_batches
    from .world import WorldDataset, sample_factors

    parts = []
    n_tex = cfg.texture_batch
    wcfg = cfg.world_config()
    size = cfg.image_size
    parts.append((wcfg, RenderCache(WorldDataset(wcfg), cfg.n_train, size),
                  epoch_batches(cfg.n_train, cfg.batch_size - n_tex, cfg.seed, drop_last=True)))
    if n_tex:
        tcfg = cfg.world_config(kind="texture_only")
        parts.append((tcfg, RenderCache(WorldDataset(tcfg), cfg.n_train, size),
                      epoch_batches(cfg.n_train, n_tex, cfg.seed + 1, drop_last=True)))

    def batch(step: int) -> dict:
        images, captions = [], []
        for wc, ds, order in parts:
            idx = order(step).tolist()
            captions += [sample_factors(wc, i)["caption"] for i in idx]
            images.append(ds.get_batch(idx))
        return {"images": images_to_tensor(np.concatenate(images), mean, std), "tokens": tokenizer(captions)}

    return batch


def fast_zeroshot_eval(loaded, cfg: PretrainConfig, domains=None) -> dict[str, float]:
    """Photo-prompt zero-shot accuracy per domain on a small held-out set (progress monitor only;
    the model card uses :func:`clipstudy.evaluate.zeroshot_by_domain`). The model is evaluated in eval mode and
    left in the mode it was in: a monitor must not change the run (in training mode a BatchNorm tower would
    normalise each one-domain batch by its own statistics and fold the held-out images into its running
    statistics). Runs trained before this was so (every shipped model) evaluated in training mode."""
    import torch
    import torch.nn.functional as F

    from .features import encode_images
    from .prompts import zeroshot_head
    from .world import CLASS_NAMES, DOMAINS, WorldDataset

    was = loaded.model.training
    loaded.model.eval()
    try:
        mean, std = _mean_std(loaded)
        head = zeroshot_head(loaded, CLASS_NAMES, "photo")
        out = {}
        for d in domains or DOMAINS:
            ds = WorldDataset(cfg.world_config("val", cfg.eval_per_domain, domains=((d, 1.0),),
                                               fixed=(("domain", d),)))
            x = images_to_tensor(ds.get_batch(range(len(ds))), mean, std)
            with torch.no_grad():
                f = F.normalize(encode_images(loaded.model, x), dim=-1)
            out[d] = float(((f @ head.t()).argmax(1).numpy() == ds.targets).mean())
    finally:
        loaded.model.train(was)
    return out


def _mean_std(loaded):
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    norm = [t for t in getattr(loaded.preprocess, "transforms", []) if type(t).__name__ == "Normalize"]
    return (tuple(norm[0].mean), tuple(norm[0].std)) if norm else (OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)


def pretraining_setup(cfg: PretrainConfig):
    """``(loaded model, contrastive method, step -> batch)`` of a fresh run of ``cfg``: the architecture with
    random weights from ``cfg.seed``, the method with ``cfg.loss``, and :func:`world_batches` of the preset's
    stream (what :func:`pretrain` trains and ``benchmarks/pretrain_throughput.py`` times)."""
    from .methods import build_method
    from .models import load_model

    loaded = load_model(cfg.arch, "random", seed=cfg.seed)
    method = build_method("contrastive", loaded, (), loss=cfg.loss)
    return loaded, method, world_batches(cfg, loaded.tokenizer, *_mean_std(loaded))


def pretrain(cfg: PretrainConfig, *, out_dir: str | Path | None = None, progress: bool = True,
             resume: bool = True) -> dict:
    """Train, evaluate and write the run folder; returns the model card as a dict.

    An existing ``state.pt`` in the folder is resumed (``resume=True``) only if it was trained with ``cfg``
    (see :func:`check_resumable`), else deleted first."""
    from .models import save_weights
    from .batches import prefetched
    from .train import TrainConfig, fit

    out = paths.require_writable(Path(out_dir) if out_dir else cfg.run_dir(),
                                 "choose a writable --out folder" if out_dir else paths.writable_hint("checkpoints"))
    if resume and finished_run(out, cfg):  # nothing to train or measure: the card is this run's
        return read_json(out / "card.json")
    state = out / "state.pt"
    if not resume and state.exists():
        state.unlink()
    if state.exists():
        check_resumable(state, cfg)
    loaded, method, batch_fn = pretraining_setup(cfg)
    tcfg = TrainConfig(steps=cfg.steps, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps,
                       precision=cfg.precision, seed=cfg.seed, log_every=cfg.eval_every,
                       checkpoint_every=cfg.eval_every, max_minutes=cfg.max_minutes)
    monitor = lambda m, step, hist: {f"acc_{d}": a for d, a in fast_zeroshot_eval(loaded, cfg, ("photo", "sketch")).items()}  # noqa: E731
    batches = prefetched(batch_fn)
    history = fit(method, batches, tcfg, checkpoint=state, checkpoint_extra={"pretrain_config": config_record(cfg)},
                  callbacks=[monitor], progress=progress, desc=f"pretrain {cfg.preset or cfg.arch}")
    loaded.model.eval()
    scale_fit = finish_scale(loaded, cfg, progress=progress)
    card = model_card(loaded, cfg, history, _trained_seconds(state), progress=progress)
    if scale_fit:
        card["scale_fit"] = scale_fit
    save_weights(loaded.model, out / "weights.safetensors", metadata={"arch": cfg.arch, "preset": cfg.preset})
    write_json(out / "card.json", card)
    write_text(out / "card.md", card_markdown(card))
    return card


#: Fields in which a finished run's card may differ from a config and still be that config's run: how long the
#: run was allowed to take and how it is described, neither of which changes the model or its card's numbers.
FINISHED_IGNORES = ("max_minutes", "description")


def finished_run(out: str | Path, cfg: PretrainConfig) -> bool:
    """Whether folder ``out`` holds a finished run of ``cfg``: its weights, and a card that took every step of
    ``cfg`` and whose config is ``cfg``'s up to :data:`FINISHED_IGNORES` (a run stopped by its time limit, or
    a card measured under other settings, e.g. another ``card_suite``, is not)."""
    out = Path(out)
    if not ((out / "weights.safetensors").exists() and (out / "card.json").exists()):
        return False
    card = read_json(out / "card.json")
    if card.get("steps_done", 0) < cfg.steps:
        return False
    stored = json.loads(json.dumps(card.get("config", {})))
    new = config_record(cfg)
    return {k: v for k, v in stored.items() if k not in FINISHED_IGNORES} == \
        {k: v for k, v in new.items() if k not in FINISHED_IGNORES}


def finish_scale(loaded, cfg: PretrainConfig, progress: bool = False) -> dict:
    """Set the finished model's logit scale as ``cfg.scale_fit`` asks; returns the fit's record (``{}`` when
    the learned scale is kept). ``"pretrain-val"``: :func:`clipstudy.evaluate.fit_pretraining_scale` on
    ``scale_fit_n`` images of the pretraining stream's validation split (seed ``cfg.seed + 1000``)."""
    if not cfg.scale_fit:
        return {}
    from .evaluate import fit_pretraining_scale, set_logit_scale

    fit = fit_pretraining_scale(loaded, cfg.world_config("val", cfg.scale_fit_n, seed=cfg.seed + 1000),
                                progress=progress)
    set_logit_scale(loaded, fit["fitted"])
    return {"method": cfg.scale_fit, **fit}


def _trained_seconds(state: Path) -> float:
    """Training time of the whole run, over every session that resumed it (what ``fit`` stored last)."""
    import torch

    return float(torch.load(state, map_location="cpu", weights_only=False)["seconds"])


#: The world checks of a model card: photo zero-shot accuracy over all world classes at least
#: ``WORLD_CHECK_PHOTO_MIN`` and every other domain at least ``WORLD_CHECK_GAP`` below photo, so the shifted
#: domains are distribution shifts for the studies (notebooks 03 and 04 evaluate on them).
WORLD_CHECK_PHOTO_MIN = 0.75
WORLD_CHECK_GAP = 0.10


def world_checks(zeroshot_accuracy: dict, photo_min: float = WORLD_CHECK_PHOTO_MIN,
                 gap: float = WORLD_CHECK_GAP) -> list[dict]:
    """The card's world checks on ``{domain: zero-shot accuracy}`` (photo prompt, all world classes): one
    row per check with the measured value, the bound and whether it holds."""
    if "photo" not in zeroshot_accuracy:
        raise ValueError(f"world checks need the photo domain's accuracy; got {sorted(zeroshot_accuracy)}")
    photo = float(zeroshot_accuracy["photo"])
    rows = [{"check": f"photo accuracy >= {photo_min:.0%}", "value": round(photo, 4), "bound": photo_min,
             "holds": photo >= photo_min}]
    for domain, acc in zeroshot_accuracy.items():
        if domain != "photo":
            rows.append({"check": f"{domain} at least {gap * 100:.0f} points below photo",
                         "value": round(photo - float(acc), 4), "bound": gap,
                         "holds": photo - float(acc) >= gap - 1e-9})
    return rows


def training_spans(history: list, join_seconds: float = 60.0) -> list[list[float]]:
    """The wall-clock spans ``[start, end]`` (unix seconds) in which a run trained, from its logged rows (each
    row's wall time and the training seconds since the row before it; rows written before rows had a wall
    time are skipped). Spans less than ``join_seconds`` apart are one: a session that resumed the run later
    starts a new span. Runs trained side by side overlap in time, which the zoo card counts once."""
    spans: list[list[float]] = []
    before = 0.0
    for row in history:
        seconds = float(row.get("seconds", 0.0))
        if "time" in row:
            end = float(row["time"])
            start = end - max(0.0, seconds - before)
            if spans and start - spans[-1][1] <= join_seconds:
                spans[-1][1] = end
            else:
                spans.append([start, end])
        before = seconds
    return [[round(a, 1), round(b, 1)] for a, b in spans]


def wall_minutes(cards: list[dict]) -> float:
    """Minutes of wall time the runs of ``cards`` took together: the length of the union of their
    :func:`training_spans` (runs trained side by side count once), plus the ``train_minutes`` of cards that
    recorded no spans (trained before cards had them: counted as if alone)."""
    spans = sorted(tuple(s) for c in cards for s in c.get("trained_during") or ())
    total, end = 0.0, -math.inf
    for a, b in spans:
        if b > end:
            total += b - max(a, end)
            end = b
    alone = sum(float(c["train_minutes"]) for c in cards if not c.get("trained_during"))
    return total / 60 + alone


def pool_minutes(minutes: list[float], jobs: int) -> float:
    """Minutes of wall time runs lasting ``minutes`` take when started in that order on ``jobs`` slots, each
    run starting as soon as a slot frees (how :func:`clipstudy.studies.zoo.pretrain_zoo` schedules a zoo's
    runs side by side): the makespan of greedy list scheduling."""
    _check_int("jobs", jobs, 1)
    free = [0.0] * jobs  # the time each slot frees
    for m in minutes:
        if not (_is_number(m) and 0 <= m < math.inf):
            raise ConfigError(f"run minutes must be finite numbers >= 0, got {m!r}")
        i = min(range(jobs), key=free.__getitem__)
        free[i] += float(m)
    return max(free)


def one_thread_ratio(cards: list[dict]) -> tuple[float | None, str]:
    """How much longer a run takes with one torch thread (beside another run) than with more: the ratio of the
    mean minutes of one-thread runs to the mean minutes of other runs of the same preset, over the first preset
    of ``cards`` that has both; ``(None, "")`` when none has. Returns the ratio and which runs it came from."""
    by_preset: dict[str, tuple[list, list]] = {}
    for c in cards:
        one, more = by_preset.setdefault(c.get("preset", ""), ([], []))
        (one if c.get("torch_threads") == 1 else more).append(c)
    for preset, (one, more) in by_preset.items():
        if one and more:
            mean = lambda cs: sum(float(c["train_minutes"]) for c in cs) / len(cs)  # noqa: E731
            return mean(one) / mean(more), (f"preset `{preset}`'s one-thread run{'s' if len(one) > 1 else ''} "
                                            f"to its run{'s' if len(more) > 1 else ''} with more threads")
    return None, ""


def one_thread_minutes(card: dict, ratio: float | None) -> float:
    """A card's training minutes as a one-thread run: as recorded when it ran with one torch thread, else scaled
    by ``ratio`` (:func:`one_thread_ratio`; unscaled when there is none)."""
    return float(card.get("train_minutes") or 0.0) * (1.0 if card.get("torch_threads") == 1 else ratio or 1.0)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def model_card(loaded, cfg: PretrainConfig, history: list, seconds: float, progress: bool = True) -> dict:
    """Measured facts about a pretrained model: zero-shot accuracy per domain and per factor value
    (photo prompt, all world classes), shape bias on cue-conflict images, accuracy under each
    corruption at severity 3, the logit scale, zero-shot calibration per domain (ECE and mean confidence at
    the model's own scale) and, with ``card_suite`` set, on every dataset of that suite with its own prompt
    (base, new and all classes: :func:`clipstudy.evaluate.suite_zeroshot`). ``cfg.card_eval_n`` sets the evaluation size (images
    per domain; half of it per corruption; the suite's test splits keep their size unless it is set); by
    default ``eval_per_domain`` for runs of at most 100 steps, else at least 1000."""
    from .evaluate import (accuracy_by_factor, corruption_accuracy, shape_bias_on_world, suite_zeroshot,
                           zeroshot_by_domain, zeroshot_calibration)

    n = cfg.card_eval_n or (cfg.eval_per_domain if cfg.steps <= 100 else max(cfg.eval_per_domain, 1000))
    kw = dict(seed=cfg.seed, progress=progress, cache=False)
    results = zeroshot_by_domain(loaded, "world", n=n, **kw)
    factors = accuracy_by_factor(results["photo"])
    scale = float(loaded.logit_scale)
    small = cfg.card_eval_n or (cfg.eval_per_domain if cfg.steps <= 100 else None)
    last = history[-1] if history else {}
    return {
        "arch": cfg.arch, "preset": cfg.preset, "seed": cfg.seed, "loss": cfg.loss,
        "config": dataclasses.asdict(cfg), "steps_done": last.get("step", 0),
        "train_minutes": round(seconds / 60, 2), "final_loss": last.get("loss"),
        "pairs_per_second": round(last.get("step", 0) * cfg.batch_size / seconds, 1) if seconds > 0 else None,
        "torch_threads": _torch_threads(), "trained_during": training_spans(history),
        "zeroshot_prompt": "a photo of a {}.",
        "zeroshot_accuracy": {d: round(r.accuracy, 4) for d, r in results.items()},
        "num_classes": len(next(iter(results.values())).classnames),
        "logit_scale": round(scale, 3),
        "zeroshot_calibration": {d: zeroshot_calibration(r, scale) for d, r in results.items()},
        "suite_zeroshot": suite_zeroshot(loaded, cfg.card_suite, n=small, seed=cfg.seed, progress=progress,
                                         cache=False) if cfg.card_suite else {},
        "photo_accuracy_by_factor": {f: {r.value: round(r.accuracy, 4) for r in g.itertuples()}
                                     for f, g in factors.groupby("factor", sort=False)},
        "shape_bias": {k: round(v, 4) for k, v in shape_bias_on_world(loaded, n=n, **kw).items()},
        "corruption_accuracy_severity3": {r["corruption"]: round(r["accuracy"], 4)
                                          for r in corruption_accuracy(loaded, n=max(n // 2, 16), **kw)},
        "history": history,
    }


def card_markdown(card: dict) -> str:
    chance = 1 / card["num_classes"]
    curve = "\n".join(
        f"| {h['step']} | {h['seconds'] / 60:.1f} | {h.get('loss', float('nan')):.3f} | "
        f"{h.get('acc_photo', float('nan')):.1%} | {h.get('acc_sketch', float('nan')):.1%} |"
        for h in card["history"]
    )
    factor_rows = "\n".join(f"| {f} | " + ", ".join(f"{v} {a:.0%}" for v, a in vals.items()) + " |"
                            for f, vals in card["photo_accuracy_by_factor"].items())
    corr_rows = "\n".join(f"| {c} | {a:.1%} |" for c, a in card["corruption_accuracy_severity3"].items())
    calib = card.get("zeroshot_calibration", {})
    rows = "\n".join(f"| {d} | {a:.1%} | " + (f"{calib[d]['confidence']:.1%} | {calib[d]['ece']:.1%} |"
                                             if d in calib else "- | - |")
                     for d, a in card["zeroshot_accuracy"].items())
    checks = "\n".join(f"| {c['check']} | {c['value']:.1%} | {'yes' if c['holds'] else '**no**'} |"
                       for c in world_checks(card["zeroshot_accuracy"]))
    suite = card.get("suite_zeroshot", {})
    suite_rows = "\n".join(
        f"| {name} | " + " | ".join(f"{g[k]:.1%}" for grp in ("base", "new", "all") for g in [r[grp]]
                                   for k in ("accuracy", "confidence", "ece")) + " |"
        for name, r in suite.items())
    suite_part = f"""
## Zero-shot calibration on the world suite (each dataset's own prompt, test split)

Softmax at the model's logit scale ({card.get('logit_scale', float('nan')):.2f}) over a dataset's base classes
(images of base classes), new classes, or all classes; ECE with 10 equal-width bins (DAC's convention).

| dataset | base acc | base conf | base ECE | new acc | new conf | new ECE | all acc | all conf | all ECE |
|---|---|---|---|---|---|---|---|---|---|
{suite_rows}
""" if suite else ""
    sb = card["shape_bias"]
    fit = card.get("scale_fit") or {}
    scale_line = (f"""
Logit scale {card.get('logit_scale', float('nan')):.2f}: the contrastive loss learned {fit['learned']:.2f}; the
final scale was fitted after training ({fit['method']}: the NLL-optimal zero-shot scale on {fit['n']:,} held-out
images of the pretraining distribution, each domain with its own caption prompt, over all world classes;
NLL {fit['nll_learned']:.3f} at the learned scale, {fit['nll_fitted']:.3f} at the fitted one). No downstream
dataset was used.
""" if fit else "")
    return f"""# Model card: `{card['preset'] or card['arch']}`

Contrastive ({card['loss']}) pretraining from scratch on the clipstudy world, architecture
`{card['arch']}`, seed {card['seed']}, {card['steps_done']} steps in {card['train_minutes']} minutes
on this machine's CPU. Reproduce with `clipstudy pretrain --preset {card['preset']} --seed {card['seed']}`.
{scale_line}
## Zero-shot top-1 accuracy per domain

Prompt "{card['zeroshot_prompt']}" over all {card['num_classes']} world classes (chance {chance:.1%}),
on the world's test split; mean confidence and ECE (10 bins) at the model's logit scale.

| domain | accuracy | mean confidence | ECE |
|---|---|---|---|
{rows}

World checks (a shipped model keeps them; `clipstudy.pretrain.world_checks`):

| check | measured | holds |
|---|---|---|
{checks}
{suite_part}
## Zero-shot accuracy per factor value (photo domain)

| factor | accuracy per value |
|---|---|
{factor_rows}

## Shape bias (cue-conflict images: shape of one class, typical texture of another)

shape bias {sb['shape_bias']:.2f} — {sb['shape_decisions']:.1%} of the images classified as their shape class,
{sb['texture_decisions']:.1%} as their texture class.

## Accuracy under corruptions (severity 3, photo domain)

| corruption | accuracy |
|---|---|
{corr_rows}

## Training curve (held-out validation images, photo prompt)

| step | minutes | loss | photo | sketch |
|---|---|---|---|---|
{curve}

## Configuration

```
{chr(10).join(f"{k}: {v}" for k, v in card['config'].items())}
```
"""


def ship(run_dir: str | Path) -> Path:
    """Copy a finished run's weights and card into the package as the shipped model(s) of its preset and seed
    (:func:`clipstudy.models.shipped_models`): ``embedded`` into ``assets/``, the zoo's runs into
    ``assets/zoo/``, whose markdown card (:func:`zoo_card_markdown`) is rewritten from every shipped zoo card.
    The card records :func:`ship_check` on the copied weights. The weights are replaced atomically. A run that
    no shipped model stands for is refused, listing the shipped runs."""
    from .models import EMBEDDED, load_model, shipped_files, shipped_runs

    run_dir = Path(run_dir)
    card = read_json(run_dir / "card.json")
    preset, seed = card.get("preset", ""), int(card.get("seed", 0))
    if (preset, seed) not in shipped_runs():
        raise ConfigError(f"the run of preset {preset!r} at seed {seed} ({run_dir}) is not shipped; shipped runs: "
                          + ", ".join(f"{p} (seed {k})" for p, k in shipped_runs()))
    weights, meta, markdown = shipped_files(preset, seed)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_name(weights.name + ".tmp")
    shutil.copyfile(run_dir / "weights.safetensors", tmp)
    tmp.replace(weights)
    check = ship_check(load_model(card["arch"], str(weights)), seed)
    write_json(meta, {**{k: v for k, v in card.items() if k != "history"}, "ship_check": check})
    if (preset, seed) == (EMBEDDED, 0):
        shutil.copyfile(run_dir / "card.md", markdown)
    zoo_runs = [r for r in shipped_runs() if r != (EMBEDDED, 0)]
    if zoo_runs:
        write_text(shipped_files(*zoo_runs[0])[2], zoo_card_markdown())
    return weights


def ship_check(loaded, seed: int, n: int = 200) -> dict:
    """A small fixed evaluation that a shipped card records and the tests recompute from the shipped weights:
    zero-shot accuracy with "a photo of a {}." over all world classes on the first ``n`` photos of the world's
    test split at the run's ``seed`` (fp32, as :func:`clipstudy.models.load_model` loads a shipped model)."""
    from .evaluate import zeroshot_by_domain

    r = zeroshot_by_domain(loaded, "world", domains=("photo",), templates="photo", n=n, seed=seed, progress=False,
                           cache=False)["photo"]
    correct = int((r.predictions == r.labels).sum())
    return {"domain": "photo", "split": "test", "n": n, "seed": seed, "templates": "photo", "correct": correct,
            "accuracy": round(correct / n, 4)}


#: What a shipped zoo member must reach (issue: the zoo at the embedded model's quality): photo zero-shot
#: accuracy over all world classes at least ``ZOO_CHECK_PHOTO_MIN``, every other domain at least
#: ``ZOO_CHECK_CHANCE_X`` times chance.
ZOO_CHECK_PHOTO_MIN = 0.65
ZOO_CHECK_CHANCE_X = 3.0


def zoo_checks(zeroshot_accuracy: dict, num_classes: int, photo_min: float = ZOO_CHECK_PHOTO_MIN,
               chance_x: float = ZOO_CHECK_CHANCE_X) -> list[dict]:
    """The zoo's checks on ``{domain: zero-shot accuracy}`` over ``num_classes`` classes: one row per check with
    the measured value, the bound and whether it holds."""
    if "photo" not in zeroshot_accuracy:
        raise ValueError(f"zoo checks need the photo domain's accuracy; got {sorted(zeroshot_accuracy)}")
    floor = chance_x / num_classes
    rows = [{"check": f"photo accuracy >= {photo_min:.0%}", "value": round(float(zeroshot_accuracy["photo"]), 4),
             "bound": photo_min, "holds": float(zeroshot_accuracy["photo"]) >= photo_min}]
    rows += [{"check": f"{d} accuracy >= {chance_x:g}x chance ({floor:.1%})", "value": round(float(a), 4),
              "bound": round(floor, 4), "holds": float(a) >= floor}
             for d, a in zeroshot_accuracy.items() if d != "photo"]
    return rows


def zoo_card_markdown() -> str:
    """The zoo's model card: one row per shipped ``zoo-*`` model (its preset, seed, steps, training minutes and
    pairs/s, per-domain zero-shot accuracy, shape bias, logit scale, the zoo checks), read from the shipped
    cards; members not shipped in this checkout are listed as such."""
    from .models import is_shipped, shipped_card, shipped_files, shipped_models

    names = [n for n in shipped_models() if n.startswith("zoo-")]
    domains = ("photo", "painting", "clipart", "sketch", "infograph")
    head = ("| model | preset | seed | steps | minutes | pairs/s | threads | " + " | ".join(domains)
            + " | shape bias | logit scale | zoo checks |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    shipped = {n: shipped_card(n) for n in names if is_shipped(n)}  # each card read once
    missing = [n for n in names if n not in shipped]
    for name, c in shipped.items():
        acc = c["zeroshot_accuracy"]
        checks = zoo_checks(acc, c["num_classes"])
        held = "hold" if all(r["holds"] for r in checks) else "**fail: " + ", ".join(
            r["check"] for r in checks if not r["holds"]) + "**"
        rows.append(f"| `{name}` | `{c['preset']}` | {c['seed']} | {c['steps_done']} | {c['train_minutes']:.1f} | "
                    f"{_pairs_per_second(c)} | {c.get('torch_threads', '-')} | " + " | ".join(f"{acc[d]:.1%}" if d in acc else "-" for d in domains)
                    + f" | {c['shape_bias']['shape_bias']:.2f} | "
                    + (f"{c['logit_scale']:.1f}" if "logit_scale" in c else "-") + f" | {held} |")
    note = (f"\nNot shipped in this checkout: {', '.join(f'`{n}`' for n in missing)}.\n" if missing else "")
    own = [n for n in names if shipped_models()[n] != ("embedded", 0)]  # the zoo's own runs (retrain_zoo)
    done = [n for n in own if n in shipped]
    if done:
        mb = sum(shipped_files(*shipped_models()[n])[0].stat().st_size for n in done) / 1e6
        files = f"{len(done)} file{'s' if len(done) != 1 else ''}"
        note += (f"\nShipped weights of the zoo's own runs: {mb:.0f} MB in fp16 ({files} in `assets/zoo/`; "
                 "`zoo-resnet` is `assets/embedded.safetensors`).\n")
        cards = [shipped[n] for n in done]
        total = sum(float(c["train_minutes"]) for c in cards)
        part = "" if len(done) == len(own) else f" ({len(done)} of its {len(own)} runs shipped so far)"
        wall = wall_minutes(cards)
        side = (f"; runs trained side by side (notebook 04's `pretrain_jobs`, one torch thread each: the `threads` "
                f"column) for {total - wall:.0f} of the summed minutes, which the wall time counts once "
                "(`clipstudy.pretrain.wall_minutes`)" if total - wall >= 1 else "; the runs trained one at a time")
        ratio, ratio_from = one_thread_ratio(list(shipped.values()))
        pooled = pool_minutes(sorted((one_thread_minutes(c, ratio) for c in cards), reverse=True), 2)
        others = ", ".join(f"`{n}`" for n in done if shipped[n].get("torch_threads") != 1)
        scaled = ""
        if others and ratio:
            scaled = (f"; {others}, trained with more threads (`-`: torch's default, two here), at {ratio:.2f}x its "
                      f"minutes, the ratio of {ratio_from}")
        elif others:
            scaled = f"; {others} at the minutes of a run with more threads (no measured one-thread ratio): longer in fact"
        note += (f"\nRetraining the zoo's own runs (every member but `zoo-resnet`, the shipped `embedded` model) "
                 f"took {wall:.0f} minutes of wall time{part}, {total:.0f} minutes summed over the runs{side}. "
                 "Minutes are wall time on the machine that trained each run, which other jobs may have shared; "
                 "each card's evaluation adds a few minutes. "
                 f"A retrain the way notebook 04 runs it (`retrain_zoo=True`, `pretrain_jobs=2`: these runs, the "
                 f"longest first, each started when one of two slots frees, one thread each) takes about "
                 f"{pooled:.0f} minutes at these runs' one-thread minutes (`clipstudy.pretrain.pool_minutes`{scaled})"
                 "; the wall time above can be longer where a run's partner was a run later discarded.\n")
    return f"""# Model card: the holistic study's zoo (`zoo-*`)

Small CLIPs pretrained from scratch on the clipstudy world, each the `embedded` recipe (3,600 steps of batch 128,
the shipped model's domain mixture and captions, learned logit scale) with one of Tu et al.'s factors changed:
architecture (`zoo-vit`: a ViT with a convolutional stem, Xiao et al. 2021, of 0.73M image-tower parameters against
the ResNet's 5.3M, with a ViT's warm-up; its preset's description gives the recipe search), training distribution
(`zoo-balanced`), training-set size (`zoo-n100k`, `zoo-n25k`) and contrastive loss (`zoo-siglip`). The base,
`zoo-resnet`, is the shipped `embedded` model itself, and `zoo-resnet-s1` the same recipe at seed 1 (the base's
seed spread). Reproduce a member with `clipstudy pretrain --preset <preset> --seed <seed>` (add `--ship` to
install it here); notebook 04 retrains the zoo's own runs (all but `zoo-resnet`) with `retrain_zoo=True`.

Zero-shot top-1 accuracy with the prompt "a photo of a {{}}." over all world classes (chance 1/46) on the
world's test split; shape bias on the world's cue-conflict images; minutes of training on the machine that
trained it, the pairs/s that makes and the torch threads it ran with (`-`: not recorded; 1: trained beside
another run, notebook 04's `pretrain_jobs`). `benchmarks/pretrain_throughput.py` compares presets' throughput in
one process, `benchmarks/pretrain_parallel.py` runs side by side against one run. Zoo checks: photo >= {ZOO_CHECK_PHOTO_MIN:.0%} and every other domain >= {ZOO_CHECK_CHANCE_X:g}x chance
(`clipstudy.pretrain.zoo_checks`).

{chr(10).join(rows)}
{note}"""


def _pairs_per_second(card: dict) -> str:
    """Image-caption pairs per second of a card's training run (cards written before the field existed: from its
    steps, batch size and rounded minutes)."""
    rate = card.get("pairs_per_second")
    if rate is None and card.get("train_minutes"):
        rate = card["steps_done"] * card["config"]["batch_size"] / (60 * card["train_minutes"])
    return f"{rate:.0f}" if rate else "-"
