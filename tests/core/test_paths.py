"""Where things live: resources in a source tree and in a frozen (PyInstaller) app, and the
environment variables that move every user folder."""

from __future__ import annotations

import sys

import pytest

from ovpaint.core import paths


def test_resources_in_source_tree():
    root = paths.resources_dir()
    assert (root / "classes" / "voc21.txt").is_file()
    assert paths.resource("classes", "voc21.txt").read_text().strip()
    with pytest.raises(FileNotFoundError, match="missing from this installation"):
        paths.resource("no", "such.file")


def test_resources_in_frozen_app(tmp_path, monkeypatch):
    bundle = tmp_path / "_internal"
    (bundle / "resources" / "classes").mkdir(parents=True)
    (bundle / "resources" / "classes" / "voc21.txt").write_text("background\n")
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert paths.resources_dir() == bundle / "resources"
    assert paths.resource("classes", "voc21.txt").read_text() == "background\n"


def test_user_folders_follow_environment(tmp_path, monkeypatch):
    for key in ("OVPAINT_CACHE_DIR", "OVPAINT_CONFIG_DIR", "OVPAINT_DATA_DIR", "OVPAINT_MODEL_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OVPAINT_HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / "cache"
    assert paths.config_dir() == tmp_path / "home" / "config"
    assert paths.data_dir() == tmp_path / "home" / "data"
    assert paths.model_dir() == tmp_path / "home" / "cache" / "models"
    monkeypatch.setenv("OVPAINT_MODEL_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("OVPAINT_CONFIG_DIR", str(tmp_path / "conf"))
    assert paths.model_dir() == tmp_path / "weights" and (tmp_path / "weights").is_dir()
    assert paths.config_dir() == tmp_path / "conf"
