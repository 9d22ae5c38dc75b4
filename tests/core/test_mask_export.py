"""One mask layout for the CLI, batch and the app: file names, the class file, whole-or-nothing
writes, inputs never overwritten."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ovpaint.core import mask_export
from ovpaint.core.errors import BadInput, Cancelled, DiskFull
from ovpaint.core.masks import load_label_png


def _labels() -> np.ndarray:
    labels = np.zeros((6, 8), np.uint8)
    labels[:2] = 1
    labels[4:, 4:] = 3
    return labels


CLASSES = ["background", "sky", "red car", "dog / puppy"]


def test_the_set_of_a_label_map(tmp_path):
    written = mask_export.write_mask_set(
        tmp_path / "photo", CLASSES, labels=_labels(), skip_empty=True
    )
    names = [p.name for p in written]
    assert names == [
        "photo.labels.png",
        "photo.classes.txt",
        "photo.mask-01-sky.png",
        "photo.mask-03-dog_puppy.png",  # red car is absent: skipped
    ]
    assert (load_label_png(tmp_path / "photo.labels.png") == _labels()).all()
    text = (tmp_path / "photo.classes.txt").read_text("utf-8")
    assert text == "0\tbackground\n1\tsky\n2\tred car\n3\tdog / puppy\n"  # names kept whole
    dog = np.asarray(Image.open(tmp_path / "photo.mask-03-dog_puppy.png"))
    assert dog.dtype == np.uint8 and ((dog == 255) == (_labels() == 3)).all()


def test_base_of_a_label_map_name():
    assert mask_export.base_of("d/photo.labels.png").as_posix() == "d/photo"
    assert mask_export.base_of("d/labels.png").as_posix() == "d/labels"
    assert mask_export.base_of("d/x.PNG").as_posix() == "d/x"


@pytest.mark.parametrize("failure", [DiskFull("full"), Cancelled()])
def test_a_failure_leaves_no_file_of_the_set(tmp_path, monkeypatch, failure):
    calls = {"n": 0}

    def check():
        calls["n"] += 1
        if calls["n"] == 3:  # after the label map and the class file
            raise failure

    with pytest.raises(type(failure)):
        mask_export.write_mask_set(tmp_path / "p", CLASSES, labels=_labels(), check=check)
    assert list(tmp_path.iterdir()) == []


def test_an_input_is_never_a_target(tmp_path):
    original = tmp_path / "photo.labels.png"
    original.write_bytes(b"the user's file")
    with pytest.raises(BadInput, match="input file"):
        mask_export.write_mask_set(tmp_path / "photo", CLASSES, labels=_labels(), inputs=[original])
    assert original.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.labels.png"]


def test_a_mask_set_probes_its_folder_once(tmp_path, monkeypatch):
    from ovpaint.core import fileio, mask_export

    probes = []
    real = fileio._check_folder_writable
    monkeypatch.setattr(
        fileio, "_check_folder_writable", lambda *a: (probes.append(a[0]), real(*a))
    )
    paths = [tmp_path / f"photo.mask-{i:02d}-class.png" for i in range(5)]
    mask_export.check_mask_set(paths)
    assert probes == [tmp_path]
