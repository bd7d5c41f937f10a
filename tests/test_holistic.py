"""The holistic robustness study (Tu et al.): every axis function against a brute-force reference, the
study's data plumbing (held-out splits, class alignment, captions), and a tiny end-to-end run that resumes
from its cells with one feature pass per dataset."""
import math

import numpy as np
import pandas as pd
import pytest

from clipstudy.analysis import robustness as R
from clipstudy.errors import ConfigError


# ---------------------------------------------------------------------------------------------- axis functions

def test_factor_accuracy_string_and_binary_factors():
    rng = np.random.default_rng(0)
    n = 200
    table = [{"rotation": rng.choice(["upright", "tilted", "sideways"]), "pose": int(rng.random() < 0.3),
              "partial": (None if i % 7 == 0 else int(rng.random() < 0.5))} for i in range(n)]
    correct = rng.random(n) < 0.6
    rows = R.factor_accuracy(correct, table, ["rotation", "pose", "partial", "missing"])
    got = {(r["factor"], r["value"]): (r["accuracy"], r["n"]) for r in rows}
    for value in ("upright", "tilted", "sideways"):
        idx = [i for i in range(n) if table[i]["rotation"] == value]
        assert got[("rotation", value)] == pytest.approx((np.mean(correct[idx]), len(idx)))
    idx = [i for i in range(n) if table[i]["pose"] == 1]  # binary: only the images that show the factor
    assert got[("pose", "1")] == pytest.approx((np.mean(correct[idx]), len(idx))) and ("pose", "0") not in got
    idx = [i for i in range(n) if table[i]["partial"] == 1]  # None = not annotated
    assert got[("partial", "1")] == pytest.approx((np.mean(correct[idx]), len(idx)))
    assert not any(r["factor"] == "missing" for r in rows)
    with pytest.raises(ValueError, match="rows for"):
        R.factor_accuracy(correct[:-1], table, ["pose"])


def _logit(p):
    return np.log(p / (1 - p))


def _er_tables(seed=1, n_base=5, n_zoo=6):
    """A baseline family and a zoo, one row per (model, factor value); the zoo lies above the baseline trend."""
    rng = np.random.default_rng(seed)
    groups = (("size", "small"), ("rotation", "tilted"))
    def rows(prefix, n, lift):
        overall = rng.uniform(0.2, 0.9, n)
        return [{"entry": f"{prefix}{i}", "factor": f, "value": v, "overall": o,
                 "accuracy": float(np.clip(o - 0.15 + lift + rng.normal(0, 0.04), 0.01, 0.99))}
                for i, o in enumerate(overall) for f, v in groups]
    return pd.DataFrame(rows("b", n_base, 0.0)), pd.DataFrame(rows("z", n_zoo, 0.1))


def test_effective_robustness_line_is_numpy_polyfit_on_logit_baseline_accuracies():
    """Brute force: per factor value, np.polyfit on logit-transformed *baseline* accuracies; every zoo row's
    effective robustness is its accuracy minus the inverse logit of that line (Taori et al. 2020)."""
    base, zoo = _er_tables()
    out, lines = R.factor_effective_robustness(zoo, base, overall="overall")
    for (f, v), g in out.groupby(["factor", "value"]):
        b = base[(base.factor == f) & (base.value == v)]
        a, c = np.polyfit(_logit(b.overall.values), _logit(b.accuracy.values), 1)
        line = lines[(lines.factor == f) & (lines.value == v)].iloc[0]
        assert line.slope == pytest.approx(a, abs=1e-10) and line.intercept == pytest.approx(c, abs=1e-10)
        assert line["n_points"] == len(b) and line["transform"] == "logit"
        ref = g.accuracy.values - 1 / (1 + np.exp(-(a * _logit(g.overall.values) + c)))
        np.testing.assert_allclose(g.effective_robustness.values, ref, atol=1e-10)
        np.testing.assert_allclose(g.predicted.values, g.accuracy.values - ref, atol=1e-10)


def test_effective_robustness_is_zero_on_the_baseline_line_and_the_zoo_mean_need_not_be():
    base, zoo = _er_tables()
    _, lines = R.factor_effective_robustness(zoo, base, overall="overall")
    on_line = []
    for r in lines.itertuples():  # a model exactly on each line, at overall accuracy 0.55
        y = 1 / (1 + np.exp(-(r.slope * _logit(0.55) + r.intercept)))
        on_line.append({"entry": "on", "factor": r.factor, "value": r.value, "overall": 0.55, "accuracy": y})
    out, _ = R.factor_effective_robustness(pd.concat([zoo, pd.DataFrame(on_line)], ignore_index=True), base,
                                           overall="overall")
    np.testing.assert_allclose(out[out.entry == "on"].effective_robustness, 0.0, atol=1e-12)
    zoo_er = out[out.entry != "on"].effective_robustness
    assert zoo_er.mean() > 0.05  # fitted across the zoo itself, the residuals would average ~0 by construction


def test_effective_robustness_line_ignores_zoo_points():
    base, zoo = _er_tables()
    out, lines = R.factor_effective_robustness(zoo, base, overall="overall")
    far = pd.DataFrame([{"entry": "outlier", "factor": "size", "value": "small", "overall": 0.3, "accuracy": 0.95}])
    out2, lines2 = R.factor_effective_robustness(pd.concat([zoo, far], ignore_index=True), base, overall="overall")
    pd.testing.assert_frame_equal(lines, lines2)
    pd.testing.assert_frame_equal(out, out2[out2.entry != "outlier"])
    # the baseline models measured against their own line average ~0 residual on logit axes, not the zoo
    lines_b = R.baseline_lines(base, overall="overall")
    pd.testing.assert_frame_equal(lines, lines_b)


def test_effective_robustness_needs_two_valid_baseline_points():
    base, zoo = _er_tables()
    one = base[base.entry == "b0"]  # one baseline model: no line, NaN with a note
    out, lines = R.factor_effective_robustness(zoo, one, overall="overall")
    assert out.effective_robustness.isna().all() and lines.slope.isna().all()
    assert all("1 valid baseline point" in n for n in lines.note)
    edge = base.copy()  # accuracies at 0 or 1 have no logit: they do not count as points
    edge.loc[edge.entry != "b0", "accuracy"] = 0.0
    _, lines = R.factor_effective_robustness(zoo, edge, overall="overall")
    assert lines.slope.isna().all() and (lines.n_points == 1).all()
    out, lines = R.factor_effective_robustness(zoo, base.iloc[0:0], overall="overall")
    assert out.effective_robustness.isna().all() and not len(lines)
    by_set = R.baseline_lines(base.rename(columns={"value": "set"}), by=("set",), overall="overall")
    assert set(by_set["set"]) == {"small", "tilted"} and by_set.slope.notna().all()


def test_shape_bias_axis_matches_counts():
    shape = np.array([0, 1, 2, 3, 4, 5, 6])
    texture = np.array([1, 2, 3, 4, 5, 6, 6])  # the last image has no conflict: excluded
    pred = np.array([0, 1, 3, 9, 5, 1, 6])     # shape, shape, texture, neither, texture, neither
    r = R.shape_bias_axis(pred, shape, texture)
    assert r == pytest.approx({"shape_bias": 2 / 4, "shape_decisions": 2 / 6, "texture_decisions": 2 / 6, "n": 6})


def test_ood_axis_scores_with_mcm_and_msp_at_the_models_scale():
    from clipstudy.metrics import ood_metrics
    from clipstudy.scores import mcm, msp

    rng = np.random.default_rng(2)
    s_id, s_ood = rng.normal(0.3, 0.05, (50, 5)), rng.normal(0.25, 0.05, (40, 5))
    s_id[np.arange(50), rng.integers(0, 5, 50)] += 0.1
    both = {(r["scorer"], r["set"]): r for r in R.ood_axis(s_id, {"far": s_ood, "near": s_ood[:20]}, logit_scale=30.0)}
    assert set(both) == {("mcm", "far"), ("mcm", "near"), ("msp", "far"), ("msp", "near")}  # both by default
    for scorer, fn in (("mcm", lambda s: mcm(s)), ("msp", lambda s: msp(s, logit_scale=30.0))):
        [row] = R.ood_axis(s_id, {"far": s_ood}, scorer, logit_scale=30.0)
        ref = ood_metrics(fn(s_id), fn(s_ood))
        assert row["set"] == "far" and row["auroc"] == pytest.approx(ref["auroc"])
        assert row["fpr95"] == pytest.approx(ref["fpr95"]) and both[(scorer, "far")] == row
    assert R.paper_scorer(True) == "mcm" and R.paper_scorer(False) == "msp"
    # one dispatch (clipstudy.scores.score) serves the axis: other similarity scorers work, with the scale
    from clipstudy.scores import energy

    [row] = R.ood_axis(s_id, {"far": s_ood}, "energy", logit_scale=30.0)
    assert row["auroc"] == pytest.approx(ood_metrics(energy(s_id, logit_scale=30.0),
                                                     energy(s_ood, logit_scale=30.0))["auroc"])
    with pytest.raises(ValueError, match="'mcm' .*'msp'.*another of"):
        R.ood_axis(s_id, {"far": s_ood}, "knn")


def _ece15_brute(logits, labels):
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, ok = p.max(1), p.argmax(1) == labels
    total = 0.0
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        m = (conf > lo) & (conf <= hi) if b else (conf >= 0) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - ok[m].mean())
    return total


def test_calibration_axis_fits_on_val_and_applies_to_every_set():
    from clipstudy.temperature import fit_temperature

    rng = np.random.default_rng(3)

    def sample(n, t0=3.0):
        z = rng.normal(size=(n, 6)) * 4.0
        p = np.exp(z / t0 - (z / t0).max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return z, np.array([rng.choice(6, p=row) for row in p])

    (zv, yv), (zt, yt), (zs, ys) = sample(800), sample(600), sample(300, 5.0)
    T, rows = R.calibration_axis(zv, yv, {"id": (zt, yt), "shift": (zs, ys)})
    assert T == pytest.approx(fit_temperature(zv, yv)) and 2.5 < T < 3.5
    got = {(r["set"], r["scaled"]): r for r in rows}
    for name, (z, y) in (("id", (zt, yt)), ("shift", (zs, ys))):
        for scaled, zz in ((False, z), (True, z / T)):
            r = got[(name, scaled)]
            assert r["ece"] == pytest.approx(_ece15_brute(zz, y), abs=1e-12)
            lp = zz - zz.max(1, keepdims=True)
            lp -= np.log(np.exp(lp).sum(1, keepdims=True))
            assert r["nll"] == pytest.approx(-lp[np.arange(len(y)), y].mean())
            assert r["accuracy"] == pytest.approx(np.mean(z.argmax(1) == y))
    assert got[("id", True)]["nll"] < got[("id", False)]["nll"]  # logits were 3x too sharp


def test_retrieval_axis_and_corruption_summary():
    from clipstudy.metrics import recall_at_k

    rng = np.random.default_rng(4)
    img = rng.normal(size=(20, 8))
    txt = img + rng.normal(size=(20, 8)) * 0.8
    r = R.retrieval_axis(img, txt, np.arange(20), ks=(1, 5))
    ref = recall_at_k(img, txt, np.arange(20), k=(1, 5))
    assert all(r[k] == pytest.approx(v) for k, v in ref.items())
    assert r["mean@1"] == pytest.approx((ref["i2t@1"] + ref["t2i@1"]) / 2)
    rows = [{"corruption": c, "severity": s, "accuracy": a} for c, s, a in
            [("noise", 1, 0.6), ("noise", 5, 0.2), ("rotate", 1, 0.5), ("rotate", 5, 0.1), ("rotate", 4, 0.3)]]
    out = R.corruption_summary(rows, clean_accuracy=0.8, geometric=["rotate"])
    assert out["common_accuracy"] == pytest.approx(0.4) and out["geometric_accuracy"] == pytest.approx(0.3)
    assert out["geometric_accuracy_high"] == pytest.approx(0.2) and out["common_accuracy_high"] == pytest.approx(0.2)
    assert out["common_relative"] == pytest.approx(0.5) and out["geometric_relative"] == pytest.approx(0.3 / 0.8)


def test_factor_effects_pairs_variants_with_references():
    summary = pd.DataFrame({"entry": ["b", "v", "b+e", "v+e"], "acc": [0.5, 0.6, 0.45, 0.7], "ece": [0.1, 0.2, 0.1, 0.1]})
    t = R.factor_effects(summary, [{"row": "arch", "variant": ["v"], "reference": ["b"]},
                                   {"row": "prompts", "variant": ["b+e", "v+e"], "reference": ["b", "v"]}],
                         ["acc", "ece"])
    assert t.loc["arch"].tolist() == pytest.approx([0.1, 0.1])
    assert t.loc["prompts"].tolist() == pytest.approx([(-0.05 + 0.1) / 2, (0.0 - 0.1) / 2])
    with pytest.raises(ValueError, match="as many variant"):
        R.factor_effects(summary, [{"row": "x", "variant": ["v"], "reference": []}], ["acc"])


def test_lmm_axis_is_a_hook():
    with pytest.raises(R.LMMAxisUnavailable, match="cannot be obtained offline"):
        R.lmm_axis()
    questions = [{"image": i, "question": "which?", "options": ["a", "b"], "answer": i % 2} for i in range(4)]
    assert R.lmm_axis(lambda image, q, options: 0, questions) == {"accuracy": 0.5, "n": 4}
    with pytest.raises(ValueError, match="at least one question"):
        R.lmm_axis(lambda *a: 0, [])


# ---------------------------------------------------------------------------------------------- study plumbing

def test_build_set_holdout_is_disjoint_and_world_sets_are_held_in_memory():
    from clipstudy.studies.holistic import InMemory, build_set

    spec = {"dataset": "world", "split": "val", "n": 50, "classes": "id", "domain": "photo"}
    val, test = build_set({**spec, "holdout": "val"}), build_set({**spec, "holdout": "test"})
    assert isinstance(val, InMemory) and len(val) == 10 and len(test) == 40
    vi, ti = set(val.dataset.indices.tolist()), set(test.dataset.indices.tolist())
    assert not vi & ti and len(vi | ti) == 50
    plain = build_set(spec)
    assert np.array_equal(np.asarray(plain[3]["image"]), plain.pixels[3]) and plain.cache_key == \
        build_set(spec).cache_key
    assert len(build_set({**spec, "holdout": "test", "max_images": 7})) == 7
    with pytest.raises(ConfigError, match="holdout must be"):
        build_set({**spec, "holdout": "train"})


def test_class_columns_align_imagenet_subsets():
    from types import SimpleNamespace as NS

    from clipstudy.studies.holistic import class_columns

    full = NS(classnames=("a", "b", "c", "d"), class_indices=np.array([3, 7, 9, 12]))
    assert class_columns(full, NS(classnames=("a", "b", "c", "d"))) is None
    assert class_columns(full, NS(classnames=("c", "a"), class_indices=np.array([9, 3]))).tolist() == [2, 0]
    with pytest.raises(ConfigError, match="outside the ID classes"):
        class_columns(full, NS(classnames=("x",), class_indices=np.array([5])))
    with pytest.raises(ConfigError, match="ID classes in the ID order"):
        class_columns(full, NS(classnames=("b", "a", "c", "d")))


def test_retrieval_texts_world_and_coco(tmp_path):
    from clipstudy.data.fake import make_fake_tree
    from clipstudy.studies.holistic import build_set, retrieval_texts
    from clipstudy.world import caption

    ds = build_set({"dataset": "world", "split": "test", "n": 12, "domain": "photo", "max_images": 5})
    captions, owner = retrieval_texts(ds)
    base, idx = ds.dataset.dataset, ds.dataset.indices
    assert owner.tolist() == list(range(5))
    assert captions == [caption(base.cfg.replace(simple_caption_prob=0.0), int(i)) for i in idx]
    root = make_fake_tree(tmp_path, families=["retrieval"])
    coco = build_set({"dataset": "coco_captions", "max_images": 2}, root)
    captions, owner = retrieval_texts(coco)
    assert len(captions) == 10 and owner.tolist() == [0] * 5 + [1] * 5


def test_benchmarks_and_study_validation():
    from clipstudy.registry import UnknownNameError
    from clipstudy.studies import holistic as H

    sets = H.holistic_benchmark("world", n_corrupt=5, severities=(2,), corruptions=("fog", "rotate"))
    assert set(sets["corruptions"]) == {"fog@2", "rotate@2"} and set(sets["shift"]) == {
        "painting", "clipart", "sketch", "infograph"}
    assert sets["corruptions"]["fog@2"]["seed"] == sets["id"]["seed"]  # corrupted copies of the ID test images
    with pytest.raises(UnknownNameError, match="valid"):
        H.holistic_benchmark("nope")
    with pytest.raises(ConfigError, match="unknown dataset roles \\['bogus'\\]"):
        H.HolisticStudy(zoo="smoke", sets={**sets, "bogus": {}})
    with pytest.raises(ConfigError, match="needs a 'val'"):
        H.HolisticStudy(zoo="smoke", sets={"id": sets["id"]})
    with pytest.raises(UnknownNameError):
        H.HolisticStudy(zoo="smoke", sets=sets, prompts={"x": "no-such-templates"})


# ---------------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch = pytest.importorskip("torch")  # noqa: F841
    from clipstudy.results import ResultStore
    from clipstudy.studies import holistic as H

    home = tmp_path_factory.mktemp("holistic")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPSTUDY_HOME", str(home))
    sets = H.holistic_benchmark("world", n_train=32, n_test=30, n_val=20, n_shift=10, n_ood=10, n_cue=20, n_corrupt=6,
                                severities=(1, 5), corruptions=("contrast", "rotate"), n_retrieval=12)
    study = H.HolisticStudy(zoo="smoke", sets=sets)
    store = ResultStore(home / "results")
    res = H.run_holistic_study(study, store=store, progress=False)
    yield study, store, res, home
    mp.undo()


def test_tiny_study_tables(tiny_run):
    study, _, res, _ = tiny_run
    assert list(res.models.entry) == ["micro", "micro+ensemble", "micro@1", "micro@1+ensemble", "micro-balanced",
                                      "micro-balanced+ensemble", "micro-ft", "micro-ft@1"]
    assert res.models.set_index("entry").loc["micro-ft", "prompts"] == "fine-tuned"
    assert set(res.ood.set) == {"near_ood", "far_ood", "texture"}
    # every entry is scored with both MCM and MSP on every OOD set; the paper's pairing is only a flag
    assert res.ood.groupby("entry").apply(lambda g: set(zip(g.scorer, g.set)), include_groups=False).map(len).eq(6).all()
    assert set(res.ood.entry) == set(res.models.entry) and len(res.ood) == 8 * 2 * 3
    paper = res.ood[res.ood.paper_scorer]
    assert set(paper[paper.entry == "micro-ft"].scorer) == {"msp"} and set(paper[paper.entry == "micro"].scorer) == {"mcm"}
    assert set(res.calibration.group) == {"id", "shift", "corruption"} and len(res.calibration) == 8 * 2 * (1 + 4 + 4)
    assert set(res.corruptions.kind) == {"common", "geometric"} and len(res.corruptions) == 8 * 4
    assert set(res.factors.factor) <= set(study.factors) and "effective_robustness" in res.factors
    # effective robustness is defined exactly where the baseline family gives the factor value a line
    assert res.factors.effective_robustness.notna().any() == res.factor_lines.slope.notna().any()
    assert len(res.summary) == 8 and res.summary.id_accuracy.between(0, 1).all()
    for col in ("ood_auroc_mcm", "ood_auroc_msp", "ece_id", "ece_shift_ts", "retrieval_r1", "geometric_relative",
                "shape_bias", "shift_er", "factor_er"):
        assert col in res.summary
    assert "ood_auroc" not in res.summary  # no column mixes scorers across entries
    # the prompts contrast pairs every zero-shot zoo model; the base contrasts follow the zoo
    from clipstudy.studies import holistic as H

    rows = {c["row"]: c for c in H.effect_contrasts(res)}
    assert rows["test-time prompts: ensemble vs single"]["variant"] == ["micro+ensemble", "micro@1+ensemble",
                                                                       "micro-balanced+ensemble"]
    assert "fine-tuning: FT vs zero-shot" in rows and "training distribution: domain-balanced vs photo-heavy" in rows
    # FT at each seed is paired with the base run it was fine-tuned from
    assert rows["fine-tuning: FT vs zero-shot"]["variant"] == ["micro-ft", "micro-ft@1"]
    assert rows["fine-tuning: FT vs zero-shot"]["reference"] == ["micro", "micro@1"]
    s = res.summary.set_index("entry")
    table = H.factor_effect_table(res)
    ft = [s.loc["micro-ft", "id_accuracy"] - s.loc["micro", "id_accuracy"],
          s.loc["micro-ft@1", "id_accuracy"] - s.loc["micro@1", "id_accuracy"]]
    assert table.loc["fine-tuning: FT vs zero-shot", "id_accuracy"] == pytest.approx(np.mean(ft))
    # the effect of fine-tuning on OOD detection, within one scorer: brute force from the tidy OOD table
    o = res.ood
    for scorer in ("mcm", "msp"):
        mean = lambda e: o[(o.entry == e) & (o.scorer == scorer)].auroc.mean()  # noqa: E731
        assert table.loc["fine-tuning: FT vs zero-shot", f"ood_auroc_{scorer}"] == pytest.approx(
            np.mean([mean("micro-ft") - mean("micro"), mean("micro-ft@1") - mean("micro@1")]))
    assert not [c for c in table.columns if c.startswith("ood_") and not c.endswith(("_mcm", "_msp"))]
    n = H.key_numbers(res)
    assert n["n_models"] == 5 and n["n_entries"] == 8 and 0 <= n["base_id_accuracy"] <= 1
    assert n["n_baseline"] == 3 and 0 <= n["base_ood_auroc_mcm"] <= 1 and 0 <= n["base_ood_auroc_msp"] <= 1
    assert set(H.verdicts(n)) >= {"shape_bias", "prompts", "temperature_scaling", "fine_tuning_ood"}


def test_tiny_study_effects_have_their_spread_over_seeds(tiny_run):
    """Brute force from the summary: each contrast's paired differences (mean, std with ddof 1, min, max), the
    base's seed spread over its two runs, and the key numbers the verdicts read."""
    from clipstudy.studies import holistic as H

    _, _, res, _ = tiny_run
    s = res.summary.set_index("entry")
    spread = H.effect_spread(res)
    assert H.base_replicates(res) == ["micro", "micro@1"]
    for metric in ("id_accuracy", "ood_auroc_mcm", "ood_auroc_msp", "ece_id"):  # defined for every micro model
        d = np.array([s.loc["micro-ft", metric] - s.loc["micro", metric],
                      s.loc["micro-ft@1", metric] - s.loc["micro@1", metric]])
        row = spread[(spread.row == "fine-tuning: FT vs zero-shot") & (spread.metric == metric)].iloc[0]
        assert row["n"] == 2 and row["mean"] == pytest.approx(d.mean()) and row["std"] == pytest.approx(d.std(ddof=1))
        assert (row["min"], row["max"]) == pytest.approx((d.min(), d.max()))
        base = spread[(spread.row == "seed spread of the base") & (spread.metric == metric)].iloc[0]
        assert base["std"] == pytest.approx(np.std([s.loc["micro", metric], s.loc["micro@1", metric]], ddof=1))
        one = spread[(spread.row == "training distribution: domain-balanced vs photo-heavy")
                     & (spread.metric == metric)]
        assert one.iloc[0]["n"] == 1 and one.iloc[0]["std"] == 0  # one seed: no spread of its own
        p = np.array([s.loc["micro+ensemble", metric] - s.loc["micro", metric],
                      s.loc["micro@1+ensemble", metric] - s.loc["micro@1", metric],
                      s.loc["micro-balanced+ensemble", metric] - s.loc["micro-balanced", metric]])
        row = spread[(spread.row == "test-time prompts: ensemble vs single") & (spread.metric == metric)].iloc[0]
        assert row["n"] == 3 and row["mean"] == pytest.approx(p.mean())
    n = H.key_numbers(res)
    assert n["n_base_seeds"] == 2 and n["ft_n_seeds"] == 2 and n["ft_ood_auroc_mcm_n"] == 2
    d = np.array([s.loc["micro-ft", "ood_auroc_mcm"] - s.loc["micro", "ood_auroc_mcm"],
                  s.loc["micro-ft@1", "ood_auroc_mcm"] - s.loc["micro@1", "ood_auroc_mcm"]])
    assert n["ft_ood_auroc_mcm_d"] == pytest.approx(d.mean())
    assert n["ft_ood_auroc_mcm_sd"] == pytest.approx(d.std(ddof=1))
    # a metric undefined for one run (a few-step model without shape decisions) counts the runs it has
    finite = [e for e in ("micro-ft", "micro-ft@1") if np.isfinite(s.loc[e, "shape_bias"])]
    assert n["ft_shape_bias_n"] == len(finite)
    b = np.array([s.loc["micro+ensemble", "ece_id"] - s.loc["micro", "ece_id"],
                  s.loc["micro@1+ensemble", "ece_id"] - s.loc["micro@1", "ece_id"]])
    assert n["base_ensemble_ece_id_n"] == 2 and n["base_ensemble_ece_id_d"] == pytest.approx(b.mean())
    assert n["seed_sd_id_accuracy"] == pytest.approx(np.std([s.loc["micro", "id_accuracy"],
                                                             s.loc["micro@1", "id_accuracy"]], ddof=1))
    v = H.verdicts(n)
    assert "on the base model alone" in v["prompts"] and "over 2 seeds" in v["prompts"]
    assert "over 2 seeds, each paired with its base" in v["fine_tuning_ood"]


def test_tiny_study_effective_robustness_against_the_baseline_family(tiny_run):
    """The lines come from the supervised photo-only baseline models alone; every zoo row's effective
    robustness is its accuracy minus that line (NaN exactly where the line is undefined)."""
    from clipstudy.studies.zoo import load_baseline

    study, _, res, _ = tiny_run
    family = load_baseline(study.get_zoo().baseline)
    assert list(res.baseline_models.entry) == [family.model_name(k) for k in family.steps]
    assert list(res.baseline_models.steps) == list(family.steps) and res.baseline_models.id_accuracy.between(0, 1).all()
    assert not set(res.baseline_models.entry) & set(res.models.entry)  # baseline models are not zoo entries
    pd.testing.assert_frame_equal(res.factor_lines, R.baseline_lines(res.baseline_factors, overall="overall"))
    pd.testing.assert_frame_equal(res.shift_lines, R.baseline_lines(res.baseline_shift, overall="id_accuracy",
                                                                    by=("set",)))
    lines = res.factor_lines.set_index(["factor", "value"])
    for r in res.factors.itertuples():
        line = lines.loc[(r.factor, r.value)]
        if np.isnan(line.slope):
            assert np.isnan(r.effective_robustness)
        else:
            pred = 1 / (1 + np.exp(-(line.slope * _logit(np.clip(r.overall, 1e-6, 1 - 1e-6)) + line.intercept)))
            assert r.effective_robustness == pytest.approx(r.accuracy - pred, abs=1e-9)
    assert (res.er_note == "") == bool(res.factor_lines.slope.notna().all() and res.shift_lines.slope.notna().all())


def test_rerun_reads_cells_and_retrains_nothing(tiny_run, monkeypatch):
    import clipstudy.pretrain as P
    import clipstudy.train as T
    from clipstudy.studies import holistic as H

    study, store, res, _ = tiny_run
    monkeypatch.setattr(P, "pretrain", lambda *a, **k: pytest.fail("a zoo model was pretrained again"))
    monkeypatch.setattr(T, "lr_at", lambda *a, **k: pytest.fail("a zoo model was fine-tuned again"))
    monkeypatch.setattr(H, "evaluate_member", lambda *a, **k: pytest.fail("a stored cell was recomputed"))
    monkeypatch.setattr(H, "evaluate_baseline", lambda *a, **k: pytest.fail("a stored baseline cell was recomputed"))
    again = H.run_holistic_study(study, store=store, progress=False)
    pd.testing.assert_frame_equal(again.summary, res.summary)
    pd.testing.assert_frame_equal(again.factor_lines, res.factor_lines)


def test_one_feature_pass_per_dataset(tiny_run, monkeypatch):
    import clipstudy.features as F
    from clipstudy.studies import holistic as H
    from clipstudy.studies.zoo import load_member

    study, _, _, _ = tiny_run
    data = H.load_study_data(study)
    member = load_member(study.get_zoo(), "micro", progress=False)
    calls = []
    real = F.extract_features
    monkeypatch.setattr(F, "extract_features", lambda loaded, ds, **kw: calls.append(ds.cache_key) or real(loaded, ds, **kw))
    out = H.evaluate_member(study, data, member, progress=False, cache=False)
    n_sets = sum(len(data.items(r)) for r in ("id", "val", "shift", "ood", "cue_conflict", "corruptions", "retrieval"))
    assert len(calls) == len(set(calls)) == n_sets  # two prompt sets, every axis: still one pass per dataset
    assert [v["prompts"] for v in out["variants"]] == ["single", "ensemble"]
    assert not math.isnan(out["variants"][0]["id_accuracy"])


def test_accuracy_ood_verdict_says_when_the_correlation_rests_on_the_reference():
    from clipstudy.studies.holistic import verdicts

    led = verdicts({"acc_auroc_pearson": 0.98, "acc_auroc_n": 6, "acc_auroc_pearson_zoo": -0.09})["accuracy_ood"]
    assert led.startswith("Not supported") and "r = -0.09" in led and "rests on the reference" in led
    both = verdicts({"acc_auroc_pearson": 0.9, "acc_auroc_n": 6, "acc_auroc_pearson_zoo": 0.7})["accuracy_ood"]
    assert both.startswith("Supported") and "r = 0.70" in both
    alone = verdicts({"acc_auroc_pearson": 0.5, "acc_auroc_n": 4})["accuracy_ood"]  # no reference in the zoo
    assert alone.startswith("Supported") and "over 4 zero-shot models." in alone


def test_factor_verdicts_read_each_effect_against_the_seed_spread():
    from clipstudy.studies.holistic import verdicts

    arch = {"cnn_geometric_relative": 0.70, "vit_geometric_relative": 0.65, "cnn_common_relative": 0.8,
            "vit_common_relative": 0.7, "n_base_seeds": 2}
    assert verdicts(arch)["architecture_3d"].startswith("Supported")  # no replicates: the raw gap decides
    within = verdicts({**arch, "seed_sd_geometric_relative": 0.08})["architecture_3d"]
    assert within.startswith("Not supported") and "gap of +5% is no larger than the base model's seed spread" in within
    beyond = verdicts({**arch, "seed_sd_geometric_relative": 0.01})["architecture_3d"]
    assert beyond.startswith("Supported") and "(± 1.0%, 2 seeds)" in beyond
    moved = {"n_axes": 10, "n_base_seeds": 2, "moved_axes_training_set_size": 6,
             "moved_axes_beyond_seed_training_set_size": 4, "moved_axes_training_distribution": 7,
             "moved_axes_beyond_seed_training_distribution": 5}
    v = verdicts(moved)
    assert v["training_set_size"] == ("Not supported: the training-set size moves 6 of 10 axes by at least half the "
                                      "zoo's spread, 4 of 10 by more than the base model's seed spread (2 seeds) (the "
                                      "paper: data curation, of which the amount of data is one lever, helps nearly "
                                      "every axis).")
    assert v["training_distribution"].startswith("Supported: the training distribution moves 7 of 10 axes")


def test_shape_bias_verdict_sets_fine_tuning_against_the_same_seeds_zero_shot_mean():
    from clipstudy.studies.holistic import verdicts

    n = {"base_shape_bias": 0.85, "ft_shape_bias": 0.75, "ft_shape_bias_d": -0.02, "ft_shape_bias_sd": 0.01,
         "ft_shape_bias_n": 2}
    v = verdicts(n)["shape_bias"]
    assert "(shape-biased; 0.77 averaged over its 2 seeds) and fine-tuning moves the same seeds to 0.75" in v
    one = verdicts({"base_shape_bias": 0.85, "ft_shape_bias": 0.75})["shape_bias"]
    assert "(shape-biased) and fine-tuning moves it to 0.75" in one and "changes it by -0.10 at one seed" in one
