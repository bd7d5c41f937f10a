"""Fine-tuning methods, one module each, registered in :data:`METHODS`.

A method is an ``nn.Module`` built as ``METHODS.get(name)(loaded_model, classnames, **params)``.
It declares

* ``inputs``: ``"features"`` (trains and predicts on cached, frozen image features) or
  ``"images"`` (fine-tunes its own image tower, :attr:`~clipstudy.methods.base.Method.encoder`);
* which parameters train (``requires_grad``) and ``loss(batch) -> {"loss": ..., ...}``, used by the
  single loop in :mod:`clipstudy.train` (methods with nothing to train set ``trains = False``);
  regularizers from :data:`clipstudy.regularizers.REGULARIZERS` attach to any method (``regularizers={...}``);
* ``feature_similarities(z) -> [N, K]`` cosine-like class similarities of unit image features (what
  OOD scorers read), ``similarities(x)`` on its inputs and ``logits(x)`` (times the logit scale).

Every module of this package is imported on the first lookup in :data:`METHODS`
(:func:`clipstudy.registry.import_submodules`): a method module registers itself with
``@METHODS.register("name")``, without being added to any list.
"""
from __future__ import annotations

import inspect

from ..registry import Registry

METHODS = Registry("method", package=__name__)


def build_method(name: str, loaded, classnames, *, seed: int | None = None, **params):
    """Instantiate a registered method; unknown names list the valid ones.

    ``seed`` (a training cell's seed) drives every random choice of the construction: it is passed to
    the method's constructor and to each attached regularizer whose constructor takes a ``seed`` (CoOp's
    random context, CoCoOp's meta-net, CLIP-Adapter, MaPLe's prompts, FLYP's template draws, DOR's
    sampler, Lipsum-FT's random texts, ...), and PyTorch's global generator is seeded with it for the
    duration of the construction (restored afterwards), so layers initialised by PyTorch's defaults are
    reproducible too. A recipe may not set ``seed`` itself when a cell seed is given (two seeds for one
    draw would be ambiguous). Without ``seed`` the constructors' own defaults apply.
    """
    cls = METHODS.get(name)
    if seed is None:
        return cls(loaded, tuple(classnames), **params).to(loaded.device)
    import torch

    params = seeded_params(name, cls, params, int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return cls(loaded, tuple(classnames), **params).to(loaded.device)


def seeded_params(name: str, cls, params: dict, seed: int) -> dict:
    """``params`` with ``seed`` set for the method (if its constructor takes one) and for each regularizer
    in ``params["regularizers"]`` whose constructor takes one; an explicit ``seed`` is an error."""
    from ..errors import ConfigError
    from ..losses import regularizer_class

    def takes_seed(fn) -> bool:
        return "seed" in inspect.signature(fn).parameters

    out = dict(params)
    if "seed" in out:
        raise ConfigError(f"method {name!r}: 'seed' is set both by the cell ({seed}) and in the recipe "
                          f"({out['seed']!r}); remove it from the recipe, the cell's seed drives every draw")
    if takes_seed(cls):
        out["seed"] = seed
    regs = {}
    for reg, reg_params in dict(out.get("regularizers") or {}).items():
        reg_params = dict(reg_params)
        if "seed" in reg_params:
            raise ConfigError(f"regularizer {reg!r} of {name!r}: 'seed' is set both by the cell ({seed}) and in "
                              "the recipe; remove it from the recipe")
        if takes_seed(regularizer_class(reg)):
            reg_params["seed"] = seed
        regs[reg] = reg_params
    if regs:
        out["regularizers"] = regs
    return out


def list_methods() -> list[str]:
    return METHODS.list()


def _ensure_registered() -> None:
    """Import every method module now (kept for callers of the former hand-kept import list; any lookup in
    :data:`METHODS` does it)."""
    METHODS.load()
