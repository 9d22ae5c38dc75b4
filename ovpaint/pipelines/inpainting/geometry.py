"""Where to inpaint and how results go back: crops around the mask, the paste alpha, colour
matching, and patches (the changed pixels with their box and footprint).

Every step works on windows around the mask, so a small mask on a 12,000×9,000 photo costs
about what it costs on a small image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ovpaint.core.masks import bbox, feather, grow

_PLAN_GRID_PX = 2048  # crop boxes are merged on a grid of at most this many cells a side


@dataclass(frozen=True)
class Crop:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def slice(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def overlaps(self, other: Crop) -> bool:
        return not (
            self.x1 <= other.x0 or other.x1 <= self.x0 or self.y1 <= other.y0 or other.y1 <= self.y0
        )

    def union(self, other: Crop) -> Crop:
        return Crop(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )


@dataclass(frozen=True)
class CropPlan:
    """One model call: ``crop`` is what the model sees (the region with context, made as square
    as the image allows); the region's pixels inside ``core`` are this call's to paste. Cores
    never overlap, so the patches of one result never compete for a pixel."""

    crop: Crop
    core: Crop


def _expand_to_square(box: Crop, width: int, height: int) -> Crop:
    """Grow the shorter side towards a square, staying inside the image."""
    x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    w, h = x1 - x0, y1 - y0
    side = min(max(w, h), width if w >= h else height)
    if w < side:
        extra = min(side, width) - w
        x0 = max(0, x0 - extra // 2)
        x1 = min(width, x0 + w + extra)
        x0 = max(0, x1 - (w + extra))
    if h < side:
        extra = min(side, height) - h
        y0 = max(0, y0 - extra // 2)
        y1 = min(height, y0 + h + extra)
        y0 = max(0, y1 - (h + extra))
    return Crop(x0, y0, x1, y1)


def _merge_overlapping(boxes: list[Crop], window: Crop) -> list[Crop]:
    """Union boxes that overlap, until none do. The boxes are drawn on a coarse grid over
    ``window`` (cells rounded outwards, so boxes that overlap always touch there) and each
    connected group is replaced by its bounding box; thousands of islands stay fast."""
    cell = max(1, -(-max(window.width, window.height) // _PLAN_GRID_PX))
    while len(boxes) > 1:
        gw, gh = -(-window.width // cell) + 1, -(-window.height // cell) + 1
        grid = np.zeros((gh, gw), np.uint8)
        cells = []
        for b in boxes:
            cx0, cy0 = (b.x0 - window.x0) // cell, (b.y0 - window.y0) // cell
            cx1, cy1 = -(-(b.x1 - window.x0) // cell), -(-(b.y1 - window.y0) // cell)
            grid[cy0:cy1, cx0:cx1] = 1
            cells.append((cy0, cx0))
        _, labels = cv2.connectedComponents(grid, connectivity=4)
        groups: dict[int, Crop] = {}
        for b, (cy, cx) in zip(boxes, cells, strict=True):
            key = int(labels[cy, cx])
            groups[key] = groups[key].union(b) if key in groups else b
        if len(groups) == len(boxes):
            break
        boxes = list(groups.values())
    return boxes


def plan_regions(region: np.ndarray, context: float, min_context_px: int) -> list[CropPlan]:
    """Crops (with context) covering every connected part of ``region``; parts whose crops
    overlap share one, parts far apart get their own."""
    height, width = region.shape
    box = bbox(region)
    if box is None:
        return []
    bx0, by0, bx1, by1 = box
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(
        region[by0:by1, bx0:bx1].astype(np.uint8), 8
    )
    boxes = []
    for i in range(1, count):
        x, y, w, h = (int(v) for v in stats[i, :4])
        x, y = x + bx0, y + by0
        margin = max(min_context_px, int(context * max(w, h)))
        boxes.append(
            Crop(
                max(0, x - margin),
                max(0, y - margin),
                min(width, x + w + margin),
                min(height, y + h + margin),
            )
        )
    cores = _merge_overlapping(boxes, Crop(0, 0, width, height))
    cores.sort(key=lambda c: (c.y0, c.x0))
    return [CropPlan(_expand_to_square(c, width, height), c) for c in cores]


def model_size(crop: Crop, resolution: int) -> tuple[int, int]:
    """(width, height) at the model's resolution: long side = resolution, multiples of 8."""
    scale = resolution / max(crop.width, crop.height)
    w = max(64, int(round(crop.width * scale / 8)) * 8)
    h = max(64, int(round(crop.height * scale / 8)) * 8)
    return w, h


def _paste_alpha_dense(
    mask: np.ndarray, dilate_px: int, feather_px: int
) -> tuple[np.ndarray, np.ndarray]:
    region = grow(mask, dilate_px) if dilate_px > 0 else mask.copy()
    if feather_px <= 0:
        return region, region.astype(np.float32)
    alpha = feather(region, feather_px)
    alpha[mask] = 1.0
    return region, alpha


def paste_alpha(
    mask: np.ndarray, dilate_px: int, feather_px: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(dilated mask, alpha): alpha is 1 on the mask, ramps down over ``feather_px`` (default:
    the dilation) towards the edge of the dilated mask and is exactly 0 outside it. The ramp
    starts from the dilated edge, so a feather wider than the dilation cannot reach outside.
    """
    box = bbox(mask)
    region = np.zeros(mask.shape, bool)
    alpha = np.zeros(mask.shape, np.float32)
    if box is None:
        return region, alpha
    pad = max(0, dilate_px) + 2
    x0, y0 = max(0, box[0] - pad), max(0, box[1] - pad)
    x1, y1 = min(mask.shape[1], box[2] + pad), min(mask.shape[0], box[3] + pad)
    window = (slice(y0, y1), slice(x0, x1))
    feather_px = dilate_px if feather_px is None else feather_px
    region[window], alpha[window] = _paste_alpha_dense(mask[window], dilate_px, feather_px)
    return region, alpha


def match_colors(
    generated: np.ndarray, original: np.ndarray, region: np.ndarray, ring_px: int
) -> np.ndarray:
    """Shift and scale each channel of ``generated`` so that, in a ring around ``region``,
    its mean and spread match the original's. Returns float32."""
    ring = grow(region, ring_px) & ~region
    gen = generated.astype(np.float32)
    if ring.sum() < 16:
        return gen
    orig = original.astype(np.float32)
    g_ring, o_ring = gen[ring], orig[ring]
    g_mean, o_mean = g_ring.mean(0), o_ring.mean(0)
    g_std, o_std = g_ring.std(0) + 1e-3, o_ring.std(0) + 1e-3
    gain = np.clip(o_std / g_std, 0.5, 2.0)
    return (gen - g_mean) * gain + o_mean


def composite(base: np.ndarray, patch: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend ``patch`` into ``base`` through ``alpha``; where alpha is 0 the base bytes stay."""
    out = base.copy()
    inside = alpha > 0
    a = alpha[inside][:, None]
    blended = a * np.asarray(patch, np.float32)[inside] + (1.0 - a) * base[inside]
    out[inside] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


@dataclass(frozen=True)
class Patch:
    """Result pixels over a box: ``rgb`` holds the final bytes (the fill already blended with
    the original through the feathered alpha) and ``alpha`` is 255 on the pixels the result
    owns, 0 elsewhere; pixels the result does not own are exactly the input's."""

    x: int
    y: int
    rgb: np.ndarray  # h×w×3 uint8
    alpha: np.ndarray  # h×w uint8, 0 or 255

    @property
    def box(self) -> Crop:
        return Crop(self.x, self.y, self.x + self.rgb.shape[1], self.y + self.rgb.shape[0])


def make_patch(
    base: np.ndarray, plan: CropPlan, filled: np.ndarray, alpha: np.ndarray
) -> Patch | None:
    """The patch of one model call: its fill blended over ``base`` on the pixels of its core
    where ``alpha`` > 0, cut to the box of those pixels."""
    ys, xs = plan.core.slice()
    own = alpha[ys, xs] > 0
    box = bbox(own)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    core_alpha = alpha[ys, xs][y0:y1, x0:x1] * own[y0:y1, x0:x1]
    ox, oy = plan.core.x0 - plan.crop.x0, plan.core.y0 - plan.crop.y0
    fill = filled[oy + y0 : oy + y1, ox + x0 : ox + x1]
    gx, gy = plan.core.x0 + x0, plan.core.y0 + y0
    rgb = composite(base[gy : gy + (y1 - y0), gx : gx + (x1 - x0)], fill, core_alpha)
    return Patch(gx, gy, rgb, np.where(core_alpha > 0, 255, 0).astype(np.uint8))


def apply_patches(base: np.ndarray, patches: Sequence[Patch]) -> np.ndarray:
    """``base`` with the patches' owned pixels replaced (a new array; ``base`` is untouched)."""
    out = base.copy()
    for p in patches:
        ys, xs = p.box.slice()
        owned = p.alpha > 0
        out[ys, xs][owned] = p.rgb[owned]
    return out


def merge_patches(patches: Sequence[Patch]) -> Patch | None:
    """The patches as one, over the union of their boxes (alpha 0 between them)."""
    if not patches:
        return None
    box = patches[0].box
    for p in patches[1:]:
        box = box.union(p.box)
    rgb = np.zeros((box.height, box.width, 3), np.uint8)
    alpha = np.zeros((box.height, box.width), np.uint8)
    for p in patches:
        ys = slice(p.y - box.y0, p.y - box.y0 + p.rgb.shape[0])
        xs = slice(p.x - box.x0, p.x - box.x0 + p.rgb.shape[1])
        owned = p.alpha > 0
        rgb[ys, xs][owned] = p.rgb[owned]
        alpha[ys, xs][owned] = 255
    return Patch(box.x0, box.y0, rgb, alpha)
