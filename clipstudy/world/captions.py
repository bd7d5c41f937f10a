"""Captions: varied templates naming the class, some of the factors and the domain.

With probability ``simple_caption_prob`` the caption is the CLIP prompt itself, ``"a {domain
noun} of a {class}."`` ("a photo of a hexagon."), so zero-shot prompts are in-distribution.
Otherwise a template from ``captions.json`` is filled with a paraphrase of the domain and a
random subset of the factors (each with a paraphrase), e.g. "a rough sketch of a small tilted
hexagon on a grassy background." Factors that are "none" (colour in a sketch) are never
mentioned, so captions only state what the image shows. For cue-conflict images the class named
is the shape class and the colour/pattern words describe the (conflicting) texture.

``WorldConfig.caption_names`` (a pretraining knob; empty by default, which leaves every caption as it was)
makes captions name some concepts less often, as web captions name rare concepts rarely: for a class group
("id", "near_ood", "far_ood") it is the probability that a caption names an object's class (otherwise the
class is called a "shape" or, for the far-OOD object icons, an "object"); for a domain ("domain:sketch") it is
the probability that a caption of an object image in that domain names its class (both rates multiply: web
captions of a rare imaging modality, such as satellite views, seldom name what they show in the words of a
classification prompt, while the same words are common under photos); for "pattern" and "background" it
scales the probability that the pattern or background is mentioned (texture-only captions then say "a
texture"). Those are the concepts whose names a downstream prompt needs and a pretraining stream can leave
under-described, which is what gives prompt learning its headroom on CoOp's datasets (docs/world_suite.md).
"""
from __future__ import annotations

import json
from pathlib import Path

from .catalog import CLASS_INFO, DOMAIN_NOUNS
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


#: What an object is called in a caption that does not name its class (``caption_names``).
HYPERNYMS = {"id": "shape", "near_ood": "shape", "far_ood": "object"}


def class_word(sc: Scene, rng, names: dict) -> str:
    """The class name, or with probability ``1 - names[group] * names["domain:<domain>"]`` its hypernym
    (one draw where either rate is set, none without a rate, so configs without one keep their captions)."""
    group = CLASS_INFO[sc.class_name]["group"]
    domain_key = f"domain:{sc.factors['domain']}"
    if group in names or domain_key in names:
        if rng.random() >= names.get(group, 1.0) * names.get(domain_key, 1.0):
            return HYPERNYMS[group]
    return sc.class_name


def _noun_phrase(sc: Scene, rng, names: dict, noun: str) -> str:
    words = []
    for factor in _ADJECTIVE_ORDER:
        value = sc.factors[factor]
        if value != "none" and rng.random() < _P_ADJ[factor] * names.get(factor, 1.0):
            words.append(value if factor == "color" else _choice(rng, VOCAB[factor][value]))
    return with_article(" ".join(words + [noun]))


def _extras(sc: Scene, rng, names: dict) -> str:
    parts = []
    for factor, p in _P_EXTRA.items():
        value = sc.factors[factor]
        if value in VOCAB[factor] and rng.random() < p * names.get(factor, 1.0):
            parts.append(_choice(rng, VOCAB[factor][value]))
    if not parts:
        return ""
    return " " + parts[0] + "".join(", " + q for q in parts[1:])


def _texture_np(sc: Scene, rng, names: dict) -> str:
    f = sc.factors
    if f["pattern"] == "none":
        if "background" in names and rng.random() >= names["background"]:
            return "a texture"
        return VOCAB["background_textures"][f["background"]]
    words = [f["color"]] if rng.random() < 0.7 else []
    if "pattern" not in names or rng.random() < names["pattern"]:
        words.append(_choice(rng, VOCAB["pattern"][f["pattern"]]))
    return with_article(" ".join(words + [_choice(rng, VOCAB["texture_nouns"])]))


def caption_scene(sc: Scene, rng, simple_prob: float, names=()) -> str:
    """Caption of a scene, drawn with the caption generator ``rng``; ``names`` is a config's
    ``caption_names`` (see the module docstring; empty: every concept is named at the usual rates)."""
    names = dict(names)
    domain = sc.factors["domain"]
    noun = DOMAIN_NOUNS[domain]
    simple = rng.random() < simple_prob
    if not sc.has_object:
        np_ = _texture_np(sc, rng, names)
        return f"{with_article(noun)} of {np_}." if simple else \
            f"{_choice(rng, VOCAB['domain_phrases'][domain])} {np_}."
    word = class_word(sc, rng, names)
    if simple:
        return f"{with_article(noun)} of {with_article(word)}."
    text = _choice(rng, VOCAB["templates"]).format(
        dp=_choice(rng, VOCAB["domain_phrases"][domain]), np=_noun_phrase(sc, rng, names, word),
        extras=_extras(sc, rng, names), noun=noun, a_noun=with_article(noun),
        domain_style=_choice(rng, VOCAB["domain_style"][domain]))
    return text[0].lower() + text[1:]


def caption(cfg: WorldConfig, index: int) -> str:
    """Caption of image ``index`` of ``cfg`` (deterministic, independent of the pixels' stream)."""
    return caption_scene(sample_scene(cfg, index), stream(cfg, index, STREAM_CAPTION),
                         cfg.simple_caption_prob, cfg.caption_names)
