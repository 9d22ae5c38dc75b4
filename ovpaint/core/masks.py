"""Mask operations and mask files: palette label maps, binary PNGs, grow/shrink/feather."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import atomic_save
from ovpaint.core.image_io import open_image_file, require_regular_file


def palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaved), n×3 uint8: 0 black, then distinct colours."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def binary(mask: np.ndarray) -> np.ndarray:
    """A mask layer's selection: the mask itself when boolean, else where it is ≥ 128."""
    return mask if mask.dtype == np.bool_ else mask >= 128


def file_part(name: str) -> str:
    """A class name as part of a file name: runs of anything but letters, digits, '-' and '_'
    become '_', at most 60 characters, never empty."""
    cleaned = re.sub(r"[^\w\-]+", "_", name, flags=re.UNICODE).strip("_")
    return cleaned[:60] or "class"


def save_label_png(path: str | os.PathLike, labels: np.ndarray, *, overwrite: bool = True) -> Path:
    """Write a label map as an 8-bit palette PNG (VOC colours), atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError("labels must be H×W")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise BadInput("A palette PNG holds at most 256 labels (0–255).")
    img = Image.fromarray(labels.astype(np.uint8), "P")
    img.putpalette(palette().ravel().tolist())
    return atomic_save(path, lambda tmp: img.save(tmp, format="PNG"), overwrite=overwrite)


def save_mask_png(path: str | os.PathLike, mask: np.ndarray, *, overwrite: bool = True) -> Path:
    """Binary (or soft uint8) mask as a grayscale PNG: 255 = masked."""
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        data = mask.astype(np.uint8) * 255
    elif np.issubdtype(mask.dtype, np.floating):  # soft alpha in [0, 1]
        data = (np.clip(mask, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        data = np.clip(mask, 0, 255).astype(np.uint8)
    img = Image.fromarray(data, "L")
    return atomic_save(path, lambda tmp: img.save(tmp, format="PNG"), overwrite=overwrite)


def load_label_png(
    path: str | os.PathLike, *, size: tuple[int, int] | None = None, what: str = ""
) -> np.ndarray:
    """Read a label map: palette indices for 'P' images, the gray value otherwise. With
    ``size`` (width, height: the image it annotates) a map of another size is refused from
    its header, before a pixel is decoded: a small file can declare a huge map."""
    path = Path(path)
    require_regular_file(path, "Mask file")
    try:
        with open_image_file(path, what="The mask file") as img:
            if size is not None and tuple(img.size) != tuple(size):
                raise BadInput(
                    f"{what or 'The image'} is {size[0]}×{size[1]} but {path} is "
                    f"{img.size[0]}×{img.size[1]}."
                )
            img.load()
            if img.mode == "P":
                return np.asarray(img, dtype=np.uint8).copy()
            if img.mode in ("L", "I", "I;16"):
                return np.asarray(img).astype(np.int32)
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except FileNotFoundError as exc:
        raise BadInput(f"Mask file not found: {path}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"{path.name} is not a readable mask image: {exc}") from exc


def load_mask(
    path: str | os.PathLike,
    class_index: int | None = None,
    *,
    size: tuple[int, int] | None = None,
    what: str = "",
) -> np.ndarray:
    """A boolean mask from any grayscale or palette PNG: non-zero is masked, or ``== class``;
    ``size`` as for :func:`load_label_png`."""
    labels = load_label_png(path, size=size, what=what)
    if class_index is not None:
        if not (labels == class_index).any():
            present = sorted(int(v) for v in np.unique(labels))
            raise BadInput(
                f"Label {class_index} does not occur in {Path(path).name}; "
                f"labels present: {present}"
            )
        return labels == class_index
    return labels > 0


def _disk(radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate (radius > 0) or erode (radius < 0) a boolean mask by a disk."""
    mask = np.asarray(mask, dtype=bool)
    if radius == 0:
        return mask.copy()
    out = np.zeros(mask.shape, bool)
    box = bbox(mask)
    if box is None:
        return out
    # Only the mask's box grown by radius + 1 (inside the image) can change or matter: the
    # disk reaches no further, so the crop gives the whole image's result (and an erosion never
    # sees the crop's own edge where it is not the image's edge).
    r = abs(radius) + 1
    h, w = mask.shape
    x0, y0 = max(box[0] - r, 0), max(box[1] - r, 0)
    x1, y1 = min(box[2] + r, w), min(box[3] + r, h)
    kernel = _disk(abs(radius))
    m8 = mask[y0:y1, x0:x1].astype(np.uint8)
    part = cv2.dilate(m8, kernel) if radius > 0 else cv2.erode(m8, kernel, borderValue=1)
    out[y0:y1, x0:x1] = part.astype(bool)
    return out


def shrink(mask: np.ndarray, radius: int) -> np.ndarray:
    return grow(mask, -abs(radius))


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """A soft float32 alpha in [0, 1] that is 0 outside ``mask`` and ramps up inside it.

    The ramp lies entirely inside the mask, so anything outside the mask keeps alpha 0.
    """
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return mask.astype(np.float32)
    out = np.zeros(mask.shape, np.float32)
    box = bbox(mask)
    if box is None:
        return out
    # Only the mask's box and a 1-px ring of zeros around it (inside the image) matter: every
    # path to a zero pixel further out crosses that ring, so the distances equal those over
    # the whole image (a 2000×4000 region of a 24 MP mask: 840 → 75 ms).
    h, w = mask.shape
    x0, y0 = max(box[0] - 1, 0), max(box[1] - 1, 0)
    x1, y1 = min(box[2] + 1, w), min(box[3] + 1, h)
    dist = cv2.distanceTransform(mask[y0:y1, x0:x1].astype(np.uint8), cv2.DIST_L2, 5)
    out[y0:y1, x0:x1] = np.clip(dist / float(radius), 0.0, 1.0)
    return out


def adjust(mask: np.ndarray, grow_px: int = 0, feather_px: int = 0) -> np.ndarray:
    """A mask layer's selection grown (``grow_px`` > 0) or shrunk (< 0), then feathered: bool
    when ``feather_px`` is 0, else uint8 (255 = fully selected) ramping up inside the edge.
    With both 0 the mask is returned unchanged (no copy)."""
    if not grow_px and not feather_px:
        return mask
    selected = grow(binary(mask), int(grow_px)) if grow_px else binary(mask)
    if not feather_px:
        return selected
    return np.rint(feather(selected, int(feather_px)) * 255).astype(np.uint8)


def invert(mask: np.ndarray) -> np.ndarray:
    """The mask's complement in its own kind: a boolean mask flipped, a soft (uint8) one
    as 255 − value, so a feathered edge stays feathered."""
    mask = np.asarray(mask)
    if mask.dtype == np.uint8:
        return 255 - mask
    return ~mask.astype(bool, copy=False)


def component_distance(
    comp: np.ndarray, stats: np.ndarray, index: int
) -> tuple[int, int, np.ndarray]:
    """For component ``index`` of ``cv2.connectedComponentsWithStats``: (x0, y0, distance to
    its border over its bounding box), 0 outside it; its maximum is an interior point (a
    centroid can fall outside a non-convex region)."""
    x0, y0 = int(stats[index, cv2.CC_STAT_LEFT]), int(stats[index, cv2.CC_STAT_TOP])
    w, h = int(stats[index, cv2.CC_STAT_WIDTH]), int(stats[index, cv2.CC_STAT_HEIGHT])
    inside = (comp[y0 : y0 + h, x0 : x0 + w] == index).astype(np.uint8)
    return x0, y0, cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive end, or None for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
