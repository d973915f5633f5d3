"""Write the student and autograder versions of every course assignment with otter-grader.

Master notebooks live in ``book/assignments/<NN_chapter>.ipynb`` (solutions and hidden tests,
otter-grader 7 format with ``generate: true`` in the ``# ASSIGNMENT CONFIG`` cell). For each
master this runs ``otter assign MASTER OUT/<NN_chapter>/``, which writes

* ``OUT/<NN_chapter>/student/<NN_chapter>.ipynb``: what students get (solutions blanked,
  hidden tests removed);
* ``OUT/<NN_chapter>/autograder/<NN_chapter>-autograder_*.zip``: what instructors grade with,
  e.g. ``otter run -a <zip> submission.ipynb -o results/`` (no Docker needed).

Usage: ``python tools/make_assignments.py [--out book/assignments/dist] [MASTER ...]`` (``make
assignments``). ``tests/book/test_assignments.py`` checks that the solution scores full marks
and the blank student notebook scores zero.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MASTERS = ROOT / "book" / "assignments"


def find_masters(folder: Path = MASTERS) -> list[Path]:
    """The master notebooks directly in ``folder`` (``dist/`` and checkpoints excluded)."""
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def assign(master: Path, out: Path, *, timeout: float = 600) -> Path:
    """Run ``otter assign`` on ``master`` into ``out`` (replaced); return ``out``.

    Raises
    ------
    RuntimeError
        With otter's output when ``otter assign`` fails (e.g. its self-test of the solutions).
    """
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "otter", "assign", str(master.resolve()),
                           str(out.resolve())], cwd=master.parent, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"otter assign failed on {master} (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("masters", nargs="*", type=Path,
                        help="master notebooks (default: every book/assignments/*.ipynb)")
    parser.add_argument("--out", type=Path, default=MASTERS / "dist",
                        help="output folder (default: book/assignments/dist)")
    args = parser.parse_args(argv)
    masters = args.masters or find_masters()
    if not masters:
        print(f"no master notebooks in {MASTERS}", file=sys.stderr)
        return 1
    for master in masters:
        out = assign(master, args.out / master.stem)
        zips = sorted((out / "autograder").glob("*.zip"))
        print(f"{master}:")
        print(f"  student:    {out / 'student' / master.name}")
        print(f"  autograder: {zips[-1] if zips else '(no zip: is generate: true set?)'}")
        if not zips:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
