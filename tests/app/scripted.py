"""A segmentation method with a known answer, registered like any other, so app tests can
check what the window does with a result (random tiny weights decide nothing here)."""

from __future__ import annotations

import time

import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.pipelines.result import SegmentationResult

NAME = "scripted"
STATE = {"sky_rows": 50, "delay": 0.0}


def regions(h: int, w: int) -> dict[str, tuple[slice, slice]]:
    return {
        "sky": (slice(0, STATE["sky_rows"]), slice(0, w)),
        "dog": (slice(70, 100), slice(60, 100)),
        "red car": (slice(100, 115), slice(5, 40)),
        "blue sky": (slice(0, 30), slice(0, w)),
    }


def scripted(session, queries, manager, settings, *, progress=None, cancel=None):
    h, w = session.image.shape[:2]
    if any(q.name == "boom" for q in queries):
        raise BadInput("The scripted method refuses 'boom'.")
    if progress:
        progress.stage("text", len(queries), unit="names")
    labels = np.zeros((h, w), np.int32)
    known = regions(h, w)
    for i, query in enumerate(queries, start=1):
        if cancel:
            cancel.check()
        time.sleep(STATE["delay"])
        if query.name in known:
            labels[known[query.name]] = i
        if progress:
            progress.update(i)
    return SegmentationResult(labels, ["background"] + [q.name for q in queries], method=NAME)


def install(monkeypatch, window) -> None:
    """Register the method for this test and offer it in the window's method list."""
    from ovpaint.pipelines.segmentation.methods import DENSE, METHODS, Method

    method = Method(NAME, "Scripted", "a fixed answer, for tests", DENSE, (), run=scripted)
    monkeypatch.setitem(METHODS, NAME, method)
    monkeypatch.setitem(STATE, "sky_rows", 50)
    monkeypatch.setitem(STATE, "delay", 0.0)
    combo = window.prompt.method
    if combo.findData(NAME) < 0:
        combo.addItem(NAME, NAME)
    combo.setCurrentIndex(combo.findData(NAME))
