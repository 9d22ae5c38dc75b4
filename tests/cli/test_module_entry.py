"""``python -m ovpaint.cli`` is the ``ovpaint`` command: same output, same exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ovpaint import __version__

ROOT = Path(__file__).resolve().parents[2]


def _module(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "ovpaint.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_dash_m_runs_the_command_and_keeps_its_exit_codes(tmp_path):
    done = _module("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"ovpaint {__version__}"
    # a usage error: argparse's one line, exit 2
    done = _module("segment", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("ovpaint: error:") and "\n" not in done.stderr.strip()
    # an error raised by the command itself comes back as its code, not as a traceback
    missing = tmp_path / "missing.png"
    done = _module(
        "--models", "tiny", "segment", str(missing), "--prompt", "a", "--out", "o.png", cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"ovpaint: File not found: {missing}"
    assert not (tmp_path / "o.png").exists()
