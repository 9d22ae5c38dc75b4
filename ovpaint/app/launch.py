"""Start the desktop app with the same global options as the CLI."""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from ovpaint.core.options import add_global_options

    parser = argparse.ArgumentParser(prog="ovpaint-app", description="ovpaint desktop editor")
    parser.add_argument("image", nargs="?", help="image or project to open")
    add_global_options(parser)
    return parser.parse_args(argv)


def build_window(args: argparse.Namespace):
    """The window for parsed options (a QApplication must exist). Errors become messages."""
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.errors import OvpaintError
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import manager_from_options

    settings = Settings.load()
    try:
        manager = manager_from_options(args.models, args.device, args.dtype, settings)
    except OvpaintError as exc:  # e.g. --device cuda without a GPU: fall back, say why
        from ovpaint.models.manager import ModelManager

        manager = ModelManager(profile=args.models or settings["model_profile"], device="cpu",
                               settings=settings)
        window = MainWindow(manager, settings=settings)
        window.banner.show_message(f"{exc} Using the CPU instead.", "warning")
        return window
    window = MainWindow(manager, settings=settings)
    return window


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ovpaint")
    app.setOrganizationName("ovpaint")
    window = build_window(args)
    window.show()
    if args.image:
        window.open_path(args.image)
    else:
        window.files.offer_recovery(ask=True)
    return app.exec()
