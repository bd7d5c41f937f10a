"""Loading CLIP models: any open_clip architecture + pretrained tag, a local checkpoint, or the
project's own small architectures and the shipped ``embedded`` model.

``load_model(name, pretrained)`` resolves ``pretrained`` as follows:

* ``""`` (default): the model's default weights — the shipped checkpoint for ``embedded``,
  random initialisation (seeded by ``seed``) for every other architecture;
* ``"random"``: random initialisation, explicitly;
* an existing file (``.pt``, ``.pth``, ``.bin``, ``.safetensors``): loaded with open_clip;
* an open_clip tag (``openai``, ``laion2b_s34b_b79k``, ...): read from the local Hugging Face cache.
  Downloads happen only when allowed (``allow_download=True`` or ``CLIPSTUDY_ALLOW_DOWNLOAD=1``),
  so an offline machine fails at once with an error that says how to pass a local file instead of
  retrying for a minute.

``local-dir:/folder`` names (open_clip's own schema) are passed through unchanged.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import paths
from .errors import CheckpointError
from .registry import Registry

MODELS = Registry("model")
"""The project's own architectures (JSON configs in ``model_configs/``) and the ``embedded`` model.
open_clip's architectures are listed by :func:`list_models` alongside them."""

EMBEDDED = "embedded"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_registered = False


def register_project_configs() -> None:
    """Make the JSON configs in ``clipstudy/model_configs`` known to open_clip (in-process, once)."""
    global _registered
    if _registered:
        return
    import open_clip

    open_clip.add_model_config(paths.model_configs_dir())
    for cfg in sorted(paths.model_configs_dir().glob("*.json")):
        if cfg.stem not in MODELS:
            MODELS.register(cfg.stem, obj=cfg, kind="architecture")
    if EMBEDDED not in MODELS:
        MODELS.register(EMBEDDED, obj=embedded_checkpoint, kind="shipped")
    _registered = True


def project_model_names() -> list[str]:
    """Names of the project's architectures and shipped models, without importing open_clip."""
    return sorted([p.stem for p in paths.model_configs_dir().glob("*.json")] + [EMBEDDED])


def list_models() -> list[str]:
    """Every loadable architecture: the project's own, then open_clip's."""
    import open_clip

    register_project_configs()
    own = project_model_names()
    return own + [m for m in open_clip.list_models() if m not in own]


def embedded_checkpoint() -> Path:
    """Path of the shipped ``embedded`` checkpoint (weights in fp16 safetensors)."""
    return paths.assets_dir() / "embedded.safetensors"


def embedded_card() -> dict:
    """Metadata of the shipped model: architecture, preset, seed, measured accuracies."""
    from .io import read_json

    meta = paths.assets_dir() / "embedded.json"
    if not meta.exists():
        raise CheckpointError(
            "the embedded model is not shipped in this checkout (clipstudy/assets/embedded.json is "
            "missing); create it with `clipstudy pretrain --preset embedded --ship`"
        )
    return read_json(meta)


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
    arch = embedded_card()["arch"] if name == EMBEDDED else name
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
    if name.startswith(("local-dir:", "hf-hub:")) or name in MODELS or name in open_clip.list_models():
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
        if name != EMBEDDED:
            return None
        path = embedded_checkpoint()
        if not path.exists():
            raise CheckpointError(
                f"the embedded checkpoint {path} is missing; recreate it with "
                "`clipstudy pretrain --preset embedded --ship`"
            )
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
    import open_clip

    if allow_download is None:
        allow_download = os.environ.get("CLIPSTUDY_ALLOW_DOWNLOAD", "") not in ("", "0")
    offline = isinstance(source, str) and source and not allow_download
    try:
        with _hf_offline(offline), _quiet_open_clip():
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=str(source) if source != "" else None, **kwargs
            )
    except Exception as exc:  # open_clip raises many types; the user needs one clear line
        raise _checkpoint_error(arch, source, offline, exc) from exc
    return model, preprocess


def _checkpoint_error(arch: str, source, offline: bool, exc: Exception) -> CheckpointError:
    if isinstance(source, Path):
        return CheckpointError(
            f"cannot read checkpoint {source} as an open_clip {arch} model "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
        )
    if offline:
        return CheckpointError(
            f"pretrained weights {arch}/{source} are not in the local cache and downloads are off; "
            "pass a local file (--pretrained /path/to/weights.pt or .safetensors), or allow the "
            "download with CLIPSTUDY_ALLOW_DOWNLOAD=1 (or --download)"
        )
    return CheckpointError(f"could not load {arch}/{source}: {type(exc).__name__}: {exc}")


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
