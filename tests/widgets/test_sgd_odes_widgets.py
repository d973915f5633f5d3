"""The chapter-04 live widgets' coarse time grids are invisible in their figures.

The widgets integrate with large steps (``PLATEAU_DT``, ``SPECIALIZATION_DT``) to answer within
the update budget. The tolerance is the figure's own resolution: every point of a coarse curve
lies within half a pixel (at the widget's dpi, on the widget's axes) of the same curve
integrated with a step 5-8 times smaller, at the extremes of the sliders.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from mfteach.widgets import sgd_odes as sw  # noqa: E402

HALF_PIXEL = 0.5


def _drawn_axes(fig, dpi):
    """The first axes of ``fig`` once laid out at ``dpi`` (so that transData is final)."""
    fig.set_dpi(dpi)
    FigureCanvasAgg(fig).draw()
    return fig.axes[0]


def _line(ax, label):
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return line.get_xydata()


@pytest.mark.parametrize("K, gamma_over_p, delta", [(2, 0.0, 0.1), (3, 0.5, 0.0)])
def test_plateau_coarse_step_is_below_half_a_pixel(K, gamma_over_p, delta):
    widget = sw.plateau_widget()
    coarse = sw._plateau_plot(sw.plateau_compute(K, gamma_over_p, delta))
    fine = sw._plateau_plot(sw.plateau_compute(K, gamma_over_p, delta, dt=sw.PLATEAU_DT / 8))
    ax = _drawn_axes(coarse, widget.dpi)
    xy, xy_fine = _line(ax, "high-d ODE"), _line(fine.axes[0], "high-d ODE")
    gap = np.abs(ax.transData.transform(xy) - ax.transData.transform(xy_fine)).max()
    print(f"largest gap {gap:.3f} px")
    assert gap < HALF_PIXEL, f"dt={sw.PLATEAU_DT}: the risk curve moves by {gap:.2f} px"


@pytest.mark.parametrize("p, seed", [(2, 5), (10, 0)])
def test_specialization_coarse_step_is_below_half_a_pixel(p, seed):
    widget = sw.specialization_widget()
    gamma = 1.0  # the ODE (gradient flow) does not depend on gamma; a short SGD run
    coarse = sw.specialization_compute(p, gamma, seed)
    fine = sw.specialization_compute(p, gamma, seed, dt=sw.SPECIALIZATION_DT / 5)
    ax = _drawn_axes(sw._specialization_plot(coarse), widget.dpi)
    c, c_fine = coarse[3].numpy(), fine[3].numpy()  # (T, p, 2) cosines along the ODE
    gap = np.abs(ax.transData.transform(c.reshape(-1, 2))
                 - ax.transData.transform(c_fine.reshape(-1, 2))).max()
    print(f"largest gap {gap:.3f} px")
    assert gap < HALF_PIXEL, f"dt={sw.SPECIALIZATION_DT}: the cosine paths move {gap:.2f} px"


def test_specialization_caps_the_sgd_run_but_not_the_ode():
    p, gamma = 10, 0.05  # the paper's setting: 80 000 SGD steps uncapped
    *_, c_ode, c_sgd, t_sgd = sw.specialization_compute(p, gamma, 0)
    assert t_sgd == pytest.approx(sw.MAX_SPECIALIZATION_SGD_STEPS * gamma / (p * 10), rel=1e-3)
    assert c_ode.shape[0] == 41 and c_sgd.shape[0] == 41  # ODE to t = 40, SGD to t_sgd
    fig = sw._specialization_plot(sw.specialization_compute(p, gamma, 0))
    assert any("SGD dots to t" in t.get_text() for t in fig.axes[0].texts)
    *_, t_full = sw.specialization_compute(4, 0.5, 0)  # the defaults run in full
    assert t_full == 40.0
