"""MaPLe: multi-modal prompt learning (Khattak et al., CVPR 2023), and its language branch alone.

Ported from ``muzairkhattak/multimodal-prompt-learning`` (``trainers/maple.py``, ``clip/model.py``) to
open_clip:

* **text**: ``n_ctx`` learnable context vectors (initialised from the first ``n_ctx`` tokens of
  ``ctx_init``; the rest of ``ctx_init`` stays in the fixed prompt, so ``"a photo of a"`` with 2 vectors
  gives ``[SOS] ctx_1 ctx_2 of a {class} . [EOS]``), plus ``prompt_depth − 1`` deep prompts ``P_j``
  (``N(0, 0.02²)``) that replace the outputs at the context positions before text layers ``1..J−1``;
* **vision** (the coupling function): ``proj(ctx)`` (``Linear(text width, vision width)``) is appended to
  the image tokens after the positional embedding (before ``ln_pre``), and ``proj_j(P_j)`` replace those
  tokens before vision layers ``1..J−1``. The CLS output is pooled, as in CLIP.

Only the prompts and projections train; both towers stay frozen. MaPLe needs open_clip's built-in text
transformer and a ViT image tower: on a ModifiedResNet (the embedded model) there are no image tokens to
insert prompts into, and :class:`MaPLe` raises :class:`ConfigError`.

:class:`DeepTextPrompt` is MaPLe's *language branch alone* (deep text prompts, no vision prompts and no
coupling; the "deep language prompting" design MaPLe compares against). It is **not MaPLe**; it runs on
cached image features of any image tower, including the embedded ResNet.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import METHODS
from .base import Method
from .prompt_learning import PromptLearner, PromptTextEncoder


class DeepTextPrompts(nn.Module):
    """The text side of MaPLe: the shallow context (a :class:`PromptLearner` with the class token at the
    end) and ``prompt_depth − 1`` deep prompts ``[n_ctx, width]`` (``compound_prompts_text``)."""

    def __init__(self, loaded, classnames, encoder: PromptTextEncoder, n_ctx: int, ctx_init: str,
                 prompt_depth: int, seed: int):
        super().__init__()
        layers = len(encoder.transformer.resblocks)
        if isinstance(prompt_depth, bool) or not isinstance(prompt_depth, int) or not 1 <= prompt_depth <= layers:
            raise ConfigError(f"prompt_depth must be an integer in [1, {layers}] (the text tower's layers), "
                              f"got {prompt_depth!r}")
        self.learner = PromptLearner(loaded, classnames, encoder, n_ctx, ctx_init, "end", False, seed,
                                     n_ctx_from_init=False)
        g = torch.Generator().manual_seed(seed + 1)
        shape = (self.learner.n_ctx, encoder.width)
        device = self.learner.ctx.device
        self.deep = nn.ParameterList([nn.Parameter((torch.randn(shape, generator=g) * 0.02).to(device))
                                      for _ in range(prompt_depth - 1)])

    @property
    def depth(self) -> int:
        return len(self.deep) + 1


class _DeepPromptMixin:
    """Text features of class names through deep text prompts (shared by both methods below)."""

    def _text(self) -> DeepTextPrompts:  # pragma: no cover - abstract
        raise NotImplementedError

    def text_features(self) -> torch.Tensor:
        """Unit-norm class text features ``[K, d]``."""
        p = self._text()
        feats = self.text_encoder(p.learner(), p.learner.tokens, deep_prompts=list(p.deep))
        return F.normalize(feats.float(), dim=-1)

    def encode_names(self, names, image_features=None) -> torch.Tensor:
        """Unit text features ``[n, d]`` of arbitrary names with the learned shallow and deep text prompts
        (DOR's outliers go through the same prompted text tower, docs/protocols.md §2.2); ``image_features`` is
        ignored (the text prompts do not depend on the image)."""
        p = self._text()
        prompts, tokens = p.learner.name_prompts(self._loaded, self.text_encoder, names)
        return F.normalize(self.text_encoder(prompts, tokens, deep_prompts=list(p.deep)).float(), dim=-1)

    def class_bound_parameters(self) -> list[str]:
        return []  # every prompt is shared by all class names

    def cache_names(self, names) -> None:
        """Tokenize the prompts of ``names`` once, ahead of :meth:`encode_names` calls (DOR's outlier pool)."""
        self._text().learner.cache_tokens(self._loaded, self.text_encoder, list(names))


@METHODS.register("deep_text_prompt")
class DeepTextPrompt(_DeepPromptMixin, Method):
    """Deep text prompts on a frozen CLIP: MaPLe's language branch without vision prompts (not MaPLe).

    Defaults follow MaPLe (2 context vectors from ``"a photo of a"``, prompt depth 9); runs on cached image
    features, so it works with any image tower.
    """

    def __init__(self, loaded, classnames, n_ctx: int = 2, ctx_init: str = "a photo of a", prompt_depth: int = 9,
                 seed: int = 0, regularizers=None):
        super().__init__(loaded, classnames, regularizers)
        self.text_encoder = PromptTextEncoder(loaded.model)
        self.text_prompts = DeepTextPrompts(loaded, classnames, self.text_encoder, n_ctx, ctx_init, prompt_depth,
                                            seed)

    def _text(self) -> DeepTextPrompts:
        return self.text_prompts

    def feature_similarities(self, z):
        return F.normalize(z.float(), dim=-1) @ self.text_features().t()

    def forward_train(self, batch) -> dict:
        t = self.text_features()
        return {"logits": self.scale * F.normalize(batch["x"].float(), dim=-1) @ t.t(), "text_features": t}


def vit_support(visual) -> str | None:
    """``None`` if MaPLe can prompt this image tower, else the reason it cannot."""
    from open_clip.transformer import VisionTransformer

    if not isinstance(visual, VisionTransformer):
        return (f"MaPLe inserts prompt tokens into a vision transformer's token sequence; this image tower is a "
                f"{type(visual).__name__}, which has no tokens to prompt (the embedded model is a ModifiedResNet: "
                "use a ViT such as ViT-B-16, or 'deep_text_prompt' for MaPLe's language branch alone)")
    missing = [a for a in ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "_pool")
               if not hasattr(visual, a)]
    if missing or not hasattr(visual.transformer, "resblocks"):
        return f"this open_clip VisionTransformer lacks {missing or ['transformer.resblocks']}; MaPLe cannot prompt it"
    return None


class PromptedViT(nn.Module):
    """An open_clip ``VisionTransformer`` run with MaPLe's coupled vision prompts
    (``VisionTransformer_MaPLe.forward`` and ``ResidualAttentionBlock_MaPLe`` of the reference ``clip/model.py``).

    Holds the frozen tower (``vit``, shared with the loaded model) and the text prompts it is coupled to,
    so its weights hash (the image-feature cache key) changes whenever the prompts do.
    """

    def __init__(self, visual, text_prompts: DeepTextPrompts, text_width: int, seed: int):
        super().__init__()
        self.vit = visual
        self.text_prompts = text_prompts
        vis_width = int(visual.conv1.out_channels)
        layers = len(visual.transformer.resblocks)
        if text_prompts.depth > layers:
            raise ConfigError(f"prompt_depth {text_prompts.depth} exceeds the image tower's {layers} layers")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.proj = nn.Linear(text_width, vis_width)
            self.deep_proj = nn.ModuleList([nn.Linear(text_width, vis_width) for _ in text_prompts.deep])
        device = text_prompts.learner.ctx.device
        self.proj.to(device)
        self.deep_proj.to(device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        v = self.vit
        x = v.conv1(images.to(v.conv1.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, grid², width]
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.patch_dropout(x)
        ctx = self.proj(self.text_prompts.learner.ctx.to(self.proj.weight.dtype))  # [M, width]
        m = ctx.shape[0]
        x = torch.cat([x, ctx.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)], dim=1)
        x = v.ln_pre(x)
        deep = [p(t.to(p.weight.dtype)) for p, t in zip(self.deep_proj, self.text_prompts.deep)]
        batch_first = getattr(v.transformer, "batch_first", True)
        for i, block in enumerate(v.transformer.resblocks):
            if 1 <= i <= len(deep):
                x = torch.cat([x[:, :-m], deep[i - 1].to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)], dim=1)
            x = block(x) if batch_first else block(x.transpose(0, 1)).transpose(0, 1)
        pooled, _ = v._pool(x[:, :-m])  # the prompt tokens never reach the pooled output
        return pooled @ v.proj if v.proj is not None else pooled


@METHODS.register("maple")
class MaPLe(_DeepPromptMixin, Method):
    """MaPLe (Khattak et al. 2023): coupled deep prompts in both towers; trains on images.

    Defaults follow MaPLe's base-to-new config: ``N_CTX=2``, ``CTX_INIT="a photo of a"``,
    ``PROMPT_DEPTH=9``. Raises :class:`ConfigError` for image towers that are not open_clip ViTs.
    """

    inputs = "images"
    batch_keys = ("images", "y")

    @staticmethod
    def unsupported_reason(loaded) -> str | None:
        """Why MaPLe cannot run on ``loaded`` (its image tower is not an open_clip ViT), or ``None``."""
        return vit_support(loaded.model.visual)

    def __init__(self, loaded, classnames, n_ctx: int = 2, ctx_init: str = "a photo of a", prompt_depth: int = 9,
                 seed: int = 0, regularizers=None):
        reason = vit_support(loaded.model.visual)
        if reason:
            raise ConfigError(reason)
        super().__init__(loaded, classnames, regularizers)
        self.text_encoder = PromptTextEncoder(loaded.model)
        text = DeepTextPrompts(loaded, classnames, self.text_encoder, n_ctx, ctx_init, prompt_depth, seed)
        loaded.model.visual.requires_grad_(False)
        self.image_encoder = PromptedViT(loaded.model.visual, text, self.text_encoder.width, seed)

    def _text(self) -> DeepTextPrompts:
        return self.image_encoder.text_prompts

    @property
    def encoder(self):
        return self.image_encoder

    def feature_similarities(self, z):
        return F.normalize(z.float(), dim=-1) @ self.text_features().t()

    def forward_train(self, batch) -> dict:
        z = self.encode(batch["images"])
        t = self.text_features()
        return {"features": z, "logits": self.scale * z @ t.t(), "text_features": t}
