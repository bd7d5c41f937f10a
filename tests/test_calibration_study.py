"""The calibration study (Wang, Li & Wei; notebook 02): its metrics against independent references
(brute-force loops, torchmetrics), the stored cells against a recomputation from the stored similarities,
the base-to-new evaluation, resumption without retraining, skipped and bad configurations, and the real
path on a fake CoOp tree with a fake checkpoint."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipstudy import metrics as M  # noqa: E402
from clipstudy.errors import ConfigError, DataError  # noqa: E402
from clipstudy.results import ResultStore  # noqa: E402
from clipstudy.studies import calibration as cal  # noqa: E402

WORDS = ("cat", "dog", "tree", "house", "car", "boat", "leaf", "sun", "river", "cloud", "lamp", "chair")


@pytest.fixture(autouse=True)
def _tmp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))


# ------------------------------------------------------------------------------------------------ metrics
def _brute(probs, y, n_bins):
    """Loop reference of every number of calibration_summary (10 [lower, upper) bins, conf 1.0 in the last)."""
    n, k = probs.shape
    conf = [max(probs[i]) for i in range(n)]
    pred = [int(np.argmax(probs[i])) for i in range(n)]
    correct = [1.0 if pred[i] == y[i] else 0.0 for i in range(n)]
    edges = np.linspace(0, 1, n_bins + 1)
    ece = mce = wmce = 0.0
    for b in range(n_bins):
        members = [i for i in range(n) if edges[b] <= conf[i] < edges[b + 1] or (b == n_bins - 1 and conf[i] == 1.0)]
        if not members:
            continue
        gap = abs(sum(correct[i] for i in members) / len(members) - sum(conf[i] for i in members) / len(members))
        ece += len(members) / n * gap
        mce, wmce = max(mce, gap), max(wmce, len(members) / n * gap)
    e15 = 0.0
    edges15 = np.linspace(0, 1, 16)
    for b in range(15):  # (lower, upper], conf 0 in the first bin
        members = [i for i in range(n) if edges15[b] < conf[i] <= edges15[b + 1]]
        if members:
            e15 += len(members) / n * abs(np.mean([correct[i] for i in members]) - np.mean([conf[i] for i in members]))
    return {"accuracy": sum(correct) / n, "confidence": sum(conf) / n, "gap": (sum(conf) - sum(correct)) / n,
            "ece": ece, "ece15": e15, "mce": mce, "mce_weighted": wmce,
            "nll": -sum(math.log(max(probs[i][y[i]], 1e-12)) for i in range(n)) / n,
            "brier": sum(sum((probs[i][c] - (c == y[i])) ** 2 for c in range(k)) for i in range(n)) / n}


def _edge_case_probs():
    """Confidence exactly 1.0 (3 samples), confidences on bin edges and several empty bins."""
    conf = np.array([1.0, 1.0, 1.0, 0.6, 0.6, 0.55, 0.8, 0.8, 0.7, 0.65, 0.5, 0.95])
    return np.stack([conf, 1 - conf], 1), np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0])


@pytest.mark.parametrize("case", ["random", "edges"])
def test_calibration_summary_matches_brute_force(case):
    if case == "random":
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(300, 6)) * 3
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        y = rng.integers(0, 6, 300)
    else:
        probs, y = _edge_case_probs()
    ours = M.calibration_summary(probs, y)
    ref = _brute(probs, y, 10)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    assert ours["ace"] == pytest.approx(M.adaptive_ece(probs, y, 10))
    assert M.confidence_gap(probs, y) == pytest.approx(ref["gap"])
    if case == "random":  # from logits: the exact log-softmax NLL
        s = M.calibration_summary(logits, y, from_logits=True)
        assert s["nll"] == pytest.approx(float(torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(y))))
        assert s["ece"] == pytest.approx(ours["ece"])


def test_calibration_summary_against_torchmetrics():
    """torchmetrics' binning agrees with ours when no confidence sits on an inner bin edge (conf 1.0 alone in
    the last bin, as in our convention)."""
    from torchmetrics.classification import MulticlassCalibrationError

    rng = np.random.default_rng(1)
    conf = np.r_[np.full(4, 1.0), rng.uniform(0.52, 0.68, 40), rng.uniform(0.71, 0.89, 30)]
    probs, y = np.stack([conf, 1 - conf], 1), rng.integers(0, 2, len(conf))
    s = M.calibration_summary(probs, y, n_bins=10)
    for norm, key in (("l1", "ece"), ("max", "mce")):
        tm = MulticlassCalibrationError(num_classes=2, n_bins=10, norm=norm)
        assert s[key] == pytest.approx(float(tm(torch.tensor(probs), torch.tensor(y))), abs=1e-6)


def test_adaptive_ece_degenerate_and_empty():
    probs = np.array([[0.7, 0.3]] * 6)  # every confidence equal: one non-empty equal-mass bin
    y = np.array([0, 0, 0, 1, 1, 0])
    assert M.adaptive_ece(probs, y, 10) == pytest.approx(abs(4 / 6 - 0.7))
    probs, y = _edge_case_probs()
    conf, correct = probs.max(1), (probs.argmax(1) == y)
    order = np.argsort(conf, kind="mergesort")  # 12 samples, 4 equal-mass bins of 3, ties broken by quantiles
    assert M.adaptive_ece(probs, y, 1) == pytest.approx(abs(correct.mean() - conf.mean()))
    assert np.isfinite(M.adaptive_ece(probs[order], y[order], 4))


def test_evaluate_group_bins_pool_back_to_the_metrics():
    rng = np.random.default_rng(2)
    logits, y = rng.normal(size=(200, 5)) * 4, rng.integers(0, 5, 200)
    row = cal.evaluate_group(logits, y, 10, temperature=1.7)
    b = row["bins"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, correct = p.max(1), p.argmax(1) == y
    assert sum(b["count"]) == 200 and sum(b["correct_sum"]) == pytest.approx(correct.sum())
    assert sum(b["confidence_sum"]) == pytest.approx(conf.sum())
    n = np.array(b["count"])
    nz = n > 0
    pooled = np.sum(np.abs(np.array(b["correct_sum"])[nz] - np.array(b["confidence_sum"])[nz])) / 200
    assert pooled == pytest.approx(row["ece"])
    assert row["ece_ts"] == pytest.approx(M.ece(logits / 1.7, y, 10, from_logits=True, closed="left"))


# ------------------------------------------------------------------------------------------------ the study
def _world(n):
    return {"dataset": "world", "classes": "id", "domain": "photo", "n": n}


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS))
    return str(path)


def _micro_study(vocab, **kw):
    base = dict(model="clipstudy-micro", pretrained="random", methods=("zeroshot_hc", "coop", "coop_dor", "kgcoop",
                                                                        "cocoop", "maple"),
                shots=(2,), seeds=(1,), train={**_world(300), "split": "train"}, test={**_world(120), "split": "test"},
                val={**_world(60), "split": "val"}, dor={"vocabulary": vocab, "k": 10},
                recipe_overrides={m: {"max_steps": 4} for m in ("coop", "coop_dor", "kgcoop", "cocoop")}
                | {"maple": {"max_steps": 2, "params": {"n_ctx": 2, "ctx_init": "a photo of a", "prompt_depth": 1}}})
    base.update(kw)
    keep = set(base["methods"]) | {"coop_dor"}
    base["recipe_overrides"] = {k: v for k, v in base["recipe_overrides"].items() if k in keep}
    return cal.CalibrationStudy(**base)


def test_study_cells_match_a_recomputation(tmp_path, vocab):
    study = _micro_study(vocab, lambdas=(0.5,), outlier_modes=("oracle",))
    store = ResultStore(tmp_path / "results")
    res = cal.run_calibration_study(study, store, progress=False)
    assert not res.skipped  # micro is a ViT: MaPLe runs
    m = res.metrics
    assert set(m.method) == {"zeroshot_hc", "coop", "coop_dor", "kgcoop", "cocoop", "maple"}
    assert len(m[m.role == "main"]) == 2 * 6 and set(m.group) == {"base", "new"}
    # every stored number is recomputed from the stored similarities by the brute-force reference
    for method in ("coop", "coop_dor", "maple", "zeroshot_hc"):
        arrays = res.sims(method, seed=1)
        spec = next(c["spec"] for c in res.cells if c["method"] == method)
        for group in ("base", "new"):
            sims, y = arrays[f"{group}/sims"].astype(np.float64), arrays[f"{group}/labels"]
            logit = sims * float(store.get(spec)["metrics"]["scale"])
            p = np.exp(logit - logit.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            row = m[(m.role == "main") & (m.method == method) & (m.group == group)].iloc[0]
            ref = _brute(p, y, 10)
            for key in ("accuracy", "ece", "gap", "brier"):
                assert row[key] == pytest.approx(ref[key], abs=2e-3), (method, group, key)  # sims kept in float16
    # base and new are closed sets over their own names: 15/15 of the world's ID classes
    assert arrays["base/sims"].shape[1] == 15 and arrays["new/sims"].shape[1] == 15
    # zero-shot: the hand-crafted prompt's head
    zs = m[(m.method == "zeroshot_hc") & (m.group == "new")].iloc[0]
    assert zs["fd"] != zs["fd"]  # NaN: zero-shot FD is reported separately
    assert set(res.fd_zeroshot) == {"base", "new"}
    # the sweeps: one λ and the oracle pool, with the new-class names as outliers
    lam = m[m.role == "lambda"]
    assert set(lam.lam) == {0.5} and set(m[m.role == "mode"]["mode"]) == {"oracle"}
    oracle = next(c["spec"] for c in res.cells if c["role"] == "mode")
    from clipstudy.world import class_groups

    assert oracle["recipe"]["params"]["regularizers"]["dor"]["new_classes"] == class_groups()["new"]
    # FD was logged during training, and the history carries the DOR loss
    h = res.history
    assert h[(h.method == "coop_dor")]["loss_dor"].notna().all() and h[h.method == "coop"]["fd_new"].notna().all()
    assert "hm" in set(res.summary().index.get_level_values("group"))
    numbers = cal.key_numbers(res)
    assert 0 <= numbers["new_ece_coop"] <= 1 and numbers["n_cells"] == 6 + 2  # 6 main, λ 0.5, oracle
    claims = cal.verdicts(res)
    assert set(claims) >= {"coop_new_overconfident", "dor_new", "kgcoop_base_underconfident", "dor_accuracy"}
    caps = cal.captions(res, claims)
    note = " " + cal.ONE_SEED_NOTE  # one seed: no spread, and every text says so once
    assert claims["dor_new"].replace(note, "") in caps["base_new"] and caps["fd"].startswith("**This run** (1 seed;")
    assert all(c.endswith(note) and c.count(note) == 1 for c in caps.values())


def test_study_resumes_without_training(tmp_path, vocab, monkeypatch):
    study = _micro_study(vocab, methods=("coop", "coop_dor"))
    store = ResultStore(tmp_path / "results")
    first = cal.run_calibration_study(study, store, progress=False)
    monkeypatch.setattr(cal, "train_method", lambda *a, **k: pytest.fail("a stored cell was trained again"))
    second = cal.run_calibration_study(study, store, progress=False)
    cols = ["method", "group", "accuracy", "ece", "nll"]
    assert first.metrics[cols].equals(second.metrics[cols])


def test_maple_is_skipped_on_the_embedded_resnet(tmp_path, vocab):
    study = _micro_study(vocab, model="embedded", pretrained="", methods=("zeroshot_hc", "maple"),
                         recipe_overrides={})
    res = cal.run_calibration_study(study, ResultStore(tmp_path / "r"), progress=False)
    assert set(res.metrics.method) == {"zeroshot_hc"} and "ModifiedResNet" in res.skipped["maple"]
    with pytest.raises(ConfigError, match="vision transformer"):
        cal.run_calibration_study(cal.CalibrationStudy(**{**study.__dict__, "skip_unsupported": False}),
                                  ResultStore(tmp_path / "r2"), progress=False)


def test_bad_configurations_are_clear(tmp_path, vocab):
    with pytest.raises(ConfigError, match="valid splits: base2new"):
        _micro_study(vocab, split="novel")
    with pytest.raises(ConfigError, match=">= 0"):
        _micro_study(vocab, lambdas=(-1.0,))
    with pytest.raises(ConfigError, match="near, far, random, oracle"):
        _micro_study(vocab, outlier_modes=("close",))
    with pytest.raises(ConfigError, match="valid: fp32, bf16"):
        _micro_study(vocab, precision="fp16")
    assert _micro_study(vocab, precision="fp32").recipe("coop").precision == "fp32"  # the recipe says bf16
    from clipstudy.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="valid recipes: .*coop_dor"):
        _micro_study(vocab, methods=("coop", "coop_dorr"))
    study = _micro_study(vocab, methods=("coop_dor",), dor={"vocabulary": str(tmp_path / "missing.txt")})
    with pytest.raises(DataError, match="vocabulary file not found"):
        cal.run_calibration_study(study, ResultStore(tmp_path / "r"), progress=False)


def test_real_path_on_fake_coop_datasets(tmp_path, vocab):
    from clipstudy.data.fake import make_fake_checkpoint, make_fake_tree

    root = make_fake_tree(tmp_path / "data", families=["coop"], images_per_class=3, n_classes=4)
    ckpt = make_fake_checkpoint(tmp_path / "fake.pt")
    results = {}
    for name in ("dtd", "eurosat"):
        study = cal.CalibrationStudy(
            model="clipstudy-micro", pretrained=str(ckpt), data_root=str(root), scale="paper",
            methods=("zeroshot_hc", "coop", "coop_dor", "kgcoop"), shots=(2,), seeds=(1, 2),
            dor={"vocabulary": vocab, "k": 10}, recipe_overrides={m: {"max_steps": 3, "params": {"n_ctx": 4}}
                                                                  for m in ("coop", "coop_dor")},
            **cal.dataset_specs(name))
        results[name] = cal.run_calibration_study(study, ResultStore(tmp_path / "results"), progress=False)
        m = results[name].metrics
        assert len(m[m.role == "main"]) == 4 * 2 * 2
        spec = next(c["spec"] for c in results[name].cells if c["method"] == "kgcoop")
        from clipstudy.data import build_dataset

        template = build_dataset(name, root=str(root)).template  # CoOp's hand-crafted prompt of the dataset
        assert spec["recipe"]["params"]["template"] == template == spec["template"]
    both = cal.combine(results)
    row = both.metrics[(both.metrics.method == "coop") & (both.metrics.group == "new") & (both.metrics.seed == 1)]
    per = [r.metrics[(r.metrics.method == "coop") & (r.metrics.group == "new") & (r.metrics.seed == 1)]["ece"].iloc[0]
           for r in results.values()]
    assert row["ece"].iloc[0] == pytest.approx(np.mean(per))
    assert both.reliability["count"].sum() == sum(r.reliability["count"].sum() for r in results.values())
    caps = cal.captions(both, cal.verdicts(both))  # the averaged results carry no single temperature
    assert caps["base_new"].startswith("**This run**")


def test_dataset_specs():
    world = cal.dataset_specs("world", n_train=10, n_test=20, n_val=0)
    assert world["train"] == {"dataset": "world", "classes": "id", "domain": "photo", "split": "train", "n": 10}
    assert world["test"]["n"] == 20 and world["val"] == {}
    dtd = cal.dataset_specs("dtd", max_test_images=50)
    assert dtd["test"] == {"dataset": "dtd", "split": "test", "max_images": 50} and dtd["val"]["split"] == "val"
    assert cal.dataset_specs("imagenet")["val"] == {}  # ImageNet's val images are CoOp's test set


# ------------------------------------------------------------------------------------------------ the world suite
SUITE_TEMPLATES = {"world-scenes": "a photo of a {}.", "world-textures": "a photo of a {} texture.",
                   "world-icons": "a clipart of a {}."}


def test_world_suite_is_a_benchmark_suite():
    from clipstudy.data.world_suite import SUITES

    suite = cal.make_study("world-suite", n_train=100, n_test=60, n_val=0, methods=["zeroshot_hc", "coop"])
    assert isinstance(suite, cal.CalibrationSuite) and suite.datasets == list(SUITES["world-suite"])
    assert suite.studies["world-sketch"].train == {"dataset": "world-sketch", "split": "train", "n": 100}
    assert suite.studies["world-sketch"].test == {"dataset": "world-sketch", "split": "test", "n": 60}
    assert suite.studies["world-sketch"].val == {}
    # each dataset is a benchmark of its own; a list may name the suite, and still works as before
    specs = cal.dataset_specs("world-textures", n_train=50, n_test=40, n_val=20)
    assert specs["val"] == {"dataset": "world-textures", "split": "val", "n": 20}
    both = cal.make_study(["world", "world-suite", "world-sketch"], n_train=100)
    assert both.datasets == ["world"] + list(SUITES["world-suite"])
    assert isinstance(cal.make_study("world-shapes"), cal.CalibrationStudy)
    assert cal.make_study(["world"]).datasets == ["world"]
    from clipstudy.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="valid suites: world-suite; valid benchmarks: .*world-textures"):
        cal.make_study("world-suit")
    with pytest.raises(ConfigError, match="sweep_benchmarks .*'world-sketch'.* valid: world, world-shapes"):
        cal.make_study(["world", "world-shapes"], sweep_benchmarks=["world-sketch"])
    assert cal.make_study("world-suite", sweep_benchmarks=["world-suite"]).sweep_datasets == ()  # all: no split


def test_study_reads_the_dataset_prompt_through_wrappers(vocab):
    # max_images wraps the pool in a Subset, which does not copy the dataset's `template`
    spec = {"dataset": "world-textures", "n": 45}
    study = _micro_study(vocab, methods=("zeroshot_hc",), train={**spec, "split": "train", "max_images": 40},
                         test={**spec, "split": "test"}, val={}, recipe_overrides={})
    data = cal.load_study_data(study)
    assert data.template == "a photo of a {} texture." and data.name == "world-textures"
    assert cal.load_study_data(cal.CalibrationStudy(**{**study.__dict__, "template": "a {}."})).template == "a {}."


def test_suite_averages_its_datasets_and_keeps_each(tmp_path, vocab):
    import matplotlib

    matplotlib.use("Agg")
    from clipstudy.studies import calibration_figures as figs

    names = list(SUITE_TEMPLATES)
    study = cal.make_study(names, model="clipstudy-micro", pretrained="random",
                           methods=["zeroshot_hc", "coop", "coop_dor", "kgcoop"], shots=2, seeds=[1], n_train=48,
                           n_test=48, n_val=24, max_steps=2, dor={"vocabulary": vocab, "k": 10}, lambdas=[0.5],
                           outlier_modes=["oracle"], sweep_benchmarks=["world-textures"])
    assert study.sweep_datasets == ("world-textures",)
    assert study.studies["world-icons"].lambdas == () and study.studies["world-textures"].lambdas == (0.5,)
    res = cal.run(study, ResultStore(tmp_path / "results"), progress=False)
    assert res.datasets == names and res.n_datasets == 3
    # the sweeps ran on world-textures only: they are kept apart, with that dataset's own main cells
    assert set(res.metrics.role) == {"main"} and res.sweeps is res.ablation and res.ablation.datasets == ["world-textures"]
    assert set(res.ablation.metrics.role) == {"main", "lambda", "mode"}
    ref = res.ablation.metrics[(res.ablation.metrics.method == "coop") & (res.ablation.metrics.group == "new")]
    assert ref["ece"].iloc[0] == pytest.approx(res.per_dataset[(res.per_dataset.dataset == "world-textures") & (
        res.per_dataset.method == "coop") & (res.per_dataset.group == "new")]["ece"].iloc[0])
    # every dataset ran with its own prompt (zero-shot and KgCoOp's anchor)
    templates = {c["spec"]["template"] for c in res.cells}
    assert templates == set(SUITE_TEMPLATES.values())
    kg = [c["spec"]["recipe"]["params"]["template"] for c in res.cells if c["method"] == "kgcoop"]
    assert sorted(kg) == sorted(SUITE_TEMPLATES.values())
    # the suite's numbers are the mean over datasets per (method, seed, group); each dataset's rows are kept
    per = res.per_dataset
    assert len(per) == 3 * 4 * 2 and set(per.dataset) == set(names)
    for metric in ("accuracy", "ece", "ace", "mce", "nll", "confidence", "fd"):
        sel = (per.method == "coop") & (per.group == "new")
        row = res.metrics[(res.metrics.method == "coop") & (res.metrics.group == "new")]
        assert row[metric].iloc[0] == pytest.approx(per[sel][metric].mean()), metric
    table = cal.dataset_table(res, "ece", "new")
    assert list(table.index) == names + ["mean"] and list(table.columns) == ["zeroshot_hc", "coop", "coop_dor", "kgcoop"]
    assert table.loc["mean", "coop"] == pytest.approx(100 * res.metrics[(res.metrics.method == "coop") & (
        res.metrics.group == "new")]["ece"].mean())
    assert table.loc["world-textures", "kgcoop"] == pytest.approx(100 * per[
        (per.dataset == "world-textures") & (per.method == "kgcoop") & (per.group == "new")]["ece"].mean())
    hm = cal.dataset_table(res, "accuracy", "hm")
    assert (hm.to_numpy() >= 0).all() and (hm.to_numpy() <= 100).all()
    paper = cal.paper_table(res)
    assert list(paper.index) == ["Zero-shot", "CoOp", "CoOp+DOR", "KgCoOp"]
    assert {(m, g) for m in cal.TABLE_METRICS for g in ("base", "new")} <= set(paper.columns)
    assert ("accuracy", "hm") in paper.columns
    numbers = cal.key_numbers(res)
    assert numbers["n_datasets"] == 3 and numbers["n_cells"] == 3 * 4 + 2  # + λ 0.5 and oracle on world-textures
    claims = cal.verdicts(res)
    assert "of the 3-dataset average" in claims["dor_new"]
    assert claims["dor_lambda"].endswith("on world-textures only). The claim: DOR's benefit holds over a range of λ. "
                                         + cal.ONE_SEED_NOTE)
    caps = cal.captions(res, claims)
    assert caps["base_new"].startswith("**This run** (1 seed, 3 datasets; each number is the mean over the 3")
    assert "mean over the 3 datasets" in caps["base_new"]  # the fitted temperature is a mean over datasets
    assert caps["per_dataset"].startswith("**This run** (1 seed, 3 datasets; each dataset's mean ± std over seeds):")
    assert "of 3 datasets" in caps["per_dataset"]
    assert caps["lambda"].startswith("**This run** (1 seed; the sweeps ran on world-textures only;")
    assert claims["dor_lambda"].replace(" " + cal.ONE_SEED_NOTE, "") in caps["lambda"]
    # one dataset of the suite, as results of its own
    one = cal.dataset_results(res, "world-icons")
    assert len(one.metrics) == 4 * 2 and one.datasets == ["world-icons"]
    with pytest.raises(ConfigError, match="valid: world-scenes"):
        cal.dataset_results(res, "world-sketch")
    titles = {}
    for plot in (figs.plot_base_new, figs.plot_reliability, figs.plot_fd_training, figs.plot_confidence_gap,
                 figs.plot_per_dataset, figs.plot_lambda, figs.plot_vocabulary):
        fig = plot(res)
        titles[plot.__name__] = fig._suptitle.get_text()
        if plot is figs.plot_per_dataset:
            assert len([ax for ax in fig.axes if ax.images]) == 6  # ECE, gap, accuracy x base, new
        if plot is figs.plot_fd_training:
            assert fig.axes[0].get_xlabel() == "step"  # the datasets' epochs differ; their steps do not
        matplotlib.pyplot.close(fig)
    assert titles["plot_base_new"].endswith("(mean over 3 datasets)")
    assert titles["plot_reliability"].endswith("(all seeds and the 3 datasets pooled)")
    assert titles["plot_lambda"].endswith("(world-textures)") and titles["plot_vocabulary"].endswith("(world-textures)")


def test_per_dataset_caption_counts_datasets_within_the_seed_spread():
    import pandas as pd

    # CoOp's new ECE (zero-shot's: 5.0 %) is above it beyond the spread on "a" (6.5 % ± 0.5 %), a tie on "b"
    # (4.5 % ± 1.5 %); DOR's (3.1 %) is lower on "a", a tie on "b"
    a = _handmade(_base_run([0.060, 0.065, 0.070], [0.030, 0.031, 0.032])).metrics.assign(dataset="a")
    b = _handmade(_base_run([0.030, 0.045, 0.060], [0.030, 0.031, 0.032])).metrics.assign(dataset="b")
    per = pd.concat([a, b], ignore_index=True)
    keys = ["role", "method", "family", "dor", "lam", "mode", "shots", "seed", "group"]
    metrics = per.groupby(keys, dropna=False).mean(numeric_only=True).reset_index()
    res = cal.CalibrationResults(metrics, pd.DataFrame(), pd.DataFrame(), [], None, {}, {"base": 0.22, "new": 0.30},
                                 per)
    cap = cal.captions(res, cal.verdicts(res))["per_dataset"]
    assert "CoOp's new-class ECE is above zero-shot's beyond the seed spread on 1 (a) of 2 datasets, tied on 1" in cap
    assert "DOR's new-class ECE against CoOp's is lower beyond the seed spread on 1 (a) of 2 datasets, tied on 1" in cap
    assert "Zero-shot new-class ECE ranges from 5.0% (a) to 5.0% (a)" in cap
    assert "KgCoOp's base-class confidence − accuracy is below 0 (underconfident) beyond the seed spread on 2 (a, b)" in cap
    assert cal.dataset_table(res, "ece", "new").loc["mean", "coop"] == pytest.approx(100 * 0.055)


# ------------------------------------------------------------------ verdicts and captions respect the seed spread
def _handmade(values, fd_zeroshot=(("base", 0.22), ("new", 0.30))):
    """CalibrationResults from ``values[(role, method, family, dor, lam, mode)][group] = {metric: [per seed]}``."""
    import pandas as pd

    rows = []
    for (role, method, family, dor, lam, mode), groups in values.items():
        for group, mets in groups.items():
            for i in range(len(next(iter(mets.values())))):
                rows.append({"role": role, "method": method, "family": family, "dor": dor, "lam": lam, "mode": mode,
                             "shots": 16, "seed": i + 1, "group": group, "temperature": 0.81,
                             **{k: v[i] for k, v in mets.items()}})
    m = pd.DataFrame(rows)
    for c in ("accuracy", "gap", "ece", "fd"):
        if c not in m:
            m[c] = np.nan
    return cal.CalibrationResults(m, pd.DataFrame(), pd.DataFrame(), [], None, {}, dict(fd_zeroshot))


def _g(acc, gap, ece, fd=None):
    return {"accuracy": acc, "gap": gap, "ece": ece, "fd": fd if fd is not None else [np.nan] * len(acc)}


ZS = ("main", "zeroshot_hc", "zeroshot", False, 0.0, "")
COOP = ("main", "coop", "coop", False, 0.0, "")
COOP_DOR = ("main", "coop_dor", "coop", True, 8.0, "near")
KGCOOP = ("main", "kgcoop", "kgcoop", False, 0.0, "")


def _base_run(coop_new_ece, dor_new_ece, dor_hm_new_acc=(0.88, 0.88, 0.88)):
    zs = {"base": _g([0.85] * 3, [-0.058] * 3, [0.068] * 3), "new": _g([0.89] * 3, [-0.042] * 3, [0.050] * 3)}
    coop = {"base": _g([0.84, 0.85, 0.86], [0.014, 0.014, 0.014], [0.03, 0.03, 0.03]),
            "new": _g([0.87, 0.87, 0.87], [0.010, 0.012, 0.014], coop_new_ece, [0.42, 0.43, 0.44])}
    dor = {"base": _g([0.84, 0.85, 0.86], [0.004] * 3, [0.03] * 3),
           "new": _g(list(dor_hm_new_acc), [-0.012] * 3, dor_new_ece, [0.34, 0.35, 0.36])}
    kg = {"base": _g([0.846] * 3, [-0.017, -0.018, -0.016], [0.028] * 3, [0.27] * 3),
          "new": _g([0.88] * 3, [-0.03] * 3, [0.04] * 3, [0.33] * 3)}
    return {ZS: zs, COOP: coop, COOP_DOR: dor, KGCOOP: kg}


def test_dor_and_coop_verdicts_count_differences_within_the_seed_spread_as_ties():
    # DOR's new ECE 3.0 % vs CoOp's 3.3 % ± 1.0 %: a tie; the old code said "supports" (3.0 < 3.3)
    tie = cal.verdicts(_handmade(_base_run([0.023, 0.033, 0.043], [0.030, 0.030, 0.030])))
    assert tie["dor_new"].startswith("Tie (within the seed spread)"), tie["dor_new"]
    assert "ECE 3.3% ± 1.0% -> 3.0% ± 0.0% (a tie within the seed spread)" in tie["dor_new"]
    assert "FD 0.430 ± 0.010 -> 0.350 ± 0.010 (lower beyond the seed spread)" in tie["dor_new"]
    win = cal.verdicts(_handmade(_base_run([0.060, 0.065, 0.070], [0.030, 0.031, 0.032])))
    assert win["dor_new"].startswith("Supported")
    loss = cal.verdicts(_handmade(_base_run([0.010, 0.011, 0.012], [0.030, 0.031, 0.032])))
    assert loss["dor_new"].startswith("Not supported")
    # CoOp's new-class gap +1.2 ± 0.2 pp is overconfident beyond the spread, but its ECE 1.1 % is below zero-shot's
    assert loss["coop_new_overconfident"].startswith("Not supported")
    assert "+1.2 ± 0.2 pp (overconfident beyond the seed spread)" in loss["coop_new_overconfident"]
    assert tie["coop_new_overconfident"].startswith("Not supported")  # ECE 3.3 % ± 1.0 % below zero-shot's 5.0 %
    # the harmonic mean: CoOp+DOR within the spread of CoOp is "no cost" (a tie), and says so
    assert "a tie within the seed spread" in tie["dor_accuracy"] and tie["dor_accuracy"].startswith("Supported")
    # KgCoOp base: underconfident beyond the spread, ECE 2.8 % below zero-shot's 6.8 %: not supported
    assert tie["kgcoop_base_underconfident"].startswith("Not supported")
    assert "-1.7 ± 0.1 pp (underconfident beyond the seed spread)" in tie["kgcoop_base_underconfident"]


def test_lambda_and_vocabulary_verdicts_use_seed_spreads():
    run = _base_run([0.023, 0.033, 0.043], [0.030] * 3)

    def lam(weight, ece, fd):
        return {("lambda", "coop_dor", "coop", True, weight, "near"): {
            "base": _g([0.84] * 3, [0.0] * 3, [0.03] * 3), "new": _g([0.88] * 3, [-0.01] * 3, ece, fd)}}

    # new ECE at λ = 4 and 16 within the spread of CoOp's (3.3 % ± 1.0 %): ties, not a benefit
    res = _handmade({**run, **lam(4.0, [0.030, 0.031, 0.032], [0.38, 0.39, 0.40]),
                     **lam(16.0, [0.035, 0.036, 0.037], [0.33, 0.335, 0.34])})
    v = cal.verdicts(res)
    assert v["dor_lambda"].startswith("Tie (within the seed spread)"), v["dor_lambda"]
    assert "tied at 2 and above at 0 of 2 DOR weights" in v["dor_lambda"]
    assert ("new-class FD falls monotonically (0.430 ± 0.010 at λ = 0 to 0.335 ± 0.005 at λ = 16; 0 of 2 steps"
            in v["dor_lambda"])
    # 3.3 ± 1.0 -> 3.1 ± 0.1 (a tie) -> 3.6 ± 0.1 (up): a monotone rise with one step a tie
    assert ("new ECE rises monotonically (3.3% ± 1.0% at λ = 0 to 3.6% ± 0.1% at λ = 16; 1 of 2 steps"
            in v["dor_lambda"])
    assert "base accuracy is flat (85.0% ± 1.0% at λ = 0 to 84.0% ± 0.0% at λ = 16; 2 of 2 steps" in v["dor_lambda"]

    def mode(name, ece):
        return {("mode", "coop_dor", "coop", True, 8.0, name): {
            "base": _g([0.84] * 3, [0.0] * 3, [0.03] * 3), "new": _g([0.88] * 3, [-0.01] * 3, ece, [0.35] * 3)}}

    near = mode("near", [0.030, 0.033, 0.036])
    v = cal.verdicts(_handmade({**run, **near, **mode("oracle", [0.040, 0.046, 0.052]),
                                **mode("far", [0.032, 0.036, 0.040])}))
    assert v["dor_vocabulary"].startswith("Tie (within the seed spread)")  # far within the spread of near
    v = cal.verdicts(_handmade({**run, **near, **mode("far", [0.060, 0.061, 0.062])}))
    assert v["dor_vocabulary"].startswith("Supported")
    v = cal.verdicts(_handmade({**run, **near, **mode("oracle", [0.010, 0.011, 0.012])}))
    assert v["dor_vocabulary"].startswith("Not supported")


def test_captions_quote_this_runs_numbers_and_explain_only_failed_claims():
    res = _handmade(_base_run([0.010, 0.011, 0.012], [0.030, 0.031, 0.032]))
    claims = cal.verdicts(res)
    caps = cal.captions(res, claims)
    assert set(caps) >= {"base_new", "reliability", "fd", "lambda", "vocabulary", "confidence"}
    assert caps["base_new"].startswith("**This run** (3 seeds; mean ± std over seeds):")
    assert claims["coop_new_overconfident"] in caps["base_new"] and claims["dor_new"] in caps["base_new"]
    assert ("Zero-shot starts with confidence − accuracy -5.8 ± 0.0 pp on base and -4.2 ± 0.0 pp on new classes (both "
            "underconfident beyond the seed spread)" in caps["base_new"])
    # CoOp's claim failed and zero-shot starts underconfident: the explanation is printed
    assert "A likely reason: zero-shot starts underconfident on new classes (-4.2 ± 0.0 pp)" in caps["base_new"]
    assert "KgCoOp's base accuracy 84.6% ± 0.0% is lower beyond the seed spread" in caps["reliability"]
    assert "Final FD, new classes: zero-shot prompt 0.300; CoOp 0.430 ± 0.010" in caps["fd"]
    assert "CoOp 0.430 ± 0.010" in caps["fd"] and claims["fd_divergence"] in caps["fd"]
    assert "overconfident beyond the seed spread: CoOp +1.2 ± 0.2 pp" in caps["confidence"]
    # a run where CoOp's new ECE rises past zero-shot's: supported, and no explanation
    up = _handmade(_base_run([0.080, 0.085, 0.090], [0.030, 0.031, 0.032]))
    claims = cal.verdicts(up)
    assert claims["coop_new_overconfident"].startswith("Supported")
    assert "A likely reason" not in cal.captions(up, claims)["base_new"]
