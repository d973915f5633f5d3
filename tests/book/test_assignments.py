"""Course assignments: otter assign works, solutions score full marks, blank notebooks score 0.

For every master notebook in ``book/assignments/`` (and for a tiny master written here, a
self-test of the machinery independent of chapter content): ``otter assign`` through
``tools/make_assignments.py``, then ``otter run`` with the autograder zip on the solution
notebook (full marks) and on the blank student notebook (every question that has a solution
scores 0, so the total is strictly below full marks).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("otter")

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_assignments",
                                               ROOT / "tools" / "make_assignments.py")
make_assignments = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_assignments)

MASTERS = make_assignments.find_masters()


def _tiny_master(path: Path) -> Path:
    raw, code, md = (nbformat.v4.new_raw_cell, nbformat.v4.new_code_cell,
                     nbformat.v4.new_markdown_cell)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        raw("# ASSIGNMENT CONFIG\nrequirements: null\ngenerate: true\nexport_cell: false\n"
            "check_all_cell: false\ninit_cell: false\nrun_tests: true\n"),
        md("# Tiny assignment"),
        raw("# BEGIN QUESTION\nname: q1\npoints: 2"),
        md("Write `f(x) = 2x`."),
        raw("# BEGIN SOLUTION"),
        code("def f(x):\n    return 2 * x  # SOLUTION"),
        raw("# END SOLUTION"),
        raw("# BEGIN TESTS"),
        code("assert f(3) == 6"),
        code('""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n'
             "assert f(-1.5) == -3.0"),
        raw("# END TESTS"),
        raw("# END QUESTION"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def questions_with_solutions(master: Path) -> dict[str, bool]:
    """Question name -> whether the master holds a solution for it."""
    import yaml

    nb = nbformat.read(master, as_version=4)
    found: dict[str, bool] = {}
    current = None
    for cell in nb.cells:
        src = cell.source.strip()
        if cell.cell_type == "raw" and src.startswith("# BEGIN QUESTION"):
            config = yaml.safe_load(src.split("\n", 1)[1]) if "\n" in src else {}
            current = str(config["name"])
            found[current] = False
        elif cell.cell_type == "raw" and src.startswith("# END QUESTION"):
            current = None
        elif current is not None and ("# BEGIN SOLUTION" in src or any(
                line.rstrip().endswith("# SOLUTION") for line in src.splitlines())):
            found[current] = True
    return found


def grade(zip_path: Path, notebook: Path, out: Path) -> dict[str, tuple[float, float]]:
    """``otter run`` one notebook; question -> (score, max_score) from results.json."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(zip_path),
                           str(notebook), "-o", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=notebook.parent)
    assert proc.returncode == 0, f"otter run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    results = json.loads((out / "results.json").read_text())
    return {t["name"]: (float(t["score"]), float(t["max_score"]))
            for t in results["tests"] if "max_score" in t}


def check_master(master: Path, tmp_path: Path, dist: Path | None = None) -> None:
    if dist is None:
        dist = make_assignments.assign(master, tmp_path / "dist" / master.stem)
    zips = sorted((dist / "autograder").glob("*.zip"))
    assert zips, f"otter assign wrote no autograder zip for {master.name} (generate: true?)"
    solution = dist / "autograder" / master.name
    student = dist / "student" / master.name
    assert solution.is_file() and student.is_file()
    assert "# SOLUTION" not in student.read_text(), "a solution leaked into the student copy"

    full = grade(zips[-1], solution, tmp_path / "solution")
    assert full, "no graded questions in results.json"
    missing = {q: s for q, s in full.items() if s[0] != s[1]}
    assert not missing, f"the solution does not score full marks: {missing}"

    blank = grade(zips[-1], student, tmp_path / "student")
    with_solution = [q for q, has in questions_with_solutions(master).items() if has]
    assert with_solution, f"{master.name} has no question with a solution"
    nonzero = {q: blank[q] for q in with_solution if blank.get(q, (0.0, 0.0))[0] != 0.0}
    assert not nonzero, f"blank student answers score marks: {nonzero}"
    total = sum(s for s, _ in blank.values())
    maximum = sum(m for _, m in blank.values())
    assert total < maximum, f"the blank student notebook scores full marks ({total}/{maximum})"


def test_machinery_on_a_tiny_master(tmp_path):
    """make_assignments.py (as `make assignments` runs it), then grading, on a tiny master."""
    master = _tiny_master(tmp_path / "00_tiny.ipynb")
    assert questions_with_solutions(master) == {"q1": True}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "make_assignments.py"),
                           "--out", str(tmp_path / "out"), str(master)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "autograder:" in proc.stdout and ".zip" in proc.stdout
    check_master(master, tmp_path, dist=tmp_path / "out" / "00_tiny")


@pytest.mark.skipif(not MASTERS, reason="no master notebooks in book/assignments/ yet")
@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_chapter_assignment(master, tmp_path):
    check_master(master, tmp_path)
