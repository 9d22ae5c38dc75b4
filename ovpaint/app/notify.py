"""The window's one notification area.

Rules a person can predict:

- One message at a time, in one strip above the canvas; nothing stacks.
- An error stays until dismissed, replaced by a newer error, or superseded by a success of
  the same topic (a failed export is cleared by the export that then works).
- A note or warning never hides an error of another topic: it goes to the status bar instead.
- An error's details (the traceback, the log file) are one click away: the Details button.
- A message may carry one action (e.g. "Get Models…") that fixes what it reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStatusBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

KINDS = ("error", "warning", "info", "success")


@dataclass
class Notice:
    text: str
    kind: str
    topic: str | None = None
    details: str | None = None
    action: tuple[str, Callable[[], None]] | None = None
    at: float = 0.0


class NotificationArea(QWidget):
    """The strip above the canvas. ``show_message`` / ``succeeded`` / ``clear``."""

    STYLES = {
        "error": "background:#7a1f1f;color:white;",
        "warning": "background:#7a5a12;color:white;",
        "info": "background:#20456e;color:white;",
        "success": "background:#1f5a2c;color:white;",
    }
    ICONS = {"error": "⛔", "warning": "⚠", "info": "ℹ", "success": "✓"}

    changed = Signal(object)  # the Notice shown, or None

    def __init__(self, parent: QWidget | None = None, status_bar: QStatusBar | None = None):
        super().__init__(parent)
        self.setObjectName("notificationArea")
        self.status_bar = status_bar
        self.current: Notice | None = None
        self.history: list[Notice] = []
        self.icon = QLabel()
        self.label = QLabel()
        self.label.setObjectName("notificationText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton()
        self.action_button.setObjectName("notificationAction")
        self.action_button.clicked.connect(self._run_action)
        self.details_button = QToolButton()
        self.details_button.setObjectName("notificationDetailsButton")
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show what exactly went wrong")
        self.details_button.toggled.connect(self._toggle_details)
        close = QToolButton()
        close.setObjectName("notificationClose")
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        self.details = QPlainTextEdit()
        self.details.setObjectName("notificationDetails")
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(140)
        self.details.hide()
        row = QHBoxLayout()
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.icon)
        row.addWidget(self.label, 1)
        row.addWidget(self.action_button)
        row.addWidget(self.details_button)
        row.addWidget(close)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(row)
        column.addWidget(self.details)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.hide()

    # ------------------------------------------------------------------ API
    @property
    def text(self) -> str:
        return self.current.text if self.current is not None and self.isVisible() else ""

    @property
    def kind(self) -> str:
        return self.current.kind if self.current is not None else ""

    def show_message(
        self,
        text: str,
        kind: str = "error",
        *,
        topic: str | None = None,
        details: str | None = None,
        action: tuple[str, Callable[[], None]] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        notice = Notice(text, kind, topic, details, action, time.time())
        self.history = (self.history + [notice])[-50:]
        shown = self.current if self.isVisible() else None
        if (
            shown is not None
            and shown.kind == "error"
            and kind != "error"
            and not (kind == "success" and topic is not None and topic == shown.topic)
        ):
            self._to_status_bar(notice)  # never hide an error behind a note
            return
        self._show(notice)

    def succeeded(self, topic: str, text: str | None = None) -> None:
        """An operation of ``topic`` worked: the error it supersedes goes; ``text`` is shown
        as a success (or in the status bar while another topic's error is up)."""
        shown = self.current if self.isVisible() else None
        if text:
            self.show_message(text, "success", topic=topic)
        elif shown is not None and shown.topic == topic and shown.kind in ("error", "warning"):
            self.dismiss()

    def clear(self, kinds: tuple[str, ...] = KINDS) -> None:
        if self.current is not None and self.current.kind in kinds:
            self.dismiss()

    def dismiss(self) -> None:
        self.current = None
        self.details_button.setChecked(False)
        self.hide()
        self.changed.emit(None)

    # ------------------------------------------------------------------ internals
    def _show(self, notice: Notice) -> None:
        self.current = notice
        self.setStyleSheet(self.STYLES[notice.kind])
        self.icon.setText(self.ICONS[notice.kind])
        self.label.setText(notice.text)
        self.details_button.setChecked(False)
        self.details_button.setVisible(bool(notice.details))
        self.details.setPlainText(notice.details or "")
        self.action_button.setVisible(notice.action is not None)
        if notice.action is not None:
            self.action_button.setText(notice.action[0])
        self.show()
        self.changed.emit(notice)

    def _to_status_bar(self, notice: Notice) -> None:
        if self.status_bar is not None:
            self.status_bar.showMessage(notice.text, 10_000)

    def _toggle_details(self, on: bool) -> None:
        self.details.setVisible(on and bool(self.details.toPlainText()))

    def _run_action(self) -> None:
        if self.current is not None and self.current.action is not None:
            callback = self.current.action[1]
            self.dismiss()
            callback()
