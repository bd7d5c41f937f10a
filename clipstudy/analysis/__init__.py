"""Analyses of fine-tuned models: small pure functions on features and logits.

* :mod:`~clipstudy.analysis.energy` — the energy gap between a fine-tuned and the zero-shot model and
  Lipsum-FT's random-text regulariser (Nam et al. 2024, ICLR; docs/protocols.md §4.2–4.5), and the seeded
  random token sequences both use (:func:`random_text_tokens`);
* :mod:`~clipstudy.analysis.distortion` — feature distortion (Kumar et al. 2022, LP-FT; docs/protocols.md §4.2).

Importing this package does not import torch.
"""
from .distortion import feature_distortion
from .energy import (energy_gap, lipsum_regularizer, random_text_features, random_text_tokens, text_encoder,
                     text_token_spec)

__all__ = ["energy_gap", "feature_distortion", "lipsum_regularizer", "random_text_features", "random_text_tokens",
           "text_encoder", "text_token_spec"]
