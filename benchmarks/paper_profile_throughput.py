"""Throughput of the operations the paper profile spends its time on, and the run times they imply.

    python benchmarks/paper_profile_throughput.py [--model ViT-B-16] [--device auto]

Measured on the given model with random weights (speed does not depend on the weights) and synthetic
images at the model's resolution, in the same process: image-feature extraction (bf16, batch 256),
text encoding, a CoOp step and a CoCoOp step over 1000 ImageNet classes, full fine-tuning steps
(batch 32 and 256). The projection multiplies these rates by the paper protocols' sizes (ImageNet val
50k images, the four MCM OOD sets 40k, 16 shots x 1000 classes, ...), so it estimates compute time
only: reading real JPEGs from disk comes on top. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import time


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(fn, device: str, repeat: int = 3) -> float:
    """Seconds per call of ``fn`` (one warm-up call, then the mean of ``repeat``)."""
    fn()
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / repeat


def measure(model: str, device: str) -> dict:
    import torch

    from clipstudy.experiment import get_recipe
    from clipstudy.features import encode_images
    from clipstudy.methods import build_method
    from clipstudy.models import load_model
    from clipstudy.train import TrainConfig, fit

    loaded = load_model(model, "random", device=device)
    s, dev = loaded.image_size, loaded.device
    names = tuple(f"class number {i}" for i in range(1000))
    images = torch.randn(256, 3, s, s, device=dev)
    out = {"device": dev, "image_size": s}
    with torch.no_grad():
        out["extract_img_per_s"] = 256 / rate(lambda: encode_images(loaded.model.visual, images), dev)
        tok = loaded.tokenize([f"a photo of a {n}." for n in names[:512]])
        out["text_prompts_per_s"] = 512 / rate(lambda: loaded.model.encode_text(tok), dev)
    z = torch.nn.functional.normalize(torch.randn(32, loaded.model.text_projection.shape[-1], device=dev), dim=-1)
    y = torch.randint(0, 1000, (32,), device=dev)
    for name, bs in (("coop", 32), ("cocoop", 1)):
        r = get_recipe(name, "paper")
        m = build_method(name, loaded, names, **r.kwargs)
        cfg = TrainConfig(steps=3, lr=r.lr, optimizer="sgd", precision="bf16", log_every=10)
        out[f"{name}_step_s"] = rate(lambda: fit(m, lambda step: {"x": z[:bs], "y": y[:bs]}, cfg, progress=False),
                                     dev, repeat=1) / 3
    ft = build_method("finetune", loaded, names)
    for bs in (32, 256):
        batch = {"images": images[:bs], "y": torch.randint(0, 1000, (bs,), device=dev)}
        cfg = TrainConfig(steps=3, lr=1e-5, precision="bf16", log_every=10)
        out[f"ft_step_s_b{bs}"] = rate(lambda: fit(ft, lambda step: batch, cfg, progress=False), dev, repeat=1) / 3
    return out


BASE_CLASSES = {"imagenet": 500, "caltech101": 50, "oxford_pets": 19, "stanford_cars": 98, "oxford_flowers": 51,
                "food101": 51, "fgvc_aircraft": 50, "sun397": 199, "ucf101": 51, "dtd": 24, "eurosat": 5}
"""Base classes (first ceil(n/2) labels) of CoOp's 11 datasets: a prompt step's cost grows with them."""


def projections(m: dict) -> list[tuple[str, float]]:
    """Estimated compute hours of each notebook's paper profile (protocol sizes from docs/protocols.md). A prompt
    step over n classes is taken as ``coop_step_s * n / 1000`` (the text tower runs once per class)."""
    ext = m["extract_img_per_s"]
    eval_images = 50_000 + 40_000 + 50_000  # ImageNet val, four MCM OOD sets, ImageNet-Sketch
    seeds = 3
    nb01 = (eval_images / ext * (1 + 2 * seeds)  # frozen features once; FT and WiSE-FT re-encode per seed
            + seeds * (50 * 500 * m["coop_step_s"]  # CoOp: 50 epochs on ImageNet (COOP.md), 16k images / 32
                       + 10 * 16_000 * m["cocoop_step_s"]  # CoCoOp: 10 epochs at batch 1
                       + 10 * 500 * m["ft_step_s_b32"]))  # full FT: 10 epochs at batch 32
    per_method = sum(200 * (16 * n / 32) * m["coop_step_s"] * n / 1000 for n in BASE_CLASSES.values())
    nb02 = seeds * 10 * per_method + 11 * 20_000 / ext  # ~10 prompt methods (with / without DOR), 200 epochs
    nb03 = seeds * 7 * 5_000 * m["ft_step_s_b256"] * 1.3 + 7 * seeds * 5 * 40_000 / ext  # DomainNet, 5000 steps
    return [("01 OOD (ImageNet + MCM sets, 7 methods x 3 seeds, 16 shots)", nb01 / 3600),
            ("02 calibration (11 CoOp datasets, base-to-new, ~10 prompt methods x 3 seeds)", nb02 / 3600),
            ("03 Lipsum-FT (DomainNet, 7 methods x 3 seeds, 5000 steps at batch 256)", nb03 / 3600)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-16")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    m = measure(args.model, args.device)
    print(f"{args.model} on {m['device']} ({m['image_size']} px, bf16 autocast, random weights)")
    print(f"  image features       {m['extract_img_per_s']:10.0f} img/s (batch 256)")
    print(f"  text features        {m['text_prompts_per_s']:10.0f} prompts/s (batch 512)")
    print(f"  CoOp step            {1000 * m['coop_step_s']:10.1f} ms (1000 classes, 16 ctx, batch 32, cached features)")
    print(f"  CoCoOp step          {1000 * m['cocoop_step_s']:10.1f} ms (1000 classes, batch 1)")
    print(f"  full FT step         {1000 * m['ft_step_s_b32']:10.1f} ms (batch 32), "
          f"{1000 * m['ft_step_s_b256']:.1f} ms (batch 256)")
    print("estimated compute time of the paper profile (JPEG decoding not included):")
    for label, hours in projections(m):
        print(f"  {label}: {hours:.1f} h")


if __name__ == "__main__":
    main()
