# mfteach: `make book` builds the book, `make test` runs every check. Both set themselves up.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mfteach-installed
VENDOR := web_static/vendor/.stamp
# The CPU wheel of torch. It comes from PyTorch's own CPU index when that answers within a few
# seconds (the default index would pull the multi-GB CUDA build on Linux), else from the default
# index. A CUDA user overrides both: `make book TORCH_SPEC=torch TORCH_INDEX=` (see README).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1
export MPLBACKEND := Agg
# The chapters' many small batched matmuls run fastest on one thread (threads synchronise per op).
export OMP_NUM_THREADS ?= 1

.PHONY: book test test-unit test-notebooks test-portability test-browser assignments bench gpu-check lint chromium \
	clean help

help:
	@echo "make book         build the book into _build/html (executes every chapter)"
	@echo "make test         unit tests, widget sweep, notebooks (nbval), grader, browser tests"
	@echo "make assignments  write student and autograder versions of the assignments"
	@echo "make bench        run the benchmarks, print ratios, write benchmarks/results/*.json"
	@echo "make gpu-check    on a CUDA machine: gpu tests (CUDA vs CPU) + CUDA benchmarks, JSON"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	@if [ -n "$(TORCH_INDEX)" ]; then \
	  $(BIN)/python -m pip install -q --no-deps --index-url "$(TORCH_INDEX)" --timeout 5 \
	    --retries 0 "$(TORCH_SPEC)" >/dev/null 2>&1 \
	  && echo "torch from $(TORCH_INDEX)" \
	  || echo "$(TORCH_INDEX) not reachable: torch from the default index"; fi
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import torch, mfteach, jupyter_book, otter, playwright, nbval"
	touch $@

$(VENDOR): tools/vendor_js.sh
	bash tools/vendor_js.sh web_static/vendor
	touch $@

# A static build: tools/static_build.py (a Sphinx extension) sets MFTEACH_STATIC_BUILD=1, so live
# widgets render disabled with a "run in Jupyter" note; the explorers stay live.
book: $(STAMP) $(VENDOR)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Built: $(abspath _build/html/index.html)"

chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium fonts-dejavu-core; \
	  else sudo apt-get update -q && sudo apt-get install -y -q chromium fonts-dejavu-core; fi; }

assignments: $(STAMP)
	$(BIN)/python tools/make_assignments.py

test-unit: $(STAMP)
	$(BIN)/pytest tests mfteach -m "not slow and not browser" --durations=15

test-notebooks: $(STAMP)
	$(BIN)/python tools/store_outputs.py --check book/[0-9]*.ipynb
	$(BIN)/pytest -p no:cacheprovider --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  -o addopts="" -o filterwarnings="" --nbval-cell-timeout=300 book/[0-9]*.ipynb

test-browser: $(STAMP) $(VENDOR) chromium book
	$(BIN)/pytest tests -m "browser" --durations=5

# The numerical tests again under other MKL code paths (what other CPUs, e.g. AMD, take), so a
# tolerance that only holds for this CPU's rounding fails here, not on someone else's machine.
MKL_PATHS ?= COMPATIBLE AVX2
test-portability: $(STAMP)
	@for path in $(MKL_PATHS); do echo "== MKL_CBWR=$$path"; \
	  MKL_CBWR=$$path $(BIN)/pytest -q tests -m "not slow and not browser" \
	    --ignore=tests/book --ignore=tests/widgets -p no:doctest -o addopts="-p no:cacheprovider --import-mode=importlib" || exit 1; done

test: $(STAMP) $(VENDOR) chromium book
	$(BIN)/ruff check mfteach tests benchmarks tools
	$(BIN)/pytest tests mfteach -m "not slow" --durations=20
	$(MAKE) --no-print-directory test-portability
	$(MAKE) --no-print-directory test-notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# One call on a GPU machine (no registry there: it uses the machine's own torch and the tree).
gpu-check:
	bash tools/gpu_check.sh

lint: $(STAMP)
	$(BIN)/ruff check mfteach tests benchmarks tools

clean:
	rm -rf _build book/assignments/dist benchmarks/results
