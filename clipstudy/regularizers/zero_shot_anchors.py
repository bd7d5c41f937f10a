"""Regularizers of robust fine-tuning, attached to an image method such as ``finetune``
(``regularizers={"lipsum": {"weight": 1.0, "n_texts": 80, "length": 8}}``):

* ``l2sp``: ``‖θ − θ0‖²`` over the image tower (Li et al. 2018, "Explicit inductive bias for transfer
  learning with convolutional networks", ICML; Lipsum-FT's L2SP baseline, docs/protocols.md §4.4);
* ``kd``: distillation to the zero-shot model's logits (Hinton et al. 2015; Lipsum-FT's KD baseline);
* ``car_ft``: KL between the zero-shot and the fine-tuned model's distributions over contexts (the
  template embeddings; Mao et al. 2022, CAR-FT; docs/protocols.md §5.7);
* ``lipsum``: Lipsum-FT's random-text regulariser (Nam et al. 2024; docs/protocols.md §4.3–4.5).

All reuse the unit image features ``outputs["features"]`` that the method's ``forward_train`` already
computed, and the features of the frozen zero-shot tower θ0 are computed once per step for every
regularizer that needs them (:func:`theta0_features`), without gradients and with the frozen copy in
eval mode.

Note for towers with BatchNorm (the embedded ModifiedResNet): the trained tower runs in train mode (batch
statistics) and θ0 in eval mode (running statistics), so at θ = θ0 the KD, CAR-FT and Lipsum terms are
not exactly zero during training; they are for towers without BatchNorm (ViT) and in eval mode.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..methods.base import Regularizer
from . import REGULARIZERS

_THETA0 = "_theta0_tower"


def frozen_tower(method):
    """The method's image tower as it was when the first regularizer was attached (θ0): a deep copy,
    frozen, in eval mode, shared by every regularizer of the method and kept out of its state dict."""
    tower = method.__dict__.get(_THETA0)
    if tower is None:
        if method.encoder is None:
            raise ConfigError(f"{type(method).__name__} has no image tower of its own; these regularizers "
                              "need an image method (inputs='images'), e.g. finetune")
        tower = copy.deepcopy(method.encoder).eval().requires_grad_(False)
        object.__setattr__(method, _THETA0, tower)  # not a submodule: not trained, not in the state dict
    return tower


def theta0_features(method, batch, outputs):
    """Unit features of the batch under θ0, computed once per step and kept in ``outputs``."""
    if "features0" not in outputs:
        tower = frozen_tower(method)
        with torch.no_grad():
            outputs["features0"] = F.normalize(tower(batch["images"]).float(), dim=-1)
    return outputs["features0"]


def _features(outputs):
    if "features" not in outputs:
        raise ConfigError("this regularizer needs the unit image features of forward_train (outputs['features'])")
    return outputs["features"]


@REGULARIZERS.register("l2sp", scale_power=0,
                       description="L2-SP: squared distance of the image tower's weights to the zero-shot ones")
class L2SP(Regularizer):
    """``Σ_i ‖θ_i − θ0_i‖²`` over the parameters of the method's image tower (not its head): L2-SP
    (Li et al. 2018, Eq. 3 without its head term), the starting point being the zero-shot tower."""

    def __init__(self, method, loaded):
        super().__init__()
        frozen_tower(method)

    def forward(self, method, batch, outputs):
        start = dict(frozen_tower(method).named_parameters())
        terms = [(p.float() - start[n].float()).pow(2).sum() for n, p in method.encoder.named_parameters()]
        return torch.stack(terms).sum()


@REGULARIZERS.register("kd", scale_power=1,
                       description="KD: KL from the zero-shot model's class distribution to the fine-tuned one's")
class KD(Regularizer):
    """``T² · KL(softmax(ℓ0/T) ‖ softmax(ℓ/T))`` (Hinton et al. 2015), teacher logits
    ``ℓ0 = s · F_θ0(x) @ W0ᵀ`` of the zero-shot model: θ0's features with the method's classifier as it
    was when attached (the zero-shot head for ``finetune``). Lipsum-FT's exact KD form (λ, T) is not
    known (docs/protocols.md §4.4 [S]); T = 1 here."""

    def __init__(self, method, loaded, temperature: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ConfigError(f"kd: temperature must be > 0, got {temperature!r}")
        if not isinstance(getattr(method, "head", None), torch.Tensor):
            raise ConfigError(f"kd needs a method with a linear head (finetune); {type(method).__name__} has none")
        self.temperature = float(temperature)
        frozen_tower(method)
        self.register_buffer("head0", method.head.detach().float().clone(), persistent=False)
        bias = getattr(method, "head_bias", None)
        self.register_buffer("bias0", None if bias is None else bias.detach().float().clone(), persistent=False)

    def teacher_logits(self, method, features0):
        logits = method.scale * features0 @ self.head0.t()
        return logits if self.bias0 is None else logits + self.bias0

    def forward(self, method, batch, outputs):
        t = self.temperature
        teacher = self.teacher_logits(method, theta0_features(method, batch, outputs))
        student = outputs["logits"].float()
        return t * t * F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1),
                                reduction="batchmean", log_target=True)


def context_embeddings(loaded, classnames, templates) -> torch.Tensor:
    """CAR-FT's context embeddings ``W_ctx`` ``[T, d]``: for each template, the mean over classes of the
    unit text features of ``template.format(class)``, re-normalised (Lipsum-FT's ``setup.py`` builds the
    same ``zeroshot_ctx_weights``, docs/protocols.md §5.7)."""
    from ..prompts import get_templates

    from ..text import encode_texts

    out = [F.normalize(encode_texts(loaded, [t.format(c) for c in classnames], batch_size=len(classnames)).mean(0),
                       dim=-1) for t in get_templates(templates)]
    return torch.stack(out)


@REGULARIZERS.register("car_ft", scale_power=1,
                       description="CAR-FT: KL from the zero-shot to the fine-tuned distribution over prompt templates")
class CARFT(Regularizer):
    """``KL(p_θ0(ctx|x) ‖ p_θ(ctx|x))`` with ``p(ctx|x) = softmax(s · F(x) @ W_ctxᵀ)`` over the context
    embeddings of ``templates`` (:func:`context_embeddings`). CAR-FT (Mao et al. 2022; docs/protocols.md §5.7):
    the KL direction and λ are not known [NF]; chosen here: zero-shot → fine-tuned (the distillation
    direction, as in ``kd``). Unverified against the CAR-FT paper."""

    def __init__(self, method, loaded, templates="imagenet80"):
        super().__init__()
        frozen_tower(method)
        self.register_buffer("contexts", context_embeddings(loaded, method.classnames, templates), persistent=False)
        if len(self.contexts) < 2:
            raise ConfigError("car_ft needs at least two templates (contexts)")

    def forward(self, method, batch, outputs):
        f0 = theta0_features(method, batch, outputs)
        log_p = F.log_softmax(method.scale * _features(outputs).float() @ self.contexts.t(), -1)
        log_p0 = F.log_softmax(method.scale * f0 @ self.contexts.t(), -1)
        return F.kl_div(log_p, log_p0, reduction="batchmean", log_target=True)


@REGULARIZERS.register("lipsum", scale_power=2,
                       description="Lipsum-FT: squared gap to the zero-shot model's image-text logits on random texts")
class Lipsum(Regularizer):
    """Lipsum-FT (Nam et al. 2024, ``scripts/Lipsum-FT.py``; docs/protocols.md §4.3): each step, ``n_texts``
    random token sequences of ``length`` tokens (:func:`clipstudy.analysis.random_text_tokens`, from
    ``(seed, batch["step"])``), encoded by the frozen text tower, and
    :func:`clipstudy.analysis.lipsum_regularizer` between the fine-tuned and the zero-shot image features,
    with the method's logit scale (100 for OpenAI CLIP, as the code; the model's own scale otherwise)."""

    def __init__(self, method, loaded, n_texts: int = 80, length: int = 8, seed: int = 0):
        super().__init__()
        from ..analysis.energy import text_token_spec
        from ..text import text_encoder

        if n_texts < 1 or length < 1:
            raise ConfigError(f"lipsum: n_texts and length must be >= 1, got {n_texts}, {length}")
        self.n_texts, self.length, self.seed = int(n_texts), int(length), int(seed)
        self.token_spec = text_token_spec(loaded)
        self._calls = 0
        object.__setattr__(self, "loaded", loaded)
        object.__setattr__(self, "encode_text", text_encoder(loaded))
        frozen_tower(method)

    def text_features(self, step: int) -> torch.Tensor:
        """Unit features ``[n_texts, d]`` of this step's random texts (frozen text tower, no gradient)."""
        from ..analysis.energy import random_text_tokens

        ids = random_text_tokens(self.n_texts, self.length, seed=self.seed, step=step, **self.token_spec)
        with torch.no_grad():
            return F.normalize(self.encode_text(ids.to(self.loaded.device)).float(), dim=-1)

    def forward(self, method, batch, outputs):
        from ..analysis.energy import lipsum_regularizer

        step = batch.get("step")
        if step is None:  # batches without a step index (hand-made ones): count calls instead
            step, self._calls = self._calls, self._calls + 1
        f0 = theta0_features(method, batch, outputs)
        return lipsum_regularizer(_features(outputs), f0, self.text_features(int(step)), float(method.scale))
