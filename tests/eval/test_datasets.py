"""Dataset readers on synthetic data in each layout, and their error messages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ovpaint.core.errors import BadInput
from ovpaint.core.masks import load_label_png
from ovpaint.core.paths import resource
from ovpaint.eval.datasets import open_dataset, read_class_file
from ovpaint.eval.synthetic import color_oracle, make_synthetic

LAYOUTS = ("voc", "cocostuff", "ade20k")


def test_class_lists_have_the_published_sizes_and_names():
    voc = read_class_file(resource("classes", "voc21.txt"))
    coco = read_class_file(resource("classes", "cocostuff171.txt"))
    ade = read_class_file(resource("classes", "ade150.txt"))
    assert (len(voc), len(coco), len(ade)) == (21, 171, 150)
    assert voc[0].label == "background" and "sky" in voc[0].queries
    assert "background" not in voc[0].queries
    assert voc[20].label == "tvmonitor" and voc[15].label == "person"
    assert coco[0].label == "person" and coco[170].label == "wood"
    assert coco[145].label == "sky-other" and coco[145].queries == ("sky",)
    assert ade[0].label == "wall" and ade[149].label == "flag" and ade[7].label == "bed"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reader_maps_labels_to_scored_ids(tmp_path, layout):
    info = make_synthetic(layout, tmp_path, n_images=3)
    ds = open_dataset(layout, tmp_path)
    assert [s.id for s in ds.samples] == info.ids
    oracle = color_oracle(info.colors)
    for sample in ds.samples:
        loaded = ds.load(sample)
        h, w = loaded.gt.shape
        assert (w, h) == loaded.image.size
        values = set(np.unique(loaded.gt).tolist())
        assert values <= set(info.class_ids) | {255}
        assert 255 in values  # every layout marks some pixels not scored
        scored = loaded.gt != 255
        agree = (oracle(loaded.image.rgb) == loaded.gt)[scored].mean()
        assert agree > 0.99


def test_layout_conventions(tmp_path):
    make_synthetic("ade20k", tmp_path / "ade", n_images=1)
    ds = open_dataset("ade20k", tmp_path / "ade")
    raw = load_label_png(ds.samples[0].label_path)
    gt = ds.load(ds.samples[0]).gt
    assert (gt[raw == 0] == 255).all()  # ADE "other" ignored
    assert (gt[raw > 0] == raw[raw > 0] - 1).all()  # label − 1
    assert (ds.prediction_png_ids(gt) == raw).all()  # and back
    make_synthetic("cocostuff", tmp_path / "coco", n_images=1)
    ds = open_dataset("cocostuff", tmp_path / "coco")
    raw = load_label_png(ds.samples[0].label_path)
    gt = ds.load(ds.samples[0]).gt
    assert (gt[raw == 11] == 255).all()  # an unused COCO id is ignored
    assert (gt[raw == 0] == 0).all() and (gt[raw == 181] == 170).all()
    assert (gt[raw == 2] == 2).all() and (gt[raw == 12] == 11).all()  # stop sign: 12 → 11
    scored = gt != 255
    assert (ds.prediction_png_ids(gt)[scored] == raw[scored]).all()


def test_coco_accepts_converted_train_ids(tmp_path):
    make_synthetic("cocostuff", tmp_path, n_images=1)
    ds = open_dataset("cocostuff", tmp_path)
    gt = ds.load(ds.samples[0]).gt
    label = ds.samples[0].label_path
    Image.fromarray(gt.astype(np.uint8), "L").save(
        label.with_name(label.stem + "_labelTrainIds.png")
    )
    label.unlink()
    ds = open_dataset("cocostuff", tmp_path)
    assert (ds.load(ds.samples[0]).gt == gt).all()


def test_missing_split_file_is_named(tmp_path):
    make_synthetic("voc", tmp_path, n_images=1)
    split = tmp_path / "ImageSets" / "Segmentation" / "val.txt"
    split.unlink()
    with pytest.raises(BadInput, match="val.txt"):
        open_dataset("voc", tmp_path)


def test_missing_annotation_is_named(tmp_path):
    info = make_synthetic("ade20k", tmp_path, n_images=2)
    victim = tmp_path / "ADEChallengeData2016" / "annotations" / "validation" / f"{info.ids[1]}.png"
    victim.unlink()
    with pytest.raises(BadInput, match=info.ids[1]):
        open_dataset("ade20k", tmp_path)


def test_size_mismatch_is_named(tmp_path):
    info = make_synthetic("voc", tmp_path, n_images=1)
    label = tmp_path / "SegmentationClass" / f"{info.ids[0]}.png"
    Image.fromarray(np.zeros((10, 12), np.uint8), "L").save(label)
    ds = open_dataset("voc", tmp_path)
    with pytest.raises(BadInput, match=r"sizes differ.*" + info.ids[0]):
        ds.load(ds.samples[0])


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(BadInput, match="Unknown dataset"):
        open_dataset("cityscapes", tmp_path)
    with pytest.raises(BadInput, match="not found"):
        open_dataset("voc", tmp_path / "nope")
    with pytest.raises(BadInput, match="JPEGImages"):
        open_dataset("voc", tmp_path)
