"""The longest UI-thread stall of each editor action on a 24 MP image, through the real window.

``python -m ovpaint.app.perf_ui --json OUT`` (what ``ovpaint perf --only ui`` runs, in a
process of its own with an offscreen Qt) opens a 6000×4000 photo and, ``--repeats`` times:
segments it (a method with a fixed answer, so the apply step is what is measured, not the
model), clicks with SAM2 (tiny weights), paints a brush stroke, feathers a mask through the
Mask panel, inpaints with the instant fill, and undoes. A 5 ms timer runs on the UI thread
throughout; the longest gap between its ticks from the start of an action until its result is
on screen is that action's stall: what a user feels as a frozen window.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ACTIONS = ("open", "segment apply", "click", "brush", "feather", "inpaint apply", "undo")
SIZE = (4000, 6000)  # 24 MP, height × width
TICK_MS = 5
SETTLE_S = 0.3  # after the result: repaints and queued events still count


def scene(h: int, w: int) -> np.ndarray:
    """A photo-like 24 MP image (smooth sky, ground, an object) that compresses as a photo
    does; random noise would make the PNG decode, not the editor, the subject."""
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.uint8)
    sky = yy < 0.45
    img[..., 0] = np.where(sky, 110 + 60 * yy, 60 + 40 * xx).astype(np.uint8)
    img[..., 1] = np.where(sky, 160 + 40 * yy, 120 + 30 * yy).astype(np.uint8)
    img[..., 2] = np.where(sky, 230 - 30 * xx, 50 + 20 * xx).astype(np.uint8)
    img[int(h * 0.6) : int(h * 0.8), int(w * 0.4) : int(w * 0.6)] = (120, 80, 40)
    return img


def scripted_labels(h: int, w: int, variant: int) -> np.ndarray:
    labels = np.zeros((h, w), np.int32)
    labels[: int(h * (0.45 + 0.02 * variant))] = 1  # sky, a little different each run
    labels[int(h * 0.6) : int(h * 0.8), int(w * 0.4) : int(w * 0.6)] = 2  # the object
    labels[int(h * 0.85) :] = 3  # ground strip
    return labels


class StallMeter:
    """The longest interval between ticks of a precise timer on the UI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.max_gap = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self.last)
        self.last = now

    def measure(self, start, done, timeout: float = 300.0) -> float:
        """Run ``start()`` from the event loop, wait for ``done()``, settle; the longest gap."""
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        deadline = time.perf_counter() + timeout
        finished_at: list[float] = []

        def poll() -> None:
            now = time.perf_counter()
            if not finished_at and done():
                finished_at.append(now)
            if (finished_at and now - finished_at[0] >= SETTLE_S) or now > deadline:
                loop.quit()

        poller = QTimer()
        poller.setInterval(TICK_MS)
        poller.timeout.connect(poll)
        self.max_gap, self.last = 0.0, time.perf_counter()
        self.timer.start()
        poller.start()
        QTimer.singleShot(0, start)
        loop.exec()
        poller.stop()
        self.timer.stop()
        if not finished_at:
            raise TimeoutError(f"{getattr(start, '__name__', 'the action')} did not finish")
        return self.max_gap


@contextmanager
def fixed_method(h: int, w: int) -> Iterator[dict]:
    """A segmentation method with a fixed answer, registered while the measurement runs."""
    from ovpaint.pipelines.result import SegmentationResult
    from ovpaint.pipelines.segmentation.methods import DENSE, METHODS, Method, register_method

    state = {"variant": 0}

    def fixed(session, queries, manager, settings, *, progress=None, cancel=None):
        labels = scripted_labels(h, w, state["variant"])
        names = ["background"] + [q.name for q in queries][:3]
        labels[labels >= len(names)] = 0
        return SegmentationResult(labels, names, method="perf-fixed")

    register_method(Method("perf-fixed", "Fixed", "a fixed answer", DENSE, (), run=fixed))
    try:
        yield state
    finally:
        METHODS.pop("perf-fixed", None)


class Round:
    """One pass over the actions in a window that has the 24 MP photo at ``photo``."""

    def __init__(self, app, window, photo: Path, state: dict) -> None:
        self.app, self.window, self.photo, self.state = app, window, photo, state
        self.ctx = window.context
        self.meter = StallMeter()
        self.finished = 0
        window.workers.job_finished.connect(self._job_finished)

    def _job_finished(self, handle) -> None:
        self.finished += 1

    def job_done(self):
        """A predicate: true once a job submitted after this call finished and none runs."""
        mark = self.finished
        return lambda: self.finished > mark and not self.ctx.busy

    def steps_are(self, n: int):
        return lambda: self.ctx.undo_stack.index() == n

    def run(self) -> dict[str, float]:
        out = self._run()
        for action, seconds in out.items():
            print(f"  {action}: {seconds * 1000:.0f} ms", file=sys.stderr)
        return out

    def _run(self) -> dict[str, float]:
        window, ctx, meter = self.window, self.ctx, self.meter
        h, w = SIZE
        out = {"open": meter.measure(lambda: window.open_path(str(self.photo)), self.job_done())}
        doc = ctx.document
        assert doc is not None and doc.shape == (h, w)
        combo = window.prompt.method
        if combo.findData("perf-fixed") < 0:
            combo.addItem("perf-fixed", "perf-fixed")
        combo.setCurrentIndex(combo.findData("perf-fixed"))
        window.prompt.prompt.setText("sky, object, ground")
        self.state["variant"] = 0
        first = meter.measure(window.prompt.segment, self.job_done())
        self.state["variant"] = 1  # the same classes again: their layers reused, diffs applied
        again = meter.measure(window.prompt.segment, self.job_done())
        assert len(doc.layers) == 3 and ctx.undo_stack.count() == 2
        out["segment apply"] = max(first, again)

        sky, obj, ground = doc.layers
        doc.layers.select(obj)
        window.tools.set_tool("positive")
        out["click"] = meter.measure(
            lambda: window.tools.add_point(w * 0.5, h * 0.7, True), self.job_done()
        )
        window.tools.reset_prompts()

        window.tools.set_tool("brush")
        window.tools.set_brush_radius(60)
        doc.layers.select(sky)
        out["brush"] = meter.measure(self._stroke, self.steps_are(ctx.undo_stack.index() + 1))

        doc.layers.select(obj)
        out["feather"] = meter.measure(self._feather, self.steps_are(ctx.undo_stack.index() + 1))

        panel = window.inpaint  # the instant fill: the apply is measured, not a model
        panel.mode.setCurrentText("remove")
        panel.engine.setCurrentIndex(panel.engine.findData("telea"))
        images = len(doc.layers.images())
        out["inpaint apply"] = meter.measure(window.inpaint.run, self.job_done())
        assert len(doc.layers.images()) == images + 1
        out["undo"] = meter.measure(self._undo_three, self.steps_are(ctx.undo_stack.index() - 3))
        return out

    def _stroke(self) -> None:
        h, w = SIZE
        tools = self.window.tools
        # below the sky mask it paints into, so every stroke changes it
        points = [(w * (0.1 + 0.03 * i), h * (0.5 + 0.005 * i)) for i in range(12)]
        tools.begin_stroke(*points[0])
        for x, y in points[1:]:
            tools.continue_stroke(x, y)
            self.app.processEvents()  # each move repaints, as under a real mouse
        tools.end_stroke()

    def _feather(self) -> None:
        panel = self.window.mask_panel
        panel.feather.setValue(25)
        panel.apply()

    def _undo_three(self) -> None:
        for _ in range(3):  # the inpaint layer, the feather, the brush stroke
            self.window.undo_action.trigger()
            self.app.processEvents()


def run(repeats: int) -> dict[str, list[float]]:
    from PySide6.QtWidgets import QApplication, QMessageBox

    from ovpaint.app.launch import warm_up_engine
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.image_io import save_image
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    app = QApplication.instance() or QApplication(["ovpaint-perf-ui"])
    QMessageBox.question = lambda *a, **k: QMessageBox.StandardButton.Discard  # no dialogs
    h, w = SIZE
    folder = Path(tempfile.mkdtemp(prefix="ovpaint-perf-ui-"))
    photo = folder / "photo24mp.png"
    results: dict[str, list[float]] = {a: [] for a in ACTIONS}
    window = None
    try:
        save_image(photo, scene(h, w))
        with fixed_method(h, w) as state:
            window = MainWindow(ModelManager(profile="tiny", device="cpu"), settings=Settings())
            window.resize(1200, 800)
            window.show()
            app.processEvents()
            warm_up_engine().join()  # as the app does after showing the window
            round_ = Round(app, window, photo, state)
            for _ in range(repeats):
                for action, seconds in round_.run().items():
                    results[action].append(seconds)
    finally:
        if window is not None:
            window.workers.cancel_all()
            window.workers.wait_for_done(60_000)
            window.context.undo_stack.setClean()
            window.close()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ovpaint-perf-ui")
    parser.add_argument("--json", required=True, help="write {action: [seconds, ...]} here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="6000x4000", help="image size WxH (default 24 MP)")
    args = parser.parse_args(argv)
    global SIZE
    width, height = (int(v) for v in args.size.lower().split("x"))
    SIZE = (max(64, min(height, 12_000)), max(64, min(width, 12_000)))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    results = run(max(1, min(20, args.repeats)))
    Path(args.json).write_text(json.dumps(results), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
