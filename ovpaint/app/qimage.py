"""numpy ↔ QImage conversions, in one place (every other module calls these)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """H×W×3 uint8 → an independent QImage (RGB32, the format the raster painter draws fastest)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return img.convertToFormat(QImage.Format.Format_RGB32)  # converts = copies: owns its pixels


def rgba_to_qimage(rgb: np.ndarray, alpha: np.ndarray | None) -> QImage:
    """RGB plus optional uint8 alpha → premultiplied ARGB QImage (independent copy)."""
    if alpha is None:
        return rgb_to_qimage(rgb)
    rgba = np.ascontiguousarray(np.dstack([rgb, alpha]), dtype=np.uint8)
    h, w = rgba.shape[:2]
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def _mask_table(color: tuple[int, int, int]) -> list[int]:
    r, g, b = color
    return [QColor(r, g, b, a).rgba() for a in range(256)]


_TABLES: dict[tuple[int, int, int], list[int]] = {}


def mask_to_qimage(mask: np.ndarray, color: tuple[int, int, int]) -> QImage:
    """A mask (bool, or uint8 where 255 = fully selected) as a coloured overlay QImage.

    Uses an 8-bit indexed image whose colour table maps the mask value to the colour's alpha,
    so one byte per pixel is converted once, not four computed in Python.
    """
    data = np.asarray(mask)
    data = data.view(np.uint8) * np.uint8(255) if data.dtype == np.bool_ else data
    data = np.ascontiguousarray(data, dtype=np.uint8)
    h, w = data.shape
    img = QImage(data.data, w, h, w, QImage.Format.Format_Indexed8)
    key = tuple(int(c) for c in color)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = _mask_table(key)  # type: ignore[arg-type]
    img.setColorTable(table)
    return img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
