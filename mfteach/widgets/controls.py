"""Controls shared by the chapter widgets: sliders that update on release, dropdowns.

Every slider made here has ``continuous_update=False``: the widget recomputes once when the
reader lets go of the handle, not at every pixel of the drag (CONTRIBUTING.md).
``ipywidgets`` is imported inside each function so that ``import mfteach.widgets`` works
without it.

Examples
--------
>>> from mfteach.widgets import controls
>>> w = controls.int_slider("width", 64, 16, 1024, step=16)
>>> (w.value, w.min, w.max, w.continuous_update)
(64, 16, 1024, False)
>>> lr = controls.float_log_slider("learning rate", 0.1, 1e-3, 10.0)
>>> round(lr.value, 6), lr.continuous_update
(0.1, False)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._checks import check_float, check_int, fail

__all__ = ["int_slider", "float_slider", "float_log_slider", "dropdown", "selection_slider",
           "checkbox", "STYLE"]

# Room for descriptions such as "learning rate η" without truncation.
STYLE = {"description_width": "initial"}
_LAYOUT = {"width": "420px"}


def _widgets():
    import ipywidgets

    return ipywidgets


def _check_label(description: Any, fn: str) -> str:
    if not isinstance(description, str):
        fail("description", fn, "a str", description, exc=TypeError)
    return description


def int_slider(description: str, value: int, min: int, max: int, *, step: int = 1):
    """An ``IntSlider`` from ``min`` to ``max`` (inclusive) that updates on release.

    Parameters
    ----------
    description : str
        Label shown left of the slider (the book's symbol, e.g. ``"width N"``).
    value, min, max : int
        Initial value and bounds, ``min <= value <= max``.
    step : int, optional
        Slider increment, ``>= 1``.

    Returns
    -------
    ipywidgets.IntSlider

    Raises
    ------
    TypeError
        If a number is not an int or ``description`` is not a str.
    ValueError
        If ``min > max``, ``value`` is outside ``[min, max]`` or ``step < 1``.
    """
    fn = "mfteach.widgets.controls.int_slider"
    _check_label(description, fn)
    lo = check_int(min, "min", fn)
    hi = check_int(max, "max", fn, min=lo)
    v = check_int(value, "value", fn, min=lo, max=hi)
    st = check_int(step, "step", fn, min=1)
    return _widgets().IntSlider(value=v, min=lo, max=hi, step=st, description=description,
                                continuous_update=False, style=STYLE, layout=_LAYOUT)


def float_slider(description: str, value: float, min: float, max: float, *,
                 step: float | None = None, readout_format: str = ".3g"):
    """A ``FloatSlider`` on a linear scale that updates on release.

    Parameters
    ----------
    description : str
        Label shown left of the slider.
    value, min, max : float
        Initial value and bounds, ``min < max`` and ``min <= value <= max``.
    step : float, optional
        Increment; default ``(max - min) / 100``.
    readout_format : str, optional
        Format of the number shown right of the slider.

    Returns
    -------
    ipywidgets.FloatSlider

    Raises
    ------
    TypeError, ValueError
        For non-numbers, non-finite numbers, empty ranges or a value outside the range.
    """
    fn = "mfteach.widgets.controls.float_slider"
    _check_label(description, fn)
    lo = check_float(min, "min", fn)
    hi = check_float(max, "max", fn, min=lo, min_open=True)
    v = check_float(value, "value", fn, min=lo, max=hi)
    st = (hi - lo) / 100 if step is None else check_float(step, "step", fn, min=0.0,
                                                          min_open=True)
    return _widgets().FloatSlider(value=v, min=lo, max=hi, step=st, description=description,
                                  readout_format=readout_format, continuous_update=False,
                                  style=STYLE, layout=_LAYOUT)


def float_log_slider(description: str, value: float, min: float, max: float, *,
                     steps_per_decade: int = 10, readout_format: str = ".3g"):
    r"""A ``FloatLogSlider`` (base 10) for quantities that span decades (rates, temperatures).

    Parameters
    ----------
    description : str
        Label shown left of the slider.
    value, min, max : float
        Initial value and bounds in natural units (not exponents), ``0 < min < max``.
    steps_per_decade : int, optional
        Number of slider positions per factor of ten.
    readout_format : str, optional
        Format of the number shown right of the slider.

    Returns
    -------
    ipywidgets.FloatLogSlider
        Its ``min``/``max`` are the exponents :math:`\log_{10}` of the bounds, as ipywidgets
        defines them; ``value`` is in natural units.

    Raises
    ------
    TypeError, ValueError
        For non-numbers, non-positive bounds, an empty range or a value outside it.
    """
    fn = "mfteach.widgets.controls.float_log_slider"
    _check_label(description, fn)
    lo = check_float(min, "min", fn, min=0.0, min_open=True)
    hi = check_float(max, "max", fn, min=lo, min_open=True)
    v = check_float(value, "value", fn, min=lo, max=hi)
    n = check_int(steps_per_decade, "steps_per_decade", fn, min=1)
    return _widgets().FloatLogSlider(value=v, base=10, min=math.log10(lo), max=math.log10(hi),
                                     step=1.0 / n, description=description,
                                     readout_format=readout_format, continuous_update=False,
                                     style=STYLE, layout=_LAYOUT)


def dropdown(description: str, options: Sequence, value: Any = None):
    """A ``Dropdown`` over ``options`` (strings, or ``(label, value)`` pairs).

    Parameters
    ----------
    description : str
        Label shown left of the menu.
    options : sequence
        At least one option.
    value : optional
        Initial value; default the first option's value.

    Returns
    -------
    ipywidgets.Dropdown

    Raises
    ------
    ValueError
        If ``options`` is empty or ``value`` is not among them.
    """
    fn = "mfteach.widgets.controls.dropdown"
    _check_label(description, fn)
    opts = _check_options(options, fn)
    values = [o[1] if isinstance(o, tuple) else o for o in opts]
    if value is None:
        value = values[0]
    elif value not in values:
        fail("value", fn, "one of " + ", ".join(repr(v) for v in values), value)
    return _widgets().Dropdown(options=opts, value=value, description=description, style=STYLE)


def selection_slider(description: str, options: Sequence, value: Any = None):
    """A ``SelectionSlider`` over a short list of values (e.g. widths 64, 256, 1024).

    Parameters
    ----------
    description : str
        Label shown left of the slider.
    options : sequence
        At least one option (strings, numbers, or ``(label, value)`` pairs).
    value : optional
        Initial value; default the first option's value.

    Returns
    -------
    ipywidgets.SelectionSlider

    Raises
    ------
    ValueError
        If ``options`` is empty or ``value`` is not among them.
    """
    fn = "mfteach.widgets.controls.selection_slider"
    _check_label(description, fn)
    opts = _check_options(options, fn)
    values = [o[1] if isinstance(o, tuple) else o for o in opts]
    if value is None:
        value = values[0]
    elif value not in values:
        fail("value", fn, "one of " + ", ".join(repr(v) for v in values), value)
    return _widgets().SelectionSlider(options=opts, value=value, description=description,
                                      continuous_update=False, style=STYLE, layout=_LAYOUT)


def checkbox(description: str, value: bool = False):
    """A ``Checkbox`` (e.g. "show theory curve").

    Raises
    ------
    TypeError
        If ``value`` is not a bool.
    """
    fn = "mfteach.widgets.controls.checkbox"
    _check_label(description, fn)
    if not isinstance(value, bool):
        fail("value", fn, "a bool", value, exc=TypeError)
    return _widgets().Checkbox(value=value, description=description, indent=False)


def _check_options(options: Any, fn: str) -> list:
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        fail("options", fn, "a non-empty list or tuple", options, exc=TypeError)
    opts = list(options)
    if not opts:
        fail("options", fn, "a non-empty list or tuple", options)
    return opts
