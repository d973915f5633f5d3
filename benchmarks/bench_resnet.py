"""ResNets with fixed random features (chapter 6): one batched program versus a Python loop.

``B`` ResNets (:mod:`mfteach.resnet`, Euler blocks, one data set each: seeds or
configurations of a sweep) trained by :func:`mfteach.resnet.train` as ONE ensemble
(``init_resnet(..., n_networks=B)``: every tensor has a leading batch axis, every block is a
batched matmul) against ``B`` single-network trainings one after the other; same data, same
features, same steps, same arithmetic. A block of a network costs two matmuls, the features
``x omega^T`` (``N x q`` by ``q x M``) and the residual ``phi U^T`` (``N x M`` by
``M x q``), so at chapter sizes (``q = 2``, ``M <= 1024``) a step is ``2 L`` tiny matmuls
and the per-op overhead of the loop is what batching removes. The achieved matmul throughput
of the batched step is compared with a large float64 ``torch.mm`` measured in the same run
(TF32 off).

Run ``python benchmarks/bench_resnet.py [--quick] [--device auto|cpu|cuda] [--out FILE]``
(writes the JSON record that ``benchmarks/run.py`` writes) or ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from _timing import best_time, mm_reference, print_result

from mfteach import resnet as rn
from mfteach.device import disable_tf32, spawn_generators


def step_flops(B: int, N: int, q: int, M: int, L: int) -> float:
    """Matmul FLOPs of one Euler training step of B networks: per block the features and the
    residual (4 N q M forward) and about twice that backward."""
    return 12.0 * B * N * q * M * L


def _problem(device: str, *, B: int, M: int, L: int, N: int, q: int, dtype: torch.dtype):
    gens = spawn_generators(0, B)
    sets = [rn.toy_data(N, amplitude=0.2, min_distance=1.2 / N ** 0.5, generator=g,
                        device=device, dtype=dtype) for g in gens]
    X = torch.stack([x for x, _ in sets])
    Y = torch.stack([y for _, y in sets])
    net = rn.init_resnet(2, q, M, L, bandwidth=0.5, scheme="euler", n_networks=B,
                         generator=1, device=device, dtype=dtype)
    gram = rn.feature_gram(net.feats, rn.lift(X, q))
    lr = 0.5 * 2 * L * N / float(torch.linalg.eigvalsh(gram)[:, -1].max())  # half the limit
    return net, X, Y, lr


def _one(net: rn.ResNet, b: int) -> rn.ResNet:
    f = net.feats
    return net.replace(U=net.U[b:b + 1],
                       feats=replace(f, omega=f.omega[b:b + 1], phase=f.phase[b:b + 1]))


def compare(device: str, *, B: int, M: int, L: int, N: int, q: int = 2, steps: int,
            dtype: torch.dtype = torch.float64, repeats: int = 2) -> dict:
    """Time batched versus looped training of ``B`` ResNets; return times and ratios."""
    net, X, Y, lr = _problem(device, B=B, M=M, L=L, N=N, q=q, dtype=dtype)
    singles = [_one(net, b) for b in range(B)]

    def batched():
        return rn.train(net, X, Y, lr=lr, steps=steps, record_every=steps)

    def looped():
        return [rn.train(singles[b], X[b:b + 1], Y[b:b + 1], lr=lr, steps=steps,
                         record_every=steps) for b in range(B)]

    t_batched = best_time(batched, device, repeats)
    t_loop = best_time(looped, device, max(1, repeats - 1))
    h, hs = batched(), looped()
    gap = max(float((h.loss[-1, b] - s.loss[-1, 0]).abs() / s.loss[-1, 0])
              for b, s in enumerate(hs))
    flops = step_flops(B, N, q, M, L) * steps
    return {
        "config": f"B={B} M={M} L={L} N={N} q={q} steps={steps} euler {dtype}",
        "batched_s": t_batched,
        "loop_s": t_loop,
        "speedup_batched_vs_loop": t_loop / t_batched,
        "batched_ms_per_step": 1e3 * t_batched / steps,
        "batched_gflops": flops / t_batched / 1e9,
        "loop_gflops": flops / t_loop / 1e9,
        "max_rel_diff_final_loss": gap,
    }


def run(quick: bool = False, device: str = "auto") -> dict:
    """Batched versus looped ResNet training on the CPU and/or CUDA (``device``: ``"auto"``
    runs the CPU, and CUDA when available; ``"cpu"`` or ``"cuda"`` only that one)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"The 'device' argument must be 'auto', 'cpu' or 'cuda'. Got "
                         f"{device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device.")
    out: dict = {"cpu_threads": torch.get_num_threads()}
    chapter = ({"B": 5, "M": 64, "L": 8, "N": 10, "steps": 20} if quick else
               {"B": 5, "M": 64, "L": 8, "N": 10, "steps": 100})
    many = ({"B": 32, "M": 32, "L": 8, "N": 10, "steps": 10} if quick else
            {"B": 64, "M": 32, "L": 8, "N": 10, "steps": 50})
    if device in ("auto", "cpu"):
        peak = mm_reference("cpu", 512 if quick else 1024, torch.float64)
        out["cpu_mm_reference_fp64_gflops"] = peak / 1e9
        for name, cfg in {"cpu_chapter_width_sweep": chapter,
                          "cpu_many_seeds": many}.items():
            res = compare("cpu", **cfg)
            res["fraction_of_fp64_mm"] = res["batched_gflops"] * 1e9 / peak
            out[name] = res
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        disable_tf32()
        peak = mm_reference("cuda", 4096 if quick else 8192, torch.float64, repeats=5)
        out["cuda_device"] = torch.cuda.get_device_name(0)
        out["cuda_mm_reference_fp64_tflops"] = peak / 1e12
        large = ({"B": 64, "M": 1024, "L": 16, "N": 64, "q": 8, "steps": 10} if quick else
                 {"B": 128, "M": 4096, "L": 16, "N": 128, "q": 8, "steps": 20})
        for name, cfg in {"cuda_many_seeds": many, "cuda_large": large}.items():
            res = compare("cuda", **cfg)
            res["fraction_of_fp64_mm"] = res["batched_gflops"] * 1e9 / peak
            out[name] = res
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"
                                             / "resnet.json"), help="JSON file to write")
    args = parser.parse_args(argv)
    from run import machine  # benchmarks/run.py: the same record as `make bench`

    t0 = time.perf_counter()
    result = run(quick=args.quick, device=args.device)
    record = {"machine": machine(), "seconds": time.perf_counter() - t0, "quick": args.quick,
              "results": result}
    print_result(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"JSON written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
