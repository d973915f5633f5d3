"""Run every benchmark (``benchmarks/bench_*.py``), print side-by-side ratios, write JSON.

Usage: ``make bench`` or ``python benchmarks/run.py [--quick] [--only NAME]``. Each benchmark
module exposes ``run(quick: bool = False) -> dict``; its results land in
``benchmarks/results/<name>.json`` together with the machine it ran on.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks share benchmarks/_timing.py


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(), "platform": platform.platform(),
            "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _print(name: str, value, indent: int = 2) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        print(f"{pad}{name}:")
        for k, v in value.items():
            _print(k, v, indent + 2)
    elif isinstance(value, float):
        print(f"{pad}{name}: {value:.4g}")
    else:
        print(f"{pad}{name}: {value}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--only", default=None, help="run only bench_<ONLY>.py")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for the JSON")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(HERE.glob("bench_*.py"))
    if args.only:
        files = [f for f in files if f.stem == f"bench_{args.only}"]
    print("machine:", json.dumps(machine()))
    for f in files:
        spec = importlib.util.spec_from_file_location(f.stem, f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        t0 = time.perf_counter()
        result = mod.run(quick=args.quick)
        elapsed = time.perf_counter() - t0
        print(f"\n== {f.stem} ({elapsed:.1f} s)")
        for k, v in result.items():
            _print(k, v)
        record = {"machine": machine(), "seconds": elapsed, "quick": args.quick,
                  "results": result}
        (out / f"{f.stem[len('bench_'):]}.json").write_text(json.dumps(record, indent=2,
                                                                      default=str))
    print(f"\nJSON written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
