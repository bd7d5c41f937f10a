import json

import pytest

torch = pytest.importorskip("torch")

from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.pretrain import PretrainConfig, pretrain, presets  # noqa: E402


def test_presets_are_data_and_validated():
    assert {"embedded", "smoke", "vit-tiny", "rn-tiny-siglip"} <= set(presets())
    cfg = PretrainConfig.from_preset("embedded", seed=3)
    assert cfg.seed == 3 and cfg.arch == "clipstudy-rn-tiny" and cfg.preset == "embedded"
    with pytest.raises(ConfigError, match="valid presets"):
        PretrainConfig.from_preset("nope")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pretrain")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    cfg = PretrainConfig.from_preset("smoke")
    card = pretrain(cfg, out_dir=tmp_path / "run", progress=False)
    yield cfg, card, tmp_path
    mp.undo()


def test_smoke_pretrain_writes_card_and_resumes(smoke_run):
    cfg, card, tmp_path = smoke_run
    assert set(card["zeroshot_accuracy"]) == {"photo", "painting", "clipart", "sketch", "infograph"}
    assert card["steps_done"] == cfg.steps and card["num_classes"] >= 40
    for name in ("weights.safetensors", "card.json", "card.md", "state.pt"):
        assert (tmp_path / "run" / name).exists()
    assert json.loads((tmp_path / "run" / "card.json").read_text())["seed"] == 0
    # a finished run resumes at its last step: nothing is trained again, same weights
    from safetensors.torch import load_file

    before = load_file(tmp_path / "run" / "weights.safetensors")
    again = pretrain(cfg, out_dir=tmp_path / "run", progress=False)
    after = load_file(tmp_path / "run" / "weights.safetensors")
    assert again["history"] == card["history"]
    assert again["train_minutes"] == card["train_minutes"]  # the whole run's training time, not this session's
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_finished_run_is_neither_trained_nor_measured_again(smoke_run, monkeypatch):
    """A folder holding a finished run of the config returns its card as is (``--ship`` of a finished run copies
    it at once); a time limit or description changed since does not matter, any other field does."""
    import dataclasses

    import clipstudy.pretrain as P

    cfg, card, tmp_path = smoke_run
    assert P.finished_run(tmp_path / "run", cfg)
    assert P.finished_run(tmp_path / "run", dataclasses.replace(cfg, max_minutes=5.0, description="another text"))
    assert not P.finished_run(tmp_path / "run", dataclasses.replace(cfg, card_eval_n=7))  # measured otherwise
    assert not P.finished_run(tmp_path / "run", dataclasses.replace(cfg, steps=cfg.steps + 1))
    assert not P.finished_run(tmp_path / "nowhere", cfg)
    monkeypatch.setattr(P, "model_card", lambda *a, **k: pytest.fail("a finished run was measured again"))
    monkeypatch.setattr(P, "pretraining_setup", lambda *a, **k: pytest.fail("a finished run was set up again"))
    assert P.pretrain(cfg, out_dir=tmp_path / "run", progress=False) == json.loads(
        (tmp_path / "run" / "card.json").read_text())


def test_same_seed_same_weights(smoke_run, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    cfg, card, first = smoke_run
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    again = pretrain(cfg, out_dir=tmp_path / "b", progress=False)
    a, b = load_file(first / "run" / "weights.safetensors"), load_file(tmp_path / "b" / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again["zeroshot_accuracy"] == card["zeroshot_accuracy"]


@pytest.mark.parametrize("field, value, expected", [
    ("batch_size", 0, "batch_size must be an integer in 1..n_train (256), got 0"),
    ("batch_size", 257, "batch_size must be an integer in 1..n_train (256), got 257"),
    ("steps", 0, "steps must be an integer >= 1, got 0"),
    ("steps", 2.5, "steps must be an integer >= 1, got 2.5"),
    ("seed", -1, "seed must be an integer >= 0, got -1"),
    ("max_minutes", -1, "max_minutes must be a number > 0"),
    ("max_minutes", 0, "max_minutes must be a number > 0"),
    ("lr", float("nan"), "lr must be a finite number > 0, got nan"),
    ("warmup_steps", -1, "warmup_steps must be an integer >= 0"),
    ("weight_decay", -0.1, "weight_decay must be a number >= 0"),
    ("eval_every", 0, "eval_every must be an integer >= 1"),
    ("eval_per_domain", 0, "eval_per_domain must be an integer in 1..1,000,000"),
    ("card_eval_n", 10**9, "card_eval_n must be an integer in 1..1,000,000"),
    ("n_train", 10**12, "n_train must be an integer in 1..10,000,000"),
    ("precision", "fp8", "unknown precision 'fp8'; valid: fp32, bf16"),
    ("arch", "nope", "unknown pretraining architecture 'nope'; valid: clipstudy-convnext-zoo"),
    ("world", {"typical_texture_prob": 2}, "typical_texture_prob must be a probability"),
])
def test_config_values_are_checked(field, value, expected):
    with pytest.raises(ConfigError) as err:
        PretrainConfig.from_preset("smoke", **{field: value})
    assert expected in str(err.value)
    assert PretrainConfig.from_preset("smoke", max_minutes=float("inf")).max_minutes == float("inf")  # no limit


def test_resume_with_another_config_is_refused(smoke_run):
    import dataclasses

    from clipstudy.errors import CheckpointError

    cfg, card, tmp_path = smoke_run
    state = tmp_path / "run" / "state.pt"
    before = state.read_bytes()
    with pytest.raises(ConfigError, match=r"another config \(steps 6 -> 12, lr 0.001 -> 0.002\).*--restart"):
        pretrain(dataclasses.replace(cfg, steps=12, lr=0.002), out_dir=tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match=r"another config \(batch_size 16 -> 8\)"):
        pretrain(dataclasses.replace(cfg, batch_size=8), out_dir=tmp_path / "run", progress=False)
    assert state.read_bytes() == before  # refused before anything was trained or written
    # a state saved without its config (older clipstudy) cannot be verified, so it is not resumed
    old = tmp_path / "old" / "state.pt"
    old.parent.mkdir()
    blob = torch.load(state, weights_only=False)
    del blob["pretrain_config"]
    torch.save(blob, old)
    with pytest.raises(CheckpointError, match="cannot verify .* was saved without one.*--restart"):
        pretrain(cfg, out_dir=old.parent, progress=False)
    old.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot resume from .*--restart"):
        pretrain(cfg, out_dir=old.parent, progress=False)


def test_state_stores_its_config_and_which_changes_may_resume(smoke_run):
    import dataclasses

    from clipstudy.pretrain import RESUMABLE_CHANGES, config_changes, config_record

    cfg, card, tmp_path = smoke_run
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=False)
    assert state["pretrain_config"] == config_record(cfg)
    assert card["train_minutes"] == round(state["seconds"] / 60, 2)  # the training time fit stored
    stored = config_record(cfg)
    assert RESUMABLE_CHANGES == ("max_minutes", "card_eval_n", "card_suite", "scale_fit", "scale_fit_n",
                                 "description")
    assert config_changes(stored, dataclasses.replace(cfg, max_minutes=5.0, card_eval_n=8, card_suite="",
                                                      scale_fit="pretrain-val", scale_fit_n=64, description="x")) == {}
    assert config_changes(stored, dataclasses.replace(cfg, steps=8, world=(("typical_texture_prob", 0.5),))) == {
        "steps": (6, 8), "world": ([], [["typical_texture_prob", 0.5]])}


def _tokens(captions):
    return captions  # the batches' captions as they are (no tokenizer needed to test the mixture)


def test_texture_fraction_mixes_texture_only_images_into_every_batch():
    import numpy as np

    from clipstudy.pretrain import world_batches

    base = PretrainConfig.from_preset("smoke", batch_size=16, n_train=256)
    mixed = dataclasses_replace(base, texture_fraction=0.25)
    assert (base.texture_batch, mixed.texture_batch) == (0, 4)
    plain, tex = world_batches(base, _tokens, (0.5,) * 3, (0.5,) * 3), world_batches(mixed, _tokens, (0.5,) * 3, (0.5,) * 3)
    a, b = plain(3), tex(3)
    assert a["images"].shape == b["images"].shape == (16, 3, base.image_size, base.image_size)
    # the last texture_batch slots are texture fields (their captions name a texture, never a class)
    words = ("texture", "pattern", "surface", "grass", "sky", "wood", "gradient", "clutter")
    assert all(any(w in c for w in words) for c in b["tokens"][-4:])
    assert not any("texture" in c for c in a["tokens"])
    np.testing.assert_array_equal(tex(3)["images"].numpy(), b["images"].numpy())  # deterministic per step


def test_texture_fraction_is_checked_and_old_states_read_it_as_zero():
    from clipstudy.pretrain import config_changes, config_record

    base = PretrainConfig.from_preset("smoke")
    for bad in (-0.1, 1.0, "0.2"):
        with pytest.raises(ConfigError, match="texture_fraction"):
            dataclasses_replace(base, texture_fraction=bad)
    stored = config_record(base)
    del stored["texture_fraction"]  # a state written before the field existed
    assert config_changes(stored, base) == {}
    assert "texture_fraction" in config_changes(stored, dataclasses_replace(base, texture_fraction=0.5))


def dataclasses_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def test_card_reports_calibration_per_domain_and_on_the_suite(smoke_run):
    import numpy as np

    from clipstudy.data.world_suite import SUITES

    cfg, card, tmp_path = smoke_run
    assert card["logit_scale"] > 0
    assert set(card["zeroshot_calibration"]) == set(card["zeroshot_accuracy"])
    for d, c in card["zeroshot_calibration"].items():
        assert c["accuracy"] == pytest.approx(card["zeroshot_accuracy"][d], abs=1e-4)
        assert 0 <= c["ece"] <= 1 and 0 < c["confidence"] <= 1
    suite = card["suite_zeroshot"]
    assert set(suite) == {*SUITES["world-suite"], "mean"}
    assert suite["mean"]["base"]["ece"] == pytest.approx(
        np.mean([suite[d]["base"]["ece"] for d in SUITES["world-suite"]]), abs=1e-3)
    assert "Zero-shot calibration on the world suite" in (tmp_path / "run" / "card.md").read_text()


def test_scale_fit_is_checked():
    base = PretrainConfig.from_preset("smoke")
    with pytest.raises(ConfigError, match="unknown scale_fit 'val'; valid: '', 'pretrain-val'"):
        dataclasses_replace(base, scale_fit="val")
    with pytest.raises(ConfigError, match="scale_fit_n must be an integer"):
        dataclasses_replace(base, scale_fit_n=0)


def test_fitted_scale_minimises_the_held_out_nll_by_brute_force(smoke_run):
    """fit_pretraining_scale against a grid search of the same NLL, computed independently (torch
    log-softmax over every world class, each image with its own domain's caption prompt)."""
    import numpy as np
    import torch.nn.functional as F

    from clipstudy.data.world_data import WorldData
    from clipstudy.evaluate import fit_pretraining_scale
    from clipstudy.features import extract_features
    from clipstudy.models import load_model
    from clipstudy.world import CLASS_NAMES

    cfg, card, tmp_path = smoke_run
    loaded = load_model(cfg.arch, str(tmp_path / "run" / "weights.safetensors"))
    wcfg = cfg.world_config("val", 120, seed=cfg.seed + 1000)
    fit = fit_pretraining_scale(loaded, wcfg)
    assert fit["learned"] == pytest.approx(float(loaded.logit_scale), rel=1e-4) and fit["n"] == 120
    assert fit["nll_fitted"] <= fit["nll_learned"] + 1e-6

    ds = WorldData(wcfg)
    feats = F.normalize(extract_features(loaded, ds, progress=False, cache=False).features.float(), dim=-1)
    domains = [row["domain"] for row in ds.factor_table()]
    prompts = {d: f"{'an' if d == 'infograph' else 'a'} {d if d != 'infograph' else 'infographic'} of a {{}}."
               for d in set(domains)}
    text = {}
    with torch.no_grad():
        for d, p in prompts.items():
            tokens = loaded.tokenizer([p.format(c) for c in CLASS_NAMES])
            text[d] = F.normalize(loaded.model.encode_text(tokens).float(), dim=-1)
    cos = torch.stack([feats[i] @ text[d].T for i, d in enumerate(domains)]).double()
    labels = torch.as_tensor(np.asarray(ds.targets))

    def nll(s):
        return float(F.cross_entropy(s * cos, labels))

    grid = np.exp(np.linspace(np.log(fit["fitted"]) - 0.3, np.log(fit["fitted"]) + 0.3, 61))
    best = grid[int(np.argmin([nll(s) for s in grid]))]
    assert fit["fitted"] == pytest.approx(best, rel=0.02)
    assert nll(fit["fitted"]) == pytest.approx(fit["nll_fitted"], abs=1e-3)


def test_pretrain_with_a_scale_fit_ships_the_fitted_scale(smoke_run, tmp_path, monkeypatch):
    """Changing scale_fit resumes the finished run (no step retrained), and the weights and card carry the
    fitted scale while state.pt keeps the learned one."""
    from clipstudy.models import load_model

    cfg, card, first = smoke_run
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    import shutil

    shutil.copytree(first / "run", tmp_path / "run")
    fitted_cfg = dataclasses_replace(cfg, scale_fit="pretrain-val", scale_fit_n=96)
    again = pretrain(fitted_cfg, out_dir=tmp_path / "run", progress=False)
    assert again["history"] == card["history"]
    fit = again["scale_fit"]
    assert fit["method"] == "pretrain-val" and fit["learned"] == pytest.approx(card["logit_scale"], rel=1e-3)
    loaded = load_model(cfg.arch, str(tmp_path / "run" / "weights.safetensors"))
    assert float(loaded.logit_scale) == pytest.approx(fit["fitted"], rel=2e-3)  # fp16 weights
    assert again["logit_scale"] == pytest.approx(fit["fitted"], rel=1e-3)
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=False)
    assert "the contrastive loss learned" in (tmp_path / "run" / "card.md").read_text()
    assert state["step"] == cfg.steps


def test_world_checks_compare_each_domain_with_photo():
    from clipstudy.pretrain import world_checks

    rows = world_checks({"photo": 0.80, "sketch": 0.70, "clipart": 0.75})
    assert [r["holds"] for r in rows] == [True, True, False]
    assert rows[1]["value"] == pytest.approx(0.10) and rows[2]["value"] == pytest.approx(0.05)
    assert not world_checks({"photo": 0.74, "sketch": 0.1})[0]["holds"]
    assert world_checks({"photo": 0.9, "sketch": 0.85}, gap=0.05)[1]["holds"]
    with pytest.raises(ValueError, match="photo"):
        world_checks({"sketch": 0.5})


def test_the_shipped_model_keeps_its_world_checks():
    """A tripwire on the shipped card: photo zero-shot >= 75 % over the world classes and every shifted
    domain at least 10 points lower (the studies use them as distribution shifts)."""
    from clipstudy.models import embedded_card
    from clipstudy.pretrain import world_checks

    card = embedded_card()
    assert set(card["zeroshot_accuracy"]) == {"photo", "painting", "clipart", "sketch", "infograph"}
    failed = [r for r in world_checks(card["zeroshot_accuracy"]) if not r["holds"]]
    assert not failed, failed


def test_card_markdown_states_the_world_checks(smoke_run):
    cfg, card, tmp_path = smoke_run
    from clipstudy.pretrain import card_markdown

    text = card_markdown(card)
    assert "World checks" in text and "infograph at least 10 points below photo" in text


def test_kept_renders_give_the_batches_rendering_would(monkeypatch):
    """A small training set is rendered once and its images kept for later epochs (RenderCache): over several
    epochs the batches equal, bit for bit, those of a stream that renders every batch, and no image of a
    stream is rendered twice."""
    import numpy as np

    import clipstudy.pretrain as P
    from clipstudy.world import WorldDataset

    cfg = PretrainConfig.from_preset("smoke", n_train=64, texture_fraction=0.25)  # 12 objects + 4 textures a batch
    rendered = []
    real = WorldDataset.get_batch

    def counting(self, indices):
        rendered.append((self.cfg.kind, tuple(indices)))
        return real(self, indices)

    monkeypatch.setattr(WorldDataset, "get_batch", counting)
    steps = range(12)  # five epochs of the object stream, three of the texture stream
    kept = P.pretraining_setup(cfg)[2]
    a = [kept(s) for s in steps]
    per_kind = {}
    for kind, idx in rendered:
        per_kind.setdefault(kind, []).extend(idx)
    assert all(len(v) == len(set(v)) <= cfg.n_train for v in per_kind.values())  # each image rendered once
    monkeypatch.setattr(P, "RENDER_CACHE_BYTES", 0)  # every batch rendered anew
    fresh = P.pretraining_setup(cfg)[2]
    b = [fresh(s) for s in steps]
    for x, y in zip(a, b):
        assert torch.equal(x["images"], y["images"]) and torch.equal(x["tokens"], y["tokens"])
    assert not P.RenderCache(None, 10, 64, max_bytes=10 * 64 * 64 * 3 - 1).enabled  # too big: renders every batch
    assert P.RenderCache(None, 10, 64, max_bytes=10 * 64 * 64 * 3).enabled
    assert np.array_equal(P.RenderCache(WorldDataset(cfg.world_config()), 8, 64).get_batch([3, 1, 3]),
                          real(WorldDataset(cfg.world_config()), [3, 1, 3]))


def test_the_training_monitor_does_not_change_the_run():
    """The pretraining monitor evaluates in eval mode and hands the model back as it found it: a BatchNorm
    tower's running statistics are untouched by the held-out images, and training mode is restored."""
    from clipstudy.models import load_model
    from clipstudy.pretrain import fast_zeroshot_eval

    loaded = load_model("clipstudy-rn-tiny", "random", seed=0)  # ModifiedResNet: BatchNorm layers
    cfg = PretrainConfig.from_preset("embedded", eval_per_domain=8)  # its world: 64 px images, as rn-tiny takes
    loaded.model.train()
    before = {k: v.clone() for k, v in loaded.model.state_dict().items() if "running_" in k}
    assert before
    in_training = fast_zeroshot_eval(loaded, cfg, ("photo", "sketch"))
    assert loaded.model.training
    after = {k: v for k, v in loaded.model.state_dict().items() if "running_" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
    loaded.model.eval()
    assert fast_zeroshot_eval(loaded, cfg, ("photo", "sketch")) == in_training and not loaded.model.training
