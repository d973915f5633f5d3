"""Execute chapter notebooks and store only the outputs that nbval compares.

Policy (how chapter notebooks are committed)
-------------------------------------------
* A code cell whose first line is ``# NBVAL_CHECK_OUTPUT`` keeps its outputs: the key numbers
  the chapter prints (fitted slopes, rates, errors), **rounded** so that a CPU run reproduces
  them exactly (e.g. ``print(f"slope {fit.slope:.2f}")``). Images are dropped from these
  outputs (nbval does not compare them) so the stored text stays small and reviewable.
  They keep their ``execution_count`` too (nbval rejects an "unrun" cell with outputs).
* Every other cell is committed **without outputs** and with ``execution_count: null``; the
  notebook's saved widget state is dropped too. The repository stays light, diffs stay
  readable, and Jupyter Book re-executes the chapters at build time anyway.
* ``make test-notebooks`` runs ``pytest --nbval-lax --nbval-sanitize-with
  tests/nbval_sanitize.cfg book/[0-9]*.ipynb``: every cell must run without error and every
  ``# NBVAL_CHECK_OUTPUT`` cell must print exactly its stored output (after the sanitizer
  masks widget ids, memory addresses, timings and progress bars). A drifting result fails.

Usage
-----
``python tools/store_outputs.py book/01_lazy_vs_meanfield.ipynb [...]`` executes each notebook
top to bottom on a fresh ``python3`` kernel (working directory: the notebook's folder, like the
book build and nbval) and writes it back under this policy. Run it with the same environment
as ``make test-notebooks`` (in particular the same ``MFTEACH_FAST`` setting: unset there).

``python tools/store_outputs.py --check book/[0-9]*.ipynb`` executes nothing; it exits with
status 1, naming the cells, if a ``# NBVAL_CHECK_OUTPUT`` cell has no stored output or another
code cell still carries outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MARKER = "# NBVAL_CHECK_OUTPUT"
_DROP_MIME_PREFIXES = ("image/", "application/vnd.jupyter.widget")


def is_check_cell(cell) -> bool:
    """True for a code cell with a ``# NBVAL_CHECK_OUTPUT`` line (nbval's own rule: any line,
    though the book's convention is the first)."""
    if cell.get("cell_type") != "code":
        return False
    return any(ln.strip() == MARKER for ln in cell.get("source", "").splitlines())


def _keep_text(output: dict) -> dict | None:
    """An output of a check cell without its images/widget views (None if nothing is left)."""
    if output.get("output_type") in ("display_data", "execute_result"):
        data = {k: v for k, v in output.get("data", {}).items()
                if not k.startswith(_DROP_MIME_PREFIXES)}
        if not data:
            return None
        output = dict(output, data=data)
    return output


def apply_policy(nb) -> tuple[int, int]:
    """Strip outputs in place per the policy; return (check cells, stored outputs)."""
    import nbformat

    n_check = n_out = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if is_check_cell(cell):  # nbval needs its execution_count ("unrun cell has outputs")
            n_check += 1
            kept = [o for o in (_keep_text(o) for o in cell.get("outputs", [])) if o is not None]
            cell["outputs"] = [nbformat.from_dict(o) for o in kept]
            n_out += len(kept)
        else:
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    nb.metadata.pop("widgets", None)
    return n_check, n_out


def problems(nb) -> list[str]:
    """Policy violations of a stored notebook (empty list: compliant)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        if is_check_cell(cell) and not cell.get("outputs"):
            found.append(f"cell {i}: {MARKER} cell has no stored output (run "
                         f"tools/store_outputs.py on the notebook)")
        elif not is_check_cell(cell) and cell.get("outputs"):
            found.append(f"cell {i}: outputs stored in a cell without {MARKER} (strip them "
                         f"with tools/store_outputs.py)")
    return found


def store(path: Path, *, timeout: int, kernel: str) -> tuple[int, int]:
    """Execute ``path`` and write it back under the policy; return (check cells, outputs)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    counts = apply_policy(nb)
    nbformat.write(nb, path)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Execute notebooks and keep only # NBVAL_CHECK_OUTPUT outputs.",
        epilog="See the module docstring for the policy.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="verify the stored outputs follow the policy; execute nothing")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--kernel", default="python3", help="kernel name")
    args = parser.parse_args(argv)
    import nbformat

    status = 0
    for path in args.notebooks:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            status = 1
            continue
        if args.check:
            found = problems(nbformat.read(path, as_version=4))
            for line in found:
                print(f"{path}: {line}", file=sys.stderr)
            status = status or int(bool(found))
            if not found:
                print(f"{path}: ok")
            continue
        n_check, n_out = store(path, timeout=args.timeout, kernel=args.kernel)
        print(f"{path}: executed; kept {n_out} outputs in {n_check} {MARKER} cells")
        if n_check == 0:
            print(f"{path}: warning: no {MARKER} cell, so nbval checks only that it runs",
                  file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
