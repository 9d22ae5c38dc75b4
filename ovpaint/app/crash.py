"""The crash dialog: an unexpected exception anywhere (a slot, a thread) is logged with its
traceback and shown in a dialog that says where the log file is, so a user of the frozen app
(no console) can report it. The window stays open: the document and its autosave survive."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)


class CrashDialog(QDialog):
    def __init__(self, summary: str, details: str, log_file: Path | None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("crashDialog")
        self.setWindowTitle("ovpaint ran into a problem")
        self.details_text = details
        where = (
            f"The details were written to the log file:<br><b>{log_file}</b><br>"
            "Please attach it when you report the problem."
            if log_file is not None
            else "No log file could be written on this computer; copy the details below."
        )
        self.message = QLabel(
            f"An unexpected error occurred: <i>{_escape(summary)}</i><br><br>"
            "Your open document is still here; save it under a new name to be safe.<br><br>" + where
        )
        self.message.setObjectName("crashMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QPlainTextEdit(details)
        self.details.setObjectName("crashDetails")
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.toggle = QPushButton("Details")
        self.toggle.setCheckable(True)
        self.toggle.toggled.connect(self.details.setVisible)
        copy = QPushButton("Copy Details")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(details))
        buttons.addButton(self.toggle, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        if log_file is not None:
            folder = QPushButton("Open Log Folder")
            folder.setObjectName("openLogFolder")
            folder.clicked.connect(lambda: open_folder(log_file.parent))
            buttons.addButton(folder, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)
        self.resize(560, 240)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def open_folder(folder: Path) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class CrashReporter(QObject):
    """Installs ``sys.excepthook`` and ``threading.excepthook``; every uncaught exception is
    logged, and shown (on the UI thread) in one :class:`CrashDialog` at a time."""

    crashed = Signal(str, str)

    def __init__(self, log_file: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file
        self.dialog: CrashDialog | None = None
        self.count = 0
        self._previous = None
        self.crashed.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def _excepthook(self, kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        self.report(kind, value, tb)

    def _thread_hook(self, args) -> None:
        if args.exc_type is SystemExit:
            return
        self.report(args.exc_type, args.exc_value, args.exc_traceback)

    def report(self, kind, value, tb) -> None:
        details = "".join(traceback.format_exception(kind, value, tb))
        log.critical("uncaught exception\n%s", details)
        self.count += 1
        summary = f"{kind.__name__}: {value}" if str(value) else kind.__name__
        self.crashed.emit(summary[:300], details)

    def _show(self, summary: str, details: str) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.details.appendPlainText("\n" + details)  # one dialog, all the reports
            return
        parent = self.parent() if isinstance(self.parent(), QWidget) else None
        self.dialog = CrashDialog(summary, details, self.log_file, parent)
        self.dialog.show()
        self.dialog.raise_()
