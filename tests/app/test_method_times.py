"""The method list says what to expect on this machine (the last run, or an estimate from
another method's last run by the cost hints), and the proposal grid is 16×16 on a CPU."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from ovpaint.app.prompt_panel import short_time
from ovpaint.pipelines.segmentation.methods import METHODS
from tests.app import scripted
from tests.app.conftest import open_in, wait_idle


def _item(window, name):
    combo = window.prompt.method
    index = combo.findData(name)
    return combo.itemText(index), combo.itemData(index, Qt.ItemDataRole.ToolTipRole)


def test_expected_times_from_the_last_run(qtbot, window, image_file, monkeypatch):
    text, tip = _item(window, "refined")
    assert text == "refined" and "known after its first run" in tip
    open_in(qtbot, window, image_file)
    scripted.install(monkeypatch, window)
    monkeypatch.setitem(scripted.STATE, "delay", 0.6)  # one class: about 0.6 s
    window.prompt._fill_methods()  # the scripted method into the list the app builds
    window.prompt.method.setCurrentIndex(window.prompt.method.findData(scripted.NAME))
    window.prompt.prompt.setText("sky")
    qtbot.mouseClick(window.prompt.button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    seconds = window.settings["method_seconds"][scripted.NAME]
    assert 0.6 <= seconds < 30
    text, tip = _item(window, scripted.NAME)
    assert text.startswith(f"{scripted.NAME}  —  ~") and "its last run here" in tip
    # another method: scaled by the cost hints (refined ≈ 5× the scripted method's 1×)
    text, tip = _item(window, "refined")
    assert "estimated from scripted's last run" in tip
    assert METHODS["refined"].cost == 5.0
    assert window.prompt.method.currentData() == scripted.NAME  # the choice survived


def test_proposal_grid_is_cheaper_on_a_cpu_and_says_so(qtbot, window):
    panel = window.prompt
    panel.method.setCurrentIndex(panel.method.findData("dense"))
    assert not panel.grid.isVisible()
    assert panel.method_settings("dense") is None
    panel.method.setCurrentIndex(panel.method.findData("proposal"))
    assert panel.grid.isVisible() and panel.grid.currentData() == 16
    assert "32×32 the benchmark keeps" in panel.grid.toolTip()
    assert panel.method_settings("proposal") == {"proposal": {"points_per_side": 16}}
    panel.grid.setCurrentIndex(panel.grid.findData(32))
    assert panel.method_settings("hybrid") == {"proposal": {"points_per_side": 32}}


def test_the_chosen_grid_reaches_the_proposal_run(qtbot, window, image_file, monkeypatch):
    from dataclasses import replace

    grids = []

    def recorded(session, queries, manager, settings, **kw):
        grids.append(settings.proposal.points_per_side)
        return scripted.scripted(session, queries, manager, settings, **kw)

    monkeypatch.setitem(METHODS, "proposal", replace(METHODS["proposal"], run=recorded))
    open_in(qtbot, window, image_file)
    panel = window.prompt
    panel.method.setCurrentIndex(panel.method.findData("proposal"))
    for grid in (16, 32):
        panel.grid.setCurrentIndex(panel.grid.findData(grid))
        panel.prompt.setText("sky")
        qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
        wait_idle(qtbot, window)
    assert grids == [16, 32]


LOAD_S = 1.5  # added to each model load, so loading outweighs a tiny model's compute


@pytest.fixture
def cold_window(qtbot, monkeypatch):
    """A window whose tiny models are not loaded yet, each load taking ``LOAD_S`` longer."""
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    manager = ModelManager(profile="tiny", device="cpu", dtype="fp32")
    real_load = manager._load

    def slow_load(role):
        time.sleep(LOAD_S)
        return real_load(role)

    monkeypatch.setattr(manager, "_load", slow_load)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    win = MainWindow(manager, settings=Settings())
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.workers.cancel_all()
    win.workers.wait_for_done(20_000)


def test_the_expected_time_leaves_out_loading_the_models(qtbot, cold_window, image_file):
    window = cold_window
    stages = []
    show = window.jobbar.show_progress
    window.jobbar.show_progress = lambda event: (stages.append(event.stage), show(event))
    open_in(qtbot, window, image_file)
    panel = window.prompt
    panel.method.setCurrentIndex(panel.method.findData("dense"))
    panel.prompt.setText("sky, dog")

    def run_once():
        stages.clear()
        qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
        wait_idle(qtbot, window)
        assert window.context.document.layers.masks()  # the run was applied
        return window.settings["method_seconds"]["dense"], window.context.last_operation[1]

    recorded, total = run_once()  # the first run loads CLIP, LOAD_S longer than it would
    assert "loading models" in stages and stages.index("loading models") == 0
    assert 0 < recorded <= total - LOAD_S + 0.01
    text, tip = _item(window, "dense")
    assert f"~{short_time(recorded)}" in text and "its last run here" in tip

    recorded, total = run_once()  # loaded now: the whole run is the method's time
    assert "loading models" not in stages
    assert recorded == round(total, 2)
