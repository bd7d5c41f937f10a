"""Text encoding, in one place: every tokenize-and-encode of the package goes through this module.

* :func:`encode_texts`: unit text features of strings, in batches, with the loaded model's text tower or any
  ``ids -> features`` replacement (a fine-tuned tower: FLYP); zero-shot heads
  (:func:`clipstudy.prompts.zeroshot_head`), CAR-FT's context embeddings, retrieval captions use it;
* :func:`encode_prompts`: the same for many short prompts that share a template (DOR's outlier vocabulary),
  batched by token length with the shared prefix encoded once (exact under the causal mask);
* :class:`PromptTextEncoder`: open_clip's text tower run on prompt *embeddings* (CoOp, CoCoOp, KgCoOp,
  MaPLe), and :func:`prompt_tokens`, the token ids those prompts stand for;
* :func:`text_encoder`: ``ids -> features`` of the frozen tower with the padding after the end token dropped
  (random texts of Lipsum-FT and the energy gap).

This module imports torch; import it from code that runs models (the package's light modules import it
inside functions).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .errors import ConfigError


def encode_texts(loaded, texts: Sequence[str], *, batch_size: int = 512, encode=None):
    """Unit-norm text features ``[N, d]`` (float32, no gradient) of ``texts``: tokenized with the loaded
    model's tokenizer and encoded ``batch_size`` at a time by ``encode`` (``ids -> features``; default the
    loaded model's ``encode_text``)."""
    import torch
    import torch.nn.functional as F

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    encode = encode or loaded.model.encode_text
    with torch.no_grad():
        feats = [F.normalize(encode(loaded.tokenize(texts[i:i + batch_size]).to(loaded.device)).float(), dim=-1)
                 for i in range(0, len(texts), batch_size)]
    return torch.cat(feats) if feats else torch.zeros(0, 0)


def encode_prompts(loaded, texts: Sequence[str], *, batch_size: int = 512, progress: bool = True,
                   desc: str = "text features"):
    """Unit-norm frozen text features ``[N, d]`` (float32, CPU) of ``texts``, in batches.

    Equal to ``F.normalize(model.encode_text(tokenize(texts)))``, but several times cheaper for
    many short prompts that share a template, on open_clip's standard ``CLIP`` text tower (causal
    attention, EOT pooling): texts are batched by token length, each batch runs only up to its
    longest prompt instead of the full context (77 tokens for ViT-B-16, 32 for the embedded
    model), and the token prefix common to all texts (``[SOT] a photo of a``) is encoded once,
    its per-layer keys and values reused by every prompt. With causal attention neither changes
    the EOT feature. The first batch is checked against ``encode_text`` (falling back to it on
    any mismatch), and other text towers always use ``encode_text``.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    if not texts:
        return torch.zeros(0, 0)
    tokens = loaded.tokenize(texts)  # [N, context]
    model = loaded.model
    fast = _fast_path_ok(model)
    # EOT pooling reads the position of the largest token id (the EOT): nothing after it matters.
    lengths = tokens.argmax(dim=1).cpu() + 1
    order = torch.argsort(lengths, stable=True)
    out = torch.empty(0)
    with torch.inference_mode():
        prefix = _shared_prefix(model, tokens, int(lengths.min()) - 1) if fast else None
        starts = range(0, len(texts), batch_size)
        for b, i in enumerate(tqdm(starts, desc=desc, disable=not progress, leave=False, unit="batch")):
            idx = order[i : i + batch_size]
            tok = tokens[idx]
            if fast:
                feats = _encode_text_fast(model, tok, int(lengths[idx].max()), prefix)
                if b == 0:
                    reference = model.encode_text(tok)
                    if not torch.allclose(feats.float(), reference.float(), rtol=1e-3, atol=1e-4):
                        fast, feats = False, reference
            else:
                feats = model.encode_text(tok)
            feats = F.normalize(feats.float(), dim=-1).cpu()
            if b == 0:
                out = torch.empty(len(texts), feats.shape[-1])
            out[idx.cpu()] = feats
    return out


def _fast_path_ok(model) -> bool:
    """Whether ``model`` has open_clip's plain ``CLIP`` text tower (see :func:`encode_prompts`)."""
    import torch.nn as nn

    try:
        from open_clip.transformer import ResidualAttentionBlock
    except ImportError:  # pragma: no cover - open_clip is a dependency
        return False
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    if not all(getattr(model, a, None) is not None for a in needed):
        return False
    if getattr(model, "text_pool_type", None) != "argmax":
        return False
    blocks = getattr(model.transformer, "resblocks", None)
    return bool(blocks) and all(
        type(blk) is ResidualAttentionBlock and not hasattr(blk, "ln_1_kv")
        and isinstance(blk.attn, nn.MultiheadAttention) and blk.attn._qkv_same_embed_dim
        for blk in blocks
    )


def _block(blk, x, past):
    """One ``ResidualAttentionBlock`` on ``x`` [B, S, d] whose keys/values are preceded by
    ``past`` (per-layer prefix keys and values, or None); causal. Returns (x, (k, v) of x)."""
    import torch
    import torch.nn.functional as F

    attn = blk.attn
    B, S, d = x.shape
    H = attn.num_heads
    q, k, v = F.linear(blk.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).split(d, dim=-1)
    q, k, v = (t.reshape(B, S, H, d // H).transpose(1, 2) for t in (q, k, v))
    own = (k, v)
    if past is not None:
        k = torch.cat([past[0].expand(B, -1, -1, -1), k], dim=2)
        v = torch.cat([past[1].expand(B, -1, -1, -1), v], dim=2)
    n_past = k.shape[2] - S
    mask = torch.ones(S, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=n_past)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, S, d)
    x = x + blk.ls_1(attn.out_proj(o))
    x = x + blk.ls_2(blk.mlp(blk.ln_2(x)))
    return x, own


def _shared_prefix(model, tokens, max_len: int):
    """``(P, per-layer (k, v))`` for the first ``P`` tokens shared by every row (``P <= max_len``)."""
    differs = (tokens != tokens[:1]).any(dim=0).nonzero()
    P = min(int(differs[0]) if len(differs) else tokens.shape[1], max(max_len, 0))
    if P == 0:
        return 0, None
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens[:1, :P]).to(cast) + model.positional_embedding[:P].to(cast)
    kv = []
    for blk in model.transformer.resblocks:
        x, own = _block(blk, x, None)
        kv.append(own)
    return P, kv


def _encode_text_fast(model, text, length: int, prefix):
    """open_clip ``CLIP.encode_text`` on positions ``P..length-1`` given the shared prefix."""
    import torch
    import torch.nn as nn

    P, kv = prefix
    text = text[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(text[:, P:]).to(cast) + model.positional_embedding[P:length].to(cast)
    for layer, blk in enumerate(model.transformer.resblocks):
        x, _ = _block(blk, x, kv[layer] if kv is not None else None)
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), text.argmax(dim=-1) - P]
    if model.text_projection is not None:
        x = model.text_projection(x) if isinstance(model.text_projection, nn.Linear) else x @ model.text_projection
    return x


def text_encoder(loaded):
    """``ids -> text features`` (not normalised) of the loaded model's frozen text tower. For open_clip
    ``CLIP`` models the padding after the end token is dropped first
    (:class:`PromptTextEncoder`: exact under the causal mask, ~3x faster for 10-token random texts in a
    32- or 77-token context); other towers use ``encode_text``."""
    try:
        enc = PromptTextEncoder(loaded.model)
    except ConfigError:
        return loaded.model.encode_text
    return lambda ids: enc(enc.embed(ids), ids)


_TEXT_TOWER_PARTS = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")


class PromptTextEncoder(nn.Module):
    """The frozen text tower of an open_clip ``CLIP`` run on prompt *embeddings*.

    Mirrors ``open_clip.model.CLIP.encode_text`` step by step (+ positional embedding, transformer
    with ``attn_mask``, ``ln_final``, pooling at the EOT token, ``text_projection`` as a Parameter or
    ``nn.Linear``), as CoOp's ``TextEncoder`` does for OpenAI CLIP (``trainers/coop.py``). The tower's
    modules are shared with ``model`` (not copied) and set to ``requires_grad=False``.
    """

    def __init__(self, model):
        super().__init__()
        missing = [a for a in _TEXT_TOWER_PARTS if not hasattr(model, a)]
        if missing or getattr(model, "cls_emb", None) is not None:
            raise ConfigError(
                f"prompt learning needs an open_clip CLIP with its built-in text transformer, got "
                f"{type(model).__name__}; CustomTextCLIP and Hugging Face text towers are not supported"
            )
        self.token_embedding = model.token_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        self.positional_embedding = model.positional_embedding
        self.pool_type = getattr(model, "text_pool_type", "argmax")
        self.eos_id = getattr(model, "text_eos_id", None)
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)
        self.requires_grad_(False)

    @property
    def context_length(self) -> int:
        return int(self.positional_embedding.shape[0])

    @property
    def width(self) -> int:
        return int(self.token_embedding.weight.shape[1])

    @torch.no_grad()
    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``[N, L, width]`` of token ids ``[N, L]``."""
        return self.token_embedding(tokens)

    def forward(self, prompts: torch.Tensor, tokens: torch.Tensor, deep_prompts=None) -> torch.Tensor:
        """Text features ``[N, embed_dim]`` (not normalised) of prompt embeddings ``[N, L, width]``;
        ``tokens`` ``[N, L]`` are the ids the prompts stand for (they locate the EOT token).

        ``deep_prompts`` (MaPLe's deep language prompts, a sequence of ``[M, width]`` tensors) replace the
        outputs at positions ``1..M`` before transformer layers ``1, 2, ...`` (one per layer, in order), as
        ``ResidualAttentionBlock_MaPLe`` does for the text tower (``muzairkhattak/multimodal-prompt-learning``
        ``clip/model.py``)."""
        from open_clip.transformer import text_global_pool

        prompts, tokens, mask, pos = self._truncate(prompts, tokens)
        cast_dtype = self.transformer.get_cast_dtype()
        x = prompts.to(cast_dtype) + pos.to(cast_dtype)
        if deep_prompts:
            x = self._deep_transformer(x, mask, deep_prompts)
        else:
            x = self.transformer(x, attn_mask=mask)
        x = self.ln_final(x)
        x = text_global_pool(x, tokens, self.pool_type, eos_token_id=self.eos_id)
        x = x[0] if isinstance(x, tuple) else x  # open_clip < 3 returned (pooled, tokens)
        if self.text_projection is None:
            return x
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection


    def _deep_transformer(self, x, mask, deep_prompts):
        blocks = self.transformer.resblocks
        if len(deep_prompts) > len(blocks) - 1:
            raise ConfigError(f"{len(deep_prompts)} deep text prompts need at least {len(deep_prompts) + 1} text "
                              f"transformer layers; this text tower has {len(blocks)}")
        batch_first = getattr(self.transformer, "batch_first", True)
        for i, block in enumerate(blocks):
            if 1 <= i <= len(deep_prompts):
                deep = deep_prompts[i - 1].to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, :1], deep, x[:, 1 + deep.shape[1]:]], dim=1)
            x = block(x if batch_first else x.transpose(0, 1), attn_mask=mask)
            x = x if batch_first else x.transpose(0, 1)
        return x

    def _truncate(self, prompts, tokens):
        """Drop the padding after the last end-of-text token. Under the causal mask no position attends to
        a later one, so the pooled end-of-text output is unchanged (exactly: same ops on the same inputs),
        while the tower runs on ~10 instead of 32 (embedded) or 77 (OpenAI CLIP) positions."""
        mask, pos = self.attn_mask, self.positional_embedding
        if mask is None or self.pool_type not in ("argmax", "eos"):
            return prompts, tokens, mask, pos
        ends = tokens.argmax(-1) if self.pool_type == "argmax" else (tokens == self.eos_id).int().argmax(-1)
        n = int(ends.max()) + 1
        return prompts[:, :n], tokens[:, :n], mask[:n, :n], pos[:n]


def prompt_tokens(loaded, texts, context_length: int) -> torch.Tensor:
    """Token ids ``[N, context_length]`` of ``texts`` (``[SOT] bpe [EOT]``, zero-padded) as open_clip's
    ``SimpleTokenizer`` makes them, but raising instead of silently truncating a prompt that is too long."""
    tok = loaded.tokenizer
    if not all(hasattr(tok, a) for a in ("encode", "sot_token_id", "eot_token_id")):
        raise ConfigError(f"prompt learning needs open_clip's SimpleTokenizer; {loaded.arch} uses {type(tok).__name__}")
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [tok.sot_token_id, *tok.encode(text), tok.eot_token_id]
        if len(ids) > context_length:
            raise ConfigError(
                f"prompt {text!r} is {len(ids)} tokens long but {loaded.arch}'s text context length is "
                f"{context_length}; use a smaller n_ctx or a shorter ctx_init"
            )
        out[i, : len(ids)] = torch.tensor(ids)
    return out
