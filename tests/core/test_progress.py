"""Progress a person can read: stages with counts and a time left, previews carried along."""

from __future__ import annotations

import numpy as np

from ovpaint.core.jobs import Preview, Progress, ProgressEvent, clock


def test_describe_counts_units_and_time_left():
    assert ProgressEvent("text", 2, 4, unit="names").describe() == "text 2/4 names"
    assert ProgressEvent("windows", 5, 9).describe() == "windows 5/9"
    assert ProgressEvent("SAM2 points", 12, 60, elapsed=0.5).describe() == "SAM2 points 12/60"
    # 14 steps in 11.5 s: 36 more take about 29.6 s
    event = ProgressEvent("step", 14, 50, elapsed=11.5)
    assert event.describe() == "step 14/50 · 0:30 left"
    assert ProgressEvent("SAM2 image embedding", 0, None).describe() == "SAM2 image embedding"
    assert ProgressEvent("step", 50, 50, elapsed=40).describe() == "step 50/50"  # done: no ETA


def test_clock():
    assert [clock(s) for s in (0, 41, 725, 3723.4)] == ["0:00", "0:41", "12:05", "1:02:03"]


def test_stage_unit_and_preview_reach_listeners():
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    progress.stage("text", 3, unit="names")
    preview = Preview(np.zeros((8, 8, 3), np.uint8), (0, 0, 64, 64))
    progress.update(1, preview=preview)
    progress.update(3)
    assert [(e.stage, e.done, e.total, e.unit) for e in events] == [
        ("text", 0, 3, "names"),
        ("text", 1, 3, "names"),
        ("text", 3, 3, "names"),
    ]
    assert events[1].preview is preview and events[2].preview is None
