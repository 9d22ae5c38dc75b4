"""The document model: evented layer list, composite for export, label map."""

from __future__ import annotations

import numpy as np
import pytest

from ovpaint.core.document import Document, ImageLayer, MaskLayer, mask_diff_region


def _doc(h=40, w=60):
    rng = np.random.default_rng(0)
    return Document(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_events_for_insert_move_remove_change_select():
    doc = _doc()
    log = []
    doc.layers.inserted.connect(lambda i, layer: log.append(("ins", i, layer.name)))
    doc.layers.removed.connect(lambda i, layer: log.append(("rm", i, layer.name)))
    doc.layers.moved.connect(lambda a, b, layer: log.append(("mv", a, b, layer.name)))
    doc.layers.changed.connect(lambda layer, what, region: log.append(("ch", layer.name, what)))
    doc.layers.selection_changed.connect(lambda layer: log.append(("sel", layer and layer.name)))
    a = doc.new_mask_layer("sky")
    doc.layers.append(a)
    b = doc.new_mask_layer("dog")
    doc.layers.append(b)
    c = doc.new_mask_layer("cat", also_used=(b.color,))
    assert len({a.color, b.color, c.color}) == 3
    doc.layers.select(b)
    doc.layers.move(b, 0)
    doc.set_property(a, "opacity", 3.0)
    assert a.opacity == 1.0
    doc.layers.remove(b)
    assert log == [
        ("ins", 0, "sky"),
        ("ins", 1, "dog"),
        ("sel", "dog"),
        ("mv", 1, 0, "dog"),
        ("ch", "sky", "opacity"),
        ("sel", None),
        ("rm", 0, "dog"),
    ]
    assert doc.dirty


def test_set_mask_reports_region_and_refuses_wrong_shape():
    doc = _doc()
    layer = doc.new_mask_layer("m")
    doc.layers.append(layer)
    regions = []
    doc.layers.changed.connect(lambda lay, what, region: regions.append(region))
    new = layer.mask.copy()
    new[5:9, 10:20] = True
    region = mask_diff_region(layer.mask, new)
    assert region == (10, 5, 20, 9)
    old = layer.mask
    doc.set_mask(layer, new, region)
    assert regions == [(10, 5, 20, 9)]
    assert not old.any()  # the previous array was not touched in place
    with pytest.raises(ValueError):
        doc.set_mask(layer, np.zeros((3, 3), bool))
    assert mask_diff_region(new, new.copy()) is None


def test_composite_blends_visible_image_layers_and_leaves_the_rest_untouched():
    doc = _doc()
    patch = np.full((10, 10, 3), 200, np.uint8)
    alpha = np.zeros((10, 10), np.uint8)
    alpha[2:8, 2:8] = 255
    alpha[5, 5] = 128
    layer = ImageLayer(name="fill", rgb=patch, alpha=alpha, x=50, y=35)  # hangs off the edge
    doc.layers.append(layer)
    doc.layers.append(MaskLayer(name="sel", mask=np.ones(doc.shape, bool)))
    out = doc.composite()
    assert out.shape == doc.rgb.shape and out is not doc.rgb
    expected = doc.rgb.copy()
    region = expected[35:40, 50:60]
    a = alpha[:5, :10]  # rows 35..39 only: the patch hangs off the bottom edge
    region[a == 255] = 200
    assert np.array_equal(out, expected)
    doc.set_property(layer, "visible", False)
    assert np.array_equal(doc.composite(), doc.rgb)


def test_composite_soft_alpha_and_opacity():
    doc = _doc()
    alpha = np.full((4, 4), 128, np.uint8)
    layer = ImageLayer(
        name="p", rgb=np.full((4, 4, 3), 255, np.uint8), alpha=alpha, x=1, y=1, opacity=0.5
    )
    doc.layers.append(layer)
    out = doc.composite()
    base = doc.rgb[1:5, 1:5].astype(np.float32)
    expected = np.rint(base + (255 - base) * (128 / 255 * 0.5)).astype(np.uint8)
    assert np.array_equal(out[1:5, 1:5], expected)
    out[1:5, 1:5] = doc.rgb[1:5, 1:5]
    assert np.array_equal(out, doc.rgb)


def test_label_map_orders_masks():
    doc = _doc(10, 10)
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[3:8] = True
    doc.layers.append(doc.new_mask_layer("sky", a))
    doc.layers.append(doc.new_mask_layer("dog", b))
    labels, names = doc.label_map()
    assert names == ["background", "sky", "dog"]
    assert (labels[:3] == 1).all() and (labels[3:8] == 2).all() and (labels[8:] == 0).all()


def test_export_views_are_taken_at_the_click():
    """What export reads is taken on the UI thread and blended on a worker: later edits to
    the document do not reach an export already started."""
    from ovpaint.core.document import composite, label_map

    doc = _doc(10, 10)
    layer = ImageLayer(name="p", rgb=np.full((4, 4, 3), 255, np.uint8), x=2, y=2)
    doc.layers.append(layer)
    mask = np.zeros((10, 10), bool)
    mask[:4] = True
    sky = doc.new_mask_layer("sky", mask)
    doc.layers.append(sky)
    paint, masks = doc.paint_layers(), doc.visible_masks()
    before, labels_before = doc.composite(), doc.label_map()
    doc.set_property(layer, "visible", False)
    doc.set_property(sky, "visible", False)
    assert np.array_equal(composite(doc.rgb, paint), before)
    labels, names = label_map(doc.shape, masks)
    assert names == labels_before[1] == ["background", "sky"]
    assert np.array_equal(labels, labels_before[0]) and labels[:4].all()
    assert np.array_equal(doc.composite(), doc.rgb) and not doc.label_map()[0].any()


def test_unique_name():
    doc = _doc()
    doc.layers.append(doc.new_mask_layer("sky"))
    assert doc.unique_name("sky") == "sky (2)"
    assert doc.unique_name("dog") == "dog"


def test_class_colours_are_fixed_distinct_and_follow_colour_words():
    from ovpaint.core.document import OVERLAY_COLORS, class_color, class_key

    assert class_color("sky") == class_color("Sky ") == class_color("sky (2)")
    assert class_key("  Red   Car (3)") == "red car"
    assert class_color("red car") == (230, 25, 75) and class_color("a blue door") == (0, 130, 200)
    taken = [class_color("sky")]
    other = class_color("sky", taken)  # the slot is taken: the next free one
    assert other != taken[0] and other in OVERLAY_COLORS
    names = ["sky", "dog", "person", "tree", "road", "car", "grass", "cat"]
    chosen = []
    for name in names:
        chosen.append(class_color(name, chosen))
    assert len(set(chosen)) == len(names)
    every = list(OVERLAY_COLORS)
    assert class_color("anything", every) in OVERLAY_COLORS  # full: still a colour
