"""Damaged settings: every command still runs, says what it could not use, and keeps the
file as it was; a model folder that cannot be used is one line, only for commands that
need it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ovpaint.cli import main


@pytest.fixture
def config(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv("OVPAINT_CONFIG_DIR", str(folder))
    return folder


def run(*argv):
    try:
        return main([*map(str, argv)])
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "content, words",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
        (b'{"local_model_paths": {"clip-vit-b16": 5}}', "local_model_paths"),
        (b'{"local_model_paths": ["x"]}', "local_model_paths"),
        (b'{"max_image_megapixels": 1e308}', "max_image_megapixels"),
        (b'{"autosave_seconds": -5, "device": "quantum"}', "autosave_seconds"),
        (b'{"gpu_memory_budget_gb": NaN}', "not valid JSON"),
    ],
)
def test_damaged_settings_are_said_and_kept(config, capsys, content, words):
    (config / "settings.json").write_bytes(content)
    assert run("models", "list", "--json") == 0
    err = capsys.readouterr().err
    assert words in err and "kept in" in err
    kept = [p for p in config.iterdir() if p.name.startswith("settings.json.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == content
    # the next command starts clean: nothing more to say, no second copy
    assert run("models", "list", "--json") == 0
    assert "settings" not in capsys.readouterr().err
    assert len([p for p in config.iterdir() if "damaged" in p.name]) == 1


def test_settings_file_that_is_a_pipe_does_not_hang(config, capsys):
    import os

    os.mkfifo(config / "settings.json")
    assert run("models", "list", "--json") == 0
    assert "pipe" in capsys.readouterr().err


def test_config_folder_that_is_a_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "config").write_text("x")
    monkeypatch.setenv("OVPAINT_CONFIG_DIR", str(tmp_path / "config"))
    assert run("models", "list", "--json") == 0
    assert "cannot be used: it is a file" in capsys.readouterr().err


@pytest.mark.parametrize("model_dir", ["file", "/proc/no-such-folder"])
def test_unusable_model_dir_is_one_line_for_commands_that_need_it(
    config, tmp_path, capsys, model_dir
):
    target = str(config / "settings.json") if model_dir == "file" else model_dir
    (config / "settings.json").write_text(json.dumps({"model_dir": target}))
    assert run("models", "list") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "model_dir" in err[0]
    # a command that needs no model folder is not affected
    image, mask = tmp_path / "i.png", tmp_path / "m.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(image)
    Image.fromarray(np.eye(20, dtype=np.uint8) * 255).save(mask)
    assert (
        run(
            "inpaint",
            image,
            "--mask",
            mask,
            "--out",
            tmp_path / "o.png",
            "--engine",
            "telea",
            "--quiet",
        )
        == 0
    )
