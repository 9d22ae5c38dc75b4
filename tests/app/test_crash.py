"""An uncaught exception (in a slot or a thread) is logged and shown in a dialog that says
where the log file is; the window stays open."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ovpaint.app.crash import CrashReporter


@pytest.fixture
def reporter(tmp_path, caplog):
    rep = CrashReporter(tmp_path / "logs" / "ovpaint.log")
    rep.install()
    yield rep
    rep.uninstall()
    if rep.dialog is not None:
        rep.dialog.close()


@pytest.mark.qt_no_exception_capture
def test_exception_in_a_slot_shows_the_log_path(qtbot, window, reporter, caplog):
    def boom():
        raise RuntimeError("the canvas exploded")

    QTimer.singleShot(0, boom)
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible())
    text = reporter.dialog.message.text()
    assert "the canvas exploded" in text and str(reporter.log_file) in text
    assert "boom" in reporter.dialog.details_text  # the traceback is one click away
    assert not reporter.dialog.details.isVisible()
    reporter.dialog.toggle.click()
    assert reporter.dialog.details.isVisible()
    assert any("the canvas exploded" in r.getMessage() for r in caplog.records)
    assert window.isVisible()


def test_exception_in_a_thread_reaches_the_ui(qtbot, reporter):
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: reporter.dialog is not None, timeout=5_000)
    assert "ZeroDivisionError" in reporter.dialog.message.text()
    # a second report goes into the same dialog, not a second one
    first = reporter.dialog
    reporter.report(ValueError, ValueError("again"), None)
    QApplication.processEvents()
    assert reporter.dialog is first and "again" in first.details.toPlainText()
