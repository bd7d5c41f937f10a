"""The pretraining knob ``WorldConfig.caption_names``: captions name rare concepts less often, pixels never move."""
import numpy as np
import pytest

from clipstudy.world import CLASS_NAMES, WorldConfig, WorldDataset, sample_factors
from clipstudy.world.catalog import CLASS_INFO, PATTERNS
from clipstudy.world.captions import VOCAB


def _captions(cfg, n):
    return [sample_factors(cfg, i) for i in range(n)]


def test_default_is_every_concept_named():
    cfg = WorldConfig(seed=1, n=300)
    for row in _captions(cfg, 300):
        assert row["class_name"] in row["caption"]


def test_rare_groups_are_named_at_their_rate_and_others_always():
    cfg = WorldConfig(seed=2, n=3000, caption_names={"near_ood": 0.2, "far_ood": 0.0})
    named = {"id": [], "near_ood": [], "far_ood": []}
    for row in _captions(cfg, 3000):
        named[CLASS_INFO[row["class_name"]]["group"]].append(row["class_name"] in row["caption"])
    assert all(named["id"])
    assert not any(named["far_ood"])
    rate = np.mean(named["near_ood"])
    assert 0.1 < rate < 0.3, rate  # 0.2 within sampling noise (a few hundred near-OOD images)


def test_unnamed_objects_are_called_by_their_hypernym():
    cfg = WorldConfig(seed=3, n=400, caption_names={"far_ood": 0.0})
    rows = [r for r in _captions(cfg, 400) if CLASS_INFO[r["class_name"]]["group"] == "far_ood"]
    assert rows and all(" object" in r["caption"] for r in rows)


def test_pattern_rate_scales_pattern_words():
    words = {w for p in PATTERNS for w in VOCAB["pattern"][p]}

    def share(cfg):
        rows = _captions(cfg, 1500)
        return np.mean([any(w in r["caption"].split() for w in words) for r in rows if r["pattern"] != "none"])

    kind = dict(seed=4, n=1500, kind="texture_only")
    assert share(WorldConfig(**kind)) > 0.9
    assert share(WorldConfig(**kind, caption_names={"pattern": 0.1})) < 0.25


def test_pixels_and_cache_key_do_not_depend_on_caption_names():
    a = WorldConfig(seed=5, n=8)
    b = a.replace(caption_names={"id": 0.1, "pattern": 0.0})
    assert repr(a) == repr(b)  # repr is the image-cache key: captions never change a pixel
    np.testing.assert_array_equal(WorldDataset(a).get_batch(range(8)), WorldDataset(b).get_batch(range(8)))
    assert a != b


def test_domain_rates_name_classes_rarely_in_that_domain_only():
    cfg = WorldConfig(seed=6, n=3000, caption_names={"domain:sketch": 0.1, "domain:infograph": 0.0})
    named = {}
    for row in _captions(cfg, 3000):
        named.setdefault(row["domain"], []).append(row["class_name"] in row["caption"])
    assert not any(named["infograph"])
    assert 0.03 < np.mean(named["sketch"]) < 0.2, np.mean(named["sketch"])
    assert all(all(named[d]) for d in ("photo", "painting", "clipart"))


def test_group_and_domain_rates_multiply():
    cfg = WorldConfig(seed=7, n=4000, domains={"sketch": 1.0}, caption_names={"domain:sketch": 0.5, "id": 0.5})
    rows = [r for r in _captions(cfg, 4000) if CLASS_INFO[r["class_name"]]["group"] == "id"]
    assert 0.18 < np.mean([r["class_name"] in r["caption"] for r in rows]) < 0.32  # 0.25


def test_domain_rates_keep_every_other_caption():
    """A domain rate draws only where it applies: captions of other domains are those without it."""
    a = WorldConfig(seed=8, n=400, caption_names={"near_ood": 0.3})
    b = a.replace(caption_names={"near_ood": 0.3, "domain:infograph": 0.0})
    for ra, rb in zip(_captions(a, 400), _captions(b, 400)):
        if ra["domain"] != "infograph":
            assert ra["caption"] == rb["caption"]


@pytest.mark.parametrize("bad", [{"shapes": 0.5}, {"id": 1.5}, {"pattern": True}, {"domain:satellite": 0.5}])
def test_bad_caption_names_are_refused(bad):
    with pytest.raises(ValueError, match="caption_names"):
        WorldConfig(caption_names=bad)
