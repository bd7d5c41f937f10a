"""Few-shot subsets drawn as CoOp/Dassl's ``generate_fewshot_dataset`` draws them."""
import random

import numpy as np
import pytest

from clipstudy.data.fewshot import few_shot_indices


def _targets():
    return np.random.default_rng(0).integers(0, 4, size=200)


def test_k_per_class_deterministic_and_seed_dependent():
    targets = _targets()
    idx = few_shot_indices(targets, 5, seed=1)
    assert idx.dtype == np.int64 and len(idx) == 20 and len(set(idx.tolist())) == 20
    assert targets[idx].tolist() == sorted(targets[idx].tolist())  # class by class, in label order
    assert np.bincount(targets[idx]).tolist() == [5, 5, 5, 5]
    assert np.array_equal(idx, few_shot_indices(list(targets), 5, seed=1))
    assert not np.array_equal(idx, few_shot_indices(targets, 5, seed=2))


def test_matches_dassl_reference_loop():
    # Dassl: tracker = items grouped by label in dataset order; per label random.sample(items, k)
    targets = _targets()
    rng, expected = random.Random(3), []
    for label in sorted(set(targets.tolist())):
        expected.extend(rng.sample([i for i, t in enumerate(targets) if t == label], 4))
    assert few_shot_indices(targets, 4, seed=3).tolist() == expected


def test_too_many_shots_names_the_class():
    targets = np.array([0] * 10 + [1] * 3 + [2] * 10)
    with pytest.raises(ValueError, match=r"class 1 \('dog'\) has only 3 samples, fewer than k=4"):
        few_shot_indices(targets, 4, seed=0, classnames=["cat", "dog", "eel"])
    with pytest.raises(ValueError, match="positive integer"):
        few_shot_indices(targets, 0, seed=0)
