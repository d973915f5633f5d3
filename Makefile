# mfteach: `make book` builds the book, `make test` runs every check. Both set themselves up.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mfteach-installed
VENDOR := web_static/vendor/.stamp
# The CPU wheel of torch; users with a CUDA build install theirs first (see README).
TORCH_SPEC ?= torch==2.13.0
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1
export MPLBACKEND := Agg
# The chapters' many small batched matmuls run fastest on one thread (threads synchronise per op).
export OMP_NUM_THREADS ?= 1

.PHONY: book test test-unit test-notebooks test-browser assignments bench lint chromium clean help

help:
	@echo "make book         build the book into _build/html (executes every chapter)"
	@echo "make test         unit tests, widget sweep, notebooks (nbval), grader, browser tests"
	@echo "make assignments  write student and autograder versions of the assignments"
	@echo "make bench        run the benchmarks, print ratios, write benchmarks/results/*.json"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import torch, mfteach, jupyter_book, otter, playwright, nbval"
	touch $@

$(VENDOR): tools/vendor_js.sh
	bash tools/vendor_js.sh web_static/vendor
	touch $@

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

test: $(STAMP) $(VENDOR) chromium book
	$(BIN)/ruff check mfteach tests benchmarks tools
	$(BIN)/pytest tests mfteach -m "not slow" --durations=20
	$(MAKE) --no-print-directory test-notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check mfteach tests benchmarks tools

clean:
	rm -rf _build book/assignments/dist benchmarks/results
