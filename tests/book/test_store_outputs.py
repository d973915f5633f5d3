"""The stored-output policy of tools/store_outputs.py and the nbval comparison it enables.

A temporary notebook is executed and stored by the tool; ``pytest --nbval-lax`` with the
project's sanitizer (exactly as ``make test-notebooks`` runs it) must pass on it, and must FAIL
once a stored key number is tampered with: the comparison is real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("nbval")

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "store_outputs.py"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"

CELLS = [
    "import time, random\nstart = time.perf_counter()",
    "# NBVAL_CHECK_OUTPUT\nslope = round(2 / 3, 4)\nprint(f'fitted slope {slope}')",
    "# NBVAL_CHECK_OUTPUT\nprint(object())  # memory address: sanitized\n"
    "print(f'took {time.perf_counter() - start + random.random():.2f} s')  # timing: sanitized",
    "print('not compared:', random.random())",
    "# NBVAL_CHECK_OUTPUT\nround(1 / 7, 3)",
]


def _run(*args, cwd=ROOT, timeout=240):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _nbval(path: Path):
    return _run("-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax",
                "--nbval-sanitize-with", SANITIZE, "-o", "addopts=", "-o", "filterwarnings=",
                "-q", path, cwd=path.parent)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "01_demo.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    res = _run(TOOL, path)
    assert res.returncode == 0, res.stderr
    assert "kept 3 outputs in 3" in res.stdout, res.stdout
    return path


def test_policy_keeps_only_check_cell_outputs(stored):
    nb = nbformat.read(stored, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [len(c.outputs) for c in code] == [0, 1, 1, 0, 1]
    assert code[1].outputs[0]["text"] == "fitted slope 0.6667\n"
    assert code[4].outputs[0]["data"]["text/plain"] == "0.143"
    assert [c.execution_count is None for c in code] == [True, False, False, True, False]
    assert _run(TOOL, "--check", stored).returncode == 0


def test_check_mode_flags_missing_and_stray_outputs(stored, tmp_path):
    nb = nbformat.read(stored, as_version=4)
    nb.cells[2].outputs = []                      # a check cell lost its output
    nb.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nb, bad)
    res = _run(TOOL, "--check", bad)
    assert res.returncode == 1
    assert "cell 2: # NBVAL_CHECK_OUTPUT cell has no stored output" in res.stderr
    assert "cell 4: outputs stored in a cell without" in res.stderr


def test_nbval_passes_on_stored_and_fails_on_tampered(stored, tmp_path):
    good = _nbval(stored)
    assert good.returncode == 0, good.stdout[-3000:]
    assert "5 passed" in good.stdout, good.stdout[-2000:]

    data = json.loads(stored.read_text())
    text = json.dumps(data).replace("fitted slope 0.6667", "fitted slope 0.6668")
    tampered = tmp_path / "01_demo.ipynb"
    tampered.write_text(text)
    bad = _nbval(tampered)
    assert bad.returncode != 0, "nbval accepted a tampered key number"
    assert "1 failed" in bad.stdout, bad.stdout[-2000:]
