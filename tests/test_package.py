"""The package surface: public names exist, `import mfteach` needs no Jupyter stack."""

import subprocess
import sys

import mfteach


def test_all_names_exist():
    missing = [name for name in mfteach.__all__ if not hasattr(mfteach, name)]
    assert not missing, missing


def test_import_without_ipywidgets_or_jupyter():
    code = ("import sys; sys.modules['ipywidgets'] = None; sys.modules['IPython'] = None; "
            "import mfteach, mfteach.lazy_vs_meanfield, mfteach.finite_width, "
            "mfteach.sgd_odes; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_widgets_need_the_book_extra_only_when_used():
    code = ("import sys; sys.modules['ipywidgets'] = None; import mfteach.widgets as w; "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
