"""Icons shipped in ``resources/icons`` (drawn for ovpaint; see the LICENSE.txt there)."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QIcon

from ovpaint.core.paths import resources_dir


@lru_cache(maxsize=64)
def icon(name: str) -> QIcon:
    """The icon ``name`` (file stem), or an empty icon when this installation lacks it: a
    missing picture must never stop the window from opening."""
    path = resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


def tip(text: str, shortcut: str = "") -> str:
    """A tooltip that names the shortcut, the way every paint program does: "Brush (B)"."""
    return f"{text} ({shortcut})" if shortcut else text
