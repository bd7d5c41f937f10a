"""The OOD study end to end on a tiny world with a tiny random model: metrics agree with sklearn on the
stored similarities, cells resume without retraining, and bad input fails before anything trains."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipstudy.errors import ConfigError, DataError  # noqa: E402
from clipstudy.registry import UnknownNameError  # noqa: E402
from clipstudy.results import ResultStore  # noqa: E402
from clipstudy.studies import ood  # noqa: E402


def tiny_study(**kw):
    specs = ood.ood_benchmark("world", n_train=240, n_test=60, n_ood=24, shift_domains=("sketch",))
    base = dict(model="clipstudy-micro", pretrained="random", methods=("zeroshot", "coop", "finetune"),
                shots=(1, 2), seeds=(1,), recipe_overrides={"coop": {"max_steps": 2}, "finetune": {"max_steps": 2}})
    base.update(specs)
    base.update(kw)
    return ood.OODStudy(**base)



def test_study_tables_match_sklearn_and_resume(home, monkeypatch):
    from sklearn.metrics import average_precision_score, roc_auc_score

    study = tiny_study()
    store = ResultStore(home / "results")
    res = ood.run_ood_study(study, store, progress=False)
    assert set(res.accuracy.variant) == {"zeroshot", "coop", "finetune", "wise_ft"}
    n_scorers = len(study.scorers)  # clipstudy-micro is a ViT: GL-MCM runs
    per_variant = res.ood.groupby(["variant", "shots"]).size()
    assert (per_variant == n_scorers * 4).all()  # 3 OOD sets + 1 shift set
    assert set(res.ood.loc[res.ood.group == "shift", "set"]) == {"sketch"}
    # recompute MCM's AUROC / AUPR-In on the stored similarities with sklearn (ID = positive class)
    arrays = res.sims("coop", 2, 1)
    from clipstudy.scores import mcm

    s_id, s_ood = mcm(arrays["id/sims"].astype(np.float64)), mcm(arrays["far_ood/sims"].astype(np.float64))
    y = np.r_[np.ones(len(s_id)), np.zeros(len(s_ood))]
    row = res.ood[(res.ood.variant == "coop") & (res.ood.shots == 2) & (res.ood.set == "far_ood")
                  & (res.ood.scorer == "mcm")].iloc[0]
    assert row.auroc == pytest.approx(roc_auc_score(y, np.r_[s_id, s_ood]), abs=2e-3)  # sims stored as fp16
    assert row.aupr_in == pytest.approx(average_precision_score(y, np.r_[s_id, s_ood]), abs=2e-3)
    # energy is on the model's logits: recompute it from the stored cosines with the model's logit scale
    from clipstudy.scores import energy

    e_id, e_ood = (energy(arrays[f"{k}/sims"].astype(np.float64), logit_scale=res.logit_scale)
                   for k in ("id", "far_ood"))
    row_e = res.ood[(res.ood.variant == "coop") & (res.ood.shots == 2) & (res.ood.set == "far_ood")
                    & (res.ood.scorer == "energy")].iloc[0]
    assert row_e.auroc == pytest.approx(roc_auc_score(y, np.r_[e_id, e_ood]), abs=2e-3)
    import matplotlib.pyplot as plt

    from clipstudy.studies import ood_figures as figs

    fig = figs.score_histograms(res, variants=("coop",), scorers=("msp", "energy", "energy_cos"), shots=2, seed=1,
                                logit_scale=res.logit_scale)
    assert len(fig.axes) == 3 and fig.axes[1].get_title() == "CoOp · energy"
    plt.close(fig)
    with pytest.raises(ValueError, match="similarities"):
        figs.score_histograms(res, scorers=("knn",))
    acc = res.accuracy.set_index(["variant", "shots"]).loc[("coop", 2), "id_accuracy"]
    assert acc == pytest.approx((arrays["id/sims"].argmax(1) == arrays["id/labels"]).mean())
    # the temperature sweep's T = 1 entry is MCM itself
    sw = res.sweep[(res.sweep.variant == "coop") & (res.sweep.shots == 2) & (res.sweep.set == "far_ood")]
    assert sw.set_index("T").loc[1.0, "auroc"] == pytest.approx(row.auroc)
    # a second run reads every cell back: no training, same tables
    import clipstudy.studies.ood as mod

    monkeypatch.setattr(mod, "train_method", lambda *a, **k: pytest.fail("a stored cell was retrained"))
    again = ood.run_ood_study(study, store, progress=False)
    assert again.ood.equals(res.ood)
    numbers = ood.key_numbers(again)
    assert numbers["shots"] == 2 and 0 <= numbers["auroc_mcm_coop"] <= 1 and numbers["mcm_rank_coop"] >= 1
    claims = ood.verdicts(again)
    assert "prompt_learning" in claims
    caps = ood.captions(again, claims)  # one seed: every difference counts, and the captions say so
    note = " " + ood.ONE_SEED_NOTE
    assert caps["shots"].startswith("**This run** (1 seed; 2 shots") and caps["shots"].endswith(note)
    assert claims["prompt_learning"].endswith(note) and "beyond the seed spread" not in claims["prompt_learning"]
    assert claims["prompt_learning"].replace(note, "") in caps["shots"] and caps["shots"].count(note) == 1
    assert "MCM at T = 1 lies between" in caps["histograms"]  # read from the stored similarities


def test_score_all_gives_logit_scorers_the_methods_own_scale():
    """energy / entropy / variance / MSP get ``method.scale`` (from the registry's ``needs_scale``), the cosine
    variants and MCM do not; checked against scipy on random similarities for a scale of 10 and of 100."""
    from types import SimpleNamespace

    from scipy.special import logsumexp, softmax
    from scipy.stats import entropy

    from clipstudy.scores import SCORERS, mcm

    names = ("mcm", "msp", "max_logit", "energy", "entropy", "variance", "energy_cos", "entropy_cos",
             "variance_cos")
    study = tiny_study(scorers=names)
    s = np.random.default_rng(0).uniform(-0.1, 0.4, size=(40, 30))
    outputs = SimpleNamespace(sims=s, local=None, features=None)
    got = {a: ood.score_all(study, SimpleNamespace(scale=a), outputs, {}) for a in (10.0, 100.0)}
    for a, sc in got.items():
        assert set(sc) == set(names)
        np.testing.assert_allclose(sc["energy"], logsumexp(a * s, axis=1), rtol=1e-12)
        np.testing.assert_allclose(sc["entropy"], -entropy(softmax(a * s, axis=1), axis=1), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sc["variance"], np.var(softmax(a * s, axis=1), axis=1), rtol=1e-9)
        np.testing.assert_allclose(sc["msp"], mcm(s, T=1 / a), rtol=1e-12)
        np.testing.assert_allclose(sc["energy_cos"], logsumexp(s, axis=1), rtol=1e-12)
        np.testing.assert_allclose(sc["entropy_cos"], -entropy(softmax(s, axis=1), axis=1), rtol=1e-9)
    for name in names:
        same = np.allclose(got[10.0][name], got[100.0][name])
        assert same != SCORERS.meta(name).get("needs_scale", False), name


def test_default_temperature_grid_reaches_0_001():
    assert ood.DEFAULT_TEMPERATURES[0] == 0.001 and ood.DEFAULT_TEMPERATURES[-1] == 10.0
    assert 1.0 in ood.DEFAULT_TEMPERATURES and 0.01 in ood.DEFAULT_TEMPERATURES
    assert {"energy", "energy_cos", "entropy_cos", "variance_cos"} <= set(ood.DEFAULT_SCORERS)


def test_bad_input_fails_before_training(home, tmp_path):
    with pytest.raises(UnknownNameError, match="valid scorers: .*mcm"):
        tiny_study(scorers=("mcm", "odin"))
    with pytest.raises(UnknownNameError, match="valid recipes: .*coop"):
        tiny_study(methods=("zeroshot", "coopp"), recipe_overrides={})
    with pytest.raises(ConfigError, match="logit_scale"):
        tiny_study(scorer_params={"energy": {"logit_scale": 10.0}})
    with pytest.raises(ConfigError, match="shots must be positive integers"):
        tiny_study(shots=(0,))
    with pytest.raises(ConfigError, match="at least one OOD set"):
        tiny_study(ood={})
    empty = tmp_path / "data" / "dtd" / "images"
    empty.mkdir(parents=True)
    study = tiny_study(ood={"textures": {"dataset": "textures"}}, data_root=str(tmp_path / "data"))
    with pytest.raises(DataError, match="expected layout"):
        ood.load_study_data(study, progress=False)
    with pytest.raises(ConfigError, match="fewer than k=16 shots"):
        ood.run_ood_study(tiny_study(shots=(16,)), ResultStore(home / "r"), progress=False)


def test_gl_mcm_skipped_with_a_message_where_the_tower_has_no_local_tokens(home, monkeypatch, capsys):
    import clipstudy.local_features as lf

    monkeypatch.setattr(lf, "local_support", lambda visual: "its image tower is a Foo; GL-MCM local features ...")
    res = ood.run_ood_study(tiny_study(methods=("zeroshot",), shots=(1,), recipe_overrides={}), ResultStore(home / "r2"),
                            progress=False)
    assert "gl_mcm" not in set(res.ood.scorer) and "mcm" in set(res.ood.scorer)
    assert "gl_mcm skipped: its image tower is a Foo" in capsys.readouterr().out


# ------------------------------------------------------------------ verdicts and captions respect the seed spread
def _handmade(auroc, acc=None, sets=("near_ood", "far_ood"), shots=16, sweep=None):
    """OODResults from ``auroc[(variant, scorer)] = [AUROC per seed]`` (the same on every OOD set),
    ``acc[variant] = [ID accuracy per seed]`` and ``sweep[(variant, T)] = [MCM AUROC per seed]``."""
    import pandas as pd

    ood_rows, acc_rows, sweep_rows = [], [], []
    variants = list(dict.fromkeys(v for v, _ in auroc))
    for (v, scorer), per_seed in auroc.items():
        for seed, a in enumerate(per_seed, 1):
            ood_rows += [{"method": v, "variant": v, "alpha": 1.0, "shots": shots, "seed": seed, "set": s,
                          "group": "ood", "scorer": scorer, "auroc": a, "fpr95": 1 - a, "aupr_in": a,
                          "aupr_out": a} for s in sets]
    n = len(next(iter(auroc.values())))
    for v in variants:
        for seed in range(1, n + 1):
            a = (acc or {}).get(v, [0.8] * n)[seed - 1]
            acc_rows.append({"method": v, "variant": v, "alpha": 1.0, "shots": shots, "seed": seed, "id_accuracy": a})
    for (v, t), per_seed in (sweep or {}).items():
        for seed, a in enumerate(per_seed, 1):
            sweep_rows += [{"method": v, "variant": v, "alpha": 1.0, "shots": shots, "seed": seed, "set": s, "T": t,
                            "auroc": a} for s in sets]
    sweep_df = pd.DataFrame(sweep_rows, columns=["method", "variant", "alpha", "shots", "seed", "set", "T", "auroc"])
    return ood.OODResults(pd.DataFrame(ood_rows), pd.DataFrame(acc_rows), sweep_df, [], None, 22.7)


def test_prompt_learning_verdict_counts_differences_within_the_seed_spread_as_ties():
    zs = {("zeroshot", "mcm"): [0.700] * 3, ("zeroshot", "msp"): [0.780] * 3}
    # CoOp 0.705 ± 0.010 vs zero-shot 0.700 ± 0: a tie; the old code said "Supported" (+0.005)
    tie = _handmade({**zs, ("coop", "mcm"): [0.695, 0.705, 0.715], ("coop", "msp"): [0.770, 0.785, 0.800]})
    v = ood.verdicts(tie)
    assert v["prompt_learning"].startswith("Tie (within the seed spread)")
    assert "0.700 ± 0.000 -> 0.705 ± 0.010 (a tie within the seed spread)" in v["prompt_learning"]
    win = _handmade({**zs, ("coop", "mcm"): [0.740, 0.745, 0.750], ("coop", "msp"): [0.800, 0.805, 0.810]})
    assert ood.verdicts(win)["prompt_learning"].startswith("Supported")
    loss = _handmade({**zs, ("coop", "mcm"): [0.640, 0.650, 0.660], ("coop", "msp"): [0.800, 0.805, 0.810]})
    assert ood.verdicts(loss)["prompt_learning"].startswith("Not supported")


def test_score_choice_and_mcm_rank_respect_the_seed_spread():
    # CoOp: knn 0.90 ± 0.06 vs energy 0.84 ± 0.06: a 0.06 gap, but within the spread; the old rule (>= 0.05) said
    # "Supported"
    res = _handmade({("zeroshot", "mcm"): [0.70] * 3, ("zeroshot", "knn"): [0.72] * 3,
                     ("coop", "mcm"): [0.80, 0.86, 0.92], ("coop", "knn"): [0.84, 0.90, 0.96],
                     ("coop", "energy"): [0.78, 0.84, 0.90], ("coop", "msp"): [0.81, 0.87, 0.93]})
    v = ood.verdicts(res)
    assert v["score_choice"].startswith("Tie (within the seed spread)"), v["score_choice"]
    assert "0.900 ± 0.060" in v["score_choice"] and "0.840 ± 0.060" in v["score_choice"]
    # MCM is 4th of 4 on the means for CoOp but within the spread of all: its rank is 1–4
    assert "coop 1–4" in v["mcm_promising"]
    assert ood.key_numbers(res)["mcm_rank_coop"] == 1
    sharp = _handmade({("coop", "mcm"): [0.80, 0.801, 0.802], ("coop", "knn"): [0.90, 0.901, 0.902],
                       ("coop", "energy"): [0.84, 0.841, 0.842], ("coop", "msp"): [0.86, 0.861, 0.862]})
    v = ood.verdicts(sharp)
    assert v["score_choice"].startswith("Supported") and v["mcm_promising"].startswith("Not supported")
    assert "coop 4" in v["mcm_promising"]


def test_accuracy_auroc_and_temperature_verdicts_use_per_seed_values():
    import numpy as np

    rng = np.random.default_rng(0)
    methods = ("zeroshot", "coop", "finetune", "linear_probe")
    # accuracy and AUROC unrelated across methods: r per seed scatters around 0 -> a tie
    auroc = {(m, "mcm"): list(rng.uniform(0.6, 0.8, 3)) for m in methods}
    acc = {m: list(rng.uniform(0.7, 0.9, 3)) for m in methods}
    sweep = {("zeroshot", 0.01): [0.80] * 3, ("zeroshot", 1.0): [0.70] * 3,
             ("coop", 0.01): [0.80, 0.81, 0.82], ("coop", 1.0): [0.79, 0.82, 0.85]}
    res = _handmade(auroc, acc, sweep=sweep)
    c = ood.accuracy_auroc_correlation(res)
    v = ood.verdicts(res)
    expected = "Tie (within the seed spread)" if abs(c["mean"]) <= c["std"] else ("Supported" if c["mean"] > 0 else
                                                                                  "Not supported")
    assert v["accuracy_auroc"].startswith(expected) and f"{c['mean']:.2f} ± {c['std']:.2f}" in v["accuracy_auroc"]
    # CoOp's best T (1.0, mean 0.82) moved from zero-shot's (0.01, mean 0.81) but within the seed spread: a tie
    assert v["temperature"].startswith("Tie (within the seed spread)") and "coop T* = 1" in v["temperature"]
    # accuracy rises with AUROC in every seed: supported
    good = _handmade({(m, "mcm"): [0.6 + 0.05 * i + 0.001 * s for s in range(3)] for i, m in enumerate(methods)},
                     {m: [0.7 + 0.05 * i - 0.002 * s for s in range(3)] for i, m in enumerate(methods)})
    assert ood.verdicts(good)["accuracy_auroc"].startswith("Supported")


def test_captions_quote_this_runs_numbers_and_explain_only_failed_claims():
    zs = {("zeroshot", "mcm"): [0.700] * 3, ("zeroshot", "msp"): [0.780] * 3}
    res = _handmade({**zs, ("coop", "mcm"): [0.695, 0.705, 0.715], ("coop", "msp"): [0.770, 0.785, 0.800],
                     ("coop", "knn"): [0.90, 0.91, 0.92], ("coop", "energy"): [0.95, 0.96, 0.97],
                     ("coop", "max_logit"): [0.93, 0.94, 0.95], ("zeroshot", "knn"): [0.90] * 3,
                     ("zeroshot", "energy"): [0.92] * 3, ("zeroshot", "max_logit"): [0.91] * 3},
                    {"zeroshot": [0.84] * 3, "coop": [0.83, 0.84, 0.85]},
                    sweep={("zeroshot", 0.01): [0.80] * 3, ("coop", 0.01): [0.81] * 3})
    claims = ood.verdicts(res)
    caps = ood.captions(res, claims)
    assert set(caps) >= {"scores", "shots", "temperature", "accuracy", "histograms"}
    assert "**This run** (3 seeds; 16 shots" in caps["shots"]
    assert claims["prompt_learning"] in caps["shots"] and "0.705 ± 0.010" in caps["shots"]
    assert "A possible reason" not in caps["shots"]  # a tie, not a failure
    assert claims["mcm_promising"].startswith("Not supported")  # MCM behind energy, max-logit, KNN beyond the spread
    assert claims["mcm_promising"] in caps["scores"] and "logit scale is 22.7" in caps["scores"]
    assert "MSP 0.785 ± 0.015 vs MCM 0.705 ± 0.010 (MSP higher beyond the seed spread)" in caps["histograms"]
    assert "Highest ID accuracy at 16 shots: " in caps["accuracy"] and "84.0% ± 1.0%" in caps["accuracy"]
    assert "coop: T* = 0.01 (AUROC 0.810)" in caps["temperature"]
    lost = _handmade({**zs, ("coop", "mcm"): [0.64, 0.65, 0.66], ("coop", "msp"): [0.70, 0.71, 0.72]},
                     {"zeroshot": [0.84] * 3, "coop": [0.83, 0.84, 0.85]})
    caps = ood.captions(lost, ood.verdicts(lost))
    assert ("A possible reason: few-shot training barely moves this model: CoOp's ID accuracy is 84.0% ± 1.0%"
            in caps["shots"])


# ------------------------------------------------------------------ the world-suite benchmark (issue 16, item 3)
def test_world_suite_is_the_default_benchmark_and_keeps_ood_sets_off_the_suite():
    """ID = world-shapes (train split for the shots, test split for evaluation); OOD sets named and built as
    the ``world`` benchmark's, from the ``world`` dataset's own streams; shift = world-sketch and
    world-infograph (same classes, same order). The ``world`` benchmark stays registered."""
    from clipstudy.data.world_suite import SUITES

    assert {"world-suite", "world", "imagenet"} <= set(ood.BENCHMARKS) and ood.DEFAULT_BENCHMARK == "world-suite"
    study = ood.make_study(n_train=300, n_test=90, n_ood=45)
    assert study.train == {"dataset": "world-shapes", "split": "train", "n": 300, "seed": 0}
    assert study.id_test == {"dataset": "world-shapes", "split": "test", "n": 90, "seed": 0}
    assert set(study.shift) == {"world-sketch", "world-infograph"}
    assert all(s["split"] == "test" and s["n"] == 45 for s in study.shift.values())
    old = ood.ood_benchmark("world", n_ood=45)
    assert dict(study.ood) == old["ood"]  # the same OOD sets as before: names, specs, images
    assert not {s["dataset"] for s in study.ood.values()} & set(SUITES["world-suite"])
    sketch = ood.make_study(id_dataset="sketch", shift_domains=["world-shapes"], n_ood=45)
    assert sketch.train["dataset"] == "world-sketch" and set(sketch.shift) == {"world-shapes"}
    assert sketch.ood["near_ood"]["domain"] == "sketch"  # OOD sets in the ID set's domain
    for bad in ("world-siblings", "world-icons", "world-textures", "world-scenes"):
        with pytest.raises(ConfigError, match="valid: world-shapes, world-sketch, world-infograph"):
            ood.make_study(id_dataset=bad)
    with pytest.raises(ConfigError, match="include the ID set 'world-shapes'"):
        ood.make_study(shift_domains=["sketch", "shapes"])
    with pytest.raises(ConfigError, match="covariate-shift set 'painting'"):
        ood.make_study(shift_domains=["painting"])


def test_world_suite_study_data_has_the_id_template_and_disjoint_ood_classes(home):
    study = ood.make_study(n_train=60, n_test=30, n_ood=30, model="clipstudy-micro", pretrained="random",
                           methods=["zeroshot"], shots=[1], seeds=[1])
    data = ood.load_study_data(study, progress=False)
    assert data.id_test.name == "world-shapes" and data.pool.split == "train" and data.id_test.split == "test"
    assert data.template == data.id_test.template == "a photo of a {}."
    assert set(data.shift) == {"world-sketch", "world-infograph"}
    assert all(ds.classnames == data.classnames for ds in data.shift.values())
    for name, ds in data.ood.items():
        shown = {row["class_name"] for row in ds.factor_table()}
        assert not shown & set(data.classnames), name  # no OOD image shows an ID class
    assert {row["class_name"] for row in data.ood["texture"].factor_table()} == {"texture"}  # no object at all
    # a subset of the ID set (max_images) still carries its prompt (read through the wrapper)
    sub = ood.make_study(n_train=60, n_test=30, n_ood=30, methods=["zeroshot"])
    sub = ood.OODStudy(**{**{k: getattr(sub, k) for k in ("train", "ood", "shift", "methods")},
                          "id_test": {**sub.id_test, "max_images": 10}, "model": "clipstudy-micro",
                          "pretrained": "random"})
    assert sub.id_template(ood.dataset_from_spec(sub.id_test)) == "a photo of a {}."


def test_the_id_prompt_goes_into_every_single_prompt_recipe():
    """Zero-shot head, the heads initialised from it, CoOp/CoCoOp's initial context: the ID set's prompt;
    prompt ensembles and random contexts unchanged; the ``world`` benchmark's recipes (no dataset prompt)
    unchanged, so its stored cells keep their specs."""
    methods = ["zeroshot", "zeroshot_ensemble", "linear_probe", "coop", "cocoop", "clip_adapter", "finetune"]
    suite = ood.make_study(methods=methods)
    assert suite.id_template() == "a photo of a {}."
    kw = {m: suite.trained_recipe(m).kwargs for m in methods}
    assert {kw[m]["templates"] for m in ("zeroshot", "linear_probe", "clip_adapter", "finetune")} == {
        "a photo of a {}."}
    assert kw["zeroshot_ensemble"]["templates"] == "world"
    assert kw["coop"]["ctx_init"] == kw["cocoop"]["ctx_init"] == "a photo of a"
    sketch = ood.make_study(id_dataset="world-sketch", shift_domains=["shapes"], methods=methods)
    assert sketch.trained_recipe("zeroshot").kwargs["templates"] == "a sketch of a {}."
    assert sketch.trained_recipe("coop").kwargs["ctx_init"] == "a sketch of a"
    world = ood.make_study("world", methods=methods)
    assert world.id_template() is None
    assert all(world.trained_recipe(m) == world.recipe(m) for m in methods)
    assert ood.make_study(methods=methods, template="recipe").trained_recipe("zeroshot").kwargs["templates"] == "mcm"
    # a prompt with words after the class name cannot start CoOp's "{context} {name}." prompt: context kept
    texture = ood.with_id_prompt(suite.recipe("coop"), "a photo of a {} texture.")
    assert texture.kwargs["ctx_init"] == "a photo of a"
    assert ood.with_id_prompt(suite.recipe("zeroshot"), "a photo of a {} texture.").kwargs["templates"] == (
        "a photo of a {} texture.")
    paper = ood.make_study(methods=["coop"], scale="paper")
    assert paper.trained_recipe("coop").kwargs["ctx_init"] == ""  # random context: nothing to initialise
    assert ood.with_id_prompt(ood.make_study(methods=["zeroshot"]).recipe("zeroshot").replace(
        params={"templates": "dataset"}), None).kwargs["templates"] == "a photo of a {}."
    with pytest.raises(ConfigError, match="template must be a prompt with one"):
        ood.make_study(template="a photo")


def test_world_suite_cells_train_and_score_with_the_id_prompt(home):
    """A tiny run on the suite benchmark: every set scored, the cells' recipes carry the ID prompt, and the
    zero-shot similarities are those of the ID prompt's head."""
    from clipstudy.methods import build_method

    study = ood.make_study(n_train=60, n_test=30, n_ood=30, model="clipstudy-micro", pretrained="random",
                           methods=["zeroshot", "coop"], shots=[1], seeds=[1], scorers=["mcm", "msp"],
                           max_steps=1)
    res = ood.run(study, ResultStore(home / "suite"), progress=False)
    assert set(res.ood.set) == {"near_ood", "far_ood", "texture", "world-sketch", "world-infograph"}
    assert set(res.ood.loc[res.ood.group == "shift", "set"]) == {"world-sketch", "world-infograph"}
    specs = {c["variant"]: c["spec"] for c in res.cells}
    assert specs["zeroshot"]["recipe"]["params"]["templates"] == "a photo of a {}."
    assert specs["coop"]["recipe"]["params"]["ctx_init"] == "a photo of a"
    assert specs["zeroshot"]["eval_sets"]["id_test"].startswith("world-suite-v1:world-shapes:test")
    data = ood.load_study_data(study, progress=False)
    stored = res.sims("zeroshot", 1, 1)["id/sims"].astype(np.float32)

    def sims(template):
        method = build_method("zeroshot", data.loaded, data.classnames, templates=template)
        return ood.method_outputs(method, data.loaded, data.id_test, name="id", progress=False).sims

    np.testing.assert_allclose(stored, sims("a photo of a {}."), atol=2e-3)  # the ID prompt's head
    assert np.abs(stored - sims("mcm")).max() > 1e-2  # not MCM's prompt


def test_the_scores_caption_names_every_covariate_shift_set():
    import pandas as pd

    res = _handmade({("zeroshot", "mcm"): [0.70] * 3, ("zeroshot", "msp"): [0.78] * 3})
    shift = res.ood.drop_duplicates(["variant", "scorer", "seed"]).assign(group="shift")
    both = pd.concat([res.ood, shift.assign(set="world-sketch", auroc=0.60),
                      shift.assign(set="world-infograph", auroc=0.70)], ignore_index=True)
    two = ood.OODResults(both, res.accuracy, res.sweep, [], None, 22.7)
    caption = ood.captions(two, ood.verdicts(two))["scores"]
    assert "On the covariate-shift sets (world-sketch, world-infograph; AUROC averaged over them)" in caption
    assert "zeroshot: mcm 0.650 ± 0.000" in caption  # (0.60 + 0.70) / 2: the mean over both sets
    one = ood.OODResults(pd.concat([res.ood, shift.assign(set="world-sketch")], ignore_index=True), res.accuracy,
                         res.sweep, [], None, 22.7)
    assert "On the covariate-shift set world-sketch (" in ood.captions(one, ood.verdicts(one))["scores"]
