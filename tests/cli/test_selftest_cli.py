"""`ovpaint selftest`: passes on the tiny models, writes nothing that outlives it, names a
broken stage, and gives the same output digests in a fresh process (what a build compares a
frozen bundle against)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ovpaint.cli import main

ROOT = Path(__file__).resolve().parents[2]


def engine_checks() -> set[str]:
    """One check per model role and per inpainting engine the installation registers."""
    from ovpaint.models.registry import roles
    from ovpaint.pipelines.inpainting.inpaint import ENGINES

    return (
        {"resources", "torch libraries", "segment by text", "segment by click"}
        | {f"load {role}" for role in roles()}
        | {f"inpaint ({engine})" for engine in ENGINES}
        | {"write and read PNG"}
    )


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")
    )


@pytest.fixture(scope="module")
def passing_run(tiny_manager, tmp_path_factory):
    """One in-process `ovpaint selftest --json` on the session's tiny models (built the same
    way; the fresh-process test below builds its own), with a temporary folder of its own."""
    import contextlib
    import io

    import ovpaint.selftest

    temp_root = tmp_path_factory.mktemp("tmp")
    home = Path(os.environ["OVPAINT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    before = _tree(home)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ovpaint.selftest, "tiny_manager", lambda device, dtype: tiny_manager)
        mp.setattr(tempfile, "tempdir", str(temp_root))
        with contextlib.redirect_stdout(out):
            code = main(["selftest", "--json"])
    return {
        "code": code,
        "report": json.loads(out.getvalue()),
        "home": home,
        "home_before": before,
        "home_after": _tree(home),
        "temp_root": temp_root,
    }


def test_selftest_passes_and_leaves_nothing(passing_run):
    report = passing_run["report"]
    assert passing_run["code"] == 0, report
    assert report["ok"] is True
    names = {c["name"] for c in report["checks"]}
    assert engine_checks() <= names
    assert all(c["ok"] for c in report["checks"])
    digests = {c["name"]: c["digest"] for c in report["checks"] if c["digest"]}
    inpaintings = {name for name in engine_checks() if name.startswith("inpaint (")}
    assert set(digests) == {"segment by text", "segment by click"} | inpaintings
    assert {"inpaint (sd)", "inpaint (telea)"} <= inpaintings
    assert report["info"]["torch"] and report["info"]["frozen"] is False
    assert passing_run["home_after"] == passing_run["home_before"]  # user folders untouched
    temp_root = passing_run["temp_root"]
    assert [p.name for p in temp_root.iterdir() if p.name.startswith("ovpaint")] == []
    assert os.environ["OVPAINT_HOME"] == str(passing_run["home"])


def test_selftest_names_the_broken_stage(capsys, tiny_manager, tmp_path, monkeypatch):
    import ovpaint.pipelines.inpainting.inpaint as inpainting
    import ovpaint.selftest

    monkeypatch.setattr(ovpaint.selftest, "tiny_manager", lambda device, dtype: tiny_manager)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real = inpainting.inpaint

    def leaks_outside(image, mask, settings=None, **kwargs):
        out = real(image, mask, settings, **kwargs).image.copy()
        out[0, 0] ^= np.uint8(1)  # a corner pixel, far from the mask
        return SimpleNamespace(image=out)

    monkeypatch.setattr(inpainting, "inpaint", leaks_outside)
    code = main(["selftest"])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL inpaint (sd)" in captured.out and "FAIL inpaint (telea)" in captured.out
    assert "pixels outside the mask changed" in captured.out
    failed = captured.err.split("self-test FAILED: ", 1)[1].strip().split(", ")
    assert set(failed) == {name for name in engine_checks() if name.startswith("inpaint (")}


@pytest.mark.slow
def test_selftest_in_a_fresh_process_gives_the_same_outputs(passing_run, tmp_path):
    """The command itself, models built from scratch, from another directory and with a bare
    environment: the outputs match the in-process run byte for byte (a frozen build is compared
    with its source install the same way). Byte equality holds on one machine with one thread
    count (the fp32 kernels' summation order follows the threads), so that is passed on."""
    import torch

    in_process = passing_run["report"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ovpaint.cli", "selftest", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout)
    assert fresh["ok"] is True

    def digests(report):
        return {c["name"]: c["digest"] for c in report["checks"] if c["digest"]}

    assert digests(fresh) == digests(in_process)
    home = tmp_path / "home"
    written = _tree(home) if home.exists() else []
    assert [name for name, _ in written if not name.startswith(".cache")] == []
