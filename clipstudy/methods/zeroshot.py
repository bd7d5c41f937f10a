"""Zero-shot CLIP: a fixed text head from prompt templates (Radford et al. 2021)."""
from __future__ import annotations

from ..prompts import zeroshot_head
from . import METHODS
from .base import Method


@METHODS.register("zeroshot")
class ZeroShot(Method):
    """Cosine similarity to class text features; ``templates`` = "photo" (single prompt "a photo
    of a {}."), "mcm" (MCM's prompt, no period), "imagenet80" (ensemble) or a list."""

    trains = False

    def __init__(self, loaded, classnames, templates="photo"):
        super().__init__(loaded, classnames)
        self.register_buffer("head", zeroshot_head(loaded, classnames, templates))

    def feature_similarities(self, z):
        return z.float() @ self.head.t()
