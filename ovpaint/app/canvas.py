"""The canvas: a QGraphicsView that shows a Document and reports pointer input in image pixels.

It is a view of the core document (it listens to the layer list and owns no data). To stay
smooth on a 24-megapixel photo every raster is drawn through :class:`TiledRasterItem`: tiles of
256 px, rendered lazily from an image pyramid (level L = 1/2^L scale) chosen from the zoom,
cached in a small LRU, and invalidated only where a layer reported a change. A brush stroke on
a large mask therefore re-renders a few tiles, and a zoomed-out view paints from a small level.

Scene coordinates are image pixel coordinates. Tools (``tools.py``) receive
``pressed/moved/released(QPointF, buttons, modifiers)`` and draw on the canvas' overlays.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

from ovpaint.app.qimage import mask_to_qimage, rgb_to_qimage, rgba_to_qimage
from ovpaint.core.document import Document, ImageLayer, Layer, MaskLayer, Region

TILE = 256
MAX_LEVEL = 6
TILE_CACHE = 160  # tiles per item (≤ 256 KiB each)


class RasterProvider:
    """Renders tiles of one raster at a pyramid level; subclasses say from which array."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def level_size(self, level: int) -> tuple[int, int]:
        s = 1 << level
        return -(-self.width // s), -(-self.height // s)

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        raise NotImplementedError

    def invalidate(self, region: Region | None) -> None:
        """Forget derived data (pyramid levels) that covered ``region``."""


class RgbProvider(RasterProvider):
    """Pixels with optional alpha; levels are area-averaged once, on first use."""

    def __init__(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
        super().__init__(rgb.shape[1], rgb.shape[0])
        self._levels: dict[int, tuple[np.ndarray, np.ndarray | None]] = {0: (rgb, alpha)}

    def _level(self, level: int) -> tuple[np.ndarray, np.ndarray | None]:
        found = self._levels.get(level)
        if found is None:
            rgb, alpha = self._level(level - 1)
            w, h = self.level_size(level)
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            if alpha is not None:
                alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
            found = self._levels[level] = (rgb, alpha)
        return found

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        rgb, alpha = self._level(level)
        part = rgb[y0:y1, x0:x1]
        return rgba_to_qimage(part, None if alpha is None else alpha[y0:y1, x0:x1])

    def invalidate(self, region: Region | None) -> None:
        self._levels = {0: self._levels[0]}


class MaskProvider(RasterProvider):
    """A mask drawn in one colour, its fill translucent and its outline solid so it stays
    visible over similar colours; levels are strided views (no copy of a 24 MP mask)."""

    FILL = 0.6  # fill alpha relative to the outline; the layer opacity scales both

    def __init__(self, mask: np.ndarray, color: tuple[int, int, int]) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.mask, self.color = mask, color

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        s = 1 << level
        lw, lh = self.level_size(level)
        # one pixel of context on each side so outlines do not break at tile seams
        mx0, my0, mx1, my1 = max(0, x0 - 1), max(0, y0 - 1), min(lw, x1 + 1), min(lh, y1 + 1)
        part = self.mask[my0 * s : my1 * s : s, mx0 * s : mx1 * s : s]
        if part.dtype == np.bool_:
            binary = part.view(np.uint8)
            alpha = binary * np.uint8(round(255 * self.FILL))
        else:
            binary = (part >= 128).view(np.uint8)
            alpha = (part.astype(np.float32) * self.FILL).astype(np.uint8)
        edge = binary > cv2.erode(binary, _CROSS)
        alpha[edge] = 255
        alpha = alpha[y0 - my0 : y0 - my0 + (y1 - y0), x0 - mx0 : x0 - mx0 + (x1 - x0)]
        return mask_to_qimage(alpha, self.color)


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


class FrameBudget:
    """How long one repaint may spend making new tiles. What does not fit is drawn from a
    coarser cached level (or left for a moment) and made in the next frames, so opening a
    24 MP photo or recolouring a large mask never freezes the window for long."""

    def __init__(self, seconds: float = 0.025) -> None:
        self.seconds = seconds
        self._deadline = math.inf

    def start(self) -> None:
        self._deadline = time.perf_counter() + self.seconds

    def allows(self) -> bool:
        return time.perf_counter() < self._deadline

    def unlimited(self) -> None:
        self._deadline = math.inf


class TiledRasterItem(QGraphicsItem):
    """Draws a provider's raster tile by tile at the pyramid level that fits the zoom."""

    def __init__(
        self,
        provider: RasterProvider,
        parent: QGraphicsItem | None = None,
        budget: FrameBudget | None = None,
    ) -> None:
        super().__init__(parent)
        self.provider = provider
        self.budget = budget or FrameBudget(math.inf)
        self.pending = False  # some visible tiles are still to be made
        self._cache: OrderedDict[tuple[int, int, int], QImage] = OrderedDict()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.tiles_rendered = 0  # for tests and perf: how much work paint did

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return QRectF(0, 0, self.provider.width, self.provider.height)

    def set_provider(self, provider: RasterProvider) -> None:
        if (provider.width, provider.height) != (self.provider.width, self.provider.height):
            self.prepareGeometryChange()
        self.provider = provider
        self._cache.clear()
        self.update()

    def invalidate(self, region: Region | None = None) -> None:
        """Drop the cached tiles that intersect ``region`` (image px of this item) and repaint
        just that part."""
        self.provider.invalidate(region)
        if region is None:
            self._cache.clear()
            self.update()
            return
        x0, y0, x1, y1 = region
        for key in list(self._cache):
            level, tx, ty = key
            span = TILE << level
            if tx * span < x1 and (tx + 1) * span > x0 and ty * span < y1 and (ty + 1) * span > y0:
                del self._cache[key]
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _cached(self, level: int, tx: int, ty: int) -> QImage | None:
        img = self._cache.get((level, tx, ty))
        if img is not None:
            self._cache.move_to_end((level, tx, ty))
        return img

    def _tile(self, level: int, tx: int, ty: int) -> QImage:
        key = (level, tx, ty)
        img = self._cached(level, tx, ty)
        if img is not None:
            return img
        lw, lh = self.provider.level_size(level)
        x0, y0 = tx * TILE, ty * TILE
        img = self.provider.tile(level, x0, y0, min(x0 + TILE, lw), min(y0 + TILE, lh))
        self.tiles_rendered += 1
        self._cache[key] = img
        while len(self._cache) > TILE_CACHE:
            self._cache.popitem(last=False)
        return img

    def paint(self, painter: QPainter, option, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        level = 0 if lod >= 1 else min(MAX_LEVEL, int(math.floor(math.log2(1.0 / lod))))
        scale = 1 << level
        span = TILE * scale
        exposed = option.exposedRect.intersected(self.boundingRect())
        if exposed.isEmpty():
            return
        painter.save()
        painter.setClipRect(self.boundingRect())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < 1)
        lw, lh = self.provider.level_size(level)
        tx0 = max(0, int(exposed.left() // span))
        ty0 = max(0, int(exposed.top() // span))
        tx1 = min((lw - 1) // TILE, int(exposed.right() // span))
        ty1 = min((lh - 1) // TILE, int(exposed.bottom() // span))
        pending = False
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                img = self._cached(level, tx, ty)
                if img is None and not self.budget.allows():
                    pending = True
                    self._draw_coarser(painter, level, tx, ty)
                    continue
                if img is None:
                    img = self._tile(level, tx, ty)
                target = QRectF(tx * span, ty * span, img.width() * scale, img.height() * scale)
                painter.drawImage(target, img)
        painter.restore()
        self.pending = pending
        if pending:  # the rest in the next frames, after the event loop had its turn
            QTimer.singleShot(0, self._continue)

    def _continue(self) -> None:
        try:
            if self.scene() is not None:
                self.update()
        except RuntimeError:  # removed from the scene and deleted meanwhile
            pass

    def _draw_coarser(self, painter: QPainter, level: int, tx: int, ty: int) -> None:
        """Stand in for a tile not made yet with the part of a cached coarser one."""
        for up in range(1, MAX_LEVEL - level + 1):
            coarse = level + up
            f = 1 << up
            img = self._cached(coarse, tx // f, ty // f)
            if img is None:
                continue
            part = TILE // f
            sx, sy = (tx % f) * part, (ty % f) * part
            w, h = min(part, img.width() - sx), min(part, img.height() - sy)
            if w <= 0 or h <= 0:
                return
            scale = 1 << coarse
            x = (tx // f) * TILE * scale + sx * scale
            y = (ty // f) * TILE * scale + sy * scale
            painter.drawImage(QRectF(x, y, w * scale, h * scale), img, QRectF(sx, sy, w, h))
            return


class _Marker(QGraphicsItem):
    """A fixed-size +/− prompt point that ignores the zoom."""

    RADIUS = 7

    def __init__(self, positive: bool) -> None:
        super().__init__()
        self.positive = positive
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setZValue(10_000)

    def boundingRect(self) -> QRectF:  # noqa: N802
        r = self.RADIUS + 2
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        r = self.RADIUS
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fill = QColor(40, 200, 60) if self.positive else QColor(220, 40, 40)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.setBrush(fill)
        painter.drawEllipse(QPointF(0, 0), r, r)
        path = QPainterPath()
        path.moveTo(-r / 2, 0)
        path.lineTo(r / 2, 0)
        if self.positive:
            path.moveTo(0, -r / 2)
            path.lineTo(0, r / 2)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawPath(path)


class Canvas(QGraphicsView):
    """Shows one Document; emits pointer events in image coordinates for the active tool."""

    pressed = Signal(QPointF, object, object)  # pos, button, modifiers
    moved = Signal(QPointF, object, object)  # pos, buttons, modifiers
    released = Signal(QPointF, object, object)
    hovered = Signal(QPointF)
    clicked = Signal(QPointF)  # a left click that did not drag, while left-drag pans
    zoom_changed = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setAccessibleName("Image canvas")
        self.scene_ = QGraphicsScene(self)
        self.setScene(self.scene_)
        self.setBackgroundBrush(QBrush(QColor(38, 38, 42)))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # the main window takes dropped files
        self.document: Document | None = None
        self.base_item: TiledRasterItem | None = None
        self.layer_items: dict[str, TiledRasterItem] = {}
        self._markers: list[_Marker] = []
        self._box = QGraphicsRectItem()
        self._box.setPen(QPen(QColor(255, 210, 0), 0, Qt.PenStyle.DashLine))
        self._box.setZValue(10_000)
        self._box.setVisible(False)
        self._brush = QGraphicsEllipseItem()
        self._brush.setPen(QPen(QColor(255, 255, 255), 0))
        self._brush.setZValue(10_001)
        self._brush.setVisible(False)
        self.scene_.addItem(self._box)
        self.scene_.addItem(self._brush)
        self.job_preview = QGraphicsPixmapItem()  # a running job's unfinished result
        self.job_preview.setZValue(9_000)
        self.job_preview.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.job_preview.setVisible(False)
        self.scene_.addItem(self.job_preview)
        self._space = False
        self._pan_from: QPointF | None = None
        self._press_at: QPointF | None = None
        self.left_pans = False  # the Pan tool: left-drag moves the view, a click selects
        self._fit_mode = True
        self._previews: dict[str, np.ndarray] = {}
        self.budget = FrameBudget()
        self._render_all = False

    # ------------------------------------------------------------------ document binding
    def set_document(self, doc: Document | None) -> None:
        if self.document is not None:
            layers = self.document.layers
            layers.inserted.disconnect(self._on_inserted)
            layers.removed.disconnect(self._on_removed)
            layers.moved.disconnect(self._restack)
            layers.changed.disconnect(self._on_changed)
        for item in [self.base_item, *self.layer_items.values()]:
            if item is not None:
                self.scene_.removeItem(item)
        self.base_item, self.layer_items = None, {}
        self.clear_prompts()
        self.document = doc
        if doc is None:
            return
        self.base_item = TiledRasterItem(RgbProvider(doc.rgb), budget=self.budget)
        self.base_item.setZValue(-1)
        self.scene_.addItem(self.base_item)
        self.scene_.setSceneRect(QRectF(0, 0, doc.width, doc.height))
        for layer in doc.layers:
            self._add_item(layer)
        self._restack()
        doc.layers.inserted.connect(self._on_inserted)
        doc.layers.removed.connect(self._on_removed)
        doc.layers.moved.connect(self._restack)
        doc.layers.changed.connect(self._on_changed)
        self.fit()

    def _provider(self, layer: Layer) -> RasterProvider:
        if isinstance(layer, MaskLayer):
            return MaskProvider(self._previews.get(layer.id, layer.mask), layer.color)
        assert isinstance(layer, ImageLayer)
        return RgbProvider(layer.rgb, layer.alpha)

    def _add_item(self, layer: Layer) -> None:
        item = TiledRasterItem(self._provider(layer), budget=self.budget)
        if isinstance(layer, ImageLayer):
            item.setPos(layer.x, layer.y)
        item.setOpacity(layer.opacity)
        item.setVisible(layer.visible)
        self.scene_.addItem(item)
        self.layer_items[layer.id] = item

    def _on_inserted(self, index: int, layer: Layer) -> None:
        self._add_item(layer)
        self._restack()

    def _on_removed(self, index: int, layer: Layer) -> None:
        item = self.layer_items.pop(layer.id, None)
        if item is not None:
            self.scene_.removeItem(item)
        self._restack()

    def _restack(self, *args) -> None:
        if self.document is None:
            return
        # images below masks, so a selection is never hidden under a pasted result
        ordered = self.document.layers.images() + self.document.layers.masks()
        for z, layer in enumerate(ordered):
            item = self.layer_items.get(layer.id)
            if item is not None:
                item.setZValue(z)

    def _on_changed(self, layer: Layer, what: str, region: Region | None) -> None:
        item = self.layer_items.get(layer.id)
        if item is None:
            return
        if what == "visible":
            item.setVisible(layer.visible)
        elif what == "opacity":
            item.setOpacity(layer.opacity)
        elif what == "color" and isinstance(layer, MaskLayer):
            item.set_provider(self._provider(layer))
        elif what == "pixels":
            self._previews.pop(layer.id, None)
            if isinstance(layer, ImageLayer):
                item.setPos(layer.x, layer.y)
                item.set_provider(self._provider(layer))
            else:
                item.provider.mask = layer.mask
                if (item.provider.width, item.provider.height) != (
                    layer.mask.shape[1],
                    layer.mask.shape[0],
                ):
                    item.set_provider(self._provider(layer))
                else:
                    item.invalidate(region)

    # ------------------------------------------------------------------ live previews
    def preview_mask(self, layer: MaskLayer, mask: np.ndarray, region: Region | None) -> None:
        """Show ``mask`` in place of the layer's own while a tool is working (not in the doc)."""
        item = self.layer_items.get(layer.id)
        if item is None:
            return
        self._previews[layer.id] = mask
        item.provider.mask = mask
        item.invalidate(region)

    def end_preview(self, layer: MaskLayer) -> None:
        if self._previews.pop(layer.id, None) is not None:
            item = self.layer_items.get(layer.id)
            if item is not None:
                item.provider.mask = layer.mask
                item.invalidate(None)

    def show_job_preview(self, preview) -> None:
        """Show a :class:`~ovpaint.core.jobs.Preview` (a small image stretched over its box),
        or hide it with None."""
        if preview is None or self.document is None:
            self.job_preview.setVisible(False)
            self.job_preview.setPixmap(QPixmap())
            return
        rgb = np.ascontiguousarray(preview.rgb, dtype=np.uint8)
        alpha = None if preview.alpha is None else np.ascontiguousarray(preview.alpha, np.uint8)
        if alpha is not None and alpha.shape != rgb.shape[:2]:
            alpha = cv2.resize(alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
        x0, y0, x1, y1 = preview.box
        h, w = rgb.shape[:2]
        self.job_preview.setPixmap(QPixmap.fromImage(rgba_to_qimage(rgb, alpha)))
        self.job_preview.setPos(x0, y0)
        self.job_preview.setTransform(QTransform.fromScale((x1 - x0) / w, (y1 - y0) / h))
        self.job_preview.setVisible(True)

    # ------------------------------------------------------------------ prompt overlays
    def set_points(self, points: list[tuple[float, float, bool]]) -> None:
        for marker in self._markers:
            self.scene_.removeItem(marker)
        self._markers = []
        for x, y, positive in points:
            marker = _Marker(positive)
            marker.setPos(x, y)
            self.scene_.addItem(marker)
            self._markers.append(marker)

    def set_box(self, box: tuple[float, float, float, float] | None) -> None:
        if box is None:
            self._box.setVisible(False)
            return
        x0, y0, x1, y1 = box
        self._box.setRect(QRectF(QPointF(x0, y0), QPointF(x1, y1)).normalized())
        self._box.setVisible(True)

    def clear_prompts(self) -> None:
        self.set_points([])
        self.set_box(None)

    def set_brush_cursor(self, pos: QPointF | None, radius: float = 0) -> None:
        if pos is None or radius <= 0:
            self._brush.setVisible(False)
            return
        self._brush.setRect(QRectF(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius))
        self._brush.setVisible(True)

    def paintEvent(self, event) -> None:  # noqa: N802
        if self._render_all:
            self.budget.unlimited()
        else:
            self.budget.start()
        super().paintEvent(event)

    @property
    def rendering(self) -> bool:
        """Whether visible tiles are still being made (a few frames after a big change)."""
        items = [self.base_item, *self.layer_items.values()]
        return any(item is not None and item.isVisible() and item.pending for item in items)

    def render_all(self) -> None:
        """Make every visible tile now (screenshots, tests), whatever it costs."""
        self._render_all = True
        try:
            self.viewport().repaint()
        finally:
            self._render_all = False

    # ------------------------------------------------------------------ zoom
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        if self.document is None:
            return
        self._fit_mode = True
        self.fitInView(self.scene_.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.zoom)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def set_zoom(self, zoom: float, under_mouse: bool = False) -> None:
        """Zoom about the view's centre (menu, keys) or the point under the mouse (wheel)."""
        zoom = max(0.01, min(32.0, zoom))
        self._fit_mode = False
        centre = self.mapToScene(self.viewport().rect().center())
        self.setTransform(QTransform.fromScale(zoom, zoom))  # exact: 100 % is 1.0, not 0.99…
        if not under_mouse:
            self.centerOn(centre)
        self.zoom_changed.emit(self.zoom)

    def zoom_by(self, factor: float, under_mouse: bool = False) -> None:
        self.set_zoom(self.zoom * factor, under_mouse)

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25**steps, under_mouse=True)
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # ------------------------------------------------------------------ pointer
    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def set_left_pans(self, on: bool) -> None:
        self.left_pans = on
        if on:
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.viewport().unsetCursor()

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.set_left_pans(self.left_pans)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def _image_pos(self, event) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton or (
            (self._space or self.left_pans) and event.button() == Qt.MouseButton.LeftButton
        ):
            self._pan_from = event.position()
            left = event.button() == Qt.MouseButton.LeftButton
            self._press_at = event.position() if left and self.left_pans else None
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if self.document is not None:
            self.pressed.emit(self._image_pos(event), event.button(), event.modifiers())
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            self._fit_mode = False
            event.accept()
            return
        if self.document is not None:
            pos = self._image_pos(event)
            self.hovered.emit(pos)
            if event.buttons() != Qt.MouseButton.NoButton:
                self.moved.emit(pos, event.buttons(), event.modifiers())
        event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            start, self._press_at = self._press_at, None
            if (
                start is not None
                and self.document is not None
                and (event.position() - start).manhattanLength() < 4
            ):
                self.clicked.emit(self._image_pos(event))
            if self._space or self.left_pans:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        if self.document is not None:
            self.released.emit(self._image_pos(event), event.button(), event.modifiers())
        event.accept()


__all__ = ["Canvas", "TiledRasterItem", "RgbProvider", "MaskProvider", "rgb_to_qimage"]
