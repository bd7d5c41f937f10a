"""Write the ImageNet reference lists that clipstudy's real-data loaders read, as JSON data files in
``clipstudy/data/resources/`` (run once by a developer; the package never imports open_clip or timm
just for names):

* ``imagenet_classnames.json`` — the 1000 readable class names CLIP uses
  (``open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES``, from OpenAI's
  ``Prompt_Engineering_for_ImageNet.ipynb``; the same list as CoOp's ``classnames.txt``);
* ``imagenet_wnids.json`` — the 1000 WordNet ids in the standard class-index order (the order of
  Keras' ``imagenet_class_index.json`` and of torchvision's ``ImageFolder`` on ``train/``);
* ``imagenet_r_classes.json`` / ``imagenet_a_classes.json`` — the 200 wnids of ImageNet-R
  (Hendrycks et al. 2021, "The Many Faces of Robustness") and ImageNet-A (Hendrycks et al. 2021,
  "Natural Adversarial Examples") and their indices into the 1000 classes.

The wnid lists are read from the data files that timm (an open_clip dependency) ships in
``timm/data/_info/``; they were checked against the ``all_classes`` / ``imagenet_r_wnids`` /
``imagenet_a_wnids`` lists of Hendrycks' robustness code. The 80 OpenAI templates are already in
``imagenet_templates.json``; this script only checks that they equal open_clip's.

    python tools/dump_imagenet_metadata.py           # write the files
    python tools/dump_imagenet_metadata.py --check   # exit 1 if a written file would change
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "clipstudy" / "data" / "resources"


def timm_list(name: str) -> list[str]:
    import timm.data

    return (Path(timm.data.__file__).parent / "_info" / name).read_text().split()


def subset(kind: str, wnids: list[str], paper: str) -> dict:
    sub = timm_list(f"imagenet_{kind}_synsets.txt")
    index = {w: i for i, w in enumerate(wnids)}
    indices = [index[w] for w in sub]
    assert indices == [int(i) for i in timm_list(f"imagenet_{kind}_indices.txt")], kind
    assert len(set(sub)) == 200 and indices == sorted(indices), kind
    return {"source": f"{paper}; wnids of the 200 classes in standard ImageNet order, and their indices into "
                      "the 1000 ImageNet classes (timm data/_info/imagenet_" + kind + "_synsets.txt, "
                      "cross-checked against Hendrycks' robustness code)",
            "wnids": sub, "indices": indices}


def build() -> dict[str, dict]:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    wnids = timm_list("imagenet_synsets.txt")
    assert len(wnids) == len(set(wnids)) == 1000 and wnids == sorted(wnids)
    templates = [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    shipped = json.loads((RESOURCES / "imagenet_templates.json").read_text())["templates"]
    assert templates == shipped, "imagenet_templates.json differs from open_clip's OPENAI_IMAGENET_TEMPLATES"
    return {
        "imagenet_classnames.json": {
            "source": "CLIP's ImageNet class names (OpenAI CLIP notebooks/Prompt_Engineering_for_ImageNet.ipynb; "
                      "open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES; CoOp's classnames.txt), standard index order",
            "classnames": list(IMAGENET_CLASSNAMES)},
        "imagenet_wnids.json": {
            "source": "ImageNet-1k (ILSVRC2012) WordNet ids in standard class-index order (sorted wnids, as in Keras' "
                      "imagenet_class_index.json and torchvision ImageFolder on train/)",
            "wnids": wnids},
        "imagenet_r_classes.json": subset("r", wnids, "ImageNet-R (Hendrycks et al. 2021, "
                                               "The Many Faces of Robustness)"),
        "imagenet_a_classes.json": subset("a", wnids, "ImageNet-A (Hendrycks et al. 2021, "
                                               "Natural Adversarial Examples)"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = p.parse_args(argv)
    stale = []
    for name, obj in build().items():
        text = json.dumps(obj, indent=1) + "\n"
        path = RESOURCES / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
