"""The main window."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow


class MainWindow(QMainWindow):
    def __init__(self, manager, parent=None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.setWindowTitle("ovpaint")
        self.resize(1280, 800)
        self.profile_label = QLabel(manager.banner())
        self.profile_label.setObjectName("profileLabel")
        self.statusBar().addPermanentWidget(self.profile_label)
        self.statusBar().showMessage("Open an image to begin.")
