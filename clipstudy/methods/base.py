"""Shared pieces of methods: the base class, regularizers and feature batches for the training loop."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..errors import ConfigError


class Method(nn.Module):
    """Base class of every fine-tuning method.

    Subclasses set ``inputs`` and implement :meth:`feature_similarities` (cosine-like class similarities
    of unit image features). Methods with ``inputs = "images"`` also own an image tower (:attr:`encoder`)
    that they fine-tune; the others read cached features of the frozen tower.

    Training goes through the one loop in :mod:`clipstudy.train`: it calls :meth:`loss`, which is the
    method's task loss (:meth:`forward_train` + cross-entropy unless overridden) plus every attached
    regularizer, ``loss = task + sum_r weight_r * r(method, batch, outputs)``, each weight carried from CLIP's
logit scale to the model's by :func:`clipstudy.losses.scaled_weight`. Regularizers (DOR,
    KgCoOp's knowledge guidance, Lipsum-FT, L2-SP, ...) are registered in
    :data:`clipstudy.regularizers.REGULARIZERS` and attached with ``regularizers={"name": {"weight": w, ...}}``.
    """

    inputs = "features"
    trains = True
    scale_weights = True
    """Regularizer weights are given at CLIP's logit scale and carried to this model's by one rule
    (:func:`clipstudy.losses.scaled_weight`)."""

    def __init__(self, loaded, classnames, regularizers: Mapping[str, Mapping] | None = None):
        super().__init__()
        self.classnames = tuple(classnames)
        self.register_buffer("scale", torch.tensor(float(loaded.logit_scale)))
        self.regularizers = nn.ModuleList()
        self._loaded = loaded  # not a submodule: the frozen model is shared, never trained here
        for name, params in (regularizers or {}).items():
            self.add_regularizer(name, **dict(params))

    # -- prediction -------------------------------------------------------------------------------
    @property
    def encoder(self):
        """The image tower this method encodes images with: ``None`` means the loaded, frozen tower
        (features can be cached); image methods return their own (trained) tower."""
        return None

    def feature_similarities(self, z) -> torch.Tensor:  # pragma: no cover - abstract
        """Class similarities ``[N, K]`` of unit image features ``z`` ``[N, d]``."""
        raise NotImplementedError

    def local_similarities(self, z, local) -> torch.Tensor:
        """Similarities ``[N, HW, K]`` of local features ``[N, HW, d]`` (GL-MCM); ``z`` are the global
        features. Default: the method's feature head applied at every location."""
        n, hw, d = local.shape
        return self.feature_similarities(local.reshape(n * hw, d).float()).reshape(n, hw, -1)

    def similarities(self, x) -> torch.Tensor:
        """Similarities of what :attr:`inputs` says: features, or images for image methods."""
        if self.inputs == "images":
            return self.feature_similarities(self.encode(x))
        return self.feature_similarities(x)

    def encode(self, images) -> torch.Tensor:
        """Unit-norm features of preprocessed images with :attr:`encoder` (image methods only)."""
        if self.encoder is None:
            raise ConfigError(f"{type(self).__name__} reads cached features; it has no image encoder")
        return nn.functional.normalize(self.encoder(images).float(), dim=-1)

    def logits(self, x) -> torch.Tensor:
        return self.scale * self.similarities(x)

    @torch.no_grad()
    def predict_similarities(self, x, batch_size: int = 1024) -> torch.Tensor:
        was = self.training
        self.eval()
        out = torch.cat([self.similarities(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])
        self.train(was)
        return out

    def encode_names(self, names, image_features=None) -> torch.Tensor:
        """Unit text features of arbitrary class names as this method would prompt them (prompt learners:
        CoOp, CoCoOp, KgCoOp, MaPLe); used by DOR and the feature-divergence diagnostic. Methods without
        prompts raise :class:`ConfigError`."""
        raise ConfigError(f"{type(self).__name__} has no prompts to encode arbitrary class names with; "
                          "DOR and feature divergence need a prompt learner (coop, cocoop, kgcoop, maple, ...)")

    def cache_names(self, names) -> None:
        """Prepare :meth:`encode_names` for these names (prompt learners tokenize them once); default: nothing."""

    def class_bound_parameters(self) -> list[str]:
        """Names of trainable parameters tied to the training classes (linear heads, class-specific
        contexts), which cannot carry over to other class names (:func:`clipstudy.experiment.transfer_to_classes`).
        Default: every trainable parameter whose first dimension is the number of classes."""
        k = len(self.classnames)
        return [n for n, p in self.named_parameters() if p.requires_grad and p.dim() >= 1 and p.shape[0] == k]

    # -- training ---------------------------------------------------------------------------------
    def forward_train(self, batch) -> dict:
        """What one training step computes: at least ``logits`` [B, K]; image methods add ``features``
        (unit image features) so regularizers can reuse them instead of encoding the batch again."""
        if self.inputs == "images":
            z = self.encode(batch["images"])
            return {"features": z, "logits": self.scale * self.feature_similarities(z)}
        return {"logits": self.logits(batch["x"])}

    def task_loss(self, batch, outputs) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs["logits"].float(), batch["y"])

    def loss(self, batch) -> dict:
        outputs = self.forward_train(batch)
        task = self.task_loss(batch, outputs)
        out, total = {"task": task.detach()}, task
        for reg in self.regularizers:
            value = reg(self, batch, outputs)
            out[reg.name] = value.detach()
            total = total + reg.weight * value
        out["loss"] = total
        return out

    def add_regularizer(self, name: str, weight: float = 1.0, **params) -> "Method":
        """Attach registered regularizer ``name`` with ``weight`` (its other params go to its constructor).

        ``weight`` is given at CLIP's logit scale 100 (the papers' weights); the weight applied is
        :func:`clipstudy.losses.scaled_weight` of it at this model's logit scale (``reg.weight``; the
        given one is ``reg.nominal_weight``), unless the class sets ``scale_weights = False``."""
        from ..losses import scaled_weight
        from ..regularizers import REGULARIZERS, build_regularizer

        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"regularizer {name!r}: weight must be a number >= 0, got {weight!r}")
        reg = build_regularizer(name, self, self._loaded, **params)
        power = REGULARIZERS.meta(name).get("scale_power")  # None: a regularizer that declares no power is not rescaled
        reg.name, reg.nominal_weight = name, float(weight)
        scaled = self.scale_weights and power is not None
        reg.weight = scaled_weight(weight, power, float(self.scale)) if scaled else float(weight)
        self.regularizers.append(reg)
        return self


class Regularizer(nn.Module):
    """A term added to a method's loss: ``forward(method, batch, outputs) -> scalar``. ``name`` and
    ``weight`` are set when it is attached (:meth:`Method.add_regularizer`)."""

    name = "regularizer"
    weight = 1.0

    def forward(self, method, batch, outputs) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


from ..batches import feature_batches  # noqa: E402,F401  (re-exported: batch sources live in clipstudy.batches)
