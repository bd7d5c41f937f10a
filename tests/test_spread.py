"""Seed-spread comparisons: differences within the spread over seeds are ties (issue: claims that survive a
rerun on another machine)."""
import statistics

import numpy as np
import pytest

from clipstudy.analysis.spread import compare, leaders, mean_std, rank_sentence


def test_mean_std_matches_statistics():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7):
        v = rng.normal(size=n).tolist()
        m, s, k = mean_std(v)
        assert m == pytest.approx(statistics.mean(v)) and s == pytest.approx(statistics.stdev(v)) and k == n
    assert mean_std([0.5]) == (0.5, 0.0, 1)
    assert mean_std([float("nan"), 1.0, 3.0])[:2] == (2.0, pytest.approx(np.sqrt(2)))


def test_compare_counts_only_differences_beyond_the_spread():
    assert compare(0.542, 0.004, 0.539, 0.003) == 0  # 0.3 points apart, spread 0.4: a tie
    assert compare(0.542, 0.001, 0.539, 0.001) == 1
    assert compare(0.50, 0.0, 0.52, 0.0) == -1  # one seed: every difference counts


def test_leaders_and_rank_sentence():
    stats = {"kd": (0.542, 0.004), "lipsum_ft": (0.539, 0.003), "ft": (0.474, 0.005)}
    assert leaders(stats) == ["kd", "lipsum_ft"]
    text = rank_sentence(stats, "lipsum_ft")
    assert text.startswith("ties for first with kd 54.2% ± 0.4%")
    assert rank_sentence(stats, "ft").startswith("is behind 2 of 2 methods")
    assert rank_sentence({"a": (0.6, 0.01), "b": (0.5, 0.01)}, "a").startswith("is first (60.0% ± 1.0%; next: b")


def test_one_seed_texts_claim_no_spread():
    from clipstudy.analysis.spread import ONE_SEED_NOTE, one_seed

    texts = {"a": "Supported: higher beyond the seed spread."}
    assert one_seed(texts, 3) == texts
    once = one_seed(texts, 1)
    assert once["a"] == "Supported: higher. " + ONE_SEED_NOTE and one_seed(once, 1) == once
