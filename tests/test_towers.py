"""The project's timm towers (clipstudy.towers): the convolutional-stem ViT is the tower its docstring describes,
registered only on demand, and travels through a checkpoint file like any project architecture."""
import math

import pytest

torch = pytest.importorskip("torch")

from clipstudy import towers  # noqa: E402
from clipstudy.models import load_model, save_weights  # noqa: E402


def _sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """2-D sin-cos position table, written out token by token: the first half of the channels encodes the token's
    column, the second half its row, each half sines then cosines of 1/10000^(k/(dim/4)) frequencies."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows = []
    for h in range(grid):
        for w in range(grid):
            parts = []
            for pos in (w, h):
                parts += [math.sin(pos * o) for o in omega.tolist()] + [math.cos(pos * o) for o in omega.tolist()]
            rows.append(parts)
    return torch.tensor(rows, dtype=torch.float32)


def test_convstem_vit_is_the_documented_tower():
    from torch import nn

    visual = load_model("clipstudy-vit-convstem", "random", seed=0).model.visual
    trunk = visual.trunk
    convs = [m for m in trunk.patch_embed.proj if isinstance(m, nn.Conv2d)]
    # log2(8) = 3 stride-2 3x3 convolutions with doubling channels, then a 1x1 convolution to the token width
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (3, 3), (2, 2)), (32, 64, (3, 3), (2, 2)), (64, 128, (3, 3), (2, 2)), (128, 128, (1, 1), (1, 1))]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in trunk.patch_embed.proj) == 3
    assert len(trunk.blocks) == 3 and trunk.embed_dim == 128 and trunk.cls_token is None
    assert trunk.global_pool == "avg" and isinstance(trunk.fc_norm, nn.LayerNorm)
    assert trunk.patch_embed.grid_size == (8, 8)
    torch.testing.assert_close(trunk.pos_embed[0], _sincos_2d(128, 8), atol=1e-5, rtol=0)
    x = torch.randn(2, 3, 64, 64)
    assert visual(x).shape == (2, 128)
    # the stem's receptive fields overlap, unlike a patchify layer's: one patch's pixels reach its neighbours' tokens
    y = x.clone()
    y[:, :, :8, :8] = 0  # change one patch's pixels
    tokens_x = trunk.patch_embed(x)
    tokens_y = trunk.patch_embed(y)
    changed = (tokens_x - tokens_y).abs().sum(-1)[0] > 1e-6
    assert changed.sum() > 1  # a patchify layer would change exactly one token


def test_convstem_vit_round_trips_through_a_safetensors_file(tmp_path):
    src = load_model("clipstudy-vit-convstem", "random", seed=2)
    src.model.train()
    with torch.no_grad():  # give BatchNorm running statistics that are not their defaults
        src.model.encode_image(torch.randn(8, 3, 64, 64) * 3 + 1)
    src.model.eval()
    path = save_weights(src.model, tmp_path / "w.safetensors", half=False)
    dst = load_model("clipstudy-vit-convstem", str(path))
    assert dst.weights_id == src.weights_id
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(dst.model.encode_image(x), src.model.encode_image(x))


def test_convstem_vit_refuses_what_it_cannot_be():
    towers.register()
    import timm

    with pytest.raises(ValueError, match="power-of-two patch size, got 6"):
        timm.create_model("clipstudy_vit_convstem", patch_size=6, img_size=60)
    with pytest.raises(ValueError, match="no pretrained weights"):
        towers.clipstudy_vit_convstem(pretrained=True)
