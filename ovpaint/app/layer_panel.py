"""The layer panel: a QListView over a Qt model adapter of the document's layer list.

The adapter owns nothing; it forwards the core list's events as row changes (napari's
``QtListModel`` idiom) and turns edits (rename, visibility) into undo commands. Rows are shown
top layer first, as in every paint program, while the core list is bottom first.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.commands import (
    AddLayersCommand,
    MoveLayerCommand,
    RemoveLayersCommand,
    SetLayerPropertyCommand,
)
from ovpaint.app.context import EditorContext
from ovpaint.app.icons import icon
from ovpaint.core.document import Document, ImageLayer, Layer, MaskLayer, class_color

LayerRole = Qt.ItemDataRole.UserRole + 1


class LayerListModel(QAbstractListModel):
    def __init__(self, context: EditorContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.doc: Document | None = None
        self._icons: dict[tuple, QIcon] = {}

    def set_document(self, doc: Document | None) -> None:
        self.beginResetModel()
        if self.doc is not None:
            layers = self.doc.layers
            layers.inserted.disconnect(self._inserted)
            layers.removed.disconnect(self._removed)
            layers.moved.disconnect(self._moved)
            layers.changed.disconnect(self._changed)
        self.doc = doc
        if doc is not None:
            doc.layers.inserted.connect(self._inserted)
            doc.layers.removed.connect(self._removed)
            doc.layers.moved.connect(self._moved)
            doc.layers.changed.connect(self._changed)
        self.endResetModel()

    # rows: 0 = top layer
    def _row(self, index: int, count: int | None = None) -> int:
        n = len(self.doc.layers) if count is None else count
        return n - 1 - index

    def layer_at(self, row: int) -> Layer | None:
        if self.doc is None or not 0 <= row < len(self.doc.layers):
            return None
        return self.doc.layers[self._row(row)]

    def row_of(self, layer: Layer) -> int:
        return self._row(self.doc.layers.index(layer))

    def _inserted(self, index: int, layer: Layer) -> None:
        row = self._row(index)
        self.beginInsertRows(QModelIndex(), row, row)
        self.endInsertRows()

    def _removed(self, index: int, layer: Layer) -> None:
        # the core list already shrank: count it as it was
        row = self._row(index, len(self.doc.layers) + 1)
        self.beginRemoveRows(QModelIndex(), row, row)
        self.endRemoveRows()

    def _moved(self, old: int, new: int, layer: Layer) -> None:
        # a move, not a reset: the view's current row follows the layer (also on undo)
        src, dst = self._row(old), self._row(new)
        if src != dst:
            self.beginMoveRows(
                QModelIndex(), src, src, QModelIndex(), dst + 1 if dst > src else dst
            )
            self.endMoveRows()

    def _changed(self, layer: Layer, what: str, region) -> None:
        if what == "pixels":
            return
        index = self.index(self.row_of(layer))
        self.dataChanged.emit(index, index)

    # Qt API
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if self.doc is None or parent.isValid() else len(self.doc.layers)

    def flags(self, index: QModelIndex):
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable

    def _icon(self, layer: Layer) -> QIcon:
        if isinstance(layer, MaskLayer):
            key = ("mask", tuple(layer.color))
            color = QColor(*layer.color)
        else:
            key = ("image", layer.role)  # type: ignore[union-attr]
            color = QColor(90, 160, 255) if layer.role == "inpaint" else QColor(200, 200, 200)
        icon = self._icons.get(key)
        if icon is None:
            pix = QPixmap(14, 14)
            pix.fill(color)
            icon = self._icons[key] = QIcon(pix)
        return icon

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        layer = self.layer_at(index.row())
        if layer is None:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return layer.name
        if role == Qt.ItemDataRole.CheckStateRole:
            return Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(layer)
        if role == Qt.ItemDataRole.ToolTipRole:
            kind = (
                "mask"
                if isinstance(layer, MaskLayer)
                else ("inpainting result" if getattr(layer, "role", "") == "inpaint" else "image")
            )
            return f"{layer.name} ({kind}, opacity {layer.opacity:.0%})"
        if role == LayerRole:
            return layer
        return None

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole):  # noqa: N802
        layer = self.layer_at(index.row())
        if layer is None or self.doc is None:
            return False
        if role == Qt.ItemDataRole.EditRole:
            name = str(value).strip()
            if name and name != layer.name:
                self.context.push(SetLayerPropertyCommand(self.doc, layer, "name", name))
            return True
        if role == Qt.ItemDataRole.CheckStateRole:
            visible = Qt.CheckState(value) == Qt.CheckState.Checked
            if visible != layer.visible:
                self.context.push(SetLayerPropertyCommand(self.doc, layer, "visible", visible))
            return True
        return False


class LayerPanel(QWidget):
    """The list plus opacity and the layer operations (up, down, duplicate, delete)."""

    selection_changed = Signal(object)

    def __init__(self, context: EditorContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = LayerListModel(context, self)
        self.view = QListView()
        self.view.setObjectName("layerList")
        self.view.setAccessibleName("Layers")
        self.view.setModel(self.model)
        self.view.setEditTriggers(
            QListView.EditTrigger.DoubleClicked | QListView.EditTrigger.EditKeyPressed
        )
        self.view.selectionModel().currentChanged.connect(self._view_selected)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setObjectName("opacitySlider")
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Opacity of the selected layer")
        self.opacity.valueChanged.connect(self._opacity_changed)
        buttons = QHBoxLayout()
        self.buttons: dict[str, QToolButton] = {}
        for key, text, tip, slot in (
            ("up", "Up", "Move the layer up (Ctrl+])", self.move_up),
            ("down", "Down", "Move the layer down (Ctrl+[)", self.move_down),
            ("new", "New", "New empty mask layer (Ctrl+Shift+N)", self.new_mask),
            ("duplicate", "Copy", "Duplicate the layer (Ctrl+J)", self.duplicate),
            ("delete", "Delete", "Delete the layer (Del)", self.delete),
        ):
            button = QToolButton()
            button.setText(text)
            button.setIcon(icon(f"layer_{key}"))
            button.setToolTip(tip)
            button.setObjectName(f"layer_{key}")
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.buttons[key] = button
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        layout.addLayout(buttons)
        context.document_changed.connect(self._document_changed)
        self._updating = False
        self._document_changed(context.document)

    @property
    def doc(self) -> Document | None:
        return self.context.document

    def _document_changed(self, doc: Document | None) -> None:
        if self.model.doc is not None:
            self.model.doc.layers.selection_changed.disconnect(self._doc_selected)
            self.model.doc.layers.changed.disconnect(self._doc_layer_changed)
        self.model.set_document(doc)
        if doc is not None:
            doc.layers.selection_changed.connect(self._doc_selected)
            doc.layers.changed.connect(self._doc_layer_changed)
        self._doc_selected(doc.layers.selected if doc else None)

    def selected(self) -> Layer | None:
        return self.doc.layers.selected if self.doc is not None else None

    def _view_selected(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self._updating or self.doc is None:
            return
        layer = self.model.layer_at(current.row())
        self.doc.layers.select(layer)

    def _doc_selected(self, layer: Layer | None) -> None:
        self._updating = True
        try:
            if layer is None:
                self.view.selectionModel().clearCurrentIndex()
                self.view.clearSelection()
            else:
                index = self.model.index(self.model.row_of(layer))
                self.view.setCurrentIndex(index)
            self.opacity.setEnabled(layer is not None)
            self.opacity.setValue(int(round((layer.opacity if layer else 1.0) * 100)))
        finally:
            self._updating = False
        self.selection_changed.emit(layer)

    def _doc_layer_changed(self, layer: Layer, what: str, region) -> None:
        if what == "opacity" and layer is self.selected():
            self._updating = True
            self.opacity.setValue(int(round(layer.opacity * 100)))
            self._updating = False

    def _opacity_changed(self, value: int) -> None:
        layer = self.selected()
        if self._updating or layer is None or self.doc is None:
            return
        if abs(layer.opacity - value / 100) > 1e-6:
            self.context.push(SetLayerPropertyCommand(self.doc, layer, "opacity", value / 100))

    def move_up(self) -> None:
        self._move(+1)

    def move_down(self) -> None:
        self._move(-1)

    def _move(self, step: int) -> None:
        layer = self.selected()
        if layer is None:
            return
        index = self.doc.layers.index(layer) + step
        if 0 <= index < len(self.doc.layers):
            self.context.push(MoveLayerCommand(self.doc, layer, index))

    def new_mask(self) -> MaskLayer | None:
        if self.doc is None:
            return None
        layer = self.doc.new_mask_layer(self.doc.unique_name("mask"))
        self.context.push(AddLayersCommand(self.doc, [layer], "New mask"))
        return layer

    def duplicate(self) -> None:
        layer = self.selected()
        if layer is None:
            return
        copy = layer.copy()
        copy.name = self.doc.unique_name(f"{layer.name} copy")
        if isinstance(copy, MaskLayer):
            copy.color = class_color(copy.name, [x.color for x in self.doc.layers.masks()])
        index = self.doc.layers.index(layer) + 1
        self.context.push(AddLayersCommand(self.doc, [copy], f"Duplicate {layer.name}", index))

    def delete(self) -> None:
        layer = self.selected()
        if layer is None:
            return
        self.context.push(RemoveLayersCommand(self.doc, [layer], f"Delete {layer.name}"))


__all__ = ["LayerPanel", "LayerListModel", "ImageLayer"]
