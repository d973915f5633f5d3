"""Batched ensemble training versus a Python loop over networks.

``B`` two-layer networks trained as ONE :class:`mfteach.models.TwoLayer` (parameters with a
leading batch axis, one batched matmul per layer) against ``B`` separate single-network models
trained one after the other; same data, same number of gradient steps, same total arithmetic.
On the CPU at ``d = 16`` a step is memory-bound (elementwise passes over ``B n N`` hidden
activations), so batching saves little beyond per-step Python overhead; it pays most for many
small networks (``cpu_small_networks``) and on CUDA, where each per-network step would be a
handful of tiny kernel launches. On CUDA the achieved matmul throughput of a training step is
compared with a large ``torch.mm`` measured in the same run (TF32 off, float32).

FLOPs per full-batch step (matmuls only; elementwise work is a few ``B n N`` more):
forward ``X W^T`` (2BnNd) and ``phi a`` (2BnN), backward ``dW = dH^T X`` (2BnNd) and
``da = phi^T r`` (2BnN), i.e. ``4 B n N (d + 1)``.

Run ``python benchmarks/bench_ensemble.py [--quick]`` or ``make bench``.
"""

from __future__ import annotations

import sys

import torch
from _timing import best_time, mm_reference, print_result

from mfteach.device import disable_tf32
from mfteach.models import TwoLayer, teacher_data
from mfteach.training import train


def step_flops(B: int, n: int, N: int, d: int) -> float:
    """Matmul FLOPs of one full-batch gradient step of B networks (forward + backward)."""
    return 4.0 * B * n * N * (d + 1)




def compare(device: str, *, B: int, width: int, d: int, n: int, steps: int,
            repeats: int = 2) -> dict:
    """Time batched versus looped training of ``B`` networks; return times and ratios."""
    X, y = teacher_data(n, d, generator=0, device=device, dtype=torch.float32)
    init = TwoLayer(d, width, activation="relu", parametrization="mf", n_networks=B,
                    generator=1, device=device, dtype=torch.float32)
    W0, a0 = init.W.detach().clone(), init.a.detach().clone()
    lr = 0.1

    def batched():
        model = TwoLayer.from_params(W0, a0, activation="relu", parametrization="mf")
        train(model, X, y, lr=lr, steps=steps, record_every=steps)

    def looped():
        for b in range(B):
            model = TwoLayer.from_params(W0[b], a0[b], activation="relu", parametrization="mf")
            train(model, X, y, lr=lr, steps=steps, record_every=steps)

    t_batched = best_time(batched, device, repeats)
    t_loop = best_time(looped, device, max(1, repeats - 1))
    flops = step_flops(B, n, width, d) * steps
    return {
        "config": f"B={B} width={width} d={d} n={n} steps={steps} float32",
        "batched_s": t_batched,
        "loop_s": t_loop,
        "speedup_batched_vs_loop": t_loop / t_batched,
        "batched_ms_per_step": 1e3 * t_batched / steps,
        "batched_gflops": flops / t_batched / 1e9,
        "loop_gflops": flops / t_loop / 1e9,
    }


def run(quick: bool = False) -> dict:
    """Batched versus looped ensemble training on the CPU, and on CUDA when available."""
    out: dict = {"cpu_threads": torch.get_num_threads()}
    small = {"B": 16, "width": 128, "d": 16, "n": 128, "steps": 20} if quick else {
        "B": 64, "width": 256, "d": 16, "n": 256, "steps": 100}
    cpu = compare("cpu", **small)
    cpu["mm_reference_gflops"] = mm_reference("cpu", 512 if quick else 1024) / 1e9
    cpu["fraction_of_mm_throughput"] = cpu["batched_gflops"] / cpu["mm_reference_gflops"]
    out["cpu"] = cpu
    # many small networks (the book's ensembles): per-step Python/launch overhead dominates
    tiny = {"B": 64, "width": 32, "d": 4, "n": 32, "steps": 20} if quick else {
        "B": 256, "width": 32, "d": 4, "n": 64, "steps": 100}
    out["cpu_small_networks"] = compare("cpu", **tiny)
    if torch.cuda.is_available():
        disable_tf32()  # fp32 arithmetic, as in the tests
        peak = mm_reference("cuda", 4096 if quick else 8192, repeats=5)
        out["cuda_mm_reference_tflops"] = peak / 1e12
        out["cuda_device"] = torch.cuda.get_device_name(0)
        configs = {"cuda_small": small}
        configs["cuda_large"] = ({"B": 64, "width": 1024, "d": 64, "n": 512, "steps": 20}
                                 if quick else
                                 {"B": 256, "width": 2048, "d": 128, "n": 2048, "steps": 50})
        for name, cfg in configs.items():
            res = compare("cuda", **cfg)
            res["fraction_of_mm_throughput"] = res["batched_gflops"] * 1e9 / peak
            out[name] = res
    return out


if __name__ == "__main__":
    print_result(run(quick="--quick" in sys.argv[1:]))
