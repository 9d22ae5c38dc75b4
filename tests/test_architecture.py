"""The layer rules of DESIGN.md hold, and the engine imports without Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_kept():
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


BLOCK_QT = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6'):
            raise ImportError('Qt is blocked in this process: ' + name)
sys.meta_path.insert(0, Block())
import pkgutil, importlib, ovpaint
skip = ('ovpaint.app',)
for m in pkgutil.walk_packages(ovpaint.__path__, 'ovpaint.'):
    if not m.name.startswith(skip):
        importlib.import_module(m.name)
import ovpaint.core, ovpaint.pipelines
assert 'PySide6' not in sys.modules
print('ok')
"""


def test_engine_imports_without_qt():
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_QT], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_core_imports_without_torch():
    code = (
        "import sys, pkgutil, importlib, ovpaint.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'ovpaint.core.'): importlib.import_module(m.name)\n"
        "bad = [m for m in ('torch', 'PySide6') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_code_is_ruff_clean():
    """DESIGN.md: ruff lints and formats the project; a drift shows here, not in review."""
    exe = Path(sys.executable).with_name("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
