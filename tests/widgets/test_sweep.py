"""The generic widget sweep: every chapter widget, every control, no crash, no NaN, on time.

Builders are found by ``mfteach.widgets.discover()`` (each chapter module's ``LIVE_WIDGETS`` and
``EXPLORERS``); a new chapter is covered by listing its builders, with no change here. Each live
widget is driven to every control's minimum and maximum (every option of a dropdown) with the
other controls at their defaults, then through three seeded random combinations, by
``check_live_widget``: every update cold (caches cleared, PNG encoding included), within
``UPDATE_BUDGET_S`` at the defaults and in the median, and within ``UPDATE_MAX_S`` everywhere.
Explorers are built in strict mode, so a frame that fails or plots NaN fails here instead of
shipping as a message frame. ``test_framework.py`` shows that these checks fail on broken
widgets.
"""

from __future__ import annotations

import importlib

import pytest

pytest.importorskip("ipywidgets")

import ipywidgets  # noqa: E402

from mfteach.widgets import (  # noqa: E402
    STATIC_BUILD_ENV,
    STRICT_ENV,
    UPDATE_BUDGET_S,
    UPDATE_MAX_S,
    LiveWidget,
    builder_id,
    check_explorer,
    check_live_widget,
    discover,
)

REGISTRY = discover()
N_RANDOM = 3  # random combinations per widget, on top of every control's extremes


@pytest.mark.parametrize("builder", REGISTRY.live, ids=builder_id)
def test_live_widget_sweep(builder, seed):
    widget = builder()
    assert isinstance(widget, LiveWidget), f"{builder_id(builder)} must return a LiveWidget"
    # The budget is stated once: a chapter may ask for less, never for more.
    assert widget.budget_s <= UPDATE_BUDGET_S and 2 * widget.budget_s <= UPDATE_MAX_S
    problems = check_live_widget(widget, n_random=N_RANDOM, seed=seed)
    assert not problems, f"{builder_id(builder)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("builder", REGISTRY.live, ids=builder_id)
def test_live_widget_controls_update_on_release_and_redraw(builder):
    widget = builder()
    for name, control in widget.controls.items():
        if hasattr(control, "continuous_update"):
            assert control.continuous_update is False, f"{name} updates while dragging"
    output = widget.widget.children[-1]
    assert isinstance(output, ipywidgets.Output)
    assert "image/png" in output.outputs[0]["data"], "no figure at the default settings"


@pytest.mark.parametrize("builder", REGISTRY.live, ids=builder_id)
def test_live_widget_static_view_is_disabled_with_one_figure(builder, monkeypatch):
    """What the static HTML shows: every control disabled, the notice, the figure once."""
    monkeypatch.setenv(STATIC_BUILD_ENV, "1")
    widget = builder()
    box, notice, figure = widget.static_view()
    enabled = [name for name, c in widget.controls.items() if not c.disabled]
    assert not enabled, f"{builder_id(builder)}: controls left enabled: {enabled}"
    assert all(c in box.children for c in widget.controls.values())
    assert "Jupyter" in notice["text/plain"]
    assert "image/png" in figure, f"no figure at the defaults: {figure.get('text/plain')}"
    assert not any(isinstance(c, ipywidgets.Output) for c in box.children)


@pytest.mark.parametrize("builder", REGISTRY.explorers, ids=builder_id)
def test_explorer_builds_with_every_frame(builder, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")  # a failing or NaN frame raises, naming the frame
    box = builder()
    problems = check_explorer(box)
    assert not problems, f"{builder_id(builder)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("module", REGISTRY.modules)
def test_every_chapter_has_a_static_explorer(module):
    """CONTRIBUTING.md: each chapter has at least one explorer that works without a kernel."""
    mod = importlib.import_module(module)
    assert list(getattr(mod, "EXPLORERS", [])), f"{module} lists no EXPLORERS"


def _unlabelled_axes(figure) -> list[str]:
    """Data axes of ``figure`` without an x or y label (colorbars and empty axes excluded)."""
    bad = []
    for i, ax in enumerate(figure.axes):
        if ax.get_label() == "<colorbar>" or not ax.axison:
            continue
        if not (ax.lines or ax.collections or ax.images or ax.patches):
            continue
        if not ax.get_xlabel().strip() or not ax.get_ylabel().strip():
            bad.append(f"axes {i} ({ax.get_title() or 'untitled'}): "
                       f"xlabel={ax.get_xlabel()!r}, ylabel={ax.get_ylabel()!r}")
    return bad


@pytest.mark.parametrize("builder", REGISTRY.live, ids=builder_id)
def test_live_widget_axes_are_labelled(builder):
    widget = builder()
    result = widget.render(**widget.default_values())
    assert result.figure is not None, result.message
    bad = _unlabelled_axes(result.figure)
    assert not bad, f"{builder_id(builder)}: " + "; ".join(bad)
