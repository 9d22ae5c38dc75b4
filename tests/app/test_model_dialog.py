"""The model dialog shows each model's state, refuses bad local files with a message, accepts a
local copy, and reports an offline download as a clear message instead of hanging."""

from __future__ import annotations

from ovpaint.core.settings import Settings
from tests.weight_files import inpaint_folder


def test_states_local_copy_and_offline_download(qtbot, tmp_path):
    from ovpaint.app.model_dialog import ModelDialog
    from ovpaint.app.workers import WorkerPool
    from ovpaint.models.manager import ModelManager

    settings = Settings(tmp_path / "settings.json")
    manager = ModelManager(profile="real", device="cpu", settings=settings)
    workers = WorkerPool()
    dialog = ModelDialog(manager, settings, workers)
    qtbot.addWidget(dialog)
    table = dialog.table
    purposes = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert "Segment" in purposes[0] and "click" in purposes[1] and "Inpaint" in purposes[2]
    assert "remove" in purposes[3]
    assert table.item(0, 3).text() == "MIT" and table.item(0, 2).text().endswith("MB")
    states = [table.item(r, 4).text() for r in range(table.rowCount())]
    assert all(s == "not installed" for s in states)
    assert "4 model(s) are not installed" in dialog.intro.text()
    assert dialog.all_button.isEnabled()

    table.selectRow(0)
    spec = manager.spec("clip")
    pickle = tmp_path / "clip.bin"
    pickle.write_bytes(b"x")
    assert not dialog.use_local(spec, str(pickle))
    assert "clip.bin" in dialog.status.text()
    renamed = tmp_path / "open_clip_model.safetensors"
    renamed.write_bytes(b"not weights")  # the right name is not enough
    assert not dialog.use_local(spec, str(renamed))
    assert "not a safetensors file" in dialog.status.text()
    table.selectRow(2)
    spec = manager.spec("inpaint")
    weights = inpaint_folder(tmp_path / "my-sd")
    assert dialog.use_local(spec, str(weights))
    assert table.item(2, 4).text() == "installed"
    assert settings["local_model_paths"][spec.id] == str(weights.resolve())

    table.selectRow(1)
    dialog.download_selected()  # the tests run offline: a clear message, not a hang
    qtbot.waitUntil(lambda: dialog.job is None, timeout=20_000)
    assert "offline" in dialog.status.text().lower()
    assert "ovpaint models" not in dialog.status.text()  # menus, not terminal commands
    assert "Get Models" in dialog.status.text()
    assert not dialog.cancel_button.isEnabled()
    dialog.done(0)
    assert (tmp_path / "settings.json").exists()
