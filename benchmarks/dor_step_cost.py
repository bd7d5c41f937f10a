"""Per-step cost of DOR relative to plain CoOp, measured in the same process on the same batches.

    python benchmarks/dor_step_cost.py [--model embedded] [--pretrained ""] [--steps 60] [--threads 1]
                                       [--method coop] [--precision fp32] [--vocabulary world+wordnet]

Both runs train the same prompt learner (``--method``: coop, kgcoop, cocoop, deep_text_prompt) on cached-
feature batches of the study's size (batch 32 random unit features, one label per base class of the world:
15 classes); the DOR run attaches the ``dor`` regularizer (15 outlier names per step from the near pool,
prompted with the learned context, pulled toward their frozen zero-shot features, which are computed once
and cached before timing). Steps alternate plain, DOR, plain, ... so machine load hits both alike, and
the medians of the step times are compared (target: at most 2x). Wall and CPU time are both printed
(CPU time is the better number on a shared machine). Nothing is asserted.

DOR doubles the prompts through the text tower (n_cls class prompts + n_cls outlier prompts per step) and
WordNet names are longer than the world's class names (2.5 vs 1.6 BPE tokens on average), so about 2x
is the floor; with ``--precision bf16`` on a CPU the ratio is higher, because bf16 matmuls of these
small shapes slow down sharply once a batch's prompts exceed 11 tokens (measured: 16 ms at 10 tokens,
31 ms at 12 for 15 prompts, fp32 15-17 ms).
"""
from __future__ import annotations

import argparse
import statistics
import time

TARGET = 2.0


def build(loaded, method: str, classnames, dor: bool, vocabulary: str):
    from clipstudy.methods import build_method

    params = {"coop": {"n_ctx": 4, "ctx_init": "a photo of a"}, "deep_text_prompt": {"prompt_depth": 3}}.get(method, {})
    regs = {"dor": {"weight": 1.8, "vocabulary": vocabulary, "seed": 0}} if dor else {}
    return build_method(method, loaded, classnames, regularizers=regs, **params)


def stepper(method, precision: str):
    """One step of the training loop's kind (autocast, SGD, backward); returns (wall, cpu) seconds."""
    import torch

    from clipstudy.train import _autocast

    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.01, momentum=0.9)

    def step(batch):
        w, c = time.perf_counter(), time.process_time()
        with _autocast(precision):
            loss = method.loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - w, time.process_time() - c

    return step


def main(argv=None) -> None:
    import torch
    import torch.nn.functional as F

    from clipstudy.models import load_model
    from clipstudy.world import class_groups

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--pretrained", default="")
    ap.add_argument("--method", default="coop")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 keeps torch's default)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--vocabulary", default="world+wordnet")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, args.pretrained)
    base = class_groups()["base"]
    t0 = time.perf_counter()
    methods = {"plain": build(loaded, args.method, base, False, args.vocabulary),
               "dor": build(loaded, args.method, base, True, args.vocabulary)}
    print(f"build (outlier pool ranked and its frozen features cached on first use): {time.perf_counter() - t0:.1f} s")
    d = int(loaded.model.text_projection.shape[1]) if hasattr(loaded.model.text_projection, "shape") else 512
    g = torch.Generator().manual_seed(0)
    batches = [{"x": F.normalize(torch.randn(args.batch, d, generator=g), dim=-1),
                "y": torch.randint(0, len(base), (args.batch,), generator=g), "step": i} for i in range(args.steps)]
    steps = {k: stepper(m, args.precision) for k, m in methods.items()}
    for k in steps:  # warm-up (allocations, tokenizer caches)
        for b in batches[:3]:
            steps[k](b)
    times = {k: [] for k in steps}
    for b in batches:
        for k in ("plain", "dor"):
            times[k].append(steps[k](b))
    print(f"model {loaded.name}, method {args.method}, {len(base)} classes, batch {args.batch}, {args.steps} steps "
          f"each (alternating), precision {args.precision}, torch threads {torch.get_num_threads()}")
    med = {}
    for k, ts in times.items():
        med[k] = (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
        print(f"  {k:5s}: median step {1000 * med[k][0]:7.2f} ms wall, {1000 * med[k][1]:7.2f} ms CPU")
    wall, cpu = med["dor"][0] / med["plain"][0], med["dor"][1] / med["plain"][1]
    print(f"DOR / {args.method} step cost: {wall:.2f}x wall, {cpu:.2f}x CPU (target <= {TARGET:g}x)")


if __name__ == "__main__":
    main()
