"""Every registered method gets the same interface checks; zero-shot and the linear probe are
proved end to end through the single training loop."""
import pytest

torch = pytest.importorskip("torch")

from clipstudy.methods import build_method, list_methods  # noqa: E402
from clipstudy.methods.base import feature_batches  # noqa: E402
from clipstudy.models import load_model  # noqa: E402
from clipstudy.registry import UnknownNameError  # noqa: E402
from clipstudy.train import TrainConfig, fit  # noqa: E402

CLASSES = ("circle", "square", "star")
# micro's text context is 16 tokens: CoOp's default 16 context vectors do not fit
PARAMS = {"coop": {"n_ctx": 4},
          # micro has one text layer: MaPLe-style deep prompts can only be shallow (depth 1) there
          "deep_text_prompt": {"prompt_depth": 1}, "maple": {"prompt_depth": 1}}



def _batch_for(method, loaded, n=4):
    g = torch.Generator().manual_seed(0)
    if method.inputs == "features":
        x = torch.nn.functional.normalize(torch.randn(n, 32, generator=g), dim=-1)
        return {"x": x, "y": torch.arange(n) % len(CLASSES)}
    if "y" in getattr(method, "batch_keys", ()):  # an image classifier: images + labels
        return {"images": torch.randn(n, 3, 32, 32, generator=g), "y": torch.arange(n) % len(CLASSES)}
    return {"images": torch.randn(n, 3, 32, 32, generator=g),
            "tokens": loaded.tokenize([f"a photo of a {c}." for c in (CLASSES * 2)[:n]])}


@pytest.mark.parametrize("name", list_methods())
def test_method_interface(name, micro):
    loaded = load_model("clipstudy-micro", "random", seed=0)  # fresh: some methods train the model itself
    method = build_method(name, loaded, CLASSES, **PARAMS.get(name, {}))
    batch = _batch_for(method, loaded)
    if "y" in batch:
        x = batch["x"] if method.inputs == "features" else batch["images"]
        sims = method.similarities(x)
        assert sims.shape == (4, len(CLASSES))
        torch.testing.assert_close(method.logits(x), method.scale * sims)
    if not method.trains:
        assert not [p for p in method.parameters() if p.requires_grad]
        return
    before = {n: p.detach().clone() for n, p in method.named_parameters() if p.requires_grad}
    hist = fit(method, lambda step: batch, TrainConfig(steps=2, lr=1e-2, log_every=1), progress=False)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    assert any(not torch.equal(before[n], p) for n, p in method.named_parameters() if n in before)


def test_unknown_method_lists_valid_ones(micro):
    with pytest.raises(UnknownNameError, match="valid methods: .*linear_probe.*zeroshot"):
        build_method("coop++", micro, CLASSES)


def test_linear_probe_starts_at_zeroshot_and_learns(micro):
    # init="zeroshot": before training the probe's predictions equal zero-shot's
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(60, 32, generator=g), dim=-1)
    zs = build_method("zeroshot", micro, CLASSES)
    lp = build_method("linear_probe", micro, CLASSES)
    torch.testing.assert_close(lp.similarities(x), zs.similarities(x))
    # labels defined by a random linear rule: the probe must fit them, zero-shot cannot
    y = (x @ torch.randn(32, 3, generator=g)).argmax(1)
    batches = feature_batches(x, y, batch_size=20, seed=0)
    fit(lp, batches, TrainConfig(steps=150, lr=0.05, log_every=50), progress=False)
    acc = (lp.predict_similarities(x).argmax(1) == y).float().mean().item()
    zs_acc = (zs.predict_similarities(x).argmax(1) == y).float().mean().item()
    assert acc > 0.9 and acc > zs_acc + 0.3
