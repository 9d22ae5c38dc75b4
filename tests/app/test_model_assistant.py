"""The first-run model assistant, and an app that never asks for a terminal command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from tests.app.conftest import open_in, wait_idle

TERMINAL = re.compile(r"`|ovpaint models|--models|hf auth|run the same command", re.I)


@pytest.fixture
def real_window(qtbot, monkeypatch, tmp_path):
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    monkeypatch.setenv("OVPAINT_MODEL_DIR", str(tmp_path / "no-models"))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    settings = Settings(tmp_path / "settings.json")
    window = MainWindow(
        ModelManager(profile="real", device="cpu", settings=settings), settings=settings
    )
    qtbot.addWidget(window)
    window.show()
    yield window
    if window._model_dialog is not None:
        window._model_dialog.close()


def test_first_start_offers_the_missing_models(qtbot, real_window):
    dialog = real_window.offer_models()
    assert dialog is not None and dialog.isVisible()
    assert "4 model(s) are not installed" in dialog.intro.text()
    dialog.at_start.setChecked(False)  # "don't show this at start"
    dialog.done(0)
    assert real_window.settings["models_assistant_at_start"] is False
    assert real_window.offer_models() is None


def test_missing_model_message_names_menus_and_opens_the_assistant(qtbot, real_window, image_file):
    open_in(qtbot, real_window, image_file)
    real_window.prompt.prompt.setText("sky")
    qtbot.mouseClick(real_window.prompt.button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, real_window)
    text = real_window.banner.text
    assert "not installed" in text and "Models → Get Models…" in text
    assert not TERMINAL.search(text), text
    action = real_window.findChild(QPushButton, "notificationAction")
    qtbot.mouseClick(action, Qt.MouseButton.LeftButton)
    assert real_window._model_dialog is not None and real_window._model_dialog.isVisible()
    assert real_window.banner.text == ""


def test_app_messages_never_ask_for_a_terminal():
    """No string the window shows (docstrings aside) names a command or a flag; the
    command-line entry points (launch, self-test) are a terminal's business."""
    import ast

    app = Path(__file__).resolve().parents[2] / "ovpaint" / "app"
    for path in app.glob("*.py"):
        if path.name in ("launch.py", "selftest.py"):
            continue
        tree = ast.parse(path.read_text("utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings:
                    assert not TERMINAL.search(node.value), (path.name, node.value)


def test_cli_keeps_its_commands():
    from ovpaint.models.registry import get_spec
    from ovpaint.models.store import missing_message

    spec = get_spec("clip-vit-b16")
    assert "`ovpaint models download clip-vit-b16`" in missing_message(spec)
    assert not TERMINAL.search(missing_message(spec, app=True))


def test_download_shows_progress_cancels_and_resumes(qtbot, monkeypatch, tmp_path):
    """Against a local stand-in for the hub: progress in the dialog, Cancel keeps the part,
    Download again fetches only the rest and the model is installed."""
    from fake_hub import FakeHub, FakeHubServer
    from huggingface_hub import constants

    from ovpaint.app.model_dialog import ModelDialog
    from ovpaint.app.workers import WorkerPool
    from ovpaint.core.settings import Settings
    from ovpaint.models import download as dl
    from ovpaint.models.manager import ModelManager

    monkeypatch.setenv("OVPAINT_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(dl, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(dl, "PROGRESS_INTERVAL_S", 0.0)
    settings = Settings(tmp_path / "settings.json")
    manager = ModelManager(profile="real", device="cpu", settings=settings)
    spec = manager.spec("clip")
    data = bytes(range(256)) * (48 * 1024 * 4)  # 48 MB
    with FakeHubServer(
        FakeHub(spec.repo, {spec.files[0].path: data}, lfs={spec.files[0].path})
    ) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        dialog = ModelDialog(manager, settings, WorkerPool())
        qtbot.addWidget(dialog)
        dialog.table.selectRow(0)
        values = []
        dialog.progress.valueChanged.connect(values.append)

        def cancel_early(value):
            if value > 0 and dialog.job is not None:
                dialog.cancel_download()

        dialog.progress.valueChanged.connect(cancel_early)
        dialog.download_selected()
        assert dialog.cancel_button.isEnabled()
        qtbot.waitUntil(lambda: dialog.job is None, timeout=60_000)
        assert "press Download to resume" in dialog.status.text()
        part = manager.store.folder(spec) / (spec.files[0].path + dl.PART_SUFFIX)
        kept = part.stat().st_size
        assert 0 < kept < len(data)

        dialog.progress.valueChanged.disconnect(cancel_early)
        dialog.download_selected()
        qtbot.waitUntil(lambda: dialog.job is None, timeout=60_000)
        assert "Installed clip-vit-b16" in dialog.status.text(), dialog.status.text()
        assert hub.file_requests(spec.files[0].path)[-1]["range"] == f"bytes={kept}-"
        assert dialog.table.item(0, 4).text() == "installed"
        assert values and max(values) > 0
        dialog.done(0)
