"""Throughput of the vectorised ensemble sampler against a per-network loop and the RNG limit.

The sampler (``mfteach.finite_width.sample_outputs``, one hidden layer, one input) draws the
pre-activations and readouts of ``S`` networks as ``S x n`` matrices, so its cost is close to
that of generating ``2 S n`` normals. The naive version builds one network at a time
(``W ~ N(0, I)`` of shape ``(n, d)``, then a forward pass), as one would with ``nn.Module``s.
The RNG limit is ``torch.randn`` into a preallocated buffer on the same device in the same
run (the issue quotes about 411 G normals/s on an H100 in float32).
"""

from __future__ import annotations

import math

import torch
from _timing import best_time

from mfteach.device import default_device
from mfteach.finite_width import sample_outputs


def run(quick: bool = False) -> dict:
    """Measure normals per second: RNG limit, vectorised sampler, naive per-network loop."""
    device = default_device()
    gpu = device.type == "cuda"
    dtype = torch.float32
    width, d = 1024, 64
    if gpu:
        n_samples = 1 << (15 if quick else 17)  # networks per call
        n_naive = 200 if quick else 2000
        rng_numel = 1 << (26 if quick else 29)
    else:
        n_samples = 1 << (11 if quick else 13)
        n_naive = 100 if quick else 500
        rng_numel = 1 << (22 if quick else 24)
    repeats = 3 if quick else 5
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.ones(1, d, dtype=dtype, device=device)

    buf = torch.empty(rng_numel, dtype=dtype, device=device)
    t_rng = best_time(lambda: torch.randn(rng_numel, generator=g, out=buf, device=device,
                                           dtype=dtype), device, repeats)
    rng_rate = rng_numel / t_rng

    def vectorised():
        return sample_outputs(x, activation="relu", width=width, n_samples=n_samples,
                              generator=g, device=device, dtype=dtype)

    t_vec = best_time(vectorised, device, repeats)
    vec_normals = n_samples * 2 * width  # u and a
    vec_rate = vec_normals / t_vec

    def naive():
        out = torch.empty(n_naive, dtype=dtype, device=device)
        for s in range(n_naive):
            W = torch.randn(width, d, generator=g, device=device, dtype=dtype)
            a = torch.randn(width, generator=g, device=device, dtype=dtype)
            out[s] = a @ torch.relu(W @ x[0] / math.sqrt(d)) / math.sqrt(width)
        return out

    t_naive = best_time(naive, device, 1 if not quick else 1)
    naive_normals = n_naive * (width * d + width)
    naive_rate = naive_normals / t_naive
    nets_vec = n_samples / t_vec
    nets_naive = n_naive / t_naive
    return {
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if gpu else ""),
        "dtype": str(dtype),
        "width": width,
        "input_dim": d,
        "rng_limit_normals_per_s": rng_rate,
        "vectorised": {"networks": n_samples, "seconds": t_vec,
                       "normals_per_s": vec_rate, "networks_per_s": nets_vec},
        "naive_loop": {"networks": n_naive, "seconds": t_naive,
                       "normals_per_s": naive_rate, "networks_per_s": nets_naive},
        "speedup_networks_per_s": nets_vec / nets_naive,
        "fraction_of_rng_limit": vec_rate / rng_rate,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
