"""DOR, KgCoOp and MaPLe: the losses against brute force, the endpoints (zero at the zero-shot prompt), the
outlier branch reusing cached frozen features, exact resumption of the outlier draws, MaPLe's prompted
towers against open_clip's own forward with hooks, transfer of learned prompts to new classes, and clear
errors."""
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from clipstudy.errors import ConfigError, DataError  # noqa: E402
from clipstudy.experiment import get_recipe, subsample_classes, transfer_to_classes  # noqa: E402
from clipstudy.methods import build_method  # noqa: E402
from clipstudy.models import load_model  # noqa: E402
from clipstudy.regularizers.dor import DynamicOutlierRegularizer, dor_loss, outlier_pool  # noqa: E402
from clipstudy.regularizers.knowledge_guidance import kgcoop_loss  # noqa: E402
from clipstudy.train import TrainConfig, fit  # noqa: E402
from clipstudy.vocabulary import OutlierSampler  # noqa: E402

BASE = ("circle", "square", "red star")
NEW = ("heart", "moon")
WORDS = ("cat", "dog", "tree", "house", "car", "boat", "leaf", "sun", "river", "cloud", "lamp", "chair")


@pytest.fixture(autouse=True)
def _tmp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))



@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# outlier words\n" + "\n".join(WORDS) + "\n")
    return path


def _zeroshot(loaded, names, template="a photo of a {}."):
    with torch.no_grad():
        return F.normalize(loaded.model.encode_text(loaded.tokenize([template.format(n) for n in names])).float(), dim=-1)


def _features(n=12, d=32, seed=1):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


# ------------------------------------------------------------------------------------------------ losses
def test_cosine_losses_match_brute_force():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 16, generator=g), torch.randn(7, 16, generator=g)
    ref = 1 - sum(float(a[i] @ b[i] / (a[i].norm() * b[i].norm())) for i in range(7)) / 7
    assert float(dor_loss(a, b)) == pytest.approx(ref, abs=1e-6)
    assert float(kgcoop_loss(a, b)) == pytest.approx(ref, abs=1e-6)
    ua, ub = F.normalize(a, dim=-1), F.normalize(b, dim=-1)  # unit vectors: 1 - cos = ½‖a - b‖²
    assert float(dor_loss(ua, ub)) == pytest.approx(float(((ua - ub) ** 2).sum(1).mean() / 2), abs=1e-6)
    per_image = torch.randn(3, 7, 16, generator=g)  # CoCoOp: [images, names, d] against [names, d]
    ref3 = sum(float(dor_loss(per_image[i], b)) for i in range(3)) / 3
    assert float(dor_loss(per_image, b)) == pytest.approx(ref3, abs=1e-6)
    assert float(dor_loss(a, a)) == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------------------------ KgCoOp
def test_kgcoop_is_zero_at_its_anchor_and_matches_brute_force(micro):
    m = build_method("kgcoop", micro, BASE, weight=8.0)
    reg = m.regularizers[0]
    # W = 8 is given at CLIP's logit scale; the term acts on unit text features, so it is carried by s/100
    assert reg.name == "kgcoop" and reg.nominal_weight == 8.0
    assert abs(reg.weight - 8.0 * float(m.scale) / 100.0) < 1e-9
    torch.testing.assert_close(reg.clip_features, _zeroshot(micro, BASE), rtol=0, atol=1e-5)
    x = {"x": _features(), "y": torch.arange(12) % 3}
    assert float(m.loss(x)["kgcoop"]) == pytest.approx(0.0, abs=1e-5)  # "a photo of a" context = the anchor
    with torch.no_grad():
        m.prompt_learner.ctx.add_(0.3 * torch.randn(m.prompt_learner.ctx.shape, generator=torch.Generator().manual_seed(2)))
        t = m.text_features()
    ref = 1 - float((t * _zeroshot(micro, BASE)).sum(1).mean())
    out = m.loss(x)
    assert float(out["kgcoop"]) == pytest.approx(ref, abs=1e-5) and ref > 1e-3
    assert float(out["loss"].detach()) == pytest.approx(float(out["task"]) + reg.weight * ref, abs=1e-4)
    with pytest.raises(ConfigError, match="weight="):
        build_method("kgcoop", micro, BASE, regularizers={"kgcoop": {"weight": 1.0}})


# ------------------------------------------------------------------------------------------------ DOR
def test_outlier_pool_features_are_the_frozen_zero_shot_features(micro, vocab):
    names, feats = outlier_pool(micro, BASE, "near", k=5, vocabulary=vocab)
    assert len(names) == 5 and set(names) <= set(WORDS)
    torch.testing.assert_close(feats, _zeroshot(micro, names), rtol=0, atol=2e-3)  # stored as float16
    far, _ = outlier_pool(micro, BASE, "far", k=5, vocabulary=vocab)
    assert not set(far) & set(names)  # 12 words: the 5 nearest and the 5 farthest are disjoint
    oracle, _ = outlier_pool(micro, BASE, "oracle", new_classes=NEW)
    assert oracle == NEW


def test_dor_is_zero_at_the_zero_shot_prompt_and_brute_force_after(micro, vocab):
    m = build_method("coop", micro, BASE, ctx_init="a photo of a",
                     regularizers={"dor": {"weight": 2.0, "mode": "near", "k": 8, "vocabulary": str(vocab), "seed": 5}})
    reg = m.regularizers[0]
    batch = {"x": _features(), "y": torch.arange(12) % 3, "step": 0}
    assert float(m.loss(batch)["dor"]) == pytest.approx(0.0, abs=2e-3)  # CoOp's "a photo of a" = the frozen prompt
    with torch.no_grad():
        m.prompt_learner.ctx.add_(0.3 * torch.randn(m.prompt_learner.ctx.shape, generator=torch.Generator().manual_seed(3)))
    sampler = OutlierSampler(reg.pool, len(BASE), seed=5)
    sampler.next_batch()
    names = sampler.next_batch()  # the regularizer's step-1 draw
    with torch.no_grad():
        tuned = m.encode_names(names)
    ref = 1 - float((tuned * _zeroshot(micro, names)).sum(1).mean())
    out = m.loss({**batch, "step": 1})
    assert float(out["dor"]) == pytest.approx(ref, abs=2e-3) and ref > 1e-2
    w = m.regularizers[0].weight  # 2.0 at CLIP's logit scale, carried to the model's (x s/100)
    assert w == pytest.approx(2.0 * float(m.scale) / 100.0)
    assert float(out["loss"].detach()) == pytest.approx(float(out["task"]) + w * float(out["dor"]), abs=1e-4)


def test_dor_prompts_outliers_with_the_learned_context_and_reads_cached_frozen_features(micro, vocab, monkeypatch):
    m = build_method("coop", micro, BASE, n_ctx=4,
                     regularizers={"dor": {"weight": 1.0, "mode": "random", "vocabulary": str(vocab)}})
    # the frozen branch is never encoded during training: encode_text (frozen prompts) must not be called
    monkeypatch.setattr(micro.model, "encode_text", lambda *a, **k: pytest.fail("frozen features re-encoded"))
    reg = m.regularizers[0]
    out = reg(m, {"x": _features(), "y": torch.arange(12) % 3}, {})
    out.backward()
    assert m.prompt_learner.ctx.grad is not None and m.prompt_learner.ctx.grad.abs().sum() > 0
    # CoOp's encode_names == the class prompts' features for the training names themselves
    with torch.no_grad():
        torch.testing.assert_close(m.encode_names(BASE), m.text_features(), rtol=0, atol=1e-6)


def test_dor_draws_resume_exactly(micro, vocab):
    params = {"weight": 1.0, "mode": "random", "vocabulary": str(vocab), "seed": 7}
    sampler = OutlierSampler(outlier_pool(micro, BASE, "random", vocabulary=vocab, seed=7)[0], 3, seed=7)
    expected = [sampler.next_batch() for _ in range(9)]
    m = build_method("coop", micro, BASE, n_ctx=4, regularizers={"dor": params})
    drawn, encode = [], m.encode_names
    m.encode_names = lambda names, image_features=None: (drawn.append(list(names)), encode(names))[1]
    batch = {"x": _features(), "y": torch.arange(12) % 3}
    for step in (0, 1, 2):  # an uninterrupted run
        m.loss({**batch, "step": step})
    fresh = build_method("coop", micro, BASE, n_ctx=4, regularizers={"dor": params})
    fresh.encode_names = m.encode_names
    fresh.loss({**batch, "step": 6})  # a run resumed at step 6 replays the sampler to it
    m.loss(batch)  # batches without a step draw sequentially
    assert drawn == [expected[0], expected[1], expected[2], expected[6], expected[3]]


def test_cocoop_dor_uses_the_instance_context(micro, vocab):
    m = build_method("cocoop", micro, BASE, regularizers={"dor": {"weight": 1.0, "mode": "near", "k": 6,
                                                                 "vocabulary": str(vocab)}})
    z = _features(4)
    with torch.no_grad():
        per_image = m.encode_names(["cat", "dog"], image_features=z)
        assert per_image.shape == (4, 2, 32)
        m.meta_net[2].weight.zero_()
        m.meta_net[2].bias.zero_()
        flat = m.encode_names(["cat", "dog"], image_features=z)  # π(z) = 0: the shared context for every image
    coop = build_method("coop", micro, BASE, ctx_init="a photo of a")
    with torch.no_grad():
        torch.testing.assert_close(flat, coop.encode_names(["cat", "dog"]).expand(4, -1, -1), rtol=0, atol=1e-5)
    assert not torch.allclose(per_image[0], per_image[1])
    out = m.loss({"x": z, "y": torch.arange(4) % 3})
    assert torch.isfinite(out["dor"])
    with pytest.raises(ConfigError, match="image_features"):
        m.encode_names(["cat"])


def test_dor_clear_errors(micro, vocab, tmp_path):
    with pytest.raises(ConfigError, match=">= 0"):
        build_method("coop", micro, BASE, n_ctx=4, regularizers={"dor": {"weight": -1.0, "vocabulary": str(vocab)}})
    with pytest.raises(ConfigError, match="near, far, random, oracle"):
        build_method("coop", micro, BASE, n_ctx=4, regularizers={"dor": {"mode": "nearest", "vocabulary": str(vocab)}})
    with pytest.raises(DataError, match="vocabulary file not found"):
        build_method("coop", micro, BASE, n_ctx=4, regularizers={"dor": {"vocabulary": str(tmp_path / "none.txt")}})
    with pytest.raises(ConfigError, match="new_classes"):
        build_method("coop", micro, BASE, n_ctx=4, regularizers={"dor": {"mode": "oracle"}})
    with pytest.raises(ConfigError, match="class-specific"):
        m = build_method("coop", micro, BASE, n_ctx=4, class_specific=True,
                         regularizers={"dor": {"mode": "random", "vocabulary": str(vocab)}})
        m.loss({"x": _features(), "y": torch.arange(12) % 3})
    with pytest.raises(ConfigError, match="no prompts"):
        build_method("linear_probe", micro, BASE, regularizers={"dor": {"mode": "random", "vocabulary": str(vocab)}}
                     ).loss({"x": _features(), "y": torch.arange(12) % 3})


# ------------------------------------------------------------------------------------------------ MaPLe
@pytest.fixture(scope="module")
def vit():
    return load_model("clipstudy-vit-tiny", "random", seed=0)  # random weights: unit tests only, never claims


def _hooked_text(loaded, prompts, tokens, deep):
    """Reference: open_clip's own text transformer with forward pre-hooks replacing positions 1..M."""
    model = loaded.model
    handles = [blk.register_forward_pre_hook(
        (lambda p: lambda mod, args, kwargs: ((torch.cat([args[0][:, :1], p.expand(args[0].shape[0], -1, -1),
                                                          args[0][:, 1 + p.shape[1]:]], 1),) + args[1:], kwargs))(
            deep[i - 1].unsqueeze(0)), with_kwargs=True)
        for i, blk in enumerate(model.transformer.resblocks) if 1 <= i <= len(deep)]
    try:
        x = prompts + model.positional_embedding
        x = model.transformer(x, attn_mask=model.attn_mask)
        x = model.ln_final(x)
        return x[torch.arange(len(x)), tokens.argmax(-1)] @ model.text_projection
    finally:
        for h in handles:
            h.remove()


def test_deep_text_prompts_match_hooked_open_clip(vit):
    m = build_method("deep_text_prompt", vit, BASE, prompt_depth=3, seed=4)
    p = m.text_prompts
    assert p.learner.n_ctx == 2 and len(p.deep) == 2
    prompts, tokens = p.learner(), p.learner.tokens
    with torch.no_grad():
        ours = m.text_encoder(prompts, tokens, deep_prompts=list(p.deep))
        ref = _hooked_text(vit, prompts, tokens, list(p.deep))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    shallow = build_method("deep_text_prompt", vit, BASE, prompt_depth=1)  # ctx = "a photo", rest of the prompt fixed
    with torch.no_grad():
        torch.testing.assert_close(shallow.text_features(), _zeroshot(vit, BASE), rtol=0, atol=1e-5)


def test_prompted_vit_matches_hooked_open_clip(vit):
    m = build_method("maple", vit, BASE, prompt_depth=3, seed=1)
    enc, visual = m.image_encoder, vit.model.visual
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ctx = enc.proj(enc.text_prompts.learner.ctx)
        deep = [p(t) for p, t in zip(enc.deep_proj, enc.text_prompts.deep)]
        M = ctx.shape[0]

        def append(mod, args):  # MaPLe appends the shallow vision prompts before ln_pre
            return (torch.cat([args[0], ctx.expand(args[0].shape[0], -1, -1)], 1),)

        def replace(i):
            return lambda mod, args, kwargs: ((torch.cat([args[0][:, :-M], deep[i - 1].expand(args[0].shape[0], -1, -1)],
                                                         1),) + args[1:], kwargs)

        def drop(mod, args):  # pooling reads the CLS token; the prompts are dropped before ln_post
            return (args[0][:, :-M],)

        hooks = [visual.ln_pre.register_forward_pre_hook(append), visual.ln_post.register_forward_pre_hook(drop)]
        hooks += [blk.register_forward_pre_hook(replace(i), with_kwargs=True)
                  for i, blk in enumerate(visual.transformer.resblocks) if 1 <= i <= len(deep)]
        try:
            ref = visual(images)
        finally:
            for h in hooks:
                h.remove()
        ours = enc(images)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    assert not torch.allclose(ours, visual(images), atol=1e-3)  # the prompts change the image features
    trainable = {n for n, q in m.named_parameters() if q.requires_grad}
    assert trainable and all(n.startswith("image_encoder.") and ".vit." not in n for n in trainable)


def test_maple_on_a_resnet_says_why():
    embedded = load_model("embedded")
    from clipstudy.methods.maple import MaPLe

    reason = MaPLe.unsupported_reason(embedded)
    assert "ModifiedResNet" in reason and "deep_text_prompt" in reason
    with pytest.raises(ConfigError, match="vision transformer"):
        build_method("maple", embedded, BASE)


# ------------------------------------------------------------------------------------------------ base-to-new
@pytest.mark.parametrize("n", range(2, 12))
def test_subsample_classes_is_coops_split(n):
    import math

    labels = list(range(n))  # CoOp: sorted labels, first ceil(n/2) base, relabelled from 0
    m = math.ceil(n / 2)
    assert subsample_classes(n, "base") == {old: i for i, old in enumerate(labels[:m])}
    assert subsample_classes(n, "new") == {old: i for i, old in enumerate(labels[m:])}
    assert subsample_classes(n, "all") == {i: i for i in labels}
    with pytest.raises(ConfigError, match="all, base, new"):
        subsample_classes(n, "novel")


def test_transfer_keeps_the_learned_context(micro, vocab):
    recipe = get_recipe("coop_dor", "embedded").replace(params={
        "n_ctx": 4, "ctx_init": "", "regularizers": {"dor": {"weight": 1.0, "mode": "random", "vocabulary": str(vocab)}}})
    m = build_method(recipe.method, micro, BASE, **recipe.kwargs)
    fit(m, lambda s: {"x": _features(), "y": torch.arange(12) % 3, "step": s}, TrainConfig(steps=3, lr=0.05),
        progress=False)
    new = transfer_to_classes(m, micro, recipe, NEW)
    assert new.classnames == NEW and len(new.regularizers) == 0
    torch.testing.assert_close(new.prompt_learner.ctx, m.prompt_learner.ctx, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(new.text_features(), m.encode_names(NEW), rtol=0, atol=1e-6)
    csc = get_recipe("coop", "embedded").replace(params={"n_ctx": 4, "class_specific": True})
    with pytest.raises(ConfigError, match="class-specific"):
        transfer_to_classes(build_method("coop", micro, BASE, **csc.kwargs), micro, csc, NEW)
    probe = get_recipe("linear_probe", "embedded")
    with pytest.raises(ConfigError, match="linear head"):
        transfer_to_classes(build_method("linear_probe", micro, BASE, **probe.kwargs), micro, probe, NEW)


# ------------------------------------------------------------------------------------------------ recipes
@pytest.mark.parametrize("scale", ["paper", "embedded"])
def test_calibration_recipes(scale):
    for base in ("coop", "cocoop", "kgcoop", "maple", "deep_text_prompt"):
        plain, dor = get_recipe(base, scale), get_recipe(f"{base}_dor", scale)
        assert dor.method == plain.method and dor.lr == plain.lr and dor.max_steps == plain.max_steps
        assert {k: v for k, v in dor.kwargs.items() if k != "regularizers"} == plain.kwargs
        lam = dor.kwargs["regularizers"]["dor"]["weight"]
        paper_lam = 8.0 if base == "coop" else 2.0  # DOR's values (unverified vs the paper)
        # one rule at every scale: recipes give the paper's weight, scaled_weight carries it to the model
        assert lam == pytest.approx(paper_lam)
        voc = dor.kwargs["regularizers"]["dor"]["vocabulary"]
        assert voc == ("wordnet" if scale == "paper" else "world+wordnet")
    assert get_recipe("zeroshot_hc").kwargs == {"templates": "dataset"}
