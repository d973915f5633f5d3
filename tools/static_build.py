"""Sphinx extension (loaded by ``_config.yml``): every book build is a static build.

The chapters execute in kernels started by the build, which inherit its environment, so
``MFTEACH_STATIC_BUILD=1`` set here makes each live widget render disabled, with a note to run the
page in Jupyter (``mfteach.widgets``). Setting it here rather than only in ``make book`` keeps a
plain ``jupyter-book build .`` and the execution cache consistent with ``make book``.
"""

import os


def setup(app):
    os.environ["MFTEACH_STATIC_BUILD"] = "1"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
