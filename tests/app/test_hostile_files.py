"""Hostile files met by the running window: a crafted project is one message, the open work
is kept and the canvas keeps painting (a colour of one component used to kill the process from
paint); damaged settings never stop the app from starting."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from ovpaint.core import project
from ovpaint.core.document import Document
from tests.app.conftest import open_in, wait_idle


def _crafted(tmp_path, **changes):
    doc = Document(np.full((40, 60, 3), 90, np.uint8))
    doc.layers.append(doc.new_mask_layer("sky", np.eye(40, 60, dtype=bool)))
    good = project.save_project(doc, tmp_path / "good.ovpaint")
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    info = json.loads(members["project.json"])
    info["layers"][0].update(changes)
    text = json.dumps(info).replace('"opacity": "NAN"', '"opacity": NaN')
    members["project.json"] = text.encode()
    path = tmp_path / "crafted.ovpaint"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"color": [255]}, "colour"),
        ({"color": [999, 0, 0]}, "colour"),
        ({"opacity": "NAN"}, "JSON"),
        ({"opacity": 1e308}, "opacity"),
        ({"meta": json.loads("[" * 40 + "]" * 40)}, "nested"),
    ],
)
def test_crafted_project_is_a_message_in_the_window(
    qtbot, window, image_file, tmp_path, changes, message
):
    doc = open_in(qtbot, window, image_file)
    window.layers.new_mask()
    window.open_path(str(_crafted(tmp_path, **changes)))
    wait_idle(qtbot, window)
    window.canvas.viewport().repaint()  # painting the canvas must still work
    qtbot.wait(20)
    assert window.context.document is doc and len(doc.layers) == 1
    assert window.banner.isVisible() and message in window.banner.text
    assert "crafted.ovpaint" in window.banner.text


def test_a_valid_project_still_opens_and_paints(qtbot, window, tmp_path):
    path = _crafted(tmp_path, color=[10, 200, 30], opacity=0.5)
    doc = open_in(qtbot, window, path)
    window.canvas.viewport().repaint()
    assert doc.layers[0].color == (10, 200, 30) and doc.layers[0].opacity == 0.5


@pytest.mark.parametrize(
    "case",
    ["config folder is a file", "damaged settings", "model_dir a file", "data folder a file"],
)
def test_the_app_starts_whatever_the_settings(qtbot, tmp_path, monkeypatch, case):
    from ovpaint.app.launch import build_window, parse_args

    config = tmp_path / "config"
    if case == "data folder a file":  # where autosave copies live
        (tmp_path / "data").write_text("not a folder")
        monkeypatch.setenv("OVPAINT_DATA_DIR", str(tmp_path / "data"))
    if case == "config folder is a file":
        config.write_text("not a folder")
        words = "cannot be used"
    else:
        config.mkdir()
        content = '{"autosave_seconds": ' + "[" * 500 + "]" * 500 + "}"
        if case == "model_dir a file":
            content = json.dumps({"model_dir": str(config / "settings.json")})
        (config / "settings.json").write_text(content)
        words = "nested" if case == "damaged settings" else ""
    monkeypatch.setenv("OVPAINT_CONFIG_DIR", str(config))
    window = build_window(parse_args(["--models", "tiny"]))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.files.offer_recovery(ask=True)  # what the launcher does next
    if case == "data folder a file":
        words = "cannot be used"
    if words:
        assert window.banner.isVisible() and words in window.banner.text
    window.close()


def test_two_windows_never_touch_each_others_autosave(qtbot, window, tiny_manager, image_file):
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings

    other = MainWindow(tiny_manager, settings=Settings())
    qtbot.addWidget(other)
    for win in (window, other):
        open_in(qtbot, win, image_file)
        win.layers.new_mask()
    window.layers.new_mask()  # the first window's document has two layers, the other's one
    for win in (window, other):
        win.files.autosave()
        qtbot.waitUntil(lambda w=win: w.files.last_autosave is not None, timeout=20_000)
    first, second = window.files.recovery.path, other.files.recovery.path
    assert first != second
    assert len(project.load_project(first).layers) == 2
    assert len(project.load_project(second).layers) == 1
    other.files.shutdown_clean()  # a clean exit of one window ...
    assert not second.exists() and first.exists()  # ... keeps the other's copy
    assert first not in project.find_recoveries()  # and a live window's copy is not offered
    other.workers.wait_for_done(10_000)
