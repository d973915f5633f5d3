"""Live widget responsiveness: seconds per update at the default settings (target < 0.2 s).

For every ``LiveWidget`` found by ``mfteach.widgets.discover()`` this times
``LiveWidget.refresh()``: what a reader waits for after releasing a slider (compute, plot,
finiteness check, PNG encoding into the Output widget). Also reports each explorer's build time
(paid once, at book build) and its frame count.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")

TARGET_S = 0.2


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False) -> dict:
    """Time every discovered widget; returns ``{"live": {...}, "explorers": {...}}``."""
    from mfteach.widgets import builder_id, discover

    registry = discover()
    repeats = 3 if quick else 9
    live = {}
    for builder in registry.live:
        widget = builder()
        _ = widget.widget  # build the view (renders once: warm-up)
        seconds = _median_seconds(widget.refresh, repeats)
        live[builder_id(builder)] = {
            "update_median_s": seconds, "budget_s": widget.budget_s,
            "under_target": seconds < TARGET_S, "repeats": repeats}
    explorers = {}
    for builder in registry.explorers:
        t0 = time.perf_counter()
        box = builder()
        explorers[builder_id(builder)] = {"build_s": time.perf_counter() - t0,
                                          "frames": getattr(box, "frames", None)}
    return {"target_update_s": TARGET_S, "live": live, "explorers": explorers,
            "all_under_target": all(v["under_target"] for v in live.values())}


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
