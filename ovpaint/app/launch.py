"""Start the desktop app with the same global options as the CLI."""

from __future__ import annotations

import argparse
import logging
import sys
import threading


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from ovpaint.core.options import add_global_options

    parser = argparse.ArgumentParser(prog="ovpaint-app", description="ovpaint desktop editor")
    parser.add_argument("image", nargs="?", help="image or project to open")
    add_global_options(parser)
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation in the real window on the tiny offline models and exit "
        "(0 = every check passed); writes only to a temporary folder",
    )
    return parser.parse_args(argv)


def build_window(args: argparse.Namespace):
    """The window for parsed options (a QApplication must exist). Errors become messages."""
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.errors import OvpaintError
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import manager_from_options

    settings = Settings.load()
    messages = list(settings.problems)  # a damaged settings file: said, the app runs on
    try:
        manager = manager_from_options(args.models, args.device, args.dtype, settings)
    except OvpaintError as exc:  # e.g. --device cuda without a GPU: fall back, say why
        from ovpaint.models.manager import ModelManager

        manager = ModelManager(
            profile=args.models or settings["model_profile"], device="cpu", settings=settings
        )
        messages.insert(0, f"{exc} Using the CPU instead.")
    window = MainWindow(manager, settings=settings)
    if messages:
        window.banner.show_message(" ".join(messages), "warning")
    return window


def set_app_icon(app) -> None:
    """The window icon, and the desktop entry the window belongs to (Wayland matches the
    taskbar icon through it; packaging/linux/ovpaint.desktop)."""
    from PySide6.QtGui import QIcon

    from ovpaint.core.paths import resources_dir

    path = resources_dir() / "icons" / "ovpaint.svg"
    if path.is_file():
        app.setWindowIcon(QIcon(str(path)))
    app.setDesktopFileName("ovpaint")


ENGINE_MODULES = (
    "ovpaint.pipelines.segmentation.segment",
    "ovpaint.pipelines.segmentation.interactive",
    "ovpaint.pipelines.inpainting.inpaint",
    "ovpaint.models.clip_loader",
    "ovpaint.models.sam2_loader",
    "ovpaint.models.inpaint_loader",
    "ovpaint.models.lama_loader",
    "open_clip",
    "sam2.build_sam",
    "sam2.sam2_image_predictor",
    "diffusers",
)


def warm_up_engine() -> threading.Thread:
    """Import the engine's libraries (open_clip, sam2, diffusers: ~5 s on 2 cores) on a
    background thread right after the window shows. Otherwise the first job imports them while
    it runs, and loading their compiled parts holds the GIL long enough to freeze the UI for a
    quarter of a second at a time; this way the first Segment click starts at once."""
    import importlib

    def run() -> None:
        for name in ENGINE_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the job that needs it reports the real error
                logging.getLogger(__name__).warning("could not preload %s", name, exc_info=True)

    thread = threading.Thread(target=run, name="ovpaint-warm-up", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.self_test:
        from ovpaint.app.selftest import run_app_selftest

        return run_app_selftest(args)
    from ovpaint.core.logs import setup_logging

    log_file = setup_logging()  # the frozen app has no console: the file is the only trace
    from PySide6.QtWidgets import QApplication

    from ovpaint.app.crash import CrashReporter

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ovpaint")
    app.setOrganizationName("ovpaint")
    set_app_icon(app)
    reporter = CrashReporter(log_file, app)
    reporter.install()
    window = build_window(args)
    window.show()
    window.offer_models()
    warm_up_engine()
    if args.image:
        window.open_path(args.image)
    else:
        window.files.offer_recovery(ask=True)
    return app.exec()
