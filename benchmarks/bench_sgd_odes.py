"""Speed of the batched one-pass SGD simulator (chapter 04) and of the erf ODE right-hand side.

Measures trajectory-steps per second (runs x SGD steps / wall time) at d = 1000, p = 4, k = 2
for the block (Gram-matrix) method and the naive per-step method, batched and for a single
trajectory, on the CPU and on CUDA when present; and the cost of one vectorised erf ODE
right-hand side at p = 10, k = 2 through the public ``ode_rhs`` (input checks included;
``bench_erf_rhs.py`` times the kernels themselves against the former per-block code).

The issue's reference points on an H100: a naive batched step 4.2M trajectory-steps/s, a
single trajectory 3.8k steps/s.
"""

from __future__ import annotations

import json
import time

import torch

from mfteach.sgd_odes import init_weights, ode_rhs, overlaps, simulate_sgd


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def sgd_rate(method: str, n_runs: int, steps: int, *, d: int = 1000, p: int = 4, k: int = 2,
             device: str = "cpu", dtype=torch.float32, repeats: int = 2) -> float:
    """Best-of-``repeats`` trajectory-steps per second."""
    W, Ws = init_weights(p, k, d, n_runs=n_runs, generator=0, device=device, dtype=dtype)
    gamma = 1.0
    t_max = steps * gamma / (p * d)
    kw = dict(activation="erf_sqrt2", gamma=gamma, times=[0.0, t_max], generator=1, method=method)
    simulate_sgd(W, Ws, **{**kw, "times": [0.0, min(t_max, 64 * gamma / (p * d))]})  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        simulate_sgd(W, Ws, **kw)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return n_runs * steps / best


def rhs_seconds(p: int = 10, k: int = 2, n: int = 5) -> float:
    W, Ws = init_weights(p, k, 100, generator=0)
    o = overlaps(W, Ws)
    ode_rhs(o.Q, o.M, o.P, activation="erf_sqrt2", gamma=0.5, delta=0.01)
    t0 = time.perf_counter()
    for _ in range(n):
        ode_rhs(o.Q, o.M, o.P, activation="erf_sqrt2", gamma=0.5, delta=0.01)
    return (time.perf_counter() - t0) / n


def run(quick: bool = False) -> dict:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out: dict = {"setting": "d=1000, p=4, k=2, erf, float32; CPU single-threaded"}
    threads = torch.get_num_threads()
    for dev in devices:
        # On a small shared CPU, multi-threaded GEMMs stall at their barriers when another
        # process holds a core; one thread gives stable, comparable numbers.
        torch.set_num_threads(1 if dev == "cpu" else threads)
        big = 4096 if dev == "cuda" else 64
        steps_b = (256 if quick else 1024) if dev == "cuda" else (128 if quick else 512)
        steps_1 = 512 if quick else 4096
        res = {}
        for method in ("block", "naive"):
            res[f"batched_{big}_{method}"] = sgd_rate(method, big, steps_b, device=dev)
            res[f"single_{method}"] = sgd_rate(method, 1, steps_1, device=dev)
        res["ratio_batched_block_over_naive"] = (res[f"batched_{big}_block"]
                                                 / res[f"batched_{big}_naive"])
        res["ratio_single_block_over_naive"] = res["single_block"] / res["single_naive"]
        if dev == "cuda":
            res["ratio_batched_block_over_issue_4.2M"] = res[f"batched_{big}_block"] / 4.2e6
            res["ratio_single_block_over_issue_3.8k"] = res["single_block"] / 3.8e3
        out[dev] = res
    torch.set_num_threads(threads)
    out["erf_rhs_p10_k2_seconds"] = rhs_seconds(n=2 if quick else 5)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
