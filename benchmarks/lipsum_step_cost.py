"""Per-step cost of Lipsum-FT relative to plain fine-tuning (FT), and the peak memory of both, measured in
the same process on the same batches.

    python benchmarks/lipsum_step_cost.py [--model embedded] [--batch 32] [--steps 20] [--precision bf16]

Both methods are ``finetune`` with the study's embedded settings (frozen BatchNorm statistics, zero-shot
head); Lipsum-FT adds the ``lipsum`` regularizer (80 random texts of 8 tokens per step: one forward of
the frozen θ0 image tower and one of the frozen text tower per step). Steps alternate FT, Lipsum-FT, FT,
... so machine load hits both alike; the medians of the step times are compared (target: at most
1.5x). Also reported: wall and CPU time, and the peak memory of each method's steps (CUDA: allocator
peak; CPU: peak resident-set growth over the resident set before the steps, sampled every millisecond,
with glibc told, after the timed steps, to serve large blocks by mmap so freed activations leave the
resident set). Nothing is
asserted.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time

TARGET = 1.5


class PeakRSS:
    """Peak resident-set size (bytes) of this process while the context is open, sampled every ``dt`` s."""

    def __init__(self, dt: float = 0.001):
        import psutil

        self.proc, self.dt, self.peak = psutil.Process(), dt, 0

    def __enter__(self):
        self.base, self.peak, self._stop = self.proc.memory_info().rss, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.dt)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.base


def build(loaded, classnames, lipsum: bool):
    from clipstudy.methods import build_method

    regs = {"lipsum": {"weight": 1.0, "n_texts": 80, "length": 8}} if lipsum else {}
    return build_method("finetune", loaded, classnames, templates="world" if loaded.name == "embedded" else "photo",
                        freeze_bn_stats=True, regularizers=regs)


def batches(loaded, n_classes: int, batch: int, steps: int):
    import torch

    g = torch.Generator().manual_seed(0)
    size = loaded.image_size
    return [{"images": torch.randn(batch, 3, size, size, generator=g).to(loaded.device),
             "y": torch.randint(0, n_classes, (batch,), generator=g).to(loaded.device), "step": i}
            for i in range(steps)]


def step_fn(method, precision: str, device: str):
    """One optimisation step of the training loop's kind (autocast, AdamW, backward), returning seconds."""
    import contextlib

    import torch

    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-5)
    ctx = (lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16)) if precision == "bf16" else \
        contextlib.nullcontext

    def step(batch) -> tuple[float, float]:
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        method.train()
        with ctx():
            loss = method.loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        return time.perf_counter() - t, time.process_time() - c

    return step


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def measure_memory(step, data, device: str) -> int:
    """Peak memory (bytes) of a few steps: CUDA allocator peak, or CPU resident-set growth."""
    import torch

    release_free_memory()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        for b in data[:3]:
            step(b)
        return torch.cuda.max_memory_allocated() - base
    with PeakRSS() as rss:
        for b in data[:3]:
            step(b)
    return rss.growth


def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def fixed_mmap_threshold(nbytes: int = 1 << 17) -> bool:
    """Make glibc serve large blocks by mmap (fixed threshold, no dynamic raise), so freed activations leave
    the resident set and per-phase peaks are comparable. False where unavailable (non-glibc)."""
    libc = _libc()
    return bool(libc and hasattr(libc, "mallopt") and libc.mallopt(-3, nbytes))  # M_MMAP_THRESHOLD


def release_free_memory() -> None:
    """Garbage-collect and hand free heap pages back to the OS (``malloc_trim``), before a memory phase."""
    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def main(argv=None) -> None:
    import torch

    from clipstudy.models import load_model
    from clipstudy.world import class_groups

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded")
    p.add_argument("--pretrained", default="")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, args.pretrained, device=args.device)
    classnames = tuple(class_groups()["id"])
    methods = {"FT": build(loaded, classnames, False), "Lipsum-FT": build(loaded, classnames, True)}
    steps = {k: step_fn(m, args.precision, args.device) for k, m in methods.items()}
    data = batches(loaded, len(classnames), args.batch, args.warmup + args.steps)
    for b in data[:args.warmup]:
        for s in steps.values():
            s(b)
    times = {k: [] for k in steps}
    for b in data[args.warmup:]:
        for k, s in steps.items():
            times[k].append(s(b))
    fixed_mmap_threshold()  # after timing: mmap-served blocks cost page faults that would slow the steps
    memory = {k: measure_memory(s, data, args.device) for k, s in steps.items()}
    report(args, loaded, times, memory)


def report(args, loaded, times, memory) -> None:
    import torch

    print(f"model {args.model} ({loaded.arch}), device {args.device}, batch {args.batch}, {args.precision}, "
          f"{args.steps} timed steps per method (alternating), torch threads {torch.get_num_threads()}")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    for k, (wall, cpu) in med.items():
        print(f"  {k:10s} median step {wall * 1000:8.1f} ms wall, {cpu * 1000:8.1f} ms CPU; "
              f"peak memory +{memory[k] / 2**20:7.1f} MiB")
    wall_ratio = med["Lipsum-FT"][0] / med["FT"][0]
    cpu_ratio = med["Lipsum-FT"][1] / med["FT"][1]
    mem_ratio = memory["Lipsum-FT"] / max(memory["FT"], 1)
    verdict = "within" if wall_ratio <= TARGET else "OVER"
    print(f"Lipsum-FT / FT step cost: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU ({verdict} the {TARGET}x target); "
          f"peak memory {mem_ratio:.2f}x")


if __name__ == "__main__":
    main()
