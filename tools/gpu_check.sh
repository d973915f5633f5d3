#!/usr/bin/env bash
# `make gpu-check`: every CUDA check of mfteach in one call on a machine with an NVIDIA GPU.
#
# 1. the gpu-marked tests (CUDA against CPU, TF32 off: tests/conftest.py calls disable_tf32);
# 2. the CUDA benchmarks: fraction of the fp32 matmul rate for batched training, fraction of
#    the torch.randn rate for ensemble sampling, one-pass SGD trajectory-steps per second;
# 3. JSON results and logs under one folder: $GPU_CHECK_OUT, else $OUT/gpu-check (the lent
#    device machine), else benchmarks/results/gpu-check.
#
# It needs no registry: it runs on the machine's own python3/torch with the tree on PYTHONPATH.
# Python packages that machine lacks can travel as wheels in .whl/ (see CONTRIBUTING.md); they
# are installed into a private folder first. Without CUDA it says so and exits 0 (a skip);
# GPU_CHECK_DRY_RUN=1 runs the whole flow on the CPU anyway (gpu tests skip), to try the script.
# GPU_CHECK_BENCHMARKS picks benchmarks. Budget: under 8 minutes on one H200 (phases have limits).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
[ -x "$ROOT/.venv/bin/python" ] && [ -z "${PYTHON:-}" ] && ! command -v nvidia-smi >/dev/null \
  && PY="$ROOT/.venv/bin/python"
RESULTS=${GPU_CHECK_OUT:-${OUT:+$OUT/gpu-check}}
RESULTS=${RESULTS:-$ROOT/benchmarks/results/gpu-check}
mkdir -p "$RESULTS"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/mfteach-site .whl/*.whl || { echo "gpu-check: installing .whl/ failed"; exit 1; }
  export PYTHONPATH="$PYTHONPATH:/tmp/mfteach-site"
fi

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null
then
  if [ -z "${GPU_CHECK_DRY_RUN:-}" ]; then
    echo "gpu-check: no CUDA device visible to $PY: nothing to check (skipped)."
    echo '{"skipped": "no CUDA device"}' > "$RESULTS/gpu_check.json"
    exit 0
  fi
  echo "gpu-check: dry run without CUDA (gpu tests skip, benchmarks take their CPU branch)"
fi

"$PY" - <<'PY' | tee "$RESULTS/machine.json"
import json, platform, sys, torch
if not torch.cuda.is_available():
    print(json.dumps({"gpu": None, "torch": torch.__version__})); sys.exit()
p = torch.cuda.get_device_properties(0)
print(json.dumps({"gpu": p.name, "sms": p.multi_processor_count,
                  "memory_gib": round(p.total_memory / 2**30, 1), "torch": torch.__version__,
                  "cuda": torch.version.cuda, "python": platform.python_version()}))
PY

status=0
# 1. gpu-marked tests (the `gpu` mark or the cuda `device` fixture) of the package's test files;
#    tests/book and tests/widgets need the book stack and hold no CUDA path.
files=(tests/test_*.py)
echo "== gpu tests"
timeout 240 "$PY" -m pytest -q -m gpu -p no:cacheprovider -o addopts="" \
  --import-mode=importlib --junitxml="$RESULTS/gpu_tests.xml" "${files[@]}" \
  2>&1 | tee "$RESULTS/gpu_tests.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

# 2. CUDA benchmarks (their CUDA branches run when a device is visible), JSON per benchmark.
echo "== benchmarks"
for name in ${GPU_CHECK_BENCHMARKS:-ensemble finite_width sgd_odes kernels three_layer two_timescale resnet}; do
  timeout 120 "$PY" benchmarks/run.py --quick --only "$name" --out "$RESULTS" \
    2>&1 | tee -a "$RESULTS/benchmarks.log"
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "benchmark $name failed"; status=1; }
done

"$PY" - "$RESULTS" <<'PY'
"""The summary table the issue asks for, from the benchmarks' JSON (printed last)."""
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
def load(name):
    f = out / f"{name}.json"
    return json.loads(f.read_text()) if f.exists() else {}
def find(d, *keys):
    """Every value whose key contains all of `keys`, in a nested dict."""
    hits = {}
    def walk(x, path):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(x, (int, float)) and all(k in path for k in keys):
            hits[path] = x
    walk(d, "")
    return hits
rows = {}
rows.update(find(load("ensemble"), "cuda", "fraction"))
rows.update(find(load("finite_width"), "fraction"))
rows.update(find(load("sgd_odes"), "cuda", "block"))  # trajectory-steps per second
summary = {k: v for k, v in rows.items()}
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
print("== summary (also in gpu_check.json)")
for k, v in summary.items():
    print(f"  {k}: {v:.4g}")
PY
echo "gpu-check: results in $RESULTS (exit $status)"
exit $status
