"""App test fixtures: a real MainWindow on the tiny profile, images on disk, pointer helpers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402


def scene_image(h: int = 120, w: int = 160) -> np.ndarray:
    """A little scene: blue sky on top, green ground, a brown 'dog' blob."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (110, 160, 230)
    img[h // 2 :] = (70, 140, 60)
    dog = (yy - int(h * 0.7)) ** 2 / (h * 0.12) ** 2 + (xx - w // 2) ** 2 / (w * 0.15) ** 2 < 1
    img[dog] = (120, 80, 40)
    rng = np.random.default_rng(3)
    return np.clip(img.astype(int) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(scene_image()).save(path)
    return path


@pytest.fixture
def window_of(qtbot, monkeypatch):
    """Makes a real MainWindow on a given manager, shown; its jobs are stopped at the end."""
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings

    # dialogs would block a test: any question is answered "discard/no" unless a test says else
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    made = []

    def make(manager):
        win = MainWindow(manager, settings=Settings())
        qtbot.addWidget(win)
        win.resize(1000, 700)
        win.show()
        qtbot.waitExposed(win)
        made.append(win)
        return win

    yield make
    for win in made:
        win.workers.cancel_all()
        win.workers.wait_for_done(20_000)
    QApplication.processEvents()


@pytest.fixture
def window(window_of, tiny_manager):
    return window_of(tiny_manager)


def open_in(qtbot, win, path, timeout=20_000):
    win.open_path(str(path))
    qtbot.waitUntil(
        lambda: win.context.document is not None and not win.context.busy, timeout=timeout
    )
    return win.context.document


def wait_idle(qtbot, win, timeout=60_000):
    qtbot.waitUntil(lambda: not win.context.busy, timeout=timeout)


def _send(widget, kind, pos: QPointF, button, buttons):
    event = QMouseEvent(
        kind,
        pos,
        widget.mapToGlobal(pos.toPoint()),
        button,
        buttons,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def drag(canvas, points, button=Qt.MouseButton.LeftButton):
    """Press at the first image point, move through the rest, release at the last."""
    viewport = canvas.viewport()
    view = [QPointF(canvas.mapFromScene(QPointF(x, y))) for x, y in points]
    _send(viewport, QEvent.Type.MouseButtonPress, view[0], button, button)
    for p in view[1:]:
        _send(viewport, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button)
    _send(viewport, QEvent.Type.MouseButtonRelease, view[-1], button, Qt.MouseButton.NoButton)


def click(canvas, x, y, button=Qt.MouseButton.LeftButton):
    drag(canvas, [(x, y)], button)


class GapMeter:
    """Largest interval between ticks of a 10 ms QTimer: how long the event loop stalled."""

    def __init__(self) -> None:
        import time

        from PySide6.QtCore import QTimer

        self._clock = time.perf_counter
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.max_gap = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now = self._clock()
        if self.last is not None:
            self.max_gap = max(self.max_gap, now - self.last)
        self.last = now
        self.ticks += 1

    def __enter__(self):
        self.last = self._clock()
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.stop()
