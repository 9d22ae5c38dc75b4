"""Each extension point takes one registration, and every front-end lists what was registered:
a toy method appears in the CLI's ``--help``, runs from the CLI with its own typed settings,
and shows in the app's method lists (prompt box, batch and benchmark tabs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from ovpaint.cli import main
from ovpaint.core.masks import load_label_png
from ovpaint.pipelines.result import BACKGROUND, SegmentationResult
from ovpaint.pipelines.segmentation import methods, settings


@dataclass
class BrightSettings:
    level: int = 128


def run_bright(session, queries, models, segment_settings, *, progress=None, cancel=None):
    """Pixels at least ``bright.level`` bright are the first class."""
    level = segment_settings["bright"].level
    labels = (session.image.mean(-1) >= level).astype(np.int32)
    return SegmentationResult(labels, [BACKGROUND] + [q.name for q in queries], method="bright")


@pytest.fixture
def toy_method(monkeypatch):
    """The toy method, registered with one call and unregistered after the test."""
    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))
    monkeypatch.setattr(settings, "SECTIONS", dict(settings.SECTIONS))
    return methods.register_method(
        methods.Method(
            "bright",
            "Brightness",
            "pixels above a brightness level (toy)",
            methods.DENSE,
            (),
            run_bright,
            {"bright": BrightSettings},
            cost=0.01,
        )
    )


def test_toy_method_is_in_the_cli_help_and_runs_with_its_settings(toy_method, tmp_path, capsys):
    for command in ("segment", "batch", "benchmark"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "bright: Brightness: pixels above a brightness level (toy)" in text
        assert "bright" in text.split("sections:")[1]
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 10:] = 120
    image[:, 20:] = 250
    photo, out = tmp_path / "in.png", tmp_path / "labels.png"
    Image.fromarray(image).save(photo)
    argv = ["--models", "tiny", "segment", str(photo), "--prompt", "lamp", "--method", "bright"]
    assert main([*argv, "--out", str(out), "--set", "bright.level=100"]) == 0
    assert (load_label_png(out) == (image.mean(-1) >= 100)).all()
    assert main([*argv, "--out", str(out), "--set", "bright.level=200"]) == 0
    assert (load_label_png(out) == (image.mean(-1) >= 200)).all()
    assert main([*argv, "--out", str(out), "--set", "bright.levle=1"]) == 2
    assert "bright.levle" in capsys.readouterr().err


def test_toy_method_is_in_the_app_method_lists(toy_method, qtbot, tiny_manager):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings

    window = MainWindow(tiny_manager, settings=Settings())
    qtbot.addWidget(window)
    window.open_batch_dialog()
    panel, dialog = window.prompt, window._batch_dialog
    for combo in (panel.method, dialog.batch_method, dialog.bench_method):
        index = combo.findData("bright")
        assert index >= 0
        tip = combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
        assert "pixels above a brightness level" in tip
    assert panel.method.currentData() == methods.DEFAULT_METHOD
    assert dialog.bench_method.currentData() == methods.DEFAULT_BENCHMARK_METHOD


def test_registration_refuses_a_clash_and_a_bad_record(toy_method):
    with pytest.raises(ValueError, match="already"):

        @dataclass
        class Other:
            level: int = 1

        methods.register_method(
            methods.Method("other", "O", "o", methods.DENSE, (), run_bright, {"bright": Other})
        )
    with pytest.raises(ValueError, match="kind"):
        methods.register_method(methods.Method("x", "X", "x", "magic", (), run_bright))
    with pytest.raises(TypeError, match="defaults"):

        @dataclass
        class NoDefault:
            level: int

        methods.register_method(
            methods.Method("y", "Y", "y", methods.DENSE, (), run_bright, {"y": NoDefault})
        )
