"""Three-layer ensembles: one batched program versus a Python loop over networks.

``B`` partially-trained three-layer networks (chapter 3, :mod:`mfteach.three_layer`) trained by
:func:`mfteach.three_layer.train` as ONE ensemble (parameters with a leading batch axis, batched
matmuls) against ``B`` single-network ensembles trained one after the other; same data, same
steps, same arithmetic. Each step computes the features' neurons ``Phi z^T`` (2 N m1 m2 per
network), the gradient ``cDr^T Phi`` (2 N m1 m2) and the tangent kernel on the training set
with its eigenvalues (O(N^2 m2 + N^3)), so at chapter sizes a step is two matmuls of
``N x m1`` by ``m1 x m2``. On CUDA the achieved throughput of a step is compared with a large
float64 ``torch.mm`` measured in the same run.

Run ``python benchmarks/bench_three_layer.py [--quick]`` or ``make bench``.
"""

from __future__ import annotations

import sys

import torch
from _timing import best_time, mm_reference, print_result

from mfteach import three_layer as tl
from mfteach.device import disable_tf32


def step_flops(B: int, N: int, m1: int, m2: int) -> float:
    """Matmul FLOPs of one training step of B networks (neurons and the z-gradient)."""
    return 4.0 * B * N * m1 * m2


def compare(device: str, *, B: int, m1: int, m2: int, N: int, d: int, steps: int,
            dtype: torch.dtype = torch.float64, repeats: int = 2) -> dict:
    """Time batched versus looped training of ``B`` networks; return times and ratios."""
    X, y = tl.sphere_data(N, d, n_sets=B, generator=0, device=device, dtype=dtype)
    net = tl.init_three_layer(d, m1, m2, n_networks=B, generator=1, device=device,
                              dtype=dtype)

    def batched():
        tl.train(net, X, y, dt=0.5, steps=steps, record_every=steps)

    def looped():
        for b in range(B):
            one = net.replace(theta=net.theta[b:b + 1], z=net.z[b:b + 1], c=net.c[b:b + 1])
            tl.train(one, X[b:b + 1], y[b:b + 1], dt=0.5, steps=steps, record_every=steps)

    t_batched = best_time(batched, device, repeats)
    t_loop = best_time(looped, device, max(1, repeats - 1))
    flops = step_flops(B, N, m1, m2) * steps
    return {
        "config": f"B={B} m1={m1} m2={m2} N={N} d={d} steps={steps} {dtype}",
        "batched_s": t_batched,
        "loop_s": t_loop,
        "speedup_batched_vs_loop": t_loop / t_batched,
        "batched_ms_per_step": 1e3 * t_batched / steps,
        "batched_gflops": flops / t_batched / 1e9,
    }


def run(quick: bool = False) -> dict:
    """Batched versus looped three-layer training on the CPU, and on CUDA when available."""
    out: dict = {"cpu_threads": torch.get_num_threads()}
    chapter = ({"B": 5, "m1": 300, "m2": 60, "N": 10, "d": 10, "steps": 20} if quick else
               {"B": 5, "m1": 1000, "m2": 200, "N": 10, "d": 10, "steps": 100})
    out["cpu_chapter"] = compare("cpu", **chapter)
    small = ({"B": 32, "m1": 64, "m2": 32, "N": 10, "d": 10, "steps": 20} if quick else
             {"B": 64, "m1": 128, "m2": 64, "N": 10, "d": 10, "steps": 100})
    out["cpu_small_networks"] = compare("cpu", **small)
    if torch.cuda.is_available():
        disable_tf32()
        peak = mm_reference("cuda", 4096 if quick else 8192, torch.float64, repeats=5)
        out["cuda_device"] = torch.cuda.get_device_name(0)
        out["cuda_mm_reference_fp64_tflops"] = peak / 1e12
        big = ({"B": 16, "m1": 4000, "m2": 400, "N": 40, "d": 10, "steps": 10} if quick else
               {"B": 32, "m1": 16000, "m2": 1000, "N": 100, "d": 10, "steps": 20})
        for name, cfg in {"cuda_chapter": chapter, "cuda_large": big}.items():
            res = compare("cuda", **cfg)
            res["fraction_of_fp64_mm"] = res["batched_gflops"] * 1e9 / peak
            out[name] = res
    return out


if __name__ == "__main__":
    print_result(run(quick="--quick" in sys.argv[1:]))
