"""The project's own image towers that open_clip cannot describe in a JSON config, registered with timm so that a
project config names them as ``vision_cfg.timm_model_name`` (open_clip's ``TimmModel`` then adds the pooling and
the projection to the joint space, as for any timm tower).

* ``clipstudy_vit_convstem``: a small ViT whose patchify layer is a convolutional stem, the ``ViT_C`` of Xiao et
  al. 2021, "Early convolutions help transformers see better" (NeurIPS; §3: a stack of 3x3 stride-2 convolutions
  with BatchNorm and ReLU, channels doubling, then one 1x1 convolution to the token width; one transformer block
  fewer to keep the compute of the patchify ViT). The tokens are pooled by their mean, with a LayerNorm after
  pooling, and get 2-D sin-cos position embeddings (Beyer, Zhai & Kolesnikov 2022, "Better plain ViT baselines
  for ImageNet-1k"; initialised so and trained with the rest, as open_clip's ``pos_embed_type="sin_cos_2d"`` is
  when every parameter trains).

Registration happens in :func:`register` (called by :func:`clipstudy.models.register_project_configs`), never at
import time.
"""
from __future__ import annotations

import math

_registered = False

#: The convolutional-stem ViT's shape (64 px images, 8 px tokens: an 8x8 grid).
CONVSTEM_VIT = dict(img_size=64, patch_size=8, embed_dim=128, depth=3, num_heads=4, mlp_ratio=4.0,
                    stem_width=32)


def conv_stem_embed():
    """timm ``PatchEmbed`` with its patchify convolution replaced by Xiao et al.'s stem (see module docstring):
    ``log2(patch_size)`` 3x3 stride-2 convolutions (``stem_width`` channels, doubling) with BatchNorm and ReLU,
    then a 1x1 convolution to ``embed_dim``. Everything else (grid size, flattening, checks) is ``PatchEmbed``'s."""
    from timm.layers import PatchEmbed
    from torch import nn

    class ConvStemEmbed(PatchEmbed):
        def __init__(self, img_size=64, patch_size=8, in_chans=3, embed_dim=128, stem_width=32, **kwargs):
            super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                             **kwargs)
            n = int(round(math.log2(patch_size)))
            if 2 ** n != patch_size:
                raise ValueError(f"a convolutional stem needs a power-of-two patch size, got {patch_size}")
            layers, c, w = [], in_chans, stem_width
            for _ in range(n):
                layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c, w = w, w * 2
            layers.append(nn.Conv2d(c, embed_dim, 1, bias=kwargs.get("bias", True)))
            self.proj = nn.Sequential(*layers)

    return ConvStemEmbed


def clipstudy_vit_convstem(pretrained: bool = False, **kwargs):
    """The convolutional-stem ViT (:data:`CONVSTEM_VIT`, overridable by keyword); no pretrained weights exist."""
    import functools

    import torch
    from open_clip.pos_embed import get_2d_sincos_pos_embed
    from timm.models.vision_transformer import VisionTransformer

    if pretrained:
        raise ValueError("clipstudy_vit_convstem has no pretrained weights; train it with `clipstudy pretrain`")
    # timm's factory adds its own bookkeeping (pretrained_cfg, cache_dir, ...); the tower takes only its shape
    kwargs = {k: v for k, v in kwargs.items() if not k.startswith("pretrained_cfg") and k != "cache_dir"}
    shape = {**CONVSTEM_VIT, **kwargs}
    stem_width = shape.pop("stem_width")
    model = VisionTransformer(class_token=False, global_pool="avg", pos_embed="learn",
                              embed_layer=functools.partial(conv_stem_embed(), stem_width=stem_width), **shape)
    grid = model.patch_embed.grid_size[0]
    sincos = get_2d_sincos_pos_embed(model.embed_dim, grid, cls_token=False)
    with torch.no_grad():
        model.pos_embed.copy_(torch.from_numpy(sincos).float().unsqueeze(0))
    model.pretrained_cfg = model.default_cfg = {}  # what timm's builders attach (open_clip reads it)
    return model


def register() -> None:
    """Register the project's timm towers (once per process)."""
    global _registered
    if _registered:
        return
    from timm.models import register_model

    register_model(clipstudy_vit_convstem)
    _registered = True
