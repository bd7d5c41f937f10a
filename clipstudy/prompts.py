"""Prompt templates and zero-shot classification heads.

The head is built as in CLIP, WiSE-FT and Lipsum-FT (docs/protocols.md §0.2): encode every template
filled with the class name, L2-normalise each text feature, average over templates, and
L2-normalise again. A single template is the special case of a one-element ensemble.
"""
from __future__ import annotations

import functools
from typing import Sequence

from . import paths
from .io import read_json
from .registry import Registry

TEMPLATES = Registry("template set")

# MCM's prompt has no final period (deeplearning-wisc/MCM utils/detection_util.py, docs/protocols.md §0.2).
TEMPLATES.register("photo", obj=("a photo of a {}.",))
TEMPLATES.register("mcm", obj=("a photo of a {}",))


@functools.lru_cache(maxsize=None)
def imagenet_templates() -> tuple[str, ...]:
    """The 80 OpenAI ImageNet templates, stored as data in ``data/resources``."""
    return tuple(read_json(paths.resources_dir() / "imagenet_templates.json")["templates"])


TEMPLATES.register("imagenet80", obj=imagenet_templates)


@functools.lru_cache(maxsize=None)
def world_templates() -> tuple[str, ...]:
    """The embedded world's analogue of the 80 ImageNet templates: every domain phrase of the world's
    caption vocabulary (``world/captions.json``: "a photo of", "a pencil sketch of", ...) as
    ``"{phrase} a {}."`` — the 80 ImageNet templates use words the embedded text tower never saw."""
    from .world.captions import VOCAB

    return tuple(f"{dp} a {{}}." for phrases in VOCAB["domain_phrases"].values() for dp in phrases)


TEMPLATES.register("world", obj=world_templates)


def get_templates(name_or_list: str | Sequence[str]) -> tuple[str, ...]:
    """A registered template set by name, or a literal list of templates with one ``{}`` each."""
    if isinstance(name_or_list, str):
        if "{}" in name_or_list:
            return (name_or_list,)
        entry = TEMPLATES.get(name_or_list)
        return tuple(entry() if callable(entry) else entry)
    templates = tuple(name_or_list)
    bad = [t for t in templates if "{}" not in t]
    if not templates or bad:
        raise ValueError(f"every template needs one '{{}}' for the class name; got {bad or templates}")
    return templates


def zeroshot_head(loaded, classnames: Sequence[str], templates="photo", batch_size: int = 512, encode_text=None):
    """Class text features ``[K, d]`` (unit norm) from a template ensemble; no gradients. ``encode_text``
    (``ids -> features``) replaces the loaded model's text tower, e.g. with a fine-tuned one (FLYP).

    Every (class, template) prompt is encoded in batches of ``batch_size`` (one text-tower call per
    batch, not per class), then each prompt feature is L2-normalised, averaged over the templates of its
    class and normalised again (docs/protocols.md §0.2)."""
    import torch.nn.functional as F

    from .text import encode_texts

    temps = get_templates(templates)
    texts = [t.format(name) for name in classnames for t in temps]
    feats = encode_texts(loaded, texts, batch_size=batch_size, encode=encode_text)
    return F.normalize(feats.view(len(classnames), len(temps), -1).mean(1), dim=-1)
