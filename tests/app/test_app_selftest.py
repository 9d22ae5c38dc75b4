"""`ovpaint-app --self-test`: passes through the real window on the tiny models, and fails,
naming the step, when the window never appears or the worker pool's job fails."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from ovpaint.app import selftest as app_selftest
from ovpaint.app.launch import parse_args

WINDOW_CHECKS = [
    "open the window",
    "window appeared",
    "open an image",
    "segment in the worker pool",
    "save and reopen a project",
]


@pytest.fixture
def temp_root(monkeypatch, tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _run(manager):
    checks = []
    code = app_selftest.run_app_selftest(
        parse_args(["--self-test"]), manager=manager, on_check=checks.append
    )
    return code, {c.name: c for c in checks}


def test_app_selftest_passes_in_the_real_window(qtbot, tiny_manager, temp_root):
    home = Path(os.environ["OVPAINT_HOME"])
    code, checks = _run(tiny_manager)
    assert code == 0, {n: c.detail for n, c in checks.items() if not c.ok}
    names = list(checks)
    assert names[: len(WINDOW_CHECKS)] == WINDOW_CHECKS
    assert {"segment by text", "inpaint (sd)", "close the window"} <= set(names)
    assert checks["segment in the worker pool"].detail.startswith("layers as the engine's: dog")
    assert checks["segment in the worker pool"].digest
    assert "read back identical" in checks["save and reopen a project"].detail
    report = (temp_root / app_selftest.REPORT_NAME).read_text("utf-8")
    assert report.strip().splitlines()[-1].startswith("self-test passed")
    # only the report stays behind; the temporary home is gone, the user's is untouched
    assert sorted(p.name for p in temp_root.iterdir()) == [app_selftest.REPORT_NAME]
    assert os.environ["OVPAINT_HOME"] == str(home)


def test_app_selftest_fails_when_no_window_appears(qtbot, tiny_manager, temp_root, monkeypatch):
    from ovpaint.app.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "show", lambda self: None)
    monkeypatch.setattr(app_selftest, "WINDOW_TIMEOUT_S", 0.5)
    code, checks = _run(tiny_manager)
    assert code == 1
    assert not checks["window appeared"].ok
    assert "the window being shown did not happen" in checks["window appeared"].detail
    assert "segment in the worker pool" not in checks  # nothing is driven through no window
    report = (temp_root / app_selftest.REPORT_NAME).read_text("utf-8")
    assert "self-test FAILED: window appeared" in report


def test_app_selftest_fails_when_the_worker_job_fails(qtbot, tiny_manager, temp_root, monkeypatch):
    import ovpaint.app.prompt_panel as prompt_panel

    def broken(*args, **kwargs):
        raise RuntimeError("the engine is missing a file")

    monkeypatch.setattr(prompt_panel, "segment_job", broken)
    code, checks = _run(tiny_manager)
    assert code == 1
    failed = {name for name, c in checks.items() if not c.ok}
    assert "segment in the worker pool" in failed
    assert "the engine is missing a file" in checks["segment in the worker pool"].detail
    assert checks["window appeared"].ok and checks["close the window"].ok
