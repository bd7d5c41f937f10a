"""Image-feature extraction with an on-disk cache.

Methods with a frozen image encoder (zero-shot, linear probe, prompt learning, adapters) and every
OOD score work on cached features, so each image is encoded once per model. The cache key joins
the model's weights hash, the dataset's ``cache_key`` and the transform, so a changed checkpoint,
dataset or preprocessing never reads stale features. Files are written atomically: an interrupted
run leaves no partial cache and simply recomputes on the next call.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .io import torch_save

CACHE_VERSION = "features-v1"


@dataclass
class FeatureSet:
    """Unit-norm image features ``[N, d]`` (float32), labels ``[N]`` and provenance."""

    features: "object"
    labels: "object"
    classnames: tuple
    key: str
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def cache_key(loaded, dataset, extra: str = "") -> str:
    parts = [CACHE_VERSION, loaded.weights_id, dataset.cache_key, repr(loaded.preprocess), extra]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def feature_cache_path(key: str) -> Path:
    return paths.cache_dir() / "features" / f"{key}.pt"


def extract_features(loaded, dataset, *, batch_size: int = 256, cache: bool = True,
                     progress: bool = True, desc: str | None = None) -> FeatureSet:
    """Encode every image of ``dataset`` with ``loaded.model`` (cached on disk when ``cache``)."""
    import torch

    key = cache_key(loaded, dataset)
    path = feature_cache_path(key)
    if cache and path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            return FeatureSet(blob["features"], blob["labels"], tuple(blob["classnames"]), key, {"cached": True})
        except Exception:  # corrupt or truncated file from an old crash: recompute it
            path.unlink(missing_ok=True)
    feats, labels = _encode(loaded, dataset, batch_size, progress, desc or f"features {dataset.name}")
    fs = FeatureSet(feats, labels, tuple(dataset.classnames), key, {"cached": False})
    if cache:
        torch_save({"features": feats, "labels": labels, "classnames": list(fs.classnames)}, path)
    return fs


def _encode(loaded, dataset, batch_size: int, progress: bool, desc: str):
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(_Transformed(dataset, loaded.preprocess), batch_size=batch_size,
                                         shuffle=False, num_workers=0)
    out, labels = [], []
    with torch.no_grad():
        for images, y in tqdm(loader, desc=desc, disable=not progress, leave=False):
            out.append(F.normalize(encode_images(loaded.model, images.to(loaded.device)), dim=-1).float().cpu())
            labels.append(y)
    return torch.cat(out), torch.cat(labels).long()


def encode_images(model, images):
    """``model.encode_image`` with bf16 autocast on CPU (2-4x faster there) and fp32 output."""
    import torch

    if images.device.type == "cpu":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.encode_image(images).float()
    return model.encode_image(images).float()


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
