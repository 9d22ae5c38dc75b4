"""Render the application icon (resources/icons/ovpaint.svg) to the PNG sizes desktops use.

    python packaging/render_icons.py OUT_DIR

Writes ``OUT_DIR/hicolor/<n>x<n>/apps/ovpaint.png`` (16-512 px), ``hicolor/scalable/apps/
ovpaint.svg`` (the freedesktop icon theme layout a Linux bundle ships), and ``ovpaint.png``
(1024 px), from which PyInstaller makes the Windows .ico and the macOS .icns. Uses Qt's SVG
renderer on the offscreen platform, so it runs headless.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SOURCE = Path(__file__).resolve().parents[1] / "resources" / "icons" / "ovpaint.svg"


def render(svg: Path, size: int, out: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"not a valid SVG: {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"could not write {out}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(["render_icons"])  # noqa: F841
    out = Path(argv[0])
    for size in SIZES:
        render(SOURCE, size, out / "hicolor" / f"{size}x{size}" / "apps" / "ovpaint.png")
    scalable = out / "hicolor" / "scalable" / "apps" / "ovpaint.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(SOURCE, scalable)
    render(SOURCE, 1024, out / "ovpaint.png")
    print(f"icons in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
