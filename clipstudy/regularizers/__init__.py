"""Regularizers that attach to any method's loss (see :class:`clipstudy.methods.base.Regularizer`).

Each is a :class:`~clipstudy.methods.base.Regularizer` class registered in :data:`REGULARIZERS` by a module of
this package (``@REGULARIZERS.register("name", scale_power=p, description=...)``), built as
``cls(method, loaded, **params)`` by :func:`build_regularizer` and attached to a method with
``regularizers={"name": {"weight": w, ...}}`` (:meth:`clipstudy.methods.base.Method.add_regularizer`).
``scale_power`` is the power of the logit scale in the regularizer's gradient, which
:func:`clipstudy.losses.scaled_weight` uses to carry a recipe's weight to the model's logit scale.

Every module of this package is imported on the first lookup in :data:`REGULARIZERS`
(:func:`clipstudy.registry.import_submodules`), so a new regularizer module registers itself:

* ``dor``: DOR (Wang, Li & Wei, ICML 2025; :mod:`.dor`);
* ``kgcoop``: KgCoOp's knowledge guidance (Yao, Zhang & Xu, CVPR 2023; :mod:`.knowledge_guidance`);
* ``l2sp``, ``kd``, ``car_ft``, ``lipsum``: the robust fine-tuning baselines and Lipsum-FT
  (Nam et al., ICLR 2024; :mod:`.zero_shot_anchors`).
"""
from __future__ import annotations

from ..registry import Registry

REGULARIZERS = Registry("regularizer", package=__name__)


def list_regularizers() -> list[str]:
    return REGULARIZERS.list()


def regularizer_class(name: str):
    """The registered regularizer class ``name``; unknown names list the valid regularizers."""
    return REGULARIZERS.get(name)


def build_regularizer(name: str, method, loaded, **params):
    """Instantiate regularizer ``name`` for ``method``; unknown names list the valid regularizers, wrong
    parameters raise a :class:`~clipstudy.errors.ConfigError`."""
    from ..errors import ConfigError

    cls = REGULARIZERS.get(name)
    try:
        return cls(method, loaded, **params)
    except TypeError as exc:
        raise ConfigError(f"regularizer {name!r}: {exc}") from None
