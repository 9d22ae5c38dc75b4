"""The log file lives in the user data folder, rotates, and is set up once."""

from __future__ import annotations

import logging

import pytest

from ovpaint.core import logs


@pytest.fixture
def fresh_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("OVPAINT_DATA_DIR", str(tmp_path / "data"))
    logs.shutdown_logging()
    yield tmp_path / "data" / "logs"
    logs.shutdown_logging()


def test_log_file_in_the_data_folder_and_set_up_once(fresh_logs):
    path = logs.setup_logging(console=False)
    assert path == fresh_logs / logs.LOG_NAME and logs.log_path() == path
    handlers = len(logging.getLogger().handlers)
    assert logs.setup_logging(console=False) == path
    assert len(logging.getLogger().handlers) == handlers  # no second handler
    logging.getLogger("ovpaint.test").warning("a line for the report")
    text = path.read_text("utf-8")
    assert "a line for the report" in text and "WARNING" in text
    assert (fresh_logs / logs.FAULTS_NAME).exists()  # native crashes go beside it


def test_log_rotates(fresh_logs, monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 2_000)
    path = logs.setup_logging(console=False)
    for i in range(200):
        logging.getLogger("ovpaint.test").warning("line %d %s", i, "x" * 40)
    rotated = sorted(p.name for p in fresh_logs.glob(logs.LOG_NAME + ".*"))
    assert rotated == [f"{logs.LOG_NAME}.{i}" for i in range(1, logs.BACKUPS + 1)]
    assert path.stat().st_size <= 2_000 + 200


def test_unwritable_data_folder_falls_back_to_temp(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("OVPAINT_DATA_DIR", str(blocker / "data"))  # under a file
    folder = logs.log_dir()
    assert folder.is_dir() and "ovpaint-logs" in folder.name
