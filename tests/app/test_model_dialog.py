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


def test_precision_table_shows_the_measured_choice_and_measures_again(qtbot, tmp_path, monkeypatch):
    """The dialog lists every workload's measured precision and speed ratios; Measure Again
    runs the calibration on the worker pool (with progress) and refreshes the table."""
    import torch

    from ovpaint.app.model_dialog import ModelDialog
    from ovpaint.app.workers import WorkerPool
    from ovpaint.models import calibration as C
    from ovpaint.models.manager import ModelManager

    def probe(device, precision):  # a quick stand-in: a matrix product in that precision
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.float32}
        a = torch.ones(64, 64, dtype=dtype[precision])
        return lambda: a @ a

    fakes = {
        "quick": C.Workload("quick", "a quick product", probe, int8=True),
        "other": C.Workload("other", "another product", probe),
    }
    monkeypatch.setattr(C, "_WORKLOADS", fakes)
    settings = Settings(tmp_path / "settings.json")
    calibrator = C.Calibrator(tmp_path / "precision.json")
    manager = ModelManager(profile="tiny", device="cpu", settings=settings, calibrator=calibrator)
    dialog = ModelDialog(manager, settings, WorkerPool())
    qtbot.addWidget(dialog)
    table = dialog.precision_table
    qtbot.waitUntil(lambda: dialog.precision_read is None, timeout=10_000)
    assert table.rowCount() == 2
    assert [table.item(r, 1).text() for r in range(2)] == ["not measured yet"] * 2

    events = []
    dialog.int8.setChecked(True)
    assert calibrator.allow_int8 and settings["int8_vit"]
    monkeypatch.setattr(dialog, "_on_progress", events.append)
    dialog.measure_precision()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=30_000)
    qtbot.waitUntil(lambda: dialog.precision_read is None, timeout=10_000)
    assert "Measured in" in dialog.status.text()
    stored = calibrator.stored(manager.device)
    for row, name in enumerate(sorted(fakes)):
        result = stored.results[name]
        assert table.item(row, 1).text() == result.choice
        assert ("int8" in table.item(row, 2).text()) == (name == "quick")
    assert any(e.stage.startswith("measuring") for e in events)
    assert "measured in" in dialog.precision_note.text().lower()
