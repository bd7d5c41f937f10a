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


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


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
    assert "prompt_learning" in ood.verdicts(numbers)


def test_bad_input_fails_before_training(home, tmp_path):
    with pytest.raises(UnknownNameError, match="valid scorers: .*mcm"):
        tiny_study(scorers=("mcm", "odin"))
    with pytest.raises(UnknownNameError, match="valid recipes: .*coop"):
        tiny_study(methods=("zeroshot", "coopp"), recipe_overrides={})
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
