"""CoOp / CoCoOp / CLIP-Adapter on the tiny random ``clipstudy-micro`` model: the embedding-space text
encoder reproduces open_clip's ``encode_text``, the prompt learners start where they should, only the
context trains, and training through the single loop learns."""
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.methods import build_method  # noqa: E402
from clipstudy.methods.base import feature_batches  # noqa: E402
from clipstudy.methods.prompt_learning import PromptTextEncoder, prompt_tokens  # noqa: E402
from clipstudy.train import TrainConfig, fit  # noqa: E402

CLASSES = ("circle", "square", "red star")  # a two-token name exercises the middle/front splits



def _features(n=30, seed=1):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, 32, generator=g), dim=-1)


def test_embedding_encoder_reproduces_encode_text(micro):
    enc = PromptTextEncoder(micro.model)
    L = enc.context_length
    x_tokens = prompt_tokens(micro, [f"X X X X {c}." for c in CLASSES], L)
    photo = micro.tokenize([f"a photo of a {c}." for c in CLASSES])
    torch.testing.assert_close(prompt_tokens(micro, [f"a photo of a {c}." for c in CLASSES], L), photo, rtol=0, atol=0)
    prompts = enc.embed(x_tokens)
    prompts[:, 1:5] = enc.embed(photo)[:, 1:5]  # fill the X positions with "a photo of a"
    with torch.no_grad():
        ours = enc(prompts, x_tokens)
        ref = micro.model.encode_text(photo)
    # the encoder drops the padding after the end-of-text token (exact under the causal mask); only the
    # matmul blocking of the shorter sequence differs, so the features agree to float32 rounding
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-6)
    assert enc._truncate(prompts, x_tokens)[0].shape[1] == int(x_tokens.argmax(-1).max()) + 1 < L


def test_coop_photo_init_equals_zeroshot_and_only_context_trains(micro):
    x = _features()
    zs = build_method("zeroshot", micro, CLASSES)
    coop = build_method("coop", micro, CLASSES, ctx_init="a photo of a")
    assert coop.prompt_learner.ctx.shape == (4, 32)
    torch.testing.assert_close(coop.similarities(x), zs.similarities(x), rtol=0, atol=1e-5)
    assert [n for n, p in coop.named_parameters() if p.requires_grad] == ["prompt_learner.ctx"]
    csc = build_method("coop", micro, CLASSES, n_ctx=3, class_specific=True)
    assert [tuple(p.shape) for p in csc.parameters() if p.requires_grad] == [(3, 3, 32)]


def test_class_token_positions_give_different_valid_features(micro):
    layouts = {"end": "X X X X {}.", "middle": "X X {} X X.", "front": "{} X X X X."}
    feats = {}
    for pos, layout in layouts.items():
        m = build_method("coop", micro, CLASSES, n_ctx=4, class_token_position=pos, seed=3)
        # with every context vector set to the embedding of "X", the prompt is the literal layout
        learner, enc = m.prompt_learner, m.text_encoder
        literal = prompt_tokens(micro, [layout.format(c) for c in CLASSES], enc.context_length)
        x_embedding = enc.embed(literal)[0, 1 if pos != "front" else 2]
        with torch.no_grad():
            torch.testing.assert_close(learner(x_embedding.expand(4, -1)), enc.embed(literal), rtol=0, atol=0)
        with torch.no_grad():
            f = m.text_features()
        assert f.shape == (3, 32) and torch.isfinite(f).all()
        torch.testing.assert_close(f.norm(dim=-1), torch.ones(3))
        feats[pos] = f
    assert not torch.allclose(feats["end"], feats["middle"], atol=1e-3)
    assert not torch.allclose(feats["end"], feats["front"], atol=1e-3)
    assert not torch.allclose(feats["middle"], feats["front"], atol=1e-3)


def test_coop_learns_separable_features(micro):
    g = torch.Generator().manual_seed(0)
    means = F.normalize(torch.randn(3, 32, generator=g), dim=-1)
    y = torch.arange(90) % 3
    x = F.normalize(means[y] + 0.1 * torch.randn(90, 32, generator=g), dim=-1)
    coop = build_method("coop", micro, CLASSES, n_ctx=4)
    acc0 = (coop.predict_similarities(x).argmax(1) == y).float().mean().item()
    batches = feature_batches(x, y, batch_size=30, seed=0)
    fit(coop, batches, TrainConfig(steps=40, lr=0.02, log_every=20), progress=False)
    acc = (coop.predict_similarities(x).argmax(1) == y).float().mean().item()
    assert acc > 0.8 and acc > acc0 + 0.2


def test_cocoop_with_zero_meta_net_equals_zeroshot(micro):
    x = _features(5)
    m = build_method("cocoop", micro, CLASSES, max_prompts=6)  # chunks of 2 images
    assert {n.split(".")[0] for n, p in m.named_parameters() if p.requires_grad} == {"prompt_learner", "meta_net"}
    with torch.no_grad():
        m.meta_net[2].weight.zero_()
        m.meta_net[2].bias.zero_()
    zs = build_method("zeroshot", micro, CLASSES)
    torch.testing.assert_close(m.similarities(x), zs.similarities(x), rtol=0, atol=1e-5)


def test_clip_adapter_ratio_zero_is_zeroshot(micro):
    x = _features()
    zs = build_method("zeroshot", micro, CLASSES).similarities(x)
    torch.testing.assert_close(build_method("clip_adapter", micro, CLASSES, ratio=0.0).similarities(x), zs)
    adapted = build_method("clip_adapter", micro, CLASSES)
    assert not torch.allclose(adapted.similarities(x), zs)
    # no biases: the adapter is positively homogeneous, so feature scale does not matter
    torch.testing.assert_close(adapted.adapt(3.0 * x), adapted.adapt(x))


def test_clear_errors(micro):
    with pytest.raises(ConfigError, match="context length is 16"):
        build_method("coop", micro, CLASSES)  # 16 context vectors + name do not fit micro's 16 tokens
    with pytest.raises(ConfigError, match="class_token_position"):
        build_method("coop", micro, CLASSES, n_ctx=2, class_token_position="left")
    import open_clip

    from clipstudy import paths
    from clipstudy.io import read_json

    custom = open_clip.model.CustomTextCLIP(**read_json(paths.model_configs_dir() / "clipstudy-micro.json"))
    with pytest.raises(ConfigError, match="got CustomTextCLIP; CustomTextCLIP and Hugging Face text towers"):
        PromptTextEncoder(custom)
