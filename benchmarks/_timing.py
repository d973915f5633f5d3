"""Timing helpers shared by the benchmarks: synchronise CUDA around every measurement."""

from __future__ import annotations

import time

import torch


def sync(device) -> None:
    """Wait for queued CUDA work on ``device`` (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn, device, repeats: int) -> float:
    """Best wall-clock time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def mm_reference(device, size: int, dtype: torch.dtype = torch.float32,
                 repeats: int = 3) -> float:
    """Achieved FLOP/s of a ``size x size`` ``torch.mm`` in ``dtype`` (the throughput
    yardstick the benchmarks compare a training step with)."""
    g = torch.Generator(device=device).manual_seed(0)
    A = torch.randn(size, size, generator=g, device=device, dtype=dtype)
    Bm = torch.randn(size, size, generator=g, device=device, dtype=dtype)
    t = best_time(lambda: torch.mm(A, Bm), device, repeats)
    return 2.0 * size**3 / t


def print_result(result: dict) -> None:
    """Print a benchmark's ``run()`` result, one level of nesting, floats to 4 digits."""
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
        else:
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
