"""Two-timescale MFLD (chapter 5): the two routes of the ridge solve, and batched runs.

1. The exact second layer needs ``(Sigma + n lambda_a I)^{-1} Y`` at every step. It is
   solved from a Cholesky factor of the ``n x n`` Gram ``H_p H_p^T + beta I`` ("samples") or,
   through Woodbury, of the ``N x N`` Gram ``H_p^T H_p + beta I`` ("particles");
   :func:`mfteach.two_timescale.ridge` picks the smaller (``method="auto"``). Both regimes
   are timed, ``N << n`` and ``n << N``, with the ratio samples / particles side by side
   (above 1: Woodbury wins).
2. ``B`` independent particle systems trained by :func:`mfteach.two_timescale.train` as ONE
   batched program against ``B`` single-run calls one after the other (same data, steps and
   arithmetic).

On CUDA the achieved float64 throughput of a batched training step is compared with a large
float64 ``torch.mm`` measured in the same run (the step is a handful of matmuls and a Cholesky
factorisation of the smaller Gram).

Run ``python benchmarks/bench_two_timescale.py [--quick]`` or ``make bench``.
"""

from __future__ import annotations

import sys

import torch
from _timing import best_time, mm_reference, print_result

from mfteach import two_timescale as tt
from mfteach.device import disable_tf32


def step_flops(B: int, n: int, N: int, d: int) -> float:
    """Approximate FLOPs of one Langevin step of B runs: the smaller Gram (2 m^2 M), its
    Cholesky factor and inverse for the degrees of freedom (about 4/3 m^3), the features and
    the drift (about 2 n N (d + 3))."""
    m, M = min(n, N), max(n, N)
    return float(B) * (2.0 * m * m * M + 4.0 / 3.0 * m**3 + 2.0 * n * N * (d + 3))


def ridge_routes(device: str, *, B: int, n: int, N: int, d: int = 10,
                 dtype: torch.dtype = torch.float64, repeats: int = 3) -> dict:
    """Time the ``n x n`` and the ``N x N`` (Woodbury) route of the same ridge solve."""
    data = tt.make_data(n, d, n_sets=B, generator=0, device=device, dtype=dtype)
    W = tt.init_particles(d, N, n_runs=B, generator=1, device=device, dtype=dtype)
    times = {}
    for method in ("samples", "particles", "auto"):
        times[method] = best_time(lambda m=method: tt.ridge(data.X, data.y, W,
                                                            lambda_a_bar=1e-3, method=m),
                                  device, repeats)
    r1 = tt.ridge(data.X, data.y, W, lambda_a_bar=1e-3, method="samples")
    r2 = tt.ridge(data.X, data.y, W, lambda_a_bar=1e-3, method="particles")
    return {
        "config": f"B={B} n={n} N={N} d={d} {dtype}",
        "samples_nxn_s": times["samples"],
        "particles_NxN_woodbury_s": times["particles"],
        "auto_s": times["auto"],
        "ratio_samples_over_particles": times["samples"] / times["particles"],
        "max_rel_diff_U": float(((r1.U - r2.U).abs() / r1.U.abs()).max()),
    }


def batched_vs_loop(device: str, *, B: int, n: int, N: int, d: int, steps: int,
                    dtype: torch.dtype = torch.float64, repeats: int = 2) -> dict:
    """Time one batched training of ``B`` runs against ``B`` single-run trainings."""
    data = tt.make_data(n, d, n_sets=B, generator=0, device=device, dtype=dtype)
    W = tt.init_particles(d, N, n_runs=B, generator=1, device=device, dtype=dtype)
    kw = dict(lam=0.01, eta=1.0, steps=steps, record_every=steps)

    def batched():
        tt.train(data.X, data.y, W, generator=2, **kw)

    def looped():
        for b in range(B):
            tt.train(data.X[b:b + 1], data.y[b:b + 1], W[b:b + 1], generator=2, **kw)

    t_batched = best_time(batched, device, repeats)
    t_loop = best_time(looped, device, max(1, repeats - 1))
    flops = step_flops(B, n, N, d) * steps
    return {
        "config": f"B={B} n={n} N={N} d={d} steps={steps} {dtype}",
        "batched_s": t_batched,
        "loop_s": t_loop,
        "speedup_batched_vs_loop": t_loop / t_batched,
        "batched_ms_per_step": 1e3 * t_batched / steps,
        "batched_gflops": flops / t_batched / 1e9,
    }


def run(quick: bool = False) -> dict:
    """Ridge routes in both regimes and batched versus looped training, CPU and CUDA."""
    out: dict = {"cpu_threads": torch.get_num_threads()}
    big, small = (1000, 50) if quick else (2000, 100)
    B = 4
    out["cpu_ridge_N_much_less_than_n"] = ridge_routes("cpu", B=B, n=big, N=small)
    out["cpu_ridge_n_much_less_than_N"] = ridge_routes("cpu", B=B, n=small, N=big)
    chapter = ({"B": 5, "n": 100, "N": 100, "d": 5, "steps": 20} if quick else
               {"B": 5, "n": 100, "N": 100, "d": 5, "steps": 200})
    out["cpu_chapter"] = batched_vs_loop("cpu", **chapter)
    many = ({"B": 32, "n": 40, "N": 32, "d": 3, "steps": 20} if quick else
            {"B": 64, "n": 40, "N": 32, "d": 3, "steps": 100})
    out["cpu_many_small_runs"] = batched_vs_loop("cpu", **many)
    if torch.cuda.is_available():
        disable_tf32()
        peak = mm_reference("cuda", 4096 if quick else 8192, torch.float64, repeats=5)
        out["cuda_device"] = torch.cuda.get_device_name(0)
        out["cuda_mm_reference_fp64_tflops"] = peak / 1e12
        out["cuda_ridge_N_much_less_than_n"] = ridge_routes("cuda", B=B, n=4 * big, N=small)
        out["cuda_ridge_n_much_less_than_N"] = ridge_routes("cuda", B=B, n=small, N=4 * big)
        large = ({"B": 8, "n": 500, "N": 2000, "d": 15, "steps": 10} if quick else
                 {"B": 5, "n": 1000, "N": 2000, "d": 15, "steps": 50})
        for name, cfg in {"cuda_chapter": chapter, "cuda_paper_size": large}.items():
            res = batched_vs_loop("cuda", **cfg)
            res["fraction_of_fp64_mm"] = res["batched_gflops"] * 1e9 / peak
            out[name] = res
    return out


if __name__ == "__main__":
    print_result(run(quick="--quick" in sys.argv[1:]))
