"""Captions: varied templates naming the class, some of the factors and the domain.

With probability ``simple_caption_prob`` the caption is the CLIP prompt itself, ``"a {domain
noun} of a {class}."`` ("a photo of a hexagon."), so zero-shot prompts are in-distribution.
Otherwise a template from ``captions.json`` is filled with a paraphrase of the domain and a
random subset of the factors (each with a paraphrase), e.g. "a rough sketch of a small tilted
hexagon on a grassy background." Factors that are "none" (colour in a sketch) are never
mentioned, so captions only state what the image shows. For cue-conflict images the class named
is the shape class and the colour/pattern words describe the (conflicting) texture.
"""
from __future__ import annotations

import json
from pathlib import Path

from .catalog import DOMAIN_NOUNS
from .config import WorldConfig
from .sampling import STREAM_CAPTION, Scene, sample_scene, stream

with open(Path(__file__).with_name("captions.json"), encoding="utf-8") as _fh:
    VOCAB = json.load(_fh)

_ADJECTIVE_ORDER = ("size", "rotation", "color", "pattern")
_P_ADJ = {"size": 0.4, "rotation": 0.3, "color": 0.55, "pattern": 0.45}
_P_EXTRA = {"position": 0.3, "background": 0.4, "occlusion": 0.6}


def article(phrase: str) -> str:
    """'a' or 'an' for ``phrase`` (vowel sound heuristics: 'an hourglass', 'a unicorn')."""
    w = phrase.lower()
    if w.startswith(("hour", "honest", "heir")):
        return "an"
    if w.startswith(("uni", "use", "one", "eu")):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def simple_caption(domain: str, class_name: str) -> str:
    """The CLIP-style prompt: ``"a photo of a hexagon."``."""
    noun = DOMAIN_NOUNS[domain]
    return f"{with_article(noun)} of {with_article(class_name)}."


def _choice(rng, options):
    return options[int(rng.integers(len(options)))]


def _noun_phrase(sc: Scene, rng) -> str:
    words = []
    for factor in _ADJECTIVE_ORDER:
        value = sc.factors[factor]
        if value != "none" and rng.random() < _P_ADJ[factor]:
            words.append(value if factor == "color" else _choice(rng, VOCAB[factor][value]))
    return with_article(" ".join(words + [sc.class_name]))


def _extras(sc: Scene, rng) -> str:
    parts = []
    for factor, p in _P_EXTRA.items():
        value = sc.factors[factor]
        if value in VOCAB[factor] and rng.random() < p:
            parts.append(_choice(rng, VOCAB[factor][value]))
    if not parts:
        return ""
    return " " + parts[0] + "".join(", " + q for q in parts[1:])


def _texture_np(sc: Scene, rng) -> str:
    f = sc.factors
    if f["pattern"] == "none":
        return VOCAB["background_textures"][f["background"]]
    words = [f["color"]] if rng.random() < 0.7 else []
    words.append(_choice(rng, VOCAB["pattern"][f["pattern"]]))
    return with_article(" ".join(words + [_choice(rng, VOCAB["texture_nouns"])]))


def caption_scene(sc: Scene, rng, simple_prob: float) -> str:
    """Caption of a scene, drawn with the caption generator ``rng``."""
    domain = sc.factors["domain"]
    noun = DOMAIN_NOUNS[domain]
    simple = rng.random() < simple_prob
    if not sc.has_object:
        np_ = _texture_np(sc, rng)
        return f"{with_article(noun)} of {np_}." if simple else \
            f"{_choice(rng, VOCAB['domain_phrases'][domain])} {np_}."
    if simple:
        return simple_caption(domain, sc.class_name)
    text = _choice(rng, VOCAB["templates"]).format(
        dp=_choice(rng, VOCAB["domain_phrases"][domain]), np=_noun_phrase(sc, rng),
        extras=_extras(sc, rng), noun=noun, a_noun=with_article(noun),
        domain_style=_choice(rng, VOCAB["domain_style"][domain]))
    return text[0].lower() + text[1:]


def caption(cfg: WorldConfig, index: int) -> str:
    """Caption of image ``index`` of ``cfg`` (deterministic, independent of the pixels' stream)."""
    return caption_scene(sample_scene(cfg, index), stream(cfg, index, STREAM_CAPTION),
                         cfg.simple_caption_prob)
