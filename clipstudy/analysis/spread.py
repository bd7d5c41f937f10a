"""Comparisons that respect the spread over seeds: every verdict that ranks or compares methods uses these.

A difference between two methods counts only when it exceeds the seed spread, the larger of the two
standard deviations over seeds (ddof = 1; 0 with one seed, where every difference counts and the verdict
says how many seeds it rests on). Smaller differences are ties and are reported as ties.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, std over seeds with ddof = 1 (0 for one value), n)`` of the finite values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return float("nan"), float("nan"), 0
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, s, len(v)


def compare(a_mean: float, a_std: float, b_mean: float, b_std: float) -> int:
    """+1 if ``a`` is above ``b`` by more than the seed spread (the larger of the two standard deviations),
    -1 if below by more, 0 (a tie) otherwise."""
    margin = max(float(a_std), float(b_std))
    d = float(a_mean) - float(b_mean)
    return 0 if abs(d) <= margin else (1 if d > 0 else -1)


def leaders(stats: Mapping[str, tuple[float, float]]) -> list[str]:
    """The names whose ``(mean, std)`` tie with the best mean within the seed spread, best first."""
    best = max(stats, key=lambda k: stats[k][0])
    tied = [k for k, (m, s) in stats.items() if compare(m, s, *stats[best]) == 0]
    return sorted(tied, key=lambda k: -stats[k][0])


def pm(mean: float, std: float, fmt: str = ".1%") -> str:
    """``"54.2% ± 0.4%"``."""
    return f"{mean:{fmt}} ± {std:{fmt}}"


STATUS = {1: "Supported", 0: "Tie (within the seed spread)", -1: "Not supported"}
"""The verdict word of a comparison's sign."""


def rank_sentence(stats: Mapping[str, tuple[float, float]], name: str, label: Callable[[str], str] = str,
                  fmt: str = ".1%") -> str:
    """How ``name`` ranks among ``stats`` (``{name: (mean, std)}``), ties within the seed spread named as ties."""
    lead = leaders(stats)
    show = lambda k: pm(*stats[k], fmt)  # noqa: E731
    if lead == [name]:
        rest = [k for k in stats if k != name]
        nxt = max(rest, key=lambda k: stats[k][0]) if rest else None
        return f"is first ({show(name)}" + (f"; next: {label(nxt)} {show(nxt)})" if nxt else ")")
    if name in lead:
        others = ", ".join(f"{label(k)} {show(k)}" for k in lead if k != name)
        return f"ties for first with {others} ({label(name)}: {show(name)}; within the seed spread)"
    ahead = [k for k in stats if k != name and compare(*stats[k], *stats[name]) > 0]
    return (f"is behind {len(ahead)} of {len(stats) - 1} methods beyond the seed spread ({show(name)}; best: "
            f"{label(lead[0])} {show(lead[0])})")


ONE_SEED_NOTE = "With one seed there is no seed spread: every difference counts, however small."


def one_seed(texts: Mapping[str, str], n_seeds: int) -> dict:
    """Verdict or caption texts as measured: with one seed, "beyond the seed spread" would claim more than
    was measured, so it is dropped and :data:`ONE_SEED_NOTE` added."""
    if n_seeds != 1:
        return dict(texts)
    return {k: v.replace(" " + ONE_SEED_NOTE, "").replace(" beyond the seed spread", "") + " " + ONE_SEED_NOTE
            for k, v in texts.items()}


def direction(sign: int, up: str = "higher", down: str = "lower") -> str:
    """The words of a comparison's sign: ``"higher beyond the seed spread"``, ``"a tie within the seed spread"``."""
    return {1: f"{up} beyond the seed spread", -1: f"{down} beyond the seed spread",
            0: "a tie within the seed spread"}[sign]


def all_sign(signs) -> int:
    """+1 when every comparison is +1, -1 when any is -1, else 0 (a tie)."""
    signs = list(signs)
    return 1 if signs and all(x > 0 for x in signs) else (-1 if any(x < 0 for x in signs) else 0)


def seeds_phrase(n: int) -> str:
    """``"1 seed"``, ``"3 seeds"``."""
    return f"{n} seed{'s' if n != 1 else ''}"
