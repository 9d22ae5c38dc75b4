"""The self-test's own machinery: a failing check is reported and the run goes on, the
temporary home leaves nothing behind, and the generated scene is the same every time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ovpaint import selftest


def test_failures_are_recorded_and_the_run_goes_on():
    seen = []
    test = selftest.SelfTest(on_check=seen.append)
    test.check("passes", lambda: "fine")
    test.check("verdict", lambda: selftest.require(False, "wrong answer"))
    test.check("crashes", lambda: 1 / 0)
    value = test.check("returns", lambda: (42, "the answer", "d1"))
    assert [c.name for c in seen] == ["passes", "verdict", "crashes", "returns"]
    assert [c.ok for c in seen] == [True, False, False, True]
    assert seen[1].detail == "wrong answer"
    assert seen[2].detail.startswith("ZeroDivisionError") and "Traceback" in seen[2].detail
    assert value == 42 and seen[3].detail == "the answer" and seen[3].digest == "d1"
    assert not test.ok
    report = test.report.as_dict()
    assert report["ok"] is False and len(report["checks"]) == 4
    assert "FAIL" in selftest.format_check(seen[1]) and "ok" in selftest.format_check(seen[0])


def test_an_empty_run_is_not_a_pass():
    assert not selftest.SelfTest().ok


def test_isolated_home_moves_every_user_folder_and_leaves_nothing(monkeypatch, tmp_path):
    from ovpaint.core import paths

    monkeypatch.setenv("OVPAINT_HOME", str(tmp_path / "user"))
    monkeypatch.setenv("OVPAINT_MODEL_DIR", str(tmp_path / "weights"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    with pytest.raises(RuntimeError):
        with selftest.isolated_home() as home:
            for folder in (paths.cache_dir(), paths.config_dir(), paths.data_dir()):
                assert Path(folder).is_relative_to(home)
            assert paths.model_dir().is_relative_to(home)
            assert os.environ["HF_HUB_OFFLINE"] == "1"
            assert Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]).is_relative_to(home)
            (home / "written").write_text("x")
            raise RuntimeError("a failing run still cleans up")
    assert not home.exists()
    assert os.environ["OVPAINT_HOME"] == str(tmp_path / "user")
    assert os.environ["OVPAINT_MODEL_DIR"] == str(tmp_path / "weights")
    assert "HF_HUB_OFFLINE" not in os.environ and "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    assert not (tmp_path / "user").exists() and not (tmp_path / "weights").exists()


def test_scene_is_reproducible_and_has_its_dog():
    a, b = selftest.scene(), selftest.scene()
    assert a.shape == (96, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    dog = selftest.dog_mask()
    x, y = selftest.CLICK
    assert dog[y, x] and 0.02 < dog.mean() < 0.2
    assert abs(a[dog].mean(0) - (120, 80, 40)).max() < 4  # the click lands on brown pixels


def test_digest_tells_shape_dtype_and_bytes_apart():
    z = np.zeros((2, 3), np.uint8)
    assert selftest.digest(z) == selftest.digest(z.copy())
    assert selftest.digest(z) != selftest.digest(z.reshape(3, 2))
    assert selftest.digest(z) != selftest.digest(z.astype(np.int32))
    assert selftest.digest(z) != selftest.digest(z + 1)
