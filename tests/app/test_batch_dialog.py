"""The Batch & Benchmark dialog driven like a user: fill the form, start, watch, open results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QDesktopServices

from ovpaint.app.batch_dialog import BatchDialog
from ovpaint.eval.synthetic import color_oracle, make_synthetic
from ovpaint.pipelines.result import SegmentationResult


def _bright(rgb, queries):
    labels = (rgb.mean(-1) > 128).astype(np.int32)
    return SegmentationResult(labels, ["background"] + [q.name for q in queries])


@pytest.fixture
def dialog(qtbot, tiny_manager):
    dlg = BatchDialog(tiny_manager, None, segment_fn=_bright)
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    if dlg.job is not None:
        dlg.job.cancel()
    dlg.workers.wait_for_done(20_000)


@pytest.fixture
def opened(monkeypatch):
    urls = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: urls.append(url.toLocalFile()))
    return urls


def _folder(path, n=3):
    rng = np.random.default_rng(0)
    for i in range(n):
        path.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path / f"{i}.png")


def test_batch_tab_runs_to_a_finished_report(qtbot, dialog, tmp_path, opened):
    _folder(tmp_path / "in")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
    dialog.input_edit.setText(str(tmp_path / "in"))
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.prompt_edit.setText("sky, dog")
    dialog.tabs.setCurrentIndex(0)
    dialog.start_button.click()
    assert dialog.running and dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert dialog.table.rowCount() == 4
    statuses = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(4)}
    assert statuses["broken.jpg"] == "failed" and statuses["0.png"] == "done"
    assert "3 done" in dialog.status.text() and "1 failed" in dialog.status.text()
    assert (tmp_path / "out" / "1.labels.png").exists()
    assert dialog.open_report_button.isEnabled()
    dialog.open_report_button.click()
    dialog.open_folder_button.click()
    assert opened == [str(tmp_path / "out" / "batch_report.json"), str(tmp_path / "out")]
    # Again: everything is skipped, nothing recomputed.
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert "3 skipped" in dialog.status.text()


def test_batch_tab_cancel_then_resume(qtbot, dialog, tmp_path):
    _folder(tmp_path / "in", n=6)
    calls = []

    def slow(rgb, queries):
        calls.append(1)
        if len(calls) == 2:
            dialog.job.cancel()  # as if the user pressed Cancel during the second image
        return _bright(rgb, queries)

    dialog.segment_fn = slow
    dialog.input_edit.setText(str(tmp_path / "in"))
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.prompt_edit.setText("sky")
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert "Cancelled" in dialog.status.text()
    assert len(list((tmp_path / "out").glob("*.labels.png"))) == 1
    dialog.segment_fn = _bright
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert "5 done, 1 skipped" in dialog.status.text()


def test_benchmark_tab_shows_per_class_table_and_charts(qtbot, dialog, tmp_path, opened):
    info = make_synthetic("ade20k", tmp_path / "ade", n_images=3)
    oracle = color_oracle(info.colors)
    dialog.segment_fn = lambda rgb, queries: SegmentationResult(
        oracle(rgb) + 1, ["background"] + [q.name for q in queries]
    )
    dialog.tabs.setCurrentIndex(1)
    dialog.dataset_combo.setCurrentIndex(2)
    dialog.root_edit.setText(str(tmp_path / "ade"))
    dialog.report_edit.setText(str(tmp_path / "rep" / "ade.json"))
    dialog.limit_spin.setValue(2)
    messages = []
    original = dialog._on_progress
    dialog._on_progress = lambda e: (messages.append(e.message), original(e))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert "mIoU" in dialog.status.text(), dialog.status.text()
    data = json.loads((tmp_path / "rep" / "ade.json").read_text())
    assert data["images"] == 2
    names = {dialog.class_table.item(r, 0).text() for r in range(dialog.class_table.rowCount())}
    assert {"sky", "tree"} <= names
    assert not dialog.iou_chart.pixmap().isNull()
    assert not dialog.confusion_chart.pixmap().isNull()
    dialog.open_report_button.click()
    assert opened == [str(tmp_path / "rep" / "ade.json")]


def test_benchmark_tab_compares_ticked_methods(qtbot, dialog, tmp_path, opened):
    info = make_synthetic("voc", tmp_path / "voc", n_images=2)
    oracle = color_oracle(info.colors)
    dialog.segment_fn = lambda rgb, queries: SegmentationResult(
        oracle(rgb) + 1, ["background"] + [q.name for q in queries]
    )
    dialog.tabs.setCurrentIndex(1)
    dialog.dataset_combo.setCurrentIndex(0)
    dialog.root_edit.setText(str(tmp_path / "voc"))
    dialog.report_edit.setText(str(tmp_path / "rep" / "cmp.json"))
    dialog.set_benchmark_methods([])
    dialog.start_button.click()
    assert not dialog.running and "at least one method" in dialog.status.text()
    dialog.set_benchmark_methods(["dense", "refined"])
    assert dialog.benchmark_methods() == ["refined", "dense"]  # in the list's order
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    assert "2 methods" in dialog.status.text(), dialog.status.text()
    table = dialog.comparison_table
    assert dialog.results.currentWidget() is dialog.comparison_tab
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == ["refined", "dense"]
    assert table.item(0, 1).text() == "100.00"
    headers = [
        dialog.class_table.horizontalHeaderItem(c).text()
        for c in range(dialog.class_table.columnCount())
    ]
    assert headers == ["Class", "refined IoU %", "dense IoU %"]
    assert not dialog.comparison_chart.image().isNull()
    assert not dialog.comparison_chart.pixmap().isNull()
    assert not dialog.iou_chart.pixmap().isNull()
    dialog.open_report_button.click()
    assert opened == [str(tmp_path / "rep" / "cmp.json")]
    assert json.loads((tmp_path / "rep" / "cmp.json").read_text())["methods"] == [
        "refined",
        "dense",
    ]


def test_benchmark_error_is_shown_not_raised(qtbot, dialog, tmp_path):
    (tmp_path / "empty").mkdir()
    dialog.tabs.setCurrentIndex(1)
    dialog.root_edit.setText(str(tmp_path / "empty"))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert "Stopped" in dialog.status.text() and "JPEGImages" in dialog.status.text()
    assert dialog.start_button.isEnabled()


def test_main_window_stays_usable(qtbot, window, tiny_manager, tmp_path):
    _folder(tmp_path / "in")
    dlg = BatchDialog(tiny_manager, window, segment_fn=_bright)
    qtbot.addWidget(dlg)
    assert dlg.workers is window.workers and not dlg.isModal()
    dlg.show()
    dlg.input_edit.setText(str(tmp_path / "in"))
    dlg.output_edit.setText(str(tmp_path / "out"))
    dlg.prompt_edit.setText("sky")
    dlg.start_button.click()
    assert window.isEnabled()
    qtbot.waitUntil(lambda: not dlg.running, timeout=30_000)
    assert "3 done" in dlg.status.text()


@pytest.mark.slow
def test_benchmark_tab_compares_the_dense_methods_with_the_tiny_models(qtbot, dialog, tmp_path):
    """SCLIP's and NACLIP's dense methods, each alone and refined by SAM2, in one run through
    the product's segmentation (tiny random models: the numbers mean nothing, the flow does)."""
    make_synthetic("voc", tmp_path / "voc", n_images=1)
    dialog.segment_fn = None
    dialog.tabs.setCurrentIndex(1)
    dialog.dataset_combo.setCurrentIndex(dialog.dataset_combo.findData("voc"))
    dialog.root_edit.setText(str(tmp_path / "voc"))
    dialog.report_edit.setText(str(tmp_path / "rep" / "four.json"))
    methods = ["dense", "refined", "naclip", "naclip-refined"]
    dialog.set_benchmark_methods(methods)
    assert sorted(dialog.benchmark_methods()) == sorted(methods)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=240_000)
    assert "4 methods" in dialog.status.text(), dialog.status.text()
    table = dialog.comparison_table
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount())}
    assert sorted(rows) == sorted(methods)
    for r in rows.values():
        assert 0.0 <= float(table.item(r, 1).text()) <= 100.0  # mIoU
        assert float(table.item(r, 5).text()) > 0.0  # seconds per image
    data = json.loads((tmp_path / "rep" / "four.json").read_text())
    assert sorted(data["methods"]) == sorted(methods) and data["images"] == 1
    # each method ran with its own VOC preset
    assert data["runs"]["naclip"]["settings"]["naclip"] == {"whole_image": True, "prob_thd": 0.1}
    assert data["runs"]["naclip-refined"]["settings"]["naclip"]["whole_image"]
    assert data["runs"]["dense"]["settings"]["dense"]["logit_scale"] == 65.0
    assert not dialog.comparison_chart.image().isNull()
