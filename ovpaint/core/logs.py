"""The log file: a rotating text log in the user data folder, so a frozen app without a console
still leaves a trace a user can send with a bug report.

``setup_logging()`` is called once by each program that wants the file (the desktop app always);
calling it again changes nothing. Native crashes (a segfault in a compiled library) are written
by :mod:`faulthandler` to ``faults.log`` beside it, which Python's logging cannot do.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import tempfile
from pathlib import Path

LOG_NAME = "ovpaint.log"
FAULTS_NAME = "faults.log"
MAX_BYTES = 2_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"

_state: dict = {}


def log_dir() -> Path:
    """``<user data>/logs``, or a folder in the temp dir when the data folder is unwritable."""
    from ovpaint.core.errors import BadInput
    from ovpaint.core.paths import data_dir

    try:
        folder = data_dir() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("", "utf-8")
        probe.unlink()
        return folder
    except (OSError, BadInput):  # BadInput: the data folder setting names an unusable place
        folder = Path(tempfile.gettempdir()) / "ovpaint-logs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def log_path() -> Path | None:
    """The file the log is written to, once :func:`setup_logging` ran."""
    return _state.get("path")


def setup_logging(level: int = logging.INFO, *, console: bool = True) -> Path:
    """Send the root logger to a rotating file (2 MB × 4) and, when there is a console, to
    stderr. Returns the log file's path."""
    if "path" in _state:
        return _state["path"]
    folder = log_dir()
    path = folder / LOG_NAME
    root = logging.getLogger()
    root.setLevel(min(root.level, level))
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(level)
    root.addHandler(handler)
    if console and sys.stderr is not None and not _has_console_handler(root):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.setLevel(level)
        root.addHandler(stream)
    _enable_faulthandler(folder / FAULTS_NAME)
    logging.captureWarnings(True)
    _state.update(path=path, handler=handler)
    logging.getLogger("ovpaint").info("log file: %s", path)
    return path


def _has_console_handler(root: logging.Logger) -> bool:
    return any(
        type(h) is logging.StreamHandler and getattr(h, "stream", None) in (sys.stderr, sys.stdout)
        for h in root.handlers
    )


def _enable_faulthandler(path: Path) -> None:
    try:
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - must stay open for crashes
    except OSError:
        return
    faulthandler.enable(file=stream, all_threads=True)
    _state["faults"] = stream


def shutdown_logging() -> None:
    """Detach the file handler (tests; a second window in the same process keeps it)."""
    handler = _state.pop("handler", None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()
    stream = _state.pop("faults", None)
    if stream is not None:
        faulthandler.disable()
        stream.close()
    _state.pop("path", None)
