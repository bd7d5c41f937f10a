"""Retraining a zoo: its pretraining runs, several side by side in their own processes, and the wall time the
runs took together (training spans recorded in each card)."""
import dataclasses
import random

import pytest

torch = pytest.importorskip("torch")

import clipstudy.pretrain as P  # noqa: E402
from clipstudy.errors import ConfigError  # noqa: E402
from clipstudy.io import read_json  # noqa: E402
from clipstudy.studies import zoo as Z  # noqa: E402


def test_the_runs_a_zoo_pretrains():
    smoke = Z.load_zoo("smoke")
    assert Z.pretraining_runs(smoke) == [("zoo-smoke", 0), ("zoo-smoke", 1), ("zoo-smoke-balanced", 0)]
    shipped = Z.load_zoo("shipped")
    assert Z.pretraining_runs(shipped) == []  # every preset model is loaded from the package
    runs = Z.pretraining_runs(shipped, retrain=True)
    assert ("embedded", 1) in runs and ("zoo-vit", 0) in runs and ("embedded", 0) not in runs  # base: external
    assert len(runs) == len(set(runs)) == 6


def test_two_runs_side_by_side_train_every_run_once_and_resume(home):
    smoke = Z.load_zoo("smoke")
    trained = Z.pretrain_zoo(smoke, jobs=2, progress=False, poll_seconds=0.2)
    assert trained == Z.pretraining_runs(smoke)
    for preset, seed in trained:
        assert Z.is_trained(preset, seed)
        card = read_json(Z.preset_run_dir(preset, seed) / "card.json")
        assert card["torch_threads"] == 1 and card["seed"] == seed  # the cores shared among the jobs
        assert len(card["trained_during"]) == 1
        assert Z.preset_run_dir(preset, seed).with_suffix(".log").exists()
    assert Z.pretrain_zoo(smoke, jobs=2, progress=False) == []  # a rerun trains nothing


def test_side_by_side_runs_start_longest_first_by_their_shipped_minutes(home, monkeypatch):
    smoke = Z.load_zoo("smoke")
    runs, real = Z.pretraining_runs(smoke), Z.expected_minutes
    assert real(smoke, runs) == {run: 0.0 for run in runs}  # nothing shipped: the zoo's order
    minutes = dict(zip(runs, (5.0, 30.0, 12.0)))
    monkeypatch.setattr(Z, "expected_minutes", lambda zoo, todo: {run: minutes[run] for run in todo})
    trained = Z.pretrain_zoo(smoke, jobs=2, progress=False, poll_seconds=0.2)
    assert trained == [runs[1], runs[2], runs[0]]
    shipped = Z.load_zoo("shipped")
    import clipstudy.models as M
    from clipstudy.models import is_shipped, shipped_card

    expected = real(shipped, Z.pretraining_runs(shipped, retrain=True))
    for m in shipped.models:
        run = (m.preset, m.run_seed(shipped.seed))
        if run in expected and m.shipped and is_shipped(m.shipped):
            card = shipped_card(m.shipped)
            scale = 1.0 if card.get("torch_threads") == 1 else P.one_thread_ratio(
                [shipped_card(n) for n in M.shipped_models() if is_shipped(n)])[0]
            assert expected[run] == pytest.approx(card["train_minutes"] * scale) and expected[run] > 0


def test_one_thread_ratio_compares_runs_of_one_preset():
    cards = [{"preset": "a", "train_minutes": 10.0, "torch_threads": 1},
             {"preset": "b", "train_minutes": 30.0, "torch_threads": 1},
             {"preset": "b", "train_minutes": 50.0, "torch_threads": 1},
             {"preset": "b", "train_minutes": 20.0},  # not recorded: torch's default threads
             {"preset": "b", "train_minutes": 20.0, "torch_threads": 2}]
    ratio, source = P.one_thread_ratio(cards)
    assert ratio == pytest.approx(40.0 / 20.0) and "`b`'s one-thread runs to its runs with more threads" in source
    assert P.one_thread_ratio(cards[:1]) == (None, "")


def test_a_failing_side_by_side_run_says_which_and_shows_its_log(home):
    smoke = Z.load_zoo("smoke")
    blocked = Z.preset_run_dir("zoo-smoke", 1)
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")  # the run cannot write its folder
    with pytest.raises(RuntimeError, match=r"zoo 'smoke': pretraining zoo-smoke at seed 1 failed \(exit code 1; "
                                           r"log: .*zoo-smoke-seed1\.log\); rerunning resumes it\. End of its log:"):
        Z.pretrain_zoo(smoke, jobs=2, progress=False, poll_seconds=0.2)
    assert Z.is_trained("zoo-smoke", 0) and Z.is_trained("zoo-smoke-balanced", 0)  # the other runs finished


def test_pretrain_zoo_rejects_a_bad_number_of_jobs():
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="jobs must be a positive whole number of runs trained side by side"):
            Z.pretrain_zoo(Z.load_zoo("smoke"), jobs=bad)


def test_training_spans_from_a_resumed_runs_rows():
    # one session of 3 rows 100 s apart, then a resume 1 h later: 2 more rows
    rows = [{"step": 1, "seconds": 100.0, "time": 1100.0}, {"step": 2, "seconds": 200.0, "time": 1200.0},
            {"step": 3, "seconds": 300.0, "time": 1300.0}, {"step": 4, "seconds": 400.0, "time": 5000.0},
            {"step": 5, "seconds": 500.0, "time": 5100.0}]
    assert P.training_spans(rows) == [[1000.0, 1300.0], [4900.0, 5100.0]]
    assert P.training_spans([{"step": 1, "seconds": 5.0}]) == []  # rows written before rows had a wall time


def _brute_force_union_minutes(spans, step=0.5):
    covered = set()
    for a, b in spans:
        covered.update(range(int(a / step), int(b / step)))
    return len(covered) * step / 60


def test_wall_minutes_is_the_union_of_the_runs_spans_plus_runs_without_spans():
    rng = random.Random(0)
    for _ in range(50):
        cards = []
        for _ in range(rng.randint(1, 4)):
            spans = []
            for _ in range(rng.randint(1, 3)):
                a = rng.randint(0, 2000) * 0.5
                spans.append([a, a + rng.randint(1, 800) * 0.5])
            cards.append({"trained_during": spans, "train_minutes": 999.0})
        alone = {"train_minutes": 12.5}  # an older card: no spans, counted as if trained alone
        union = _brute_force_union_minutes([s for c in cards for s in c["trained_during"]])
        assert P.wall_minutes(cards + [alone]) == pytest.approx(union + 12.5)


def _brute_force_pool_minutes(minutes, jobs, tick=0.5):
    """Tick a clock: at every tick, runs still waiting start, in order, on slots that are free."""
    waiting, left, t = list(minutes), [0.0] * jobs, 0.0
    while waiting or any(left):
        for i in range(jobs):
            if left[i] <= 0 and waiting:
                left[i] = waiting.pop(0)
        if not any(left):
            break
        left = [max(0.0, x - tick) for x in left]
        t += tick
    return t


def test_pool_minutes_is_the_makespan_of_runs_started_in_order_as_slots_free():
    rng = random.Random(1)
    for _ in range(50):
        minutes = [rng.randint(1, 120) * 0.5 for _ in range(rng.randint(1, 7))]
        jobs = rng.randint(1, 3)
        assert P.pool_minutes(minutes, jobs) == pytest.approx(_brute_force_pool_minutes(minutes, jobs))
    assert P.pool_minutes([50, 70, 52, 50, 50, 50], 2) == pytest.approx(170)  # slots: 50+52+50 and 70+50+50
    assert P.pool_minutes([], 2) == 0
    with pytest.raises(ConfigError, match="jobs must be an integer >= 1"):
        P.pool_minutes([1.0], 0)
    with pytest.raises(ConfigError, match="run minutes must be finite numbers >= 0"):
        P.pool_minutes([float("nan")], 2)


def test_a_study_trains_its_zoo_side_by_side_before_evaluating(home, monkeypatch):
    from clipstudy.studies import holistic as H

    calls = []
    monkeypatch.setattr(Z, "pretrain_zoo", lambda zoo, **kw: calls.append((zoo.name, kw)) or [])
    study = H.make_study("world", zoo="smoke", pretrain_jobs=2, n_train=8, n_test=8, n_val=8, n_shift=4, n_ood=4,
                         n_cue=4, n_corrupt=2, severities=[1], corruptions=["contrast"], n_retrieval=4)
    with pytest.raises(AttributeError):  # data=object() stops the run after its pretraining step
        study.run(store=object(), progress=False, data=object())
    assert calls == [("smoke", {"retrain": False, "jobs": 2, "progress": False})]
    with pytest.raises(ConfigError, match="pretrain_jobs must be a positive whole number"):
        dataclasses.replace(study, pretrain_jobs=0)


def test_the_side_by_side_benchmark_runs(capsys, monkeypatch):
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))  # spawned workers import it too
    bench = importlib.import_module("pretrain_parallel")
    assert bench.main(["--preset", "zoo-smoke", "--jobs", "2", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "zoo-smoke: one run" in out and "2 runs side by side" in out and "x the baseline" in out
