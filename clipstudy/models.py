"""Loading CLIP models: any open_clip architecture + pretrained tag, a local checkpoint, or the
project's own small architectures and the shipped ``embedded`` model.

``load_model(name, pretrained)`` resolves ``pretrained`` as follows:

* ``""`` (default): the model's default weights — the shipped checkpoint for ``embedded``,
  random initialisation (seeded by ``seed``) for every other architecture;
* ``"random"``: random initialisation, explicitly;
* an existing file (``.pt``, ``.pth``, ``.bin``, ``.safetensors``): loaded with open_clip. A file that
  does not load fails with one line that says what it is: empty, not a torch or safetensors file, or a
  checkpoint of another architecture (named when one of the known architectures fits it, see
  :func:`identify_architectures`). A checkpoint without ``logit_bias`` (trained with CLIP's softmax loss)
  is refused by a SigLIP architecture, into which open_clip would load it with a zero bias;
* an open_clip tag (``openai``, ``laion2b_s34b_b79k``, ...): read from the local Hugging Face cache.
  Downloads happen only when allowed (``allow_download=True`` or ``CLIPSTUDY_ALLOW_DOWNLOAD=1``),
  so an offline machine fails at once with an error that says how to pass a local file instead of
  retrying for a minute. An allowed download says once where it downloads from and gives up when the
  server does not answer within ``CLIPSTUDY_DOWNLOAD_TIMEOUT`` seconds (default 10).

``local-dir:/folder`` names (open_clip's own schema) are passed through unchanged.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import paths
from .errors import CheckpointError, ConfigError
from .registry import Registry

MODELS = Registry("model")
"""The project's own architectures (JSON configs in ``model_configs/``) and its shipped models (``embedded`` and
the holistic study's ``zoo-*``, :func:`shipped_models`). open_clip's architectures are listed by
:func:`list_models` alongside them."""

EMBEDDED = "embedded"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_registered = False


def register_project_configs() -> None:
    """Make the JSON configs in ``clipstudy/model_configs`` known to open_clip (in-process, once)."""
    global _registered
    if _registered:
        return
    import open_clip

    from . import towers

    towers.register()
    open_clip.add_model_config(paths.model_configs_dir())
    for cfg in sorted(paths.model_configs_dir().glob("*.json")):
        if cfg.stem not in MODELS:
            MODELS.register(cfg.stem, obj=cfg, kind="architecture")
    for name in shipped_models():
        if name not in MODELS:
            MODELS.register(name, obj=functools.partial(shipped_checkpoint, name), kind="shipped")
    _registered = True


def project_model_names() -> list[str]:
    """Names of the project's architectures and shipped models, without importing open_clip."""
    return sorted([p.stem for p in paths.model_configs_dir().glob("*.json")] + list(shipped_models()))


@functools.lru_cache(maxsize=None)
def shipped_models() -> dict[str, tuple[str, int]]:
    """Every model shipped with the package: registered name -> ``(preset, seed)`` of the pretraining run it is
    (``data/resources/shipped_models.json``: a preset name for seed 0, or ``{"preset": P, "seed": k}``;
    ``clipstudy pretrain --preset P --seed k --ship`` installs the run). Several names may share a run
    (``zoo-resnet``, the zoo's base, is the ``embedded`` model)."""
    from .io import read_json

    table = read_json(paths.resources_dir() / "shipped_models.json")
    out = {}
    for name, run in table.items():
        if name.startswith("_"):
            continue
        run = {"preset": run} if isinstance(run, str) else dict(run)
        out[name] = (str(run["preset"]), int(run.get("seed", 0)))
    return out


def shipped_runs() -> list[tuple[str, int]]:
    """The ``(preset, seed)`` runs that ``--ship`` installs, each once, ``embedded`` first."""
    return list(dict.fromkeys(shipped_models().values()))


def shipped_files(preset: str, seed: int = 0) -> tuple[Path, Path, Path]:
    """Where the shipped run of ``preset`` at ``seed`` lives: (weights, card JSON, card markdown). The
    ``embedded`` preset's seed-0 run is in ``assets/`` as ``embedded.*``; every other run in
    ``assets/zoo/<preset>.*`` (seed 0) or ``assets/zoo/<preset>-seed<k>.*`` (one markdown card for all of them,
    ``assets/zoo/ZOO_MODEL_CARD.md``)."""
    if preset == EMBEDDED and seed == 0:
        a = paths.assets_dir()
        return a / "embedded.safetensors", a / "embedded.json", a / "EMBEDDED_MODEL_CARD.md"
    z = paths.assets_dir() / "zoo"
    stem = preset if seed == 0 else f"{preset}-seed{seed}"
    return z / f"{stem}.safetensors", z / f"{stem}.json", z / "ZOO_MODEL_CARD.md"


def _shipped_run(name: str) -> tuple[str, int]:
    from .registry import UnknownNameError

    table = shipped_models()
    if name not in table:
        raise UnknownNameError(f"unknown shipped model {name!r}; valid: {', '.join(table)}")
    return table[name]


def _not_shipped(name: str, what: Path) -> CheckpointError:
    preset, seed = _shipped_run(name)
    return CheckpointError(f"the shipped model {name!r} is not in this checkout ({what} is missing); create it "
                           f"with `clipstudy pretrain --preset {preset}{f' --seed {seed}' if seed else ''} --ship`")


def shipped_checkpoint(name: str) -> Path:
    """Path of shipped model ``name``'s checkpoint (fp16 safetensors; it may not exist in this checkout)."""
    return shipped_files(*_shipped_run(name))[0]


def shipped_card(name: str) -> dict:
    """The model card of shipped model ``name``: architecture, preset, seed, measured accuracies."""
    from .io import read_json

    meta = shipped_files(*_shipped_run(name))[1]
    if not meta.exists():
        raise _not_shipped(name, meta)
    return read_json(meta)


def is_shipped(name: str) -> bool:
    """Whether ``name`` is a shipped model whose weights and card are in this checkout."""
    if name not in shipped_models():
        return False
    weights, card, _ = shipped_files(*shipped_models()[name])
    return weights.exists() and card.exists()


def list_models() -> list[str]:
    """Every loadable architecture: the project's own, then open_clip's."""
    import open_clip

    register_project_configs()
    own = project_model_names()
    return own + [m for m in open_clip.list_models() if m not in own]


def embedded_checkpoint() -> Path:
    """Path of the shipped ``embedded`` checkpoint (weights in fp16 safetensors)."""
    return shipped_checkpoint(EMBEDDED)


def embedded_card() -> dict:
    """Metadata of the shipped model: architecture, preset, seed, measured accuracies."""
    return shipped_card(EMBEDDED)


@dataclass
class LoadedModel:
    """A CLIP model with everything needed to use it: transforms, tokenizer and identity."""

    model: Any
    preprocess: Callable
    tokenizer: Callable
    name: str
    arch: str
    pretrained: str
    device: str

    @property
    def random_init(self) -> bool:
        """Whether the weights are a random initialisation (no checkpoint, no pretrained tag)."""
        return self.pretrained == "random"

    @property
    def weights_id(self) -> str:
        """Hash of the current weights (part of every feature-cache key). Computed on each call, so a
        model trained in place after loading never reads features cached for its old weights."""
        return weights_hash(self.model)

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp().item())

    def tokenize(self, texts):
        return self.tokenizer(list(texts)).to(self.device)


def load_model(
    name: str,
    pretrained: str = "",
    *,
    device: str = "cpu",
    precision: str = "fp32",
    seed: int = 0,
    allow_download: bool | None = None,
) -> LoadedModel:
    """Create an open_clip model by architecture name and weights source (see module docstring)."""
    import open_clip
    import torch

    register_project_configs()
    _check_name(name)
    device = resolve_device(device)
    arch = shipped_card(name)["arch"] if name in shipped_models() else name
    source = _resolve_pretrained(name, arch, pretrained or "")
    kwargs = dict(precision=precision, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # random init is part of the spec: same seed, same weights
        if source is None:
            with _quiet_open_clip():
                model, _, preprocess = open_clip.create_model_and_transforms(arch, **kwargs)
        else:
            model, preprocess = _load_weights(arch, source, kwargs, allow_download)
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    label = "random" if source is None else str(source)
    if source is None and (pretrained or "") in ("", "default"):
        import warnings

        warnings.warn(RandomWeightsWarning(
            f"{name} was loaded with random weights (no pretrained weights were asked for); its numbers are "
            "those of an untrained model. Pass pretrained='random' (CLI: --pretrained random) to mean it, or an "
            "open_clip tag or a checkpoint file"), stacklevel=2)
    return LoadedModel(model, preprocess, tokenizer, name, arch, label, device)


class RandomWeightsWarning(UserWarning):
    """A model was loaded with random weights although the caller did not ask for them explicitly."""


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; other values are checked by torch."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise CheckpointError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N, mps") from None
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"device {device!r} asked for, but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return device


def _check_name(name: str) -> None:
    import open_clip

    from .registry import UnknownNameError

    if not isinstance(name, str) or not name:
        raise CheckpointError(f"model name must be a non-empty string, got {name!r}")
    if name.startswith(("local-dir:", "hf-hub:")) or name in MODELS or name in shipped_models() \
            or name in open_clip.list_models():
        return
    raise UnknownNameError(
        f"unknown model {name!r}; valid models: {', '.join(MODELS.list())}, or one of open_clip's "
        f"{len([m for m in open_clip.list_models() if m not in MODELS])} architectures such as ViT-B-16, RN50 "
        "(`clipstudy info --json` lists all)"
    )


def _resolve_pretrained(name: str, arch: str, pretrained: str) -> str | Path | None:
    """Turn the user's ``pretrained`` string into a file path, a tag, or None (random init)."""
    if name.startswith(("local-dir:", "hf-hub:")):
        return ""
    if pretrained in ("", "default"):
        if name not in shipped_models():
            return None
        path = shipped_checkpoint(name)
        if not path.exists():
            raise _not_shipped(name, path)
        return path
    if pretrained in ("random", "none"):
        return None
    path = Path(pretrained).expanduser()
    if path.exists():
        if path.is_dir():
            raise CheckpointError(
                f"{path} is a folder; pass a checkpoint file, or use the model name "
                f"'local-dir:{path}' for an open_clip checkpoint folder"
            )
        return path
    if os.sep in pretrained or pretrained.endswith(CHECKPOINT_SUFFIXES):
        raise CheckpointError(f"checkpoint file not found: {pretrained}")
    return _check_tag(arch, pretrained)


def _check_tag(arch: str, tag: str) -> str:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag not in tags:
        valid = ", ".join(tags) if tags else "none: open_clip has no pretrained weights for it"
        raise CheckpointError(
            f"unknown pretrained tag {tag!r} for {arch}; valid tags: {valid}; "
            "or pass a checkpoint file path"
        )
    return tag


def _load_weights(arch: str, source, kwargs: dict, allow_download: bool | None):
    """Build ``arch`` with the weights of ``source``: a checkpoint file (:func:`_load_file`), an open_clip tag
    (from the local Hugging Face cache, or downloaded when allowed), or ``""`` for a schema model name."""
    import open_clip

    if isinstance(source, Path):
        return _load_file(arch, source, kwargs)
    if allow_download is None:
        allow_download = os.environ.get("CLIPSTUDY_ALLOW_DOWNLOAD", "") not in ("", "0")
    download = bool(source) and allow_download and not _tag_cached(arch, source)
    offline = bool(source) and not download
    timeout = download_timeout() if download else None
    if download:
        _start_download(arch, source, timeout)
    try:
        with _hf_offline(offline), _download_timeouts(timeout), _quiet_open_clip():
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=source or None, **kwargs)
    except Exception as exc:  # open_clip raises many types; the user needs one clear line
        raise _tag_error(arch, source, offline and not allow_download, download, exc) from exc
    return model, preprocess


def _tag_error(arch: str, source: str, downloads_off: bool, downloading: bool, exc: Exception) -> CheckpointError:
    """The one-line error for an open_clip tag (or schema model name) that did not load."""
    if downloads_off:
        return CheckpointError(
            f"pretrained weights {arch}/{source} are not in the local cache and downloads are off; "
            "pass a local file (--pretrained /path/to/weights.pt or .safetensors), or allow the "
            "download with CLIPSTUDY_ALLOW_DOWNLOAD=1 (or --download)"
        )
    if downloading:
        return CheckpointError(
            f"downloading the {arch} weights {source!r} from {_tag_url(arch, source)} failed ({_short(exc)}); "
            "download the file where there is network and pass it with --pretrained /path/to/weights.safetensors"
        )
    return CheckpointError(f"could not load {arch}/{source}: {_short(exc)}")


def _short(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters), for one-line errors."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


# --- downloads ---------------------------------------------------------------------------------------------

DEFAULT_DOWNLOAD_TIMEOUT = 10.0
"""Seconds a download waits for the network before giving up (``CLIPSTUDY_DOWNLOAD_TIMEOUT`` overrides)."""


def download_timeout() -> float:
    """The network timeout of downloads in seconds: ``CLIPSTUDY_DOWNLOAD_TIMEOUT`` or 10."""
    import math

    raw = os.environ.get("CLIPSTUDY_DOWNLOAD_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_DOWNLOAD_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"CLIPSTUDY_DOWNLOAD_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return value


def _hub_files(arch: str, tag: str) -> tuple[str, list[str]]:
    """``(repo id, file names)`` of a tag's weights on the Hugging Face Hub, in the order open_clip tries them
    (a safetensors twin first); ``("", [])`` for a tag that is not on the Hub."""
    import open_clip
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    hub = open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", "")
    if not hub:
        return "", []
    repo, filename = os.path.split(hub)
    filename = filename or HF_WEIGHTS_NAME
    if filename == HF_WEIGHTS_NAME:
        return repo, [HF_SAFE_WEIGHTS_NAME, filename]
    if filename.endswith((".bin", ".pth")):
        return repo, [filename[:-4] + ".safetensors", filename]
    return repo, [filename]


def _tag_url(arch: str, tag: str) -> str:
    """Where a tag's weights are downloaded from: its Hugging Face Hub repository (``HF_ENDPOINT`` applies), or
    open_clip's plain URL for a tag that is not on the Hub."""
    import huggingface_hub.constants as hc
    import open_clip

    repo, _ = _hub_files(arch, tag)
    return f"{hc.ENDPOINT}/{repo}" if repo else open_clip.get_pretrained_cfg(arch, tag).get("url", "")


def _tag_cached(arch: str, tag: str) -> bool:
    """Whether a tag's weights are already in the local Hugging Face cache (then nothing is downloaded)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        repo, names = _hub_files(arch, tag)
        return any(isinstance(try_to_load_from_cache(repo, n), str) for n in names) if repo else False
    except Exception:  # pragma: no cover - an unusual cache layout: let open_clip look itself
        return False


def _start_download(arch: str, tag: str, timeout: float) -> None:
    """Say once where the weights come from, then check in one request (no retries) that the server answers
    within ``timeout``, so a machine without network fails in seconds instead of retrying for a minute."""
    import sys

    import huggingface_hub.constants as hc

    url = _tag_url(arch, tag)
    fallback = "download the file where there is network and pass it with --pretrained /path/to/weights.safetensors"
    if hc.HF_HUB_OFFLINE:
        raise CheckpointError(
            f"cannot download the {arch} weights {tag!r}: HF_HUB_OFFLINE is set, which forbids downloads; unset it, "
            f"or {fallback}"
        )
    print(f"clipstudy: downloading the {arch} weights {tag!r} from {url} (network timeout {timeout:g} s, "
          "CLIPSTUDY_DOWNLOAD_TIMEOUT)", file=sys.stderr, flush=True)
    problem = _unreachable(url, timeout)
    if problem:
        raise CheckpointError(
            f"downloading the {arch} weights {tag!r} failed: {url} gave no answer within {timeout:g} s ({problem}); "
            f"{fallback} (or raise CLIPSTUDY_DOWNLOAD_TIMEOUT)"
        )


def _unreachable(url: str, timeout: float) -> str | None:
    """``None`` when ``url``'s server answers a HEAD request within ``timeout`` seconds (any HTTP status), else
    what went wrong. Uses huggingface_hub's HTTP session, so its proxy and endpoint settings apply."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(url, timeout=timeout, follow_redirects=False)
    except Exception as exc:  # DNS failure, refused connection, timeout, proxy error, ...
        return _short(exc)
    return None


@contextlib.contextmanager
def _download_timeouts(timeout: float | None):
    """Apply ``timeout`` to huggingface_hub's metadata and download requests and to plain-URL downloads."""
    if timeout is None:
        yield
        return
    import socket

    import huggingface_hub.constants as hc

    old = hc.HF_HUB_ETAG_TIMEOUT, hc.HF_HUB_DOWNLOAD_TIMEOUT, socket.getdefaulttimeout()
    hc.HF_HUB_ETAG_TIMEOUT = hc.HF_HUB_DOWNLOAD_TIMEOUT = timeout
    socket.setdefaulttimeout(timeout)
    try:
        yield
    finally:
        hc.HF_HUB_ETAG_TIMEOUT, hc.HF_HUB_DOWNLOAD_TIMEOUT = old[:2]
        socket.setdefaulttimeout(old[2])


# --- checkpoint files ----------------------------------------------------------------------------------------


def _load_file(arch: str, path: Path, kwargs: dict):
    """Load a checkpoint file with open_clip; failures and CLIP-loss weights in a SigLIP architecture become
    one-line :class:`CheckpointError` s that say what the file is."""
    import open_clip

    try:
        with _quiet_open_clip():
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(path), **kwargs)
    except Exception as exc:  # open_clip raises many types; the user needs one clear line
        raise _file_error(arch, path, exc) from exc
    if getattr(model, "logit_bias", None) is not None:
        _check_logit_bias(arch, path)
    return model, preprocess


@dataclass(frozen=True)
class CheckpointIndex:
    """The tensors of a checkpoint file by name (as :func:`canonical_key` spells them) with their shapes, and
    the file's metadata (safetensors only; the project's checkpoints record ``arch``)."""

    shapes: dict
    metadata: dict


def canonical_key(key: str) -> str:
    """A state-dict key with the text tower's ``text.`` prefix removed, so the two layouts open_clip converts
    between (``CLIP`` and ``CustomTextCLIP``) compare equal."""
    return key[len("text."):] if key.startswith("text.") else key


def read_checkpoint_index(path: Path) -> CheckpointIndex | None:
    """Names and shapes of a checkpoint's tensors without reading their values (safetensors header, or a
    memory-mapped ``torch.load``); ``None`` for formats open_clip reads but this does not (TorchScript archives,
    big_vision ``.npz``). Raises :class:`CheckpointError` for a file that is no readable checkpoint."""
    path = Path(path)
    kind = _sniff(path)
    if kind == "empty":
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty (0 bytes); {_WANTED}")
    if path.suffix in (".npz", ".npy") or kind == "numpy" or (kind == "zip" and _is_torchscript(path)):
        return None
    if kind == "safetensors" and path.suffix != ".safetensors":
        raise CheckpointError(f"cannot read checkpoint {path}: it is a safetensors file, which open_clip reads only "
                              f"when its name ends in .safetensors; rename it to {path.stem}.safetensors")
    if kind in ("zip", "pickle") and path.suffix == ".safetensors":
        raise CheckpointError(f"cannot read checkpoint {path}: it is a torch file, not safetensors; rename it to "
                              f"{path.stem}.pt")
    if kind == "unknown":
        raise CheckpointError(f"cannot read checkpoint {path}: it is not a torch or safetensors file; {_WANTED}")
    raw, metadata = _read_safetensors(path) if kind == "safetensors" else (_read_torch(path, kind), {})
    if raw and next(iter(raw)).startswith("module"):  # saved from DataParallel; open_clip strips this too
        raw = {k[len("module."):]: v for k, v in raw.items()}
    return CheckpointIndex({canonical_key(k): v for k, v in raw.items()}, metadata)


_WANTED = "pass a torch (.pt, .pth, .bin) or .safetensors file holding the model's state dict"


def _sniff(path: Path) -> str:
    """A file's format from its first bytes: empty, zip (torch.save), pickle (torch's legacy format),
    safetensors, numpy or unknown."""
    size = path.stat().st_size
    if size == 0:
        return "empty"
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= size:
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def _is_torchscript(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a readable safetensors file ({_short(exc)})") from exc


def _read_torch(path: Path, kind: str) -> dict:
    import re

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except Exception as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            raise CheckpointError(
                f"cannot read checkpoint {path}: besides tensors it holds Python objects ({unsafe.group(1)}), which "
                "are not unpickled, for safety; re-save only the weights with torch.save(model.state_dict(), path)"
            ) from exc
        raise CheckpointError(f"cannot read checkpoint {path}: not a readable torch file ({_short(exc)})") from exc
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    shapes = {k: tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, dict) else {}
    if not shapes:
        what = "a dict without tensors" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise CheckpointError(f"cannot read checkpoint {path}: it holds {what}, not a state dict; {_WANTED}")
    return shapes


def _file_error(arch: str, path: Path, exc: Exception) -> CheckpointError:
    """The one-line error for a checkpoint file open_clip could not load into ``arch``."""
    try:
        index = read_checkpoint_index(path)
    except CheckpointError as err:
        return err
    message = _architecture_problem(arch, path, index) if index is not None else None
    return CheckpointError(message or f"cannot read checkpoint {path} as an open_clip {arch} model ({_short(exc)})")


def _architecture_problem(arch: str, path: Path, index: CheckpointIndex) -> str | None:
    """Why ``index`` does not fit ``arch``: the architecture it is for, when one of the known ones fits, and the
    first mismatching tensor; ``None`` when its names and shapes do fit (the failure was something else)."""
    target = _model_shapes(arch)
    mismatch = _first_mismatch(index.shapes, target) if target is not None else None
    if mismatch is None:
        return None
    where = _describe_mismatch(mismatch, arch)
    if not _looks_like_clip(index.shapes):
        return f"{path} is not a CLIP checkpoint: it has no image and text tower weights (first mismatch: {where})"
    fits = [n for n in identify_architectures(index) if n != arch]
    if not fits:
        return (f"{path} is not a checkpoint of {arch} and fits none of the known architectures "
                f"(first mismatch: {where})")
    also = f" (or {', '.join(fits[1:4])}{', ...' if len(fits) > 4 else ''})" if len(fits) > 1 else ""
    return (f"checkpoint {path} is for architecture {fits[0]}{also}, not {arch}; load it with the model name "
            f"{fits[0]} (first mismatch: {where})")


def _looks_like_clip(shapes: dict) -> bool:
    visual = any(k.startswith("visual.") for k in shapes)
    text = any(not k.startswith(("visual.", "logit_")) for k in shapes)
    return visual and text


def _describe_mismatch(mismatch: tuple, arch: str) -> str:
    key, got, want = mismatch

    def shape(s):
        return "absent" if s is None else f"[{', '.join(str(d) for d in s)}]"

    return f"{key}: {shape(got)} in the file vs {shape(want)} in {arch}"


_RESIZED = ("positional_embedding", "visual.positional_embedding")  # open_clip interpolates these on load
_RESHAPED = ("logit_scale", "logit_bias")  # scalar vs 1-element: open_clip reshapes these on load


def _first_mismatch(got: dict, want: dict) -> tuple | None:
    """The first tensor (in the model's order) that open_clip could not load from a state dict with shapes
    ``got`` into a model with shapes ``want``: ``(key, shape in file or None, shape in model or None)``.
    A missing ``logit_bias`` is not one (open_clip fills in zero; :func:`_check_logit_bias` handles it)."""
    import math

    for key, shape in want.items():
        have = got.get(key)
        if have is None:
            if key != "logit_bias":
                return key, None, shape
        elif have != shape:
            resized = key in _RESIZED and len(have) == len(shape) == 2 and have[1] == shape[1]
            reshaped = key in _RESHAPED and math.prod(have) == math.prod(shape)
            if not (resized or reshaped):
                return key, have, shape
    for key, shape in got.items():
        if key not in want and key != "transformer.embeddings.position_ids":
            return key, shape, None
    return None


def _match_rank(got: dict, want: dict) -> int | None:
    """0: the same tensors and shapes; 1: loadable (interpolated position embeddings, a reshaped logit scale);
    None: not loadable, or only with a zero logit bias filled in (which :func:`_check_logit_bias` refuses)."""
    if _first_mismatch(got, want) is not None or ("logit_bias" in want and "logit_bias" not in got):
        return None
    return 0 if got == want else 1


def identify_architectures(index: CheckpointIndex, limit: int = 10) -> list[str]:
    """Known architectures (the project's, then open_clip's) whose model a checkpoint's tensors fit, best
    first: exact fits before loadable ones, the ``arch`` its metadata names before others. Candidates are
    preselected by embedding, text-tower and image-tower sizes read from the configs, then at most ``limit``
    of them are built on the meta device (no memory, no weights) and compared tensor by tensor."""
    named = index.metadata.get("arch")
    wanted = _state_signature(index.shapes)
    names = list_models()
    candidates = ([named] if named in names else []) + [
        n for n in names if n != named and _signature_fits(wanted, _config_signature(n))]
    ranked = []
    for order, name in enumerate(candidates[:limit]):
        shapes = _model_shapes(name)
        rank = _match_rank(index.shapes, shapes) if shapes is not None else None
        if rank is not None:
            ranked.append((rank, order, name))
    return [name for _, _, name in sorted(ranked)]


def _state_signature(shapes: dict) -> dict:
    """Sizes read off a state dict: embedding width, text tower width/layers/vocabulary, image tower kind and
    width (``None`` where the layout does not tell)."""
    token = shapes.get("token_embedding.weight")
    proj, proj_linear = shapes.get("text_projection"), shapes.get("text_projection.weight")
    blocks = {k.split(".")[2] for k in shapes if k.startswith("transformer.resblocks.")}
    if "visual.conv1.weight" in shapes and any(k.startswith("visual.transformer.") for k in shapes):
        vision, width = "vit", shapes["visual.conv1.weight"][0]
    elif "visual.layer1.0.conv1.weight" in shapes:
        vision, width = "resnet", shapes["visual.layer1.0.conv1.weight"][0]
    elif any(k.startswith("visual.trunk.") for k in shapes):
        vision, width = "timm", None
    else:
        vision, width = None, None
    return {
        "embed_dim": proj[1] if proj and len(proj) == 2 else (proj_linear[0] if proj_linear else None),
        "text_width": token[1] if token else None, "vocab_size": token[0] if token else None,
        "text_layers": len(blocks) or None, "vision": vision, "vision_width": width,
    }


def _config_signature(name: str) -> dict | None:
    """The sizes of :func:`_state_signature` from an architecture's config (open_clip's defaults filled in);
    ``None`` for configs whose text tower is a Hugging Face model (building it may need the network)."""
    import open_clip

    cfg = open_clip.get_model_config(name)
    if not cfg or "hf_model_name" in cfg.get("text_cfg", {}):
        return None
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    resnet = isinstance(vision.get("layers"), (list, tuple))  # ModifiedResNet: layers per stage
    kind = "timm" if "timm_model_name" in vision else "resnet" if resnet else "vit"
    return {
        "embed_dim": cfg.get("embed_dim"), "text_width": text.get("width", 512),
        "vocab_size": text.get("vocab_size", 49408), "text_layers": text.get("layers", 12), "vision": kind,
        "vision_width": None if kind == "timm" else vision.get("width", 768),
    }


def _signature_fits(wanted: dict, cfg: dict | None) -> bool:
    return cfg is not None and all(v is None or cfg.get(k) == v for k, v in wanted.items())


_SHAPES: dict = {}


def _model_shapes(name: str) -> dict | None:
    """``{canonical key: shape}`` of architecture ``name``'s state dict, built on the meta device (fast, no
    memory, no pretrained tower weights); ``None`` when it cannot be built that way or its text tower is a
    Hugging Face model (whose config may have to be downloaded). Remembered per name."""
    if name not in _SHAPES:
        import open_clip
        import torch

        try:
            if "hf_model_name" in (open_clip.get_model_config(name) or {}).get("text_cfg", {}):
                raise ValueError(name)
            with torch.device("meta"), _quiet_open_clip():
                model = open_clip.create_model(name, device="meta", pretrained_text=False)
            _SHAPES[name] = {canonical_key(k): tuple(v.shape) for k, v in model.state_dict().items()}
        except Exception:  # an architecture that needs the network or cannot live on the meta device
            _SHAPES[name] = None
    return _SHAPES[name]


def _check_logit_bias(arch: str, path: Path) -> None:
    """Refuse a checkpoint without ``logit_bias`` in a SigLIP architecture: open_clip fills in zero, so the
    sigmoid scores would silently be off by the whole bias."""
    try:
        index = read_checkpoint_index(path)
    except CheckpointError:
        return  # open_clip read it but we cannot: nothing to tell
    if index is None or "logit_bias" in index.shapes:
        return
    from open_clip import get_model_config

    clip_fits = [n for n in identify_architectures(index)
                 if (get_model_config(n) or {}).get("init_logit_bias") is None]
    fix = (f"load it with the model name {clip_fits[0]} (the same tensors without a logit bias)" if clip_fits
           else "load it with an architecture whose config has no init_logit_bias")
    raise CheckpointError(
        f"checkpoint {path} has no logit_bias, so it was trained with CLIP's softmax loss, not SigLIP's sigmoid "
        f"loss that {arch} (a config with init_logit_bias) scores with; {fix}, or pass a SigLIP checkpoint"
    )


@contextlib.contextmanager
def _hf_offline(offline: bool):
    """Temporarily set HF_HUB_OFFLINE so a missing download fails in milliseconds, not a minute."""
    if not offline:
        yield
        return
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hc

        old_const, hc.HF_HUB_OFFLINE = hc.HF_HUB_OFFLINE, True
    except Exception:  # pragma: no cover - huggingface_hub absent or layout changed
        hc = None
    try:
        yield
    finally:
        if hc is not None:
            hc.HF_HUB_OFFLINE = old_const
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old


@contextlib.contextmanager
def _quiet_open_clip():
    """open_clip logs a warning for every random init and an error before raising; we report both ourselves."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


_HASHES: "weakref.WeakKeyDictionary" = None


def weights_hash(model) -> str:
    """A short content hash of a model's state dict (names, shapes, dtypes and values).

    Hashing every byte costs ~0.1 s for the embedded model, and feature caches ask for it on every call,
    so the result is remembered per model together with a fingerprint of its tensors (object ids and
    PyTorch's in-place version counters, which any optimizer step, ``copy_`` or ``load_state_dict``
    advances): a changed weight always changes the fingerprint and forces a fresh hash."""
    global _HASHES
    import torch

    state = model.state_dict(keep_vars=True)
    fingerprint = tuple((k, id(t), t._version) for k, t in state.items())
    if _HASHES is None:
        _HASHES = weakref.WeakKeyDictionary()
    cached = _HASHES.get(model)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    h = hashlib.blake2b(digest_size=12)
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    _HASHES[model] = (fingerprint, h.hexdigest())
    return _HASHES[model][1]


def save_weights(model, path: str | Path, *, half: bool = True, metadata: dict | None = None) -> Path:
    """Save a model's weights as safetensors (fp16 by default), atomically."""
    from safetensors.torch import save_file

    from .io import atomic_path

    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})
    return Path(path)
