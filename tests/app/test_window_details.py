"""Details a person notices: the default method, notes that do not outlive their job, zooming
from the menu about the centre of the view."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF

from tests.app.conftest import open_in, wait_idle


def test_default_method_is_the_cli_default(window):
    assert window.prompt.method.currentData() == "refined"


def test_a_job_clears_the_last_jobs_notes_but_not_errors(qtbot, window, image_file):
    open_in(qtbot, window, image_file)

    def job(*, progress, cancel):
        return 1

    window.banner.show_message("3 classes were not found.", "info")
    window.context.run_job(job, title="Next", on_done=lambda r: None)
    wait_idle(qtbot, window)
    assert window.banner.text == ""
    window.banner.show_message("Could not write the file.", "error")
    window.context.run_job(job, title="Next", on_done=lambda r: None)
    wait_idle(qtbot, window)
    assert "Could not write" in window.banner.text


def test_menu_zoom_keeps_the_centre_of_the_view(qtbot, window, tmp_path):
    from PIL import Image

    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((1500, 2000, 3), np.uint8)).save(path)
    open_in(qtbot, window, path)
    canvas = window.canvas
    canvas.fit()
    canvas.centerOn(QPointF(1200, 700))
    before = canvas.mapToScene(canvas.viewport().rect().center())
    canvas.actual_size()
    after = canvas.mapToScene(canvas.viewport().rect().center())
    assert abs(canvas.zoom - 1.0) < 1e-9
    assert abs(after.x() - before.x()) < 3 and abs(after.y() - before.y()) < 3
