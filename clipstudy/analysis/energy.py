"""The energy gap and Lipsum-FT's random-text regulariser (Nam, Heo & Lee 2024, ICLR; docs/protocols.md §4).

Lipsum-FT views CLIP as an energy-based model over image-text pairs, ``E(x, t) = −⟨F_θ(x), G_φ(t)⟩``
(image tower F_θ, text tower G_φ, unit features), and argues that fine-tuning the image tower hurts
robustness by changing this vision-language connection. It measures the change by the **energy gap**
(paper Eq. 6) and keeps it small during fine-tuning with random texts (paper Eqs. 7–8; the code
``cs-giung/lipsum-ft`` ``scripts/Lipsum-FT.py`` adds the logit scale, docs/protocols.md §4.3):

* :func:`energy_gap`: ``E_x E_t [(⟨G(t), F_θ(x)⟩ − ⟨G(t), F_θ0(x)⟩)²]``;
* :func:`lipsum_regularizer`: ``mean_x Σ_m (s·⟨F_θ(x), G(t_m)⟩ − s·⟨F_θ0(x), G(t_m)⟩)² / 2M``;
* :func:`random_text_tokens`: the M random token sequences, ``[SOT, r_1 … r_L, EOT]`` with ``r_i`` uniform
  over the vocabulary except the start and end tokens, from an explicit ``(seed, step)``.
"""
from __future__ import annotations

OPENAI_CLIP_TOKENS = {"vocab_size": 49408, "sot_id": 49406, "eot_id": 49407}
"""CLIP's BPE vocabulary: 49,406 word pieces, then ``<start_of_text>`` and ``<end_of_text>``."""


def text_token_spec(loaded) -> dict:
    """Vocabulary size, start/end token ids and context length of a loaded model's text side."""
    tok = loaded.tokenizer
    sot, eot = getattr(tok, "sot_token_id", None), getattr(tok, "eot_token_id", None)
    if sot is None or eot is None:
        from ..errors import ConfigError

        raise ConfigError(f"{loaded.arch}: random texts need a CLIP BPE tokenizer with start/end tokens "
                          f"(sot_token_id/eot_token_id); {type(tok).__name__} has none")
    vocab = int(getattr(loaded.model, "vocab_size", OPENAI_CLIP_TOKENS["vocab_size"]))
    return {"vocab_size": vocab, "sot_id": int(sot), "eot_id": int(eot),
            "context_length": int(getattr(loaded.model, "context_length", 77))}


def random_text_tokens(n: int, length: int = 8, *, seed: int, step: int = 0, vocab_size: int = 49408,
                       sot_id: int = 49406, eot_id: int = 49407, context_length: int | None = None):
    """``[n, context_length]`` token ids (int64): ``[sot, r_1 … r_length, eot, 0 …]``.

    ``r_i`` are uniform over ``range(vocab_size)`` without ``sot_id`` and ``eot_id`` (Lipsum-FT's code
    draws ``UniformInt[0, 49406)`` for CLIP, docs/protocols.md §4.3), drawn from ``numpy.random.default_rng([seed,
    step])``: the same ``(seed, step)`` gives the same texts, each step of a run new ones. Zero padding
    after the end token is harmless under CLIP's causal mask with end-token (argmax) pooling (§4.5).
    """
    import numpy as np
    import torch

    from ..errors import ConfigError

    width = context_length or length + 2
    if n < 1 or length < 1 or width < length + 2:
        raise ConfigError(f"random texts need n >= 1, length >= 1 and context_length >= length + 2; got n={n}, "
                          f"length={length}, context_length={context_length}")
    special = sorted({int(sot_id), int(eot_id)})
    r = np.random.default_rng([int(seed), int(step)]).integers(0, vocab_size - len(special), size=(n, length))
    for s in special:  # map [0, V-2) onto range(V) minus the special ids, keeping the draw uniform
        r = r + (r >= s)
    ids = np.zeros((n, width), dtype=np.int64)
    ids[:, 0], ids[:, 1:length + 1], ids[:, length + 1] = sot_id, r, eot_id
    return torch.from_numpy(ids)


def text_encoder(loaded):
    """``ids -> text features`` of the frozen text tower, padding dropped: :func:`clipstudy.text.text_encoder`."""
    from ..text import text_encoder as make

    return make(loaded)


def random_text_features(loaded, n: int, length: int = 8, *, seed: int, step: int = 0, batch_size: int = 1024,
                         encode_text=None):
    """Unit text features ``[n, d]`` (float32, no gradient) of :func:`random_text_tokens` under the loaded
    model's (frozen) text tower, or under ``encode_text`` (``ids -> features``, e.g. FLYP's fine-tuned
    tower)."""
    import torch
    import torch.nn.functional as F

    ids = random_text_tokens(n, length, seed=seed, step=step, **text_token_spec(loaded)).to(loaded.device)
    from ..text import text_encoder as frozen_encoder

    encode = encode_text or frozen_encoder(loaded)
    with torch.no_grad():
        feats = [encode(ids[i:i + batch_size]).float() for i in range(0, n, batch_size)]
    return F.normalize(torch.cat(feats), dim=-1)


def lipsum_regularizer(features, features0, text_features, scale: float):
    """Lipsum-FT's regulariser (``scripts/Lipsum-FT.py``, docs/protocols.md §4.3), differentiable in ``features``:

    ``mean_x Σ_m (s·⟨F_θ(x), G(t_m)⟩ − s·⟨F_θ0(x), G(t_m)⟩)² / 2M``

    with unit image features ``features`` ``[B, d]`` (θ) and ``features0`` (θ0, no gradient needed),
    unit text features ``[M, d]`` and the logit scale ``s`` (100 for OpenAI CLIP; the paper's Eq. 8
    omits it). Returns a 0-dim tensor.
    """
    diff = scale * (features.float() - features0.float().detach()) @ text_features.float().t()
    return diff.pow(2).sum(-1).div(2 * text_features.shape[0]).mean()


def energy_gap(features, features0, text_features, scale: float = 1.0, chunk: int = 4096,
               text_features0=None) -> float:
    """The energy gap (Lipsum-FT Eq. 6): ``E_x E_t [(⟨G_φ(t), F_θ(x)⟩ − ⟨G_φ0(t), F_θ0(x)⟩)²]`` times
    ``scale²`` (1: the paper's form).

    ``features`` / ``features0``: unit image features ``[N, d]`` of the same images under the fine-tuned
    and the zero-shot image tower; ``text_features``: unit features ``[M, d]`` of the texts ``t`` (random
    texts, or class prompts as a variant) under the fine-tuned text tower, ``text_features0`` under the
    zero-shot one (default: the same, for methods that keep the text tower frozen, where the paper's
    form reduces to ``⟨G(t), F_θ(x) − F_θ0(x)⟩²``). Zero for identical towers. numpy arrays or tensors.
    """
    import torch

    f, f0, g = (torch.as_tensor(a).detach().float().cpu() for a in (features, features0, text_features))
    g0 = g if text_features0 is None else torch.as_tensor(text_features0).detach().float().cpu()
    if f.shape != f0.shape or f.ndim != 2 or g.ndim != 2 or g.shape[1] != f.shape[1] or g0.shape != g.shape:
        raise ValueError(f"energy_gap needs features [N, d], features0 [N, d] and text features [M, d] (both "
                         f"towers' the same shape); got {tuple(f.shape)}, {tuple(f0.shape)}, {tuple(g.shape)}, "
                         f"{tuple(g0.shape)}")
    if len(f) == 0:
        return float("nan")
    if text_features0 is None:
        parts = (((f[i:i + chunk] - f0[i:i + chunk]) @ g.t()) ** 2 for i in range(0, len(f), chunk))
    else:
        parts = ((f[i:i + chunk] @ g.t() - f0[i:i + chunk] @ g0.t()) ** 2 for i in range(0, len(f), chunk))
    total = sum(float(p.sum()) for p in parts)
    return scale ** 2 * total / (len(f) * len(g))
