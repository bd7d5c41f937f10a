"""A deterministic, procedurally rendered image-caption world: the offline stand-in for real data.

Images show one object whose *shape* defines its class (46 classes: 30 in-distribution, 8
near-OOD siblings, 8 far-OOD object icons), under labelled nuisance factors (colour, size,
position, rotation, pattern, background, occlusion) in five DomainNet-like domains (photo,
painting, clipart, sketch, infograph). Each class has a typical texture worn with probability
``typical_texture_prob``, so models may learn shape or texture; cue-conflict and texture-only
images probe which. Captions name the class, some factors and the domain.

Everything is a pure function of (config, index)::

    from clipstudy.world import WorldConfig, WorldDataset
    ds = WorldDataset(WorldConfig(split="train", n=50_000, classes=tuple(class_groups()["id"])))
    item = ds[0]   # {"image": PIL.Image, "label": int, "caption": str, "factors": {...}}

Importing this package does not import torch.
"""
from .captions import caption, simple_caption
from .catalog import CLASS_NAMES, DOMAIN_NOUNS, DOMAINS, FACTORS, class_groups, typical_appearance
from .config import WorldConfig
from .corruptions import CORRUPTIONS, GEOMETRIC_CORRUPTIONS, corrupt
from .dataset import WorldDataset
from .render import make_image, render
from .sampling import TEXTURE_LABEL, sample_factors
from .shapes import class_mask

__all__ = [
    "CLASS_NAMES", "DOMAINS", "DOMAIN_NOUNS", "FACTORS", "CORRUPTIONS", "GEOMETRIC_CORRUPTIONS",
    "TEXTURE_LABEL", "WorldConfig", "WorldDataset", "caption", "class_groups", "class_mask",
    "corrupt", "make_image", "render", "sample_factors", "simple_caption", "typical_appearance",
]
