"""GL-MCM local features checked against independent constructions, and their cache."""
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from clipstudy.local_features import LocalFeaturesUnsupported, encode_global_local, local_support  # noqa: E402
from clipstudy.models import load_model  # noqa: E402


@pytest.fixture(scope="module")
def vit():
    return load_model("clipstudy-micro", "random", seed=0).model.visual  # a ViT tower


@pytest.fixture(scope="module")
def rn():
    return load_model("embedded").model.visual  # a ModifiedResNet tower


def test_global_equals_the_tower_output(vit, rn):
    for tower in (vit, rn):
        x = torch.randn(3, 3, tower.image_size[0] if isinstance(tower.image_size, tuple) else tower.image_size,
                        tower.image_size[0] if isinstance(tower.image_size, tuple) else tower.image_size)
        with torch.no_grad():
            g, local = encode_global_local(tower, x)
            torch.testing.assert_close(g, tower(x), rtol=0, atol=0)
        assert local.shape[0] == 3 and local.shape[2] == g.shape[1]


def test_vit_local_tokens_equal_self_attention_only_last_block(vit):
    """Brute force: run the last block with a mask that lets every token attend only to itself; the
    attention output is then out_proj(v_proj(ln_1(x))) and the block's patch outputs are the local tokens."""
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        _, local = encode_global_local(vit, x)
        h = vit._embeds(x)
        for block in vit.transformer.resblocks[:-1]:
            h = block(h)
        n = h.shape[1]
        self_only = torch.full((n, n), float("-inf"))
        self_only.fill_diagonal_(0.0)
        h = vit.transformer.resblocks[-1](h, attn_mask=self_only)
        ref = vit.ln_post(h[:, 1:]) @ vit.proj
    assert local.shape == (2, 16, 32)  # 32 px / patch 8 = 4 x 4 locations
    torch.testing.assert_close(local, ref, rtol=1e-5, atol=1e-5)


def test_resnet_local_equals_attention_pool_of_a_constant_map(rn):
    """Brute force: if every location holds the same vector t and the positional embedding is zero, the
    attention pool outputs c_proj(v_proj(t)) whatever the attention weights: GL-MCM's local feature of t."""
    import copy

    pool = copy.deepcopy(rn.attnpool).float()
    with torch.no_grad():
        pool.positional_embedding.zero_()
        feats = {}

        def grab(module, inputs, output):
            feats["map"] = output

        handle = rn.layer4.register_forward_hook(grab)
        _, local = encode_global_local(rn, torch.randn(2, 3, 64, 64))
        handle.remove()
        fmap = feats["map"].float()  # [2, C, 2, 2]
        for n in range(2):
            for loc in range(fmap.shape[2] * fmap.shape[3]):
                t = fmap[n].flatten(1)[:, loc]
                constant = t[None, :, None, None].expand(1, -1, fmap.shape[2], fmap.shape[3])
                torch.testing.assert_close(local[n, loc].float(), pool(constant)[0], rtol=1e-4, atol=1e-4)


def test_unsupported_tower_is_a_clear_error():
    class Tower(torch.nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    assert "GL-MCM local features exist for" in local_support(Tower())
    with pytest.raises(LocalFeaturesUnsupported, match="Tower.*open_clip ModifiedResNet"):
        encode_global_local(Tower(), torch.randn(1, 3, 8, 8))


def test_local_features_cached_and_serve_global_requests(tmp_path, monkeypatch):
    from clipstudy.data import build_dataset
    from clipstudy.features import extract_features

    monkeypatch.setenv("CLIPSTUDY_CACHE", str(tmp_path / "cache"))
    loaded = load_model("clipstudy-micro", "random", seed=0)
    ds = build_dataset("world", n=6, seed=0, classes="id")
    a = extract_features(loaded, ds, local=True, progress=False)
    assert a.local.shape == (6, 16, 32) and a.local.dtype == torch.float16
    torch.testing.assert_close(a.local.float().norm(dim=-1), torch.ones(6, 16), atol=2e-3, rtol=0)
    b = extract_features(loaded, ds, progress=False)  # no plain entry yet: read from the local one
    assert b.meta["cached"] and b.local is None and torch.equal(a.features, b.features)
    assert len(list((tmp_path / "cache" / "features").glob("*.pt"))) == 1
