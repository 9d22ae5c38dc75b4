"""A benchmark folder is input from outside: its id lists and annotations cannot lead the
readers out of the dataset, make them read without bound, or skew a resumed run's counts."""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from ovpaint.core.errors import BadInput
from ovpaint.eval.datasets import MAX_LIST_BYTES, open_dataset
from ovpaint.eval.metrics import ConfusionAccumulator, ImageCounts
from ovpaint.eval.runner import run_benchmark, state_path_for
from ovpaint.eval.synthetic import make_synthetic
from tests.eval.test_runner import Segmenter


def _voc(tmp_path, n_images=2):
    root = tmp_path / "voc"
    info = make_synthetic("voc", root, n_images=n_images)
    return root, info, root / "ImageSets" / "Segmentation" / "val.txt"


def _outside(tmp_path):
    """An image and an annotation outside the dataset, as an id could name them."""
    secret = tmp_path / "secret"
    secret.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(secret / "x.jpg")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(secret / "x.png")
    return secret


@pytest.mark.parametrize(
    "entry",
    ["../../secret/x", "{secret}/x", "sub/x", "..", "a\\b"],
    ids=["parent", "absolute", "folder", "dots", "backslash"],
)
def test_ids_of_the_split_file_stay_inside_the_dataset(tmp_path, entry):
    root, info, split = _voc(tmp_path)
    secret = _outside(tmp_path)
    entry = entry.format(secret=secret)
    (root / "JPEGImages" / "sub").mkdir()
    split.write_text(f"{info.ids[0]}\n{entry}\n")
    with pytest.raises(BadInput, match=r"val\.txt, line 2|Listed in val\.txt") as err:
        open_dataset("voc", root)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "layout, member",
    [
        ("voc", "JPEGImages/{id}.jpg"),  # named by the split file
        ("voc", "SegmentationClass/{id}.png"),
        ("cocostuff", "annotations/val2017/{id}.png"),  # found by a sorted listing
        ("ade20k", "ADEChallengeData2016/images/validation/{id}.jpg"),
    ],
)
def test_images_and_annotations_linked_out_of_the_dataset_are_refused(tmp_path, layout, member):
    root = tmp_path / layout
    ids = make_synthetic(layout, root, n_images=2).ids
    secret = _outside(tmp_path)
    link = root / member.format(id=ids[1])
    link.unlink()
    link.symlink_to(secret / ("x" + link.suffix))
    with pytest.raises(BadInput, match="outside"):
        open_dataset(layout, root)


def test_a_linked_dataset_folder_still_opens(tmp_path):
    """Links inside the dataset (or to it) are fine: only leaving a folder is refused."""
    root, info, _ = _voc(tmp_path)
    link = tmp_path / "voc-link"
    link.symlink_to(root)
    moved = tmp_path / "images-elsewhere"
    (root / "JPEGImages").rename(moved)
    (root / "JPEGImages").symlink_to(moved)
    assert [s.id for s in open_dataset("voc", link).samples] == info.ids


def test_split_file_is_read_with_a_byte_cap(tmp_path):
    root, info, split = _voc(tmp_path)
    with open(split, "r+b") as f:  # sparse: large on paper, nothing to write
        f.truncate(MAX_LIST_BYTES + 1)
    with pytest.raises(BadInput, match="larger than"):
        open_dataset("voc", root)


def test_split_file_that_is_a_pipe_or_not_text_is_refused(tmp_path):
    root, info, split = _voc(tmp_path)
    split.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(BadInput, match="not UTF-8"):
        open_dataset("voc", root)
    split.unlink()
    os.mkfifo(split)  # the old reader waited for a writer forever
    with pytest.raises(BadInput, match="pipe"):
        open_dataset("voc", root)


def test_an_id_listed_twice_is_refused(tmp_path):
    """It would be scored twice and weigh double in the confusion matrix."""
    root, info, split = _voc(tmp_path)
    split.write_text(f"{info.ids[0]}\n{info.ids[1]}\n{info.ids[0]}\n")
    with pytest.raises(BadInput, match=r"line 3: the id .* listed twice \(also line 1\)"):
        open_dataset("voc", root)


@pytest.mark.parametrize("member", ["image", "annotation"])
def test_an_image_or_annotation_over_the_byte_cap_is_refused_before_it_is_decoded(
    tmp_path, monkeypatch, member
):
    """A file of the dataset larger than the cap is refused from its size, naming the file
    and the cap; PIL never sees it (the other file of the pair still loads)."""
    from ovpaint.core import image_io

    root, info, _ = _voc(tmp_path, n_images=1)
    ds = open_dataset("voc", root)
    sample = ds.samples[0]
    cap = max(sample.image_path.stat().st_size, sample.label_path.stat().st_size) + 16
    big = sample.image_path if member == "image" else sample.label_path
    with open(big, "ab") as f:  # bytes after the image's end: decoders ignore them
        f.write(bytes(4096))
    opened = []
    real_open = image_io.Image.open
    monkeypatch.setattr(image_io.Image, "open", lambda fp: opened.append(fp) or real_open(fp))
    monkeypatch.setattr(image_io, "image_byte_cap", lambda pixels, per_pixel=8: cap)
    with pytest.raises(BadInput) as err:
        ds.load(sample)
    message = str(err.value)
    assert str(big) in message and f"larger than {cap / 1000:.1f} KB" in message
    assert "\n" not in message
    assert len(opened) == (0 if member == "image" else 1)  # only the image was decoded


def test_an_annotation_of_another_size_is_refused_before_it_is_decoded(tmp_path):
    root, info, _ = _voc(tmp_path, n_images=1)
    label = root / "SegmentationClass" / f"{info.ids[0]}.png"
    Image.new("L", (6000, 4000)).save(label)  # 24 MP of zeros: a few KB on disk
    ds = open_dataset("voc", root)
    tracemalloc.start()
    try:
        with pytest.raises(BadInput, match=r"sizes differ.*6000×4000"):
            ds.load(ds.samples[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000  # decoding it would hold 24 MB, 96 MB as int32


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["cm"][0].__setitem__(0, -1),  # numpy would wrap it to the last cell
        lambda c: c["cm"][0].__setitem__(0, 10**30),
        lambda c: c["cm"][1].__setitem__(0, -5),
        lambda c: c["cm"][0].append(c["cm"][0][0]) or c["cm"][1].append(1),
        lambda c: c["un"].__setitem__(0, [-1]) or c["un"].__setitem__(1, [3]),
        lambda c: c["bd"].__setitem__(1, [[1, 2, 3]] * len(c["bd"][0])),
        lambda c: c["bd"].__setitem__(0, [1.5] * len(c["bd"][0])),
        lambda c: c.__setitem__("k", 100_000),
        lambda c: c["cm"].__setitem__(1, [True] * len(c["cm"][1])),
    ],
    ids=[
        "negative",
        "huge",
        "negative count",
        "twice",
        "unassigned",
        "boundary row",
        "float index",
        "huge k",
        "bools",
    ],
)
def test_saved_counts_with_bad_indices_are_refused(change):
    labels = np.array([[0, 1], [2, 1]], np.int32)
    counts = ConfusionAccumulator(3).image_counts(labels, labels).to_json()
    assert ImageCounts.from_json(counts).matrix.sum() == 4
    change(counts)
    with pytest.raises(BadInput):
        ImageCounts.from_json(counts)


def test_a_state_line_with_a_negative_index_is_done_again(tmp_path):
    """A tampered state file cannot move counts into another cell of a resumed run."""
    root, info, _ = _voc(tmp_path, n_images=2)
    out = tmp_path / "report.json"
    first = run_benchmark("voc", root, "oracle", segment_fn=Segmenter(info.colors), out_path=out)
    state = state_path_for(out)
    lines = state.read_text().splitlines()
    record = json.loads(lines[1])
    record["counts"]["cm"][0][0] = -1  # the first cell, moved to the last by wrapping
    lines[1] = json.dumps(record)
    state.write_text("\n".join(lines) + "\n")
    again = run_benchmark("voc", root, "oracle", segment_fn=Segmenter(info.colors), out_path=out)
    assert again.resumed_images == 1
    assert np.array_equal(again.matrix, first.matrix)


@pytest.mark.parametrize(
    "layout, folder",
    [
        ("cocostuff", "images/val2017"),
        ("ade20k", "ADEChallengeData2016/images/validation"),
    ],
)
def test_a_listed_folder_is_read_up_to_a_limit(tmp_path, monkeypatch, layout, folder):
    """A folder of more entries than the limit is refused after reading one past it, not
    listed whole; at the limit every image is taken, in name order."""
    from ovpaint.core import safeio
    from ovpaint.eval import datasets

    root = tmp_path / layout
    ids = make_synthetic(layout, root, n_images=3).ids
    images = root / folder
    for i in range(40):  # not images, but entries a listing must read past
        (images / f"notes-{i:02d}.txt").write_text("x")
    read = []
    real_scandir = safeio.os.scandir

    class Counting:  # the images folder's listing, counting the entries taken from it
        def __init__(self, path):
            self.inner = real_scandir(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.inner.close()

        def __iter__(self):
            for entry in self.inner:
                read.append(entry.name)
                yield entry

    def scandir(path="."):
        return Counting(path) if os.path.samefile(path, images) else real_scandir(path)

    monkeypatch.setattr(safeio.os, "scandir", scandir)
    monkeypatch.setattr(datasets, "MAX_FOLDER_ENTRIES", 10)
    with pytest.raises(BadInput) as err:
        open_dataset(layout, root)
    message = str(err.value)
    assert str(images) in message and "more than 10 entries" in message
    assert len(read) == 11  # stopped at the first entry past the limit
    monkeypatch.setattr(datasets, "MAX_FOLDER_ENTRIES", 43)
    ds = open_dataset(layout, root)
    assert [s.id for s in ds.samples] == sorted(ids)
