"""Prompt learning on a frozen CLIP: CoOp (Zhou et al. 2022, IJCV) and CoCoOp (Zhou et al. 2022, CVPR).

Ported from ``KaiyangZhou/CoOp`` ``trainers/coop.py`` and ``trainers/cocoop.py`` (docs/protocols.md §5.1–5.2,
§6 item 3) to open_clip. A prompt is ``[SOS] ctx_1 .. ctx_M [CLASS] . [EOS]``: the tokens of
``"X X ... X {classname}."`` are embedded with the frozen ``token_embedding`` and the ``X`` positions
are replaced by learnable context vectors, then the frozen text tower runs on these embeddings
(:class:`PromptTextEncoder`). Only the context (and CoCoOp's meta-net) train.

Both methods work on cached, unit-norm image features: ``similarities = z @ normalize(G(prompts))^T``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..text import PromptTextEncoder, prompt_tokens  # noqa: F401  (re-exported: the text tower lives in clipstudy.text)
from . import METHODS
from .base import Method

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")
class PromptLearner(nn.Module):
    """CoOp's learnable context and the fixed class-name embeddings around it.

    ``KaiyangZhou/CoOp`` ``trainers/coop.py`` ``PromptLearner``: ``ctx_init=""`` draws ``n_ctx`` vectors
    from N(0, 0.02²) (seeded); a phrase such as ``"a photo of a"`` initialises the context with its own
    token embeddings and sets ``n_ctx`` to its token count. ``class_specific`` (CoOp's CSC) gives each
    class its own context (with ``ctx_init``, each class starts from the phrase; CoOp keeps one shared
    context then). ``class_token_position``: ``"end"``, ``"middle"`` (``n_ctx // 2`` vectors before the
    name) or ``"front"``.
    """

    def __init__(self, loaded, classnames, encoder: PromptTextEncoder, n_ctx: int = 16, ctx_init: str = "",
                 class_token_position: str = "end", class_specific: bool = False, seed: int = 0,
                 n_ctx_from_init: bool = True):
        super().__init__()
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            valid = ", ".join(CLASS_TOKEN_POSITIONS)
            raise ConfigError(f"unknown class_token_position {class_token_position!r}; valid: {valid}")
        names = [c.replace("_", " ") for c in classnames]
        L, device = encoder.context_length, encoder.token_embedding.weight.device
        ctx_init = (ctx_init or "").replace("_", " ").strip()
        if ctx_init:
            init_tokens = prompt_tokens(loaded, [ctx_init], L).to(device)
            n_init = len(loaded.tokenizer.encode(ctx_init))
            if n_ctx_from_init:
                n_ctx = n_init
            elif not isinstance(n_ctx, int) or not 1 <= n_ctx <= n_init:
                raise ConfigError(f"n_ctx must be an integer in [1, {n_init}] (the tokens of ctx_init "
                                  f"{ctx_init!r}), got {n_ctx!r}")
            ctx = encoder.embed(init_tokens)[0, 1 : 1 + n_ctx].float()
            prefix_text = ctx_init
        else:
            if not isinstance(n_ctx, int) or n_ctx < 1:
                raise ConfigError(f"n_ctx must be a positive integer, got {n_ctx!r}")
            g = torch.Generator().manual_seed(seed)
            ctx = (torch.randn(n_ctx, encoder.width, generator=g) * 0.02).to(device)
            prefix_text = " ".join(["X"] * n_ctx)
        if class_specific:
            ctx = ctx.unsqueeze(0).repeat(len(names), 1, 1)
        self.n_ctx, self.class_token_position = n_ctx, class_token_position
        self.prefix_text = prefix_text
        self.ctx = nn.Parameter(ctx.clone())
        tokens, prefix, suffix, self.name_lens = self._name_parts(loaded, encoder, names)
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("token_prefix", prefix.clone(), persistent=False)  # SOS
        self.register_buffer("token_suffix", suffix.clone(), persistent=False)  # CLS . EOS pad

    @property
    def class_specific(self) -> bool:
        return self.ctx.dim() == 3

    def _name_parts(self, loaded, encoder, names):
        """Token ids, SOS embedding, embeddings after the context, and BPE lengths of ``names``' prompts
        ``"{prefix_text} {name}."`` (CoOp ``PromptLearner.__init__``)."""
        tokens, name_lens = self._tokens(loaded, encoder, names)
        embedding = encoder.embed(tokens.to(encoder.token_embedding.weight.device))
        return tokens.to(embedding.device), embedding[:, :1], embedding[:, 1 + self.n_ctx :], name_lens

    def _tokens(self, loaded, encoder, names):
        """Prompt token ids ``[n, L]`` and name lengths, cached per name: DOR prompts a few names of a fixed
        pool every step, and tokenizing them again would cost more than a tenth of the step."""
        names = [str(c).replace("_", " ") for c in names]
        cache = self.__dict__.setdefault("_token_cache", {})
        todo = [n for n in dict.fromkeys(names) if n not in cache]
        if todo:
            ids = prompt_tokens(loaded, [f"{self.prefix_text} {name}." for name in todo], encoder.context_length)
            cache.update({n: (ids[i], len(loaded.tokenizer.encode(n))) for i, n in enumerate(todo)})
        return torch.stack([cache[n][0] for n in names]), [cache[n][1] for n in names]

    def cache_tokens(self, loaded, encoder, names) -> None:
        """Tokenize ``names``' prompts now (DOR's whole outlier pool, once) so training steps only look them up."""
        if names:
            self._tokens(loaded, encoder, names)

    def name_prompts(self, loaded, encoder, names, ctx: torch.Tensor | None = None):
        """``(prompt embeddings [n, L, width], tokens [n, L])`` of arbitrary class names with the current
        (shared) context, laid out as the class prompts (DOR's outlier names, new classes).

        A class-specific context (CoOp's CSC) has no vector for a name outside the training classes."""
        if self.class_specific:
            raise ConfigError("a class-specific context (class_specific=True) has no context for other class "
                              "names; use a shared context to encode new or outlier names")
        tokens, prefix, suffix, name_lens = self._name_parts(loaded, encoder, names)
        return self.assemble(self.ctx if ctx is None else ctx, prefix, suffix, name_lens), tokens

    def forward(self, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """Prompt embeddings ``[K, L, width]``; ``ctx`` overrides the context (``[M, w]`` or ``[K, M, w]``)."""
        return self.assemble(self.ctx if ctx is None else ctx, self.token_prefix, self.token_suffix, self.name_lens)

    def assemble(self, ctx, prefix, suffix, name_lens) -> torch.Tensor:
        """``[SOS] ctx [CLASS] . [EOS]`` (or the middle/front layouts) from its parts (CoOp ``PromptLearner.forward``)."""
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(len(name_lens), -1, -1)
        ctx = ctx.to(prefix.dtype)
        if self.class_token_position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        half = self.n_ctx // 2
        prompts = []
        for i, n in enumerate(name_lens):
            name, rest = suffix[i : i + 1, :n], suffix[i : i + 1, n:]
            if self.class_token_position == "middle":
                parts = [prefix[i : i + 1], ctx[i : i + 1, :half], name, ctx[i : i + 1, half:], rest]
            else:
                parts = [prefix[i : i + 1], name, ctx[i : i + 1], rest]
            prompts.append(torch.cat(parts, dim=1))
        return torch.cat(prompts, dim=0)


@METHODS.register("coop")
class CoOp(Method):
    """CoOp: learned context vectors, frozen CLIP (Zhou et al. 2022; ``KaiyangZhou/CoOp`` ``trainers/coop.py``).

    Parameters as in :class:`PromptLearner`; defaults follow CoOp (``N_CTX=16``, random init, generic
    context, class token at the end). With ``ctx_init="a photo of a"`` the untrained model equals
    zero-shot CLIP with the prompt ``"a photo of a {}."``.
    """

    def __init__(self, loaded, classnames, n_ctx: int = 16, ctx_init: str = "", class_token_position: str = "end",
                 class_specific: bool = False, seed: int = 0, regularizers=None):
        super().__init__(loaded, classnames, regularizers)
        self.text_encoder = PromptTextEncoder(loaded.model)
        self.prompt_learner = PromptLearner(loaded, classnames, self.text_encoder, n_ctx, ctx_init,
                                            class_token_position, class_specific, seed)

    def text_features(self) -> torch.Tensor:
        """Unit-norm class text features ``[K, d]`` of the current prompts."""
        feats = self.text_encoder(self.prompt_learner(), self.prompt_learner.tokens)
        return F.normalize(feats.float(), dim=-1)

    def feature_similarities(self, z):
        return F.normalize(z.float(), dim=-1) @ self.text_features().t()

    def local_similarities(self, z, local):
        head = self.text_features()  # encode the prompts once, not once per location
        return F.normalize(local.float(), dim=-1) @ head.t()

    def forward_train(self, batch) -> dict:
        """Logits and the class text features they came from (regularizers such as KgCoOp reuse them)."""
        t = self.text_features()
        return {"logits": self.scale * F.normalize(batch["x"].float(), dim=-1) @ t.t(), "text_features": t}

    def encode_names(self, names, image_features=None) -> torch.Tensor:
        """Unit text features ``[n, d]`` of ``names`` prompted with the learned context (DOR's outlier
        names, the new classes of a base-to-new split); ``image_features`` is ignored (CoOp's context does
        not depend on the image)."""
        prompts, tokens = self.prompt_learner.name_prompts(self._loaded, self.text_encoder, names)
        return F.normalize(self.text_encoder(prompts, tokens).float(), dim=-1)

    def class_bound_parameters(self) -> list[str]:
        return ["prompt_learner.ctx"] if self.prompt_learner.class_specific else []

    def cache_names(self, names) -> None:
        """Tokenize the prompts of ``names`` once, ahead of :meth:`encode_names` calls (DOR's outlier pool)."""
        self.prompt_learner.cache_tokens(self._loaded, self.text_encoder, list(names))


@METHODS.register("cocoop")
class CoCoOp(Method):
    """CoCoOp: context plus a per-image bias ``π(z)`` from a meta-net (Zhou et al. 2022 CVPR;
    ``KaiyangZhou/CoOp`` ``trainers/cocoop.py``).

    ``π = Linear(d, d//16) → ReLU → Linear(d//16, ctx_dim)`` on the unit image feature ``z``; image i is
    scored against the prompts built from ``ctx + π(z_i)``. Defaults follow CoCoOp (4 context vectors
    initialised from ``"a photo of a"``, class token at the end). The meta-net is initialised with
    PyTorch's default ``nn.Linear`` init drawn from ``seed``. Images are scored in chunks of at most
    ``max_prompts`` prompts per text-tower call (B·K prompts are encoded for B images).
    """

    def __init__(self, loaded, classnames, n_ctx: int = 4, ctx_init: str = "a photo of a", seed: int = 0,
                 max_prompts: int = 4096, regularizers=None):
        super().__init__(loaded, classnames, regularizers)
        self.text_encoder = PromptTextEncoder(loaded.model)
        self.prompt_learner = PromptLearner(loaded, classnames, self.text_encoder, n_ctx, ctx_init, "end", False, seed)
        vis_dim, ctx_dim = _embed_dim(loaded.model), self.text_encoder.width
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.meta_net = nn.Sequential(nn.Linear(vis_dim, max(1, vis_dim // 16)), nn.ReLU(),
                                          nn.Linear(max(1, vis_dim // 16), ctx_dim))
        self.meta_net.to(self.prompt_learner.ctx.device)
        self.max_prompts = int(max_prompts)

    instance_conditioned = True
    """The class prompts depend on the image: text features need image features (FD, DOR)."""

    def instance_text_features(self, z) -> torch.Tensor:
        """Unit class text features per image ``[B, K, d]`` from the context ``ctx + π(z_b)``."""
        learner = self.prompt_learner
        return self._instance_features(z, learner.token_prefix, learner.token_suffix, learner.name_lens, learner.tokens)

    def _instance_features(self, z, prefix, suffix, name_lens, tokens) -> torch.Tensor:
        ctx = self.prompt_learner.ctx.unsqueeze(0) + self.meta_net(z).unsqueeze(1)  # [B, M, w]
        K = len(name_lens)
        chunk = max(1, self.max_prompts // K)
        out = []
        for s in range(0, len(z), chunk):
            prompts = torch.cat([self.prompt_learner.assemble(c, prefix, suffix, name_lens)
                                 for c in ctx[s : s + chunk]])  # [b*K, L, w]
            feats = self.text_encoder(prompts, tokens.repeat(len(prompts) // K, 1))
            out.append(F.normalize(feats.float(), dim=-1).view(-1, K, feats.shape[-1]))  # [b, K, d]
        return torch.cat(out)

    def encode_names(self, names, image_features=None) -> torch.Tensor:
        """Unit text features ``[B, n, d]`` of ``names`` prompted with each image's context ``ctx + π(z_b)``
        (CoCoOp-DOR's outlier prompts, docs/protocols.md §2.2). ``image_features`` ``[B, d]`` are required."""
        if image_features is None:
            raise ConfigError("CoCoOp's prompts depend on the image: encode_names needs image_features [B, d]")
        tokens, prefix, suffix, name_lens = self.prompt_learner._name_parts(self._loaded, self.text_encoder, names)
        return self._instance_features(F.normalize(image_features.float(), dim=-1), prefix, suffix, name_lens,
                                       tokens)

    def class_bound_parameters(self) -> list[str]:
        return []  # the context and the meta-net are shared by every class name

    def cache_names(self, names) -> None:
        self.prompt_learner.cache_tokens(self._loaded, self.text_encoder, list(names))

    def forward_train(self, batch) -> dict:
        z = F.normalize(batch["x"].float(), dim=-1)
        t = self.instance_text_features(z)
        return {"logits": self.scale * torch.einsum("bd,bkd->bk", z, t), "text_features": t, "features": z}

    def feature_similarities(self, z):
        z = F.normalize(z.float(), dim=-1)
        return torch.einsum("bd,bkd->bk", z, self.instance_text_features(z))

    def local_similarities(self, z, local):
        """Every location is scored against the prompts conditioned on the image's *global* feature."""
        heads = self.instance_text_features(F.normalize(z.float(), dim=-1))
        return torch.einsum("bhd,bkd->bhk", F.normalize(local.float(), dim=-1), heads)


def _embed_dim(model) -> int:
    proj = model.text_projection
    if proj is None:
        return int(model.token_embedding.weight.shape[1])
    return int(proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1])
