"""Masks: palette label PNGs, load_mask by class, grow/shrink/feather invariants."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ovpaint.core.errors import BadInput
from ovpaint.core.masks import (
    bbox,
    feather,
    grow,
    invert,
    load_label_png,
    load_mask,
    palette,
    save_label_png,
    save_mask_png,
    shrink,
)


def _disk_mask(h=64, w=80, cy=32, cx=40, r=15):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_palette_is_voc():
    p = palette()
    assert p.shape == (256, 3) and p.dtype == np.uint8
    assert tuple(p[0]) == (0, 0, 0) and tuple(p[1]) == (128, 0, 0)
    assert tuple(p[15]) == (192, 128, 128) and tuple(p[255]) == (224, 224, 192)
    assert len({tuple(c) for c in p}) == 256


def test_label_png_round_trip(tmp_path):
    labels = np.random.default_rng(0).integers(0, 21, (30, 40)).astype(np.int64)
    labels[0, 0] = 255  # VOC's "ignore" label survives
    path = save_label_png(tmp_path / "l.png", labels)
    with Image.open(path) as img:
        assert img.mode == "P" and img.getpalette()[3:6] == [128, 0, 0]
    assert np.array_equal(load_label_png(path), labels)
    with pytest.raises(BadInput, match="256 labels"):
        save_label_png(tmp_path / "x.png", np.full((2, 2), 300))
    with pytest.raises(BadInput, match="not found"):
        load_label_png(tmp_path / "absent.png")
    (tmp_path / "bad.png").write_text("no")
    with pytest.raises(BadInput, match="not a readable mask"):
        load_label_png(tmp_path / "bad.png")


def test_load_mask_any_or_by_class(tmp_path):
    labels = np.zeros((10, 10), np.uint8)
    labels[2:5, 2:5] = 3
    labels[6:, 6:] = 7
    path = save_label_png(tmp_path / "l.png", labels)
    assert np.array_equal(load_mask(path), labels > 0)
    assert np.array_equal(load_mask(path, 7), labels == 7)
    with pytest.raises(BadInput, match=r"labels present: \[0, 3, 7\]"):
        load_mask(path, 5)
    gray = save_mask_png(tmp_path / "g.png", labels == 3)
    assert np.array_equal(load_mask(gray), labels == 3)


def test_save_mask_png_soft_and_binary(tmp_path):
    soft = np.array([[0.0, 0.5, 1.0, 2.0]], np.float32)
    path = save_mask_png(tmp_path / "s.png", soft)
    assert load_label_png(path).tolist() == [[0, 128, 255, 255]]
    path = save_mask_png(tmp_path / "b.png", np.array([[True, False]]))
    assert load_label_png(path).tolist() == [[255, 0]]


def test_grow_shrink_invariants():
    m = _disk_mask()
    assert np.array_equal(grow(m, 0), m)
    g, s = grow(m, 3), shrink(m, 3)
    assert (g >= m).all() and (s <= m).all()  # nested: shrink ⊂ mask ⊂ grow
    assert g.sum() > m.sum() > s.sum() > 0
    # a disk grows into a disk of radius r + 3 (±1 px of rasterisation)
    assert abs(g[32].sum() - (2 * 18 + 1)) <= 2 and abs(s[32].sum() - (2 * 12 + 1)) <= 2
    full = np.ones((20, 20), bool)
    assert shrink(full, 5).all()  # the image border is not an edge of the mask
    assert not grow(np.zeros((5, 5), bool), 3).any()
    assert shrink(m, 100).sum() == 0


def test_feather_is_zero_outside_and_ramps_inside():
    m = _disk_mask()
    a = feather(m, 5)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert (a[~m] == 0).all()  # nothing outside the mask is touched
    assert (a[shrink(m, 6)] == 1).all()  # deep inside: fully opaque
    edge = m & ~shrink(m, 1)
    assert (a[edge] > 0).all() and (a[edge] < 0.5).all()
    assert np.array_equal(feather(m, 0), m.astype(np.float32))
    row = a[32, 25:41]  # from the left edge towards the centre: never decreasing
    assert (np.diff(row) >= -1e-6).all()


def test_invert_and_bbox():
    m = np.zeros((6, 8), bool)
    assert bbox(m) is None
    m[1:3, 2:5] = True
    assert bbox(m) == (2, 1, 5, 3)
    assert np.array_equal(invert(invert(m)), m) and invert(m).sum() == 48 - 6
    soft = np.array([[0, 10, 255]], np.uint8)  # a feathered edge stays soft
    assert invert(soft).dtype == np.uint8 and invert(soft).tolist() == [[255, 245, 0]]


def _random_masks(rng, count: int):
    """Masks of one to three rectangles, some with holes, often touching the image border."""
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(5, 90, 2))
        m = np.zeros((h, w), bool)
        for _ in range(int(rng.integers(1, 4))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            m[y : y + int(rng.integers(1, 50)), x : x + int(rng.integers(1, 50))] = True
        if rng.random() < 0.5:
            m &= rng.random((h, w)) > 0.1
        yield m


def test_feather_over_the_mask_box_equals_the_whole_image():
    """feather computes distances over the mask's box plus a 1-px ring only; that must give
    the whole-image distance transform's ramp exactly, also for masks with holes, several
    parts, and parts touching the image border."""
    import cv2

    rng = np.random.default_rng(0)
    for m in _random_masks(rng, 200):
        radius = int(rng.integers(1, 12))
        whole = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)
        expected = np.clip(whole / float(radius), 0.0, 1.0).astype(np.float32)
        assert np.array_equal(feather(m, radius), expected)
    assert not feather(np.zeros((8, 8), bool), 3).any()


def test_grow_and_shrink_over_the_mask_box_equal_the_whole_image():
    """grow/shrink work on the mask's box plus the radius; that must equal dilating/eroding
    the whole image, also where the mask touches the image border."""
    import cv2

    rng = np.random.default_rng(1)
    for m in _random_masks(rng, 200):
        radius = int(rng.integers(1, 9))
        size = 2 * radius + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        m8 = m.astype(np.uint8)
        assert np.array_equal(grow(m, radius), cv2.dilate(m8, kernel).astype(bool))
        assert np.array_equal(shrink(m, radius), cv2.erode(m8, kernel, borderValue=1).astype(bool))
    empty = np.zeros((6, 6), bool)
    assert not grow(empty, 2).any() and not shrink(empty, 2).any()
