"""The status bar and the model assistant say which precision each workload computes in (the
stored measurement, then what ran), read on the worker pool, never by measuring."""

from __future__ import annotations

import threading

from ovpaint.core.settings import Settings
from ovpaint.models.calibration import workloads
from ovpaint.models.manager import ModelManager
from tests.app.conftest import open_in, wait_idle
from tests.fixed_precision import manager_measuring, stored_calibrator

MEASURED = {"dense": "bf16", "decoder": "fp32", "scoring": "bf16", "unet": "bf16"}


def _reads_on(calibrator, monkeypatch) -> list[bool]:
    """Records, for each read of the stored measurement, whether it ran on the UI thread."""
    on_ui: list[bool] = []
    real = calibrator.stored

    def stored(device):
        on_ui.append(threading.current_thread() is threading.main_thread())
        return real(device)

    monkeypatch.setattr(calibrator, "stored", stored)
    return on_ui


def test_the_status_bar_names_the_stored_precisions(qtbot, tmp_path, monkeypatch, window_of):
    calibrator = stored_calibrator(tmp_path / "precision.json", MEASURED, monkeypatch)
    on_ui = _reads_on(calibrator, monkeypatch)
    window = window_of(ModelManager(profile="tiny", device="cpu", calibrator=calibrator))
    label = window.profile_label
    expected = "tiny test models · cpu · decoder fp32, dense bf16, scoring bf16, unet bf16"
    qtbot.waitUntil(lambda: label.text() == expected, timeout=10_000)
    assert "weights fp32" in label.toolTip() and "Running on the CPU" in label.toolTip()
    assert on_ui and not any(on_ui)  # read on the worker pool
    assert calibrator.measured == []


def test_the_status_bar_says_what_an_operation_ran_in(qtbot, image_file, window_of):
    manager = manager_measuring("bf16")
    window = window_of(manager)
    label = window.profile_label
    open_in(qtbot, window, image_file)
    assert label.text() == "tiny test models · cpu · precision measured per workload on first use"
    window.prompt.prompt.setText("sky")
    window.prompt.method.setCurrentIndex(window.prompt.method.findData("dense"))
    window.prompt.segment()
    qtbot.waitUntil(lambda: window.op_label.text().startswith("Segment"), timeout=60_000)
    wait_idle(qtbot, window)
    assert "cancelled" not in window.op_label.text()
    assert label.text() == "tiny test models · cpu · dense bf16"
    assert "dense bf16 (others measured on first use)" in label.toolTip()
    assert manager.calibrator.asked == ["dense"]  # the status bar asked nothing more


def test_the_assistant_reads_the_measurement_off_the_ui_thread(qtbot, tmp_path, monkeypatch):
    """The precision table fills from the stored measurement read on the worker pool; the
    int8 choice reads it again and the table follows, the "Now" line and the status bar too."""
    from ovpaint.app.model_dialog import ModelDialog
    from ovpaint.app.workers import WorkerPool

    calibrator = stored_calibrator(
        tmp_path / "precision.json", {**MEASURED, "dense": "int8"}, monkeypatch, allow_int8=True
    )
    calibrator.allow_int8 = False  # stored with int8 timed; the setting is off
    on_ui = _reads_on(calibrator, monkeypatch)
    settings = Settings(tmp_path / "settings.json")
    manager = ModelManager(profile="tiny", device="cpu", settings=settings, calibrator=calibrator)
    dialog = ModelDialog(manager, settings, WorkerPool())
    qtbot.addWidget(dialog)
    summaries = []
    dialog.compute_changed.connect(summaries.append)
    table = dialog.precision_table
    qtbot.waitUntil(lambda: dialog.precision_read is None, timeout=10_000)
    titles = {w.title: name for name, w in workloads().items()}

    def shown() -> dict[str, str]:
        rows = range(table.rowCount())
        return {titles[table.item(r, 0).text()]: table.item(r, 1).text() for r in rows}

    # without int8, dense chooses between fp32 and bf16, timed alike: fp32 stays
    assert shown() == {**MEASURED, "dense": "fp32"}
    assert "dense fp32" in dialog.now_note.text() and "weights fp32" in dialog.now_note.text()
    dialog.int8.setChecked(True)
    qtbot.waitUntil(lambda: dialog.precision_read is None, timeout=10_000)
    assert shown() == {**MEASURED, "dense": "int8"}
    assert "dense int8" in dialog.now_note.text()
    assert summaries[-1].precisions["dense"] == "int8"
    assert on_ui and not any(on_ui)
    assert calibrator.measured == []
    dialog.done(0)
