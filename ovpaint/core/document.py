"""The document the editor works on: a base image and an evented list of layers.

The napari idiom: the layer list is a plain Python model here in the core; the canvas and the
layer panel are adapters that listen to its events. Neither owns data, so the CLI, tests and a
project file see exactly what the window shows.

Pixel arrays held by layers are never modified in place: an edit builds a new array and hands it
to :meth:`Document.set_mask` (or ``set_pixels``), which emits ``changed`` with the region that
changed. That keeps snapshots (autosave, undo) cheap and safe to read from another thread.
"""

from __future__ import annotations

import itertools
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ovpaint.core.masks import bbox, binary

Region = tuple[int, int, int, int]

# Saturated, mutually distinct colours (Trubetskoy's list, its darkest four left out: maroon,
# olive, navy and grey vanish over photos).
OVERLAY_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),  # red
    (60, 180, 75),  # green
    (255, 225, 25),  # yellow
    (0, 130, 200),  # blue
    (245, 130, 48),  # orange
    (145, 30, 180),  # purple
    (70, 240, 240),  # cyan
    (240, 50, 230),  # magenta
    (210, 245, 60),  # lime
    (250, 190, 212),  # pink
    (0, 128, 128),  # teal
    (220, 190, 255),  # lavender
    (170, 110, 40),  # brown
    (255, 250, 200),  # beige
    (170, 255, 195),  # mint
    (255, 215, 180),  # apricot
)

# A colour word in a class name picks that colour ("red car" is shown red).
COLOR_WORDS: dict[str, int] = {
    "red": 0,
    "maroon": 0,
    "green": 1,
    "olive": 1,
    "yellow": 2,
    "golden": 2,
    "blue": 3,
    "navy": 3,
    "orange": 4,
    "purple": 5,
    "violet": 5,
    "cyan": 6,
    "turquoise": 6,
    "magenta": 7,
    "lime": 8,
    "pink": 9,
    "teal": 10,
    "lavender": 11,
    "brown": 12,
    "beige": 13,
    "cream": 13,
    "white": 13,
    "mint": 14,
    "apricot": 15,
}


def class_key(name: str) -> str:
    """The class a layer name stands for: case, spacing and a " (2)" suffix ignored."""
    name = re.sub(r"\s+\(\d+\)$", "", name.strip())
    return " ".join(name.casefold().split())


def class_color(name: str, taken: Iterable[tuple[int, int, int]] = ()) -> tuple[int, int, int]:
    """A fixed colour for a class name, the same in every run and on every machine: a colour
    word in the name, else a slot of :data:`OVERLAY_COLORS` chosen by a hash of the name; when
    that colour is ``taken`` (by another class shown at the same time) the next free slot."""
    key = class_key(name)
    words = re.findall(r"[a-z]+", key)
    named = [COLOR_WORDS[w] for w in words if w in COLOR_WORDS]
    start = named[0] if named else zlib.crc32(key.encode("utf-8")) % len(OVERLAY_COLORS)
    used = {tuple(int(v) for v in c) for c in taken}
    for step in range(len(OVERLAY_COLORS)):
        color = OVERLAY_COLORS[(start + step) % len(OVERLAY_COLORS)]
        if color not in used:
            return color
    return OVERLAY_COLORS[start]


class Signal:
    """A tiny synchronous signal: ``connect(callback)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def checked_color(value: Any) -> tuple[int, int, int]:
    """An overlay colour as three ints in 0..255; anything else is a ValueError (a colour
    of one component once reached the canvas and crashed it while painting)."""
    try:
        parts = tuple(value)
    except TypeError:
        raise ValueError(f"a colour is (r, g, b), not {value!r:.40}") from None
    if len(parts) != 3 or not all(
        isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255
        for c in parts
    ):
        raise ValueError(f"a colour is three whole numbers from 0 to 255, not {value!r:.40}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def checked_opacity(value: Any) -> float:
    opacity = float(value)
    if not 0.0 <= opacity <= 1.0:  # also false for NaN
        raise ValueError(f"an opacity is from 0 to 1, not {value!r:.40}")
    return opacity


@dataclass(eq=False)
class Layer:
    name: str
    visible: bool = True
    opacity: float = 1.0
    id: str = field(default_factory=_new_id)
    meta: dict = field(default_factory=dict)  # free JSON-able details (prompt, seed, method...)

    kind = "layer"

    def copy(self) -> Layer:
        raise NotImplementedError


@dataclass(eq=False)
class MaskLayer(Layer):
    """A selection of pixels: bool H×W (hard) or uint8 H×W (soft, 255 = fully selected)."""

    mask: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    color: tuple[int, int, int] = (255, 0, 0)
    opacity: float = 0.7

    kind = "mask"

    def __post_init__(self) -> None:
        self.mask = _as_mask(self.mask)
        self.color = checked_color(self.color)
        self.opacity = checked_opacity(self.opacity)

    @property
    def binary(self) -> np.ndarray:
        return binary(self.mask)

    def copy(self) -> MaskLayer:
        return MaskLayer(
            name=self.name,
            visible=self.visible,
            opacity=self.opacity,
            meta=dict(self.meta),
            mask=self.mask,
            color=self.color,
        )


@dataclass(eq=False)
class ImageLayer(Layer):
    """RGB pixels placed at (x, y) over the base image, with an optional uint8 alpha.

    Inpainting results are image layers with ``role == "inpaint"``: a patch around the edited
    region (or the full image) whose alpha is the feathered mask it was pasted with.
    """

    rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8))
    alpha: np.ndarray | None = None
    x: int = 0
    y: int = 0
    role: str = "image"  # "image" | "inpaint"

    kind = "image"

    def __post_init__(self) -> None:
        self.opacity = checked_opacity(self.opacity)
        self.rgb = np.ascontiguousarray(self.rgb, dtype=np.uint8)
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError("an image layer holds H×W×3 uint8 pixels")
        if self.alpha is not None:
            self.alpha = np.ascontiguousarray(self.alpha, dtype=np.uint8)
            if self.alpha.shape != self.rgb.shape[:2]:
                raise ValueError("alpha must match the layer's pixels")

    @property
    def region(self) -> Region:
        return self.x, self.y, self.x + self.rgb.shape[1], self.y + self.rgb.shape[0]

    def copy(self) -> ImageLayer:
        return ImageLayer(
            name=self.name,
            visible=self.visible,
            opacity=self.opacity,
            meta=dict(self.meta),
            rgb=self.rgb,
            alpha=self.alpha,
            x=self.x,
            y=self.y,
            role=self.role,
        )


def _as_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError("a mask is H×W")
    if mask.dtype == np.bool_ or mask.dtype == np.uint8:
        return np.ascontiguousarray(mask)
    return np.ascontiguousarray(mask > 0)


class LayerList:
    """Ordered layers, bottom first, with events and a single selected layer.

    Events: ``inserted(index, layer)``, ``removed(index, layer)``, ``moved(old, new, layer)``,
    ``changed(layer, what, region)`` (``what`` in {"pixels", "name", "visible", "opacity",
    "color", "meta"}; ``region`` is the changed box or None for everything),
    ``selection_changed(layer or None)``.
    """

    def __init__(self) -> None:
        self._layers: list[Layer] = []
        self.selected: Layer | None = None
        self.inserted = Signal()
        self.removed = Signal()
        self.moved = Signal()
        self.changed = Signal()
        self.selection_changed = Signal()

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(list(self._layers))

    def __getitem__(self, index: int) -> Layer:
        return self._layers[index]

    def index(self, layer: Layer) -> int:
        for i, item in enumerate(self._layers):
            if item is layer:
                return i
        raise ValueError(f"{layer.name} is not in this document")

    def by_name(self, name: str) -> Layer | None:
        for layer in reversed(self._layers):
            if layer.name == name:
                return layer
        return None

    def insert(self, index: int, layer: Layer) -> None:
        if any(item is layer for item in self._layers):
            raise ValueError("layer already in the list")
        index = max(0, min(index, len(self._layers)))
        self._layers.insert(index, layer)
        self.inserted.emit(index, layer)

    def append(self, layer: Layer) -> None:
        self.insert(len(self._layers), layer)

    def remove(self, layer: Layer) -> int:
        index = self.index(layer)
        if self.selected is layer:
            self.select(None)
        del self._layers[index]
        self.removed.emit(index, layer)
        return index

    def move(self, layer: Layer, new_index: int) -> None:
        old = self.index(layer)
        new_index = max(0, min(new_index, len(self._layers) - 1))
        if old == new_index:
            return
        del self._layers[old]
        self._layers.insert(new_index, layer)
        self.moved.emit(old, new_index, layer)

    def select(self, layer: Layer | None) -> None:
        if layer is not None:
            self.index(layer)  # must belong to the list
        if layer is self.selected:
            return
        self.selected = layer
        self.selection_changed.emit(layer)

    def clear(self) -> None:
        for layer in reversed(list(self._layers)):
            self.remove(layer)

    def masks(self) -> list[MaskLayer]:
        return [layer for layer in self._layers if isinstance(layer, MaskLayer)]

    def images(self) -> list[ImageLayer]:
        return [layer for layer in self._layers if isinstance(layer, ImageLayer)]


class Document:
    """A base image (RGB, with its alpha kept aside for export) and its layers."""

    def __init__(
        self, rgb: np.ndarray, alpha: np.ndarray | None = None, path: str | None = None
    ) -> None:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
            raise ValueError("the base image is a non-empty H×W×3 uint8 array")
        self.rgb = np.ascontiguousarray(rgb)
        self.alpha = None if alpha is None else np.ascontiguousarray(alpha, dtype=np.uint8)
        self.path = path  # the original file; exports never overwrite it without asking
        self.layers = LayerList()
        self.modified = Signal()  # any change at all (for the title bar and autosave)
        self.dirty = False
        for signal in (
            self.layers.inserted,
            self.layers.removed,
            self.layers.moved,
            self.layers.changed,
        ):
            signal.connect(self._mark_dirty)

    def _mark_dirty(self, *args: Any) -> None:
        self.dirty = True
        self.modified.emit()

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]

    # ------------------------------------------------------------------ layer creation
    def new_mask_layer(
        self,
        name: str,
        mask: np.ndarray | None = None,
        color: tuple[int, int, int] | None = None,
        also_used: tuple = (),
        **meta: Any,
    ) -> MaskLayer:
        """A mask layer sized to this document (not yet inserted)."""
        if mask is None:
            mask = np.zeros(self.shape, dtype=bool)
        if np.asarray(mask).shape != self.shape:
            raise ValueError(f"mask shape {np.asarray(mask).shape} != image {self.shape}")
        if color is None:
            taken = [layer.color for layer in self.layers.masks()] + list(also_used)
            color = class_color(meta.get("class") or name, taken)
        return MaskLayer(name=name, mask=mask, color=color, meta=dict(meta))

    def unique_name(self, name: str) -> str:
        names = {layer.name for layer in self.layers}
        if name not in names:
            return name
        for i in itertools.count(2):
            candidate = f"{name} ({i})"
            if candidate not in names:
                return candidate
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ edits (evented)
    def set_mask(self, layer: MaskLayer, mask: np.ndarray, region: Region | None = None) -> None:
        mask = _as_mask(mask)
        if mask.shape != self.shape:
            raise ValueError(f"mask shape {mask.shape} != image {self.shape}")
        layer.mask = mask
        self.layers.changed.emit(layer, "pixels", region)

    def set_pixels(
        self, layer: ImageLayer, rgb: np.ndarray, alpha: np.ndarray | None, x: int, y: int
    ) -> None:
        replacement = ImageLayer(name=layer.name, rgb=rgb, alpha=alpha, x=x, y=y)
        old_region = layer.region
        layer.rgb, layer.alpha, layer.x, layer.y = (
            replacement.rgb,
            replacement.alpha,
            replacement.x,
            replacement.y,
        )
        self.layers.changed.emit(layer, "pixels", region_union(old_region, layer.region))

    def set_property(self, layer: Layer, what: str, value: Any) -> None:
        """Change ``name``, ``visible``, ``opacity``, ``color`` or ``meta`` and tell listeners."""
        if what not in ("name", "visible", "opacity", "color", "meta"):
            raise ValueError(f"not a layer property: {what}")
        if what == "opacity":
            value = float(value)
            if value != value:
                raise ValueError("an opacity is a number, not NaN")
            value = min(1.0, max(0.0, value))
        elif what == "color":
            value = checked_color(value)
        elif what == "visible":
            value = bool(value)
        setattr(layer, what, value)
        self.layers.changed.emit(layer, what, None)

    # ------------------------------------------------------------------ export
    def composite(self) -> np.ndarray:
        """The edited RGB image at the original size (see :func:`composite`)."""
        return composite(self.rgb, self.paint_layers())

    def paint_layers(self) -> list[Paint]:
        """The visible image layers' arrays and properties, bottom to top: what
        :func:`composite` needs, taken in microseconds (layer arrays are never edited in place,
        so a worker can blend them while the document changes)."""
        return [
            Paint(layer.rgb, layer.alpha, layer.region, float(layer.opacity))
            for layer in self.layers
            if isinstance(layer, ImageLayer) and layer.visible and layer.opacity > 0
        ]

    def visible_masks(self) -> list[tuple[str, np.ndarray]]:
        """(name, mask) of the visible mask layers, bottom to top, for :func:`label_map`."""
        return [(layer.name, layer.mask) for layer in self.layers.masks() if layer.visible]

    def label_map(self) -> tuple[np.ndarray, list[str]]:
        """Visible masks as one label map (see :func:`label_map`)."""
        return label_map(self.shape, self.visible_masks())


@dataclass(frozen=True)
class Paint:
    rgb: np.ndarray
    alpha: np.ndarray | None
    region: Region
    opacity: float


def composite(base: np.ndarray, paint: Sequence[Paint]) -> np.ndarray:
    """The edited RGB image: ``paint`` layers blended bottom to top over a copy of ``base``.
    Mask layers are selections, not paint: they do not show."""
    height, width = base.shape[:2]
    out = base.copy()
    for layer in paint:
        x0, y0, x1, y1 = layer.region
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        src = layer.rgb[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        if layer.alpha is None and layer.opacity >= 1.0:
            out[cy0:cy1, cx0:cx1] = src
            continue
        a = (
            np.full(src.shape[:2], 255, np.uint8)
            if layer.alpha is None
            else layer.alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        )
        weight = (a.astype(np.float32) / 255.0 * layer.opacity)[..., None]
        dst = out[cy0:cy1, cx0:cx1].astype(np.float32)
        blended = dst + (src.astype(np.float32) - dst) * weight
        # where the weight is 0 the pixel must stay byte-identical to what was below
        out[cy0:cy1, cx0:cx1] = np.where(weight > 0, np.rint(blended), dst).astype(np.uint8)
    return out


def label_map(
    shape: tuple[int, int], masks: Sequence[tuple[str, np.ndarray]]
) -> tuple[np.ndarray, list[str]]:
    """Masks as one label map (0 = none; later masks win; at most 255) and the names, with
    "background" first. A mask selects where :func:`~ovpaint.core.masks.binary` says."""
    labels = np.zeros(shape, dtype=np.uint8)
    names = ["background"]
    for name, mask in masks:
        if len(names) >= 256:
            break
        labels[binary(mask)] = len(names)
        names.append(name)
    return labels, names


def region_union(a: Region, b: Region) -> Region:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


@dataclass(frozen=True)
class MaskDiff:
    """The box where two masks of one shape and dtype differ, with both sides' pixels there:
    what an undo step keeps of a mask edit (kilobytes, not a 24 MP copy)."""

    region: Region
    before: np.ndarray
    after: np.ndarray


def mask_diff(
    before: np.ndarray, after: np.ndarray, within: Region | None = None
) -> MaskDiff | None:
    """The :class:`MaskDiff` of two masks of the same shape and dtype, None when equal. A full
    compare of 24 MP masks takes tens of ms: workers compute it where they can, and an edit
    that knows where it can have changed pixels (a brush stroke's box) passes ``within``."""
    if before.shape != after.shape or before.dtype != after.dtype:
        raise ValueError("mask_diff compares masks of one shape and dtype")
    ox, oy = 0, 0
    if within is not None:
        x0, y0, x1, y1 = within
        h, w = before.shape
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x0 >= x1 or y0 >= y1:
            return None
        before, after, ox, oy = before[y0:y1, x0:x1], after[y0:y1, x0:x1], x0, y0
    region = mask_diff_region(before, after)
    if region is None:
        return None
    x0, y0, x1, y1 = region
    return MaskDiff(
        (x0 + ox, y0 + oy, x1 + ox, y1 + oy),
        before[y0:y1, x0:x1].copy(),
        after[y0:y1, x0:x1].copy(),
    )


def mask_diff_region(before: np.ndarray, after: np.ndarray) -> Region | None:
    """The box where two masks differ (exclusive end), or None when they are equal."""
    if before.shape != after.shape:
        return 0, 0, after.shape[1], after.shape[0]
    return bbox(before != after)
