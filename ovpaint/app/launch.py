"""Start the desktop app with the same global options as the CLI."""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from ovpaint.core.options import add_global_options

    parser = argparse.ArgumentParser(prog="ovpaint-app", description="ovpaint desktop editor")
    parser.add_argument("image", nargs="?", help="image to open")
    add_global_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from ovpaint.app.main_window import MainWindow
    from ovpaint.models.manager import manager_from_options

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ovpaint")
    manager = manager_from_options(args.models, args.device, args.dtype)
    window = MainWindow(manager)
    window.show()
    return app.exec()
