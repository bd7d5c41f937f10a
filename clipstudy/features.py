"""Image-feature extraction with an on-disk cache.

Methods with a frozen image encoder (zero-shot, linear probe, prompt learning, adapters) and every
OOD score work on cached features, so each image is encoded once per model. The cache key joins
the model's weights hash, the dataset's ``cache_key`` and the transform, so a changed checkpoint,
dataset or preprocessing never reads stale features. Files are written atomically: an interrupted
run leaves no partial cache and simply recomputes on the next call. Every entry carries an integrity record
(its key, row count, each tensor's shape and dtype, and a checksum of their bytes and the class names),
checked on read with the unit norm of the global features: an entry that fails (edited in place, copied
from another key, or written before the record existed) is recomputed with a one-line warning.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .io import torch_save

CACHE_VERSION = "features-v2"


@dataclass
class FeatureSet:
    """Unit-norm image features ``[N, d]`` (float32), labels ``[N]`` and provenance; with ``local=True``
    also unit-norm local features ``[N, HW, d]`` (float16 to halve memory; see :mod:`clipstudy.local_features`)."""

    features: "object"
    labels: "object"
    classnames: tuple
    key: str
    meta: dict = field(default_factory=dict)
    local: "object" = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def image_tower(loaded, encoder=None):
    """The module that maps preprocessed images to (unnormalised) features: ``encoder`` if given (a
    fine-tuned image tower), else the loaded model's ``visual`` tower."""
    return encoder if encoder is not None else loaded.model.visual


def weights_key(loaded, encoder=None) -> str:
    """The weights part of a cache key: the loaded model's hash, or the hash of a replacement tower."""
    from .models import weights_hash

    return loaded.weights_id if encoder is None else "encoder:" + weights_hash(encoder)


FEATURE_PRECISIONS = ("bf16", "fp32")


def feature_precision() -> str:
    """Precision of image-feature extraction: ``bf16`` autocast (default: 2-4x faster on a CPU, tensor cores
    on a GPU; numbers differ from fp32 in the third decimal) or ``fp32`` (exact, for golden numbers and
    calibration-sensitive comparisons), from the environment variable ``CLIPSTUDY_FEATURE_PRECISION``."""
    import os

    from .errors import ConfigError

    value = os.environ.get("CLIPSTUDY_FEATURE_PRECISION", "bf16") or "bf16"
    if value not in FEATURE_PRECISIONS:
        raise ConfigError(f"CLIPSTUDY_FEATURE_PRECISION={value!r}; valid: {', '.join(FEATURE_PRECISIONS)}")
    return value


def cache_key(loaded, dataset, extra: str = "", encoder=None, weights: str | None = None) -> str:
    weights = weights or weights_key(loaded, encoder)
    parts = [CACHE_VERSION, weights, dataset.cache_key, repr(loaded.preprocess), extra]
    if feature_precision() != "bf16":  # bf16 keys stay as they were
        parts.append(f"precision:{feature_precision()}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def feature_cache_path(key: str) -> Path:
    return paths.cache_dir() / "features" / f"{key}.pt"


def extract_features(loaded, dataset, *, batch_size: int = 256, cache: bool = True, progress: bool = True,
                     desc: str | None = None, encoder=None, local: bool = False) -> FeatureSet:
    """Encode every image of ``dataset`` (cached on disk when ``cache``).

    ``encoder`` replaces the loaded model's image tower (e.g. a fine-tuned copy; its weights hash is part
    of the cache key). ``local=True`` also returns GL-MCM local features (raises
    :class:`~clipstudy.local_features.LocalFeaturesUnsupported` for towers without them).
    """
    import torch

    weights = weights_key(loaded, encoder)
    key = cache_key(loaded, dataset, "local" if local else "", weights=weights)
    path = feature_cache_path(key)
    if cache:
        # a local-feature entry holds the global features too, so it also serves plain requests
        candidates = [path] if local else [path, feature_cache_path(cache_key(loaded, dataset, "local",
                                                                              weights=weights))]
        for candidate in (c for c in candidates if c.exists()):
            try:
                blob = torch.load(candidate, map_location="cpu", weights_only=True)
            except Exception:  # corrupt or truncated file from an old crash: recompute it
                candidate.unlink(missing_ok=True)
                continue
            problem = integrity_problem(blob, candidate.stem, dataset)
            if problem is None:
                return FeatureSet(blob["features"], blob["labels"], tuple(blob["classnames"]), key,
                                  {"cached": True}, blob.get("local") if local else None)
            warnings.warn(f"feature cache {candidate} failed its integrity check ({problem}); recomputing it",
                          stacklevel=2)
            candidate.unlink(missing_ok=True)
    tower = image_tower(loaded, encoder)
    feats, labels, loc = _encode(loaded, tower, dataset, batch_size, progress, desc or f"features {dataset.name}",
                                 local)
    fs = FeatureSet(feats, labels, tuple(dataset.classnames), key, {"cached": False}, loc)
    if cache:
        blob = {"features": feats, "labels": labels, "classnames": list(fs.classnames)}
        if local:
            blob["local"] = loc
        blob["integrity"] = integrity_record(blob, key)
        torch_save(blob, path)
    return fs


CACHED_TENSORS = ("features", "labels", "local")
CACHED_DTYPES = {"features": "torch.float32", "labels": "torch.int64", "local": "torch.float16"}
"""The dtype each cached tensor is written in (see :class:`FeatureSet`)."""
UNIT_NORM_TOLERANCE = 1e-3
"""How far a stored global feature's norm may be from 1 (fp32 unit vectors are within ~1e-6; a zero vector,
which normalisation leaves at zero, is accepted too)."""


def checksum(blob: dict) -> str:
    """A hash of the cached tensors (names, dtypes, shapes and bytes) and class names of a cache entry."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    for name in CACHED_TENSORS:
        t = blob.get(name)
        if t is None:
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")
    h.update("\n".join(blob.get("classnames", ())).encode())
    return h.hexdigest()


def integrity_record(blob: dict, key: str) -> dict:
    """What a cache entry is checked against when read back: its key, row count, each tensor's shape and
    dtype, and :func:`checksum`."""
    return {"key": key, "rows": int(blob["labels"].shape[0]), "checksum": checksum(blob),
            "tensors": {name: {"shape": list(blob[name].shape), "dtype": str(blob[name].dtype)}
                        for name in CACHED_TENSORS if blob.get(name) is not None}}


def integrity_problem(blob, key: str, dataset) -> str | None:
    """Why a loaded cache entry cannot be trusted for ``dataset`` under ``key`` (a short phrase), or None."""
    import torch

    record = blob.get("integrity") if isinstance(blob, dict) else None
    if not isinstance(record, dict):
        return "no integrity record: written by an older clipstudy"
    if record.get("key") != key:
        return f"it holds the entry of key {record.get('key')}"
    tensors = {name: blob.get(name) for name in CACHED_TENSORS if blob.get(name) is not None}
    if set(tensors) != set(record.get("tensors", {})) or "features" not in tensors or "labels" not in tensors:
        return f"tensors {sorted(tensors)}, recorded {sorted(record.get('tensors', {}))}"
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            return f"{name} is a {type(t).__name__}, not a tensor"
        if str(t.dtype) != CACHED_DTYPES[name]:
            return f"{name} is {t.dtype}, cached features are {CACHED_DTYPES[name]}"
        want = record["tensors"][name]
        if [list(t.shape), str(t.dtype)] != [list(want.get("shape", ())), want.get("dtype")]:
            return f"{name} is {tuple(t.shape)} {t.dtype}, recorded {tuple(want.get('shape', ()))} {want.get('dtype')}"
    rows = {name: int(t.shape[0]) if t.ndim else 0 for name, t in tensors.items()}
    if set(rows.values()) != {record.get("rows")} or record.get("rows") != len(dataset):
        return f"rows {rows}, recorded {record.get('rows')}, the dataset has {len(dataset)} images"
    if tuple(blob.get("classnames", ())) != tuple(dataset.classnames):
        return "its class names differ from the dataset's"
    norms = tensors["features"].float().norm(dim=-1)
    off = torch.minimum((norms - 1).abs(), norms.abs())
    if tensors["features"].ndim != 2 or not bool((off <= UNIT_NORM_TOLERANCE).all()):
        return f"global features are not unit-norm (largest |norm - 1| {float((norms - 1).abs().max()):.3g})"
    if checksum(blob) != record.get("checksum"):
        return "checksum mismatch: the file was changed after it was written"
    return None


def _encode(loaded, tower, dataset, batch_size: int, progress: bool, desc: str, local: bool):
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(_Transformed(dataset, loaded.preprocess), batch_size=batch_size,
                                         shuffle=False, num_workers=loader_workers(len(dataset)),
                                         pin_memory=loaded.device != "cpu")
    out, labels, locs = [], [], []
    was_training = tower.training
    tower.eval()
    with torch.no_grad():
        for images, y in tqdm(loader, desc=desc, disable=not progress, leave=False):
            g, loc = encode_images(tower, images.to(loaded.device), local=True) if local else (
                encode_images(tower, images.to(loaded.device)), None)
            out.append(F.normalize(g, dim=-1).cpu())
            if local:
                locs.append(F.normalize(loc, dim=-1).half().cpu())
            labels.append(y)
    tower.train(was_training)
    return torch.cat(out), torch.cat(labels).long(), (torch.cat(locs) if local else None)


def loader_workers(n_images: int) -> int:
    """Worker processes for decoding images: none for small sets (starting workers costs more than it
    saves), up to 8 for real benchmarks (``CLIPSTUDY_WORKERS`` overrides)."""
    import os

    if os.environ.get("CLIPSTUDY_WORKERS"):
        return int(os.environ["CLIPSTUDY_WORKERS"])
    return 0 if n_images < 5000 else max(0, min(8, (os.cpu_count() or 1) - 1))


def encode_images(tower, images, local: bool = False):
    """Features of ``images`` from an image tower, with bf16 autocast (2-4x faster on this CPU; tensor cores
    on a GPU; :func:`feature_precision` ``fp32`` turns it off) and fp32 output: ``global`` or, with ``local=True``, ``(global, local)``. Accepts a CLIP model
    (its ``visual`` tower is used) for backward compatibility."""
    import torch

    from .local_features import encode_global_local

    import contextlib

    tower = getattr(tower, "visual", tower)
    fp32 = feature_precision() == "fp32"
    with contextlib.nullcontext() if fp32 else torch.autocast(images.device.type, dtype=torch.bfloat16):
        if local:
            g, loc = encode_global_local(tower, images)
            return g.float(), loc.float()
        return tower(images).float()
class _Transformed:
    """Applies the model's preprocessing to a dataset's raw (PIL) images."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        image = item["image"]
        if not hasattr(image, "shape"):  # PIL image: not yet transformed
            image = self.transform(image)
        return image, item["label"]
