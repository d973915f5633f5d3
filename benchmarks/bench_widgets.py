"""Live widget responsiveness: seconds per cold update, against the one stated budget.

For every ``LiveWidget`` found by ``mfteach.widgets.discover()`` this times
``LiveWidget.cold_update()`` at the defaults and at every setting of ``sweep_settings`` (each
control's extremes and options, plus seeded random combinations): what a reader waits for after
releasing a control at a setting not seen before (caches cleared; compute, plot, finiteness
check and PNG encoding; the smaller of wall-clock and CPU time, so other jobs on the machine do
not count). Reports the default, median and maximum against ``UPDATE_BUDGET_S`` (the default and
the median must be within it) and ``UPDATE_MAX_S`` (the maximum). Also reports each explorer's
build time (paid once, at book build) and its frame count.
"""

from __future__ import annotations

import gc
import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")


def _cold_times(widget, settings) -> list[tuple[str, float, bool]]:
    rows = []
    for label, values in settings:
        gc.collect()
        result = widget.cold_update(**values)
        rows.append((label, result.seconds, result.ok))
    return rows


def run(quick: bool = False) -> dict:
    """Time every discovered widget; returns ``{"live": {...}, "explorers": {...}}``."""
    from mfteach.widgets import UPDATE_BUDGET_S, UPDATE_MAX_S, builder_id, discover, sweep_settings

    registry = discover()
    n_random = 1 if quick else 3
    live = {}
    for builder in registry.live:
        widget = builder()
        widget.cold_update()  # warm-up of the process (imports, fonts, PNG codec)
        settings = [("defaults", widget.default_values())]
        settings += sweep_settings(widget, n_random=n_random, seed=0)
        rows = _cold_times(widget, settings)
        times = [t for _, t, _ in rows]
        default, median, worst = rows[0][1], statistics.median(times), max(times)
        live[builder_id(builder)] = {
            "cold_default_s": round(default, 3), "cold_median_s": round(median, 3),
            "cold_max_s": round(worst, 3),
            "slowest_setting": max(rows, key=lambda r: r[1])[0],
            "settings": len(rows), "messages": sum(not ok for _, _, ok in rows),
            "within_budget": max(default, median) <= UPDATE_BUDGET_S and worst <= UPDATE_MAX_S}
    explorers = {}
    for builder in registry.explorers:
        t0 = time.perf_counter()
        box = builder()
        explorers[builder_id(builder)] = {"build_s": round(time.perf_counter() - t0, 2),
                                          "frames": getattr(box, "frames", None),
                                          "failed_frames": len(getattr(box, "failed_frames",
                                                                       {}))}
    return {"budget_s": UPDATE_BUDGET_S, "max_s": UPDATE_MAX_S, "live": live,
            "explorers": explorers,
            "all_within_budget": all(v["within_budget"] for v in live.values())}


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
