"""Local (per-location) image features for GL-MCM (Miyai et al. 2023, ``AtsuMiyai/GL-MCM`` ``clip/model.py``).

GL-MCM scores an image by its global feature *and* by its best-matching spatial location. The local
features are read from the image tower without the final attention mixing locations:

* ModifiedResNet (open_clip ``ModifiedResNet``): the layer-4 feature map passed through the attention
  pool's value and output projections, ``c_proj(v_proj(x_hw))`` at every location (no positional
  embedding, no attention), exactly as GL-MCM's ``AttentionPool2d.forward`` returns ``x_local``.
* VisionTransformer (open_clip ``VisionTransformer`` with class-token pooling, no attentional pooler):
  every block but the last runs unchanged; in the last block each patch token takes only its own value
  path (``out_proj(v_proj(ln_1(x)))`` plus the residual and the MLP), then ``ln_post`` and ``proj``, as
  GL-MCM's ``ResidualAttentionBlock`` (its ``v`` output) and ``VisionTransformer.forward`` do.

Other towers (timm, ConvNeXt, attentional poolers) have no such local read-out: :func:`local_support`
says why and :func:`encode_global_local` raises :class:`LocalFeaturesUnsupported` with that reason.
"""
from __future__ import annotations

from .errors import ClipstudyError

SUPPORTED = "open_clip ModifiedResNet (RN50, clipstudy-rn-tiny, ...) and VisionTransformer (ViT-B-16, ...)"


class LocalFeaturesUnsupported(ClipstudyError):
    """The image tower exposes no local tokens GL-MCM can read."""


def local_support(visual) -> str | None:
    """``None`` if ``visual`` has local features, else a one-line reason naming the supported towers."""
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    if isinstance(visual, ModifiedResNet):
        return None
    if isinstance(visual, VisionTransformer):
        if getattr(visual, "attn_pool", None) is not None:
            return "its VisionTransformer ends in an attentional pooler, which mixes every location"
        if getattr(visual, "pool_type", "tok") != "tok" or getattr(visual, "final_ln_after_pool", False):
            return "its VisionTransformer pools patch tokens instead of reading a class token"
        return None
    return f"its image tower is a {type(visual).__name__}; GL-MCM local features exist for {SUPPORTED}"


def encode_global_local(visual, images):
    """``(global [N, d], local [N, HW, d])`` image features, not normalised, in one pass."""
    from open_clip.modified_resnet import ModifiedResNet

    reason = local_support(visual)
    if reason is not None:
        raise LocalFeaturesUnsupported(f"GL-MCM needs local features, but {reason}")
    if isinstance(visual, ModifiedResNet):
        return _resnet(visual, images)
    return _vit(visual, images)


def _resnet(visual, images):
    import torch.nn.functional as F

    x = images.to(visual.conv1.weight.dtype)
    x = visual.stem(x)
    for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
        x = layer(x)
    pool = visual.attnpool
    tokens = x.flatten(2).transpose(1, 2)  # [N, HW, C]
    local = F.linear(F.linear(tokens, pool.v_proj.weight, pool.v_proj.bias), pool.c_proj.weight, pool.c_proj.bias)
    return pool(x), local


def _vit(visual, images):
    import torch.nn.functional as F

    x = visual._embeds(images)
    seq_first = not getattr(visual.transformer, "batch_first", True)
    x = x.transpose(0, 1) if seq_first else x
    blocks = visual.transformer.resblocks
    for block in blocks[:-1]:
        x = block(x)
    last = blocks[-1]
    width = x.shape[-1]
    attn = last.attn  # token-wise ops below, so the [L, N, D] / [N, L, D] layout does not matter
    v = F.linear(last.ln_1(x), attn.in_proj_weight[2 * width:], attn.in_proj_bias[2 * width:])
    v = x + last.ls_1(attn.out_proj(v))
    v = v + last.ls_2(last.mlp(last.ln_2(v)))
    x = last(x)
    x, v = (x.transpose(0, 1), v.transpose(0, 1)) if seq_first else (x, v)
    pooled, _ = visual._pool(x)
    local = visual.ln_post(v[:, 1:])
    if visual.proj is not None:
        pooled, local = pooled @ visual.proj, local @ visual.proj
    return pooled, local
