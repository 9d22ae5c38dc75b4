"""Small synthetic datasets in the three benchmark layouts, for tests and demos.

Each image is a flat background colour with a few filled shapes (rectangles, ellipses,
triangles); every class has its own colour, so the ground truth is known exactly and a
colour lookup is a perfect segmenter (:func:`color_oracle`). Sizes are odd on purpose, and
each layout's own label convention is exercised: VOC's 255 object borders, COCO-Stuff's
182-id maps (including an unused id, which must end up ignored), ADE20K's 0 = "other".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ovpaint.core.fileio import atomic_save, atomic_write_text
from ovpaint.core.masks import save_label_png
from ovpaint.core.paths import resource
from ovpaint.eval.datasets import dataset_key

SIZES = ((97, 75), (130, 61), (64, 120), (111, 111), (150, 83), (77, 140))  # (width, height)

# Per layout: (background class id, shape class ids) in our 0..K-1 ids.
_CLASSES = {
    "voc": (0, (8, 12, 15)),  # background; cat, dog, person
    "cocostuff": (145, (0, 2, 16)),  # sky-other; person, car, dog
    "ade20k": (2, (12, 20, 4)),  # sky; person, car, tree
}


@dataclass
class SyntheticInfo:
    layout: str
    root: Path
    ids: list[str]
    colors: dict[int, tuple[int, int, int]]  # our class id → RGB colour
    class_ids: list[int] = field(default_factory=list)


def class_color(class_id: int) -> tuple[int, int, int]:
    """A distinct, saturated colour per class id (far apart for the few ids used here)."""
    rng = np.random.default_rng(1000 + class_id)
    hue = int(rng.integers(0, 180))
    hsv = np.array([[[hue, 255, 200 if class_id % 2 else 140]]], dtype=np.uint8)
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _draw(labels: np.ndarray, class_id: int, rng: np.random.Generator) -> None:
    h, w = labels.shape
    kind = int(rng.integers(0, 3))
    cx, cy = int(rng.integers(w // 5, w - w // 5)), int(rng.integers(h // 5, h - h // 5))
    rx, ry = int(rng.integers(w // 8, w // 3)), int(rng.integers(h // 8, h // 3))
    canvas = np.zeros_like(labels, dtype=np.uint8)
    if kind == 0:
        cv2.rectangle(canvas, (cx - rx, cy - ry), (cx + rx, cy + ry), 1, -1)
    elif kind == 1:
        cv2.ellipse(canvas, (cx, cy), (rx, ry), float(rng.integers(0, 180)), 0, 360, 1, -1)
    else:
        pts = np.array([[cx, cy - ry], [cx - rx, cy + ry], [cx + rx, cy + ry]], np.int32)
        cv2.fillPoly(canvas, [pts], 1)
    labels[canvas > 0] = class_id


def make_scene(
    size: tuple[int, int], background: int, shapes: tuple[int, ...], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, label map in our ids) of one synthetic scene."""
    w, h = size
    rng = np.random.default_rng(seed)
    labels = np.full((h, w), background, dtype=np.int32)
    count = int(rng.integers(1, len(shapes) + 1))
    for class_id in rng.choice(shapes, size=count, replace=False):
        _draw(labels, int(class_id), rng)
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    for class_id in np.unique(labels):
        rgb[labels == class_id] = class_color(int(class_id))
    return rgb, labels


def _border(labels: np.ndarray) -> np.ndarray:
    """Pixels on the edge between two classes (VOC marks these 255)."""
    grad = cv2.morphologyEx(labels.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3)))
    return grad > 0


def _save_jpeg(path: Path, rgb: np.ndarray) -> None:
    img = Image.fromarray(rgb, "RGB")
    atomic_save(path, lambda tmp: img.save(tmp, format="JPEG", quality=98, subsampling=0))


def _save_gray(path: Path, values: np.ndarray) -> None:
    img = Image.fromarray(values.astype(np.uint8), "L")
    atomic_save(path, lambda tmp: img.save(tmp, format="PNG"))


def make_synthetic(
    layout: str, root: str | os.PathLike, n_images: int = 4, seed: int = 0
) -> SyntheticInfo:
    """Write ``n_images`` synthetic samples in ``layout`` ('voc', 'cocostuff', 'ade20k')."""
    layout = dataset_key(layout)
    root = Path(root)
    background, shapes = _CLASSES[layout]
    ids = []
    colors = {c: class_color(c) for c in (background, *shapes)}
    for i in range(n_images):
        size = SIZES[i % len(SIZES)]
        rgb, labels = make_scene(size, background, shapes, seed * 1000 + i)
        if layout == "voc":
            sid = f"2007_{i:06d}"
            _save_jpeg(root / "JPEGImages" / f"{sid}.jpg", rgb)
            ann = labels.copy()
            ann[_border(labels)] = 255
            save_label_png(root / "SegmentationClass" / f"{sid}.png", ann)
        elif layout == "cocostuff":
            sid = f"{i + 1:012d}"
            _save_jpeg(root / "images" / "val2017" / f"{sid}.jpg", rgb)
            ann = _coco_to_source()[labels]
            ann[:2, :] = 255  # an unlabeled strip
            ann[-2:, :5] = 11  # an unused source id: must be ignored too
            _save_gray(root / "annotations" / "val2017" / f"{sid}.png", ann)
        else:
            sid = f"ADE_val_{i + 1:08d}"
            _save_jpeg(root / "ADEChallengeData2016" / "images" / "validation" / f"{sid}.jpg", rgb)
            ann = labels + 1
            ann[:, :3] = 0  # "other": ignored
            _save_gray(
                root / "ADEChallengeData2016" / "annotations" / "validation" / f"{sid}.png", ann
            )
        ids.append(sid)
    if layout == "voc":
        atomic_write_text(root / "ImageSets" / "Segmentation" / "val.txt", "\n".join(ids) + "\n")
    info = SyntheticInfo(layout, root, ids, colors, [background, *shapes])
    atomic_write_text(
        root / "synthetic.json",
        json.dumps(
            {"layout": layout, "ids": ids, "colors": {str(k): v for k, v in colors.items()}}
        ),
    )
    return info


def _coco_to_source() -> np.ndarray:
    mapping = json.loads(resource("classes", "cocostuff182_to_171.json").read_text("utf-8"))
    used = [i for i in range(mapping["num_source_ids"]) if i not in set(mapping["unused_ids"])]
    return np.asarray(used, dtype=np.int32)


def color_oracle(colors: dict[int, tuple[int, int, int]]):
    """A segmenter that labels each pixel with the class of the nearest synthetic colour.

    Returns ``fn(rgb) -> ids`` in our 0..K-1 ids: a perfect segmenter on these images, used to
    test the runner end to end where the real models are random.
    """
    ids = np.array(sorted(colors), dtype=np.int32)
    palette = np.array([colors[i] for i in ids], dtype=np.float32)

    def fn(rgb: np.ndarray) -> np.ndarray:
        d = ((rgb[:, :, None, :].astype(np.float32) - palette[None, None]) ** 2).sum(-1)
        return ids[d.argmin(-1)]

    return fn
