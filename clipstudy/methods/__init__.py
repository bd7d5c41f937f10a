"""Fine-tuning methods, one module each, registered in :data:`METHODS`.

A method is an ``nn.Module`` built as ``METHODS.get(name)(loaded_model, classnames, **params)``.
It declares

* ``inputs``: ``"features"`` (trains and predicts on cached, frozen image features) or
  ``"images"`` (fine-tunes its own image tower, :attr:`~clipstudy.methods.base.Method.encoder`);
* which parameters train (``requires_grad``) and ``loss(batch) -> {"loss": ..., ...}``, used by the
  single loop in :mod:`clipstudy.train` (methods with nothing to train set ``trains = False``);
  regularizers from :data:`clipstudy.losses.LOSSES` attach to any method (``regularizers={...}``);
* ``feature_similarities(z) -> [N, K]`` cosine-like class similarities of unit image features (what
  OOD scorers read), ``similarities(x)`` on its inputs and ``logits(x)`` (times the logit scale).
"""
from __future__ import annotations

from ..registry import Registry

METHODS = Registry("method")


def build_method(name: str, loaded, classnames, **params):
    """Instantiate a registered method; unknown names list the valid ones."""
    _ensure_registered()
    return METHODS.get(name)(loaded, tuple(classnames), **params).to(loaded.device)


def list_methods() -> list[str]:
    _ensure_registered()
    return METHODS.list()


def _ensure_registered() -> None:
    from . import adapter, finetune, linear_probe, pretrain, prompt_learning, zeroshot  # noqa: F401
    from . import robust_ft  # noqa: F401  (flyp)
    from . import kgcoop, maple  # noqa: F401  (kgcoop, maple, deep_text_prompt)
