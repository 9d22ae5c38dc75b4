"""Outputs are checked before any work and never land on an input; numbers have ranges.
Each bad case is exit 2 with one line, and the segmentation or inpainting never starts."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image

import ovpaint.pipelines.inpainting.inpaint as inpaint_module
import ovpaint.pipelines.segmentation.segment as segment_module
from ovpaint.core import fileio
from tests.cli.conftest import one_line, run


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "photo.png"
    Image.fromarray((rng.random((40, 50, 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def mask(tmp_path):
    data = np.zeros((40, 50), np.uint8)
    data[15:25, 20:30] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(data).save(path)
    return path


@pytest.fixture
def work(monkeypatch):
    """Records every segmentation and inpainting that starts."""
    started = []
    real_segment, real_inpaint = segment_module.segment, inpaint_module.inpaint

    def segment(*a, **k):
        started.append("segment")
        return real_segment(*a, **k)

    def inpaint(*a, **k):
        started.append("inpaint")
        return real_inpaint(*a, **k)

    monkeypatch.setattr(segment_module, "segment", segment)
    monkeypatch.setattr(inpaint_module, "inpaint", inpaint)
    return started


def _segment(image, out, *extra):
    return run(
        "segment", image, "--prompt", "sky", "--method", "dense", "--out", out, "--quiet", *extra
    )


# ------------------------------------------------------------------ inputs are never outputs
def test_masks_dir_never_overwrites_the_input(tmp_path, work, capsys):
    folder = tmp_path / "masks"
    folder.mkdir()
    image = folder / "l.mask-01-sky.png"  # the name of the mask of class 1 of l.png
    Image.fromarray(np.full((30, 40, 3), 120, np.uint8)).save(image)
    before = image.read_bytes()
    rc = _segment(image, tmp_path / "l.png", "--masks-dir", folder)
    assert rc == 2 and "is the input" in one_line(capsys)
    assert image.read_bytes() == before and not work


def test_masks_dir_input_through_a_link_or_hard_link(tmp_path, photo, work, capsys):
    folder = tmp_path / "masks"
    folder.mkdir()
    os.link(photo, folder / "l.mask-01-sky.png")
    before = photo.read_bytes()
    rc = _segment(photo, tmp_path / "l.png", "--masks-dir", folder)
    assert rc == 2 and "is the input" in one_line(capsys)
    assert photo.read_bytes() == before and not work


def test_every_file_of_the_mask_set_is_checked(tmp_path, photo, work, capsys):
    """Not only --out: the class file beside it and each class's mask are checked first."""
    (tmp_path / "taken.classes.txt").mkdir()  # where the class file of taken.png goes
    assert _segment(photo, tmp_path / "taken.png") == 2
    assert "taken.classes.txt" in one_line(capsys)
    masks = tmp_path / "masks"
    (masks / "l.mask-01-sky.png").mkdir(parents=True)  # where the mask of 'sky' goes
    assert _segment(photo, tmp_path / "l.png", "--masks-dir", masks) == 2
    assert "l.mask-01-sky.png" in one_line(capsys)
    assert not work


def test_inpaint_never_overwrites_its_mask(tmp_path, photo, mask, work, capsys):
    before = mask.read_bytes()
    rc = run(
        "inpaint",
        photo,
        "--mask",
        mask,
        "--out",
        mask,
        "--overwrite",
        "--engine",
        "telea",
        "--quiet",
    )
    assert rc == 2 and "is the input" in one_line(capsys)
    assert mask.read_bytes() == before and not work


# ------------------------------------------------------------------ checked before the work
@pytest.mark.parametrize(
    "case, message",
    [
        ("out is a folder", "is a folder"),
        ("parent is a file", "is a file, not a folder"),
        ("masks-dir is a file", "is a file, not a folder"),
        ("read-only disk", "read-only"),
        ("no permission", "No permission"),
    ],
)
def test_segment_outputs_are_checked_before_segmenting(
    tmp_path, photo, work, capsys, monkeypatch, case, message
):
    out, extra = tmp_path / "labels.png", []
    if case == "out is a folder":
        out.mkdir()
    elif case == "parent is a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "labels.png"
    elif case == "masks-dir is a file":
        (tmp_path / "m").write_text("x")
        extra = ["--masks-dir", tmp_path / "m"]
    else:
        code = errno.EROFS if case == "read-only disk" else errno.EACCES

        def refuse(*a, **k):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)
    assert _segment(photo, out, *extra) == 2
    assert message in one_line(capsys)
    assert not work


def test_inpaint_outputs_are_checked_before_inpainting(tmp_path, photo, mask, work, capsys):
    (tmp_path / "taken.png").write_bytes(b"mine")
    (tmp_path / "dir.png").mkdir()
    for out, message in [
        (tmp_path / "taken.png", "exists; pass --overwrite"),
        (tmp_path / "dir.png", "is a folder"),
    ]:
        rc = run("inpaint", photo, "--mask", mask, "--out", out, "--engine", "telea", "--quiet")
        assert rc == 2 and message in one_line(capsys)
    # the second variant's name is a folder: found before the first is computed
    (tmp_path / "v-2.png").mkdir()
    rc = run(
        "inpaint",
        photo,
        "--mask",
        mask,
        "--out",
        tmp_path / "v.png",
        "--variants",
        2,
        "--engine",
        "telea",
        "--quiet",
    )
    assert rc == 2 and "v-2.png" in one_line(capsys)
    assert not work and (tmp_path / "taken.png").read_bytes() == b"mine"


def test_perf_json_and_only_are_checked_before_timing(tmp_path, capsys):
    (tmp_path / "report.json").mkdir()
    assert run("perf", "--quick", "--json", tmp_path / "report.json") == 2
    assert "is a folder" in one_line(capsys)
    assert run("perf", "--quick", "--only", "no-such-stage") == 2
    assert "matches no stage" in one_line(capsys)


def test_benchmark_outputs_are_checked_before_the_run(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    rc = run(
        "benchmark",
        "--dataset",
        "voc",
        "--root",
        tmp_path,
        "--out",
        tmp_path / "file" / "r.json",
        "--quiet",
    )
    assert rc == 2 and "is a file, not a folder" in one_line(capsys)
    rc = run(
        "benchmark",
        "--dataset",
        "voc",
        "--root",
        tmp_path,
        "--out",
        tmp_path / "r.json",
        "--save-predictions",
        tmp_path / "preds",
        "--quiet",
    )
    assert rc == 2 and "inside the dataset folder" in one_line(capsys)


def test_write_errors_are_one_line(tmp_path):
    """What the checks cannot foresee (the disk changed meanwhile) maps the same way."""
    from ovpaint.core.errors import BadInput, DiskFull

    cases = {
        errno.EROFS: "read-only",
        errno.EISDIR: "folder",
        errno.ENOTDIR: "not a folder",
        errno.EEXIST: "exists",
    }
    for code, words in cases.items():
        err = fileio.write_error(OSError(code, os.strerror(code)), tmp_path / "x.png", "--out")
        assert isinstance(err, BadInput) and err.exit_code == 2 and words in str(err)
        assert "--out" in str(err) and "\n" not in str(err)
    assert isinstance(fileio.write_error(OSError(errno.ENOSPC, "full"), tmp_path / "x"), DiskFull)


# ------------------------------------------------------------------ numbers have ranges
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--seed", 2**70], "--seed"),
        (["--seed", -1], "--seed"),
        (["--dilate", 100000], "--dilate"),
        (["--steps", 0], "--steps"),
        (["--variants", 0], "--variants"),
        (["--guidance", "nan"], "--guidance"),
        (["--strength", "inf"], "--strength"),
        (["--class", 300], "--class"),
    ],
)
def test_inpaint_numbers_out_of_range(photo, mask, tmp_path, work, capsys, argv, words):
    rc = run(
        "inpaint",
        photo,
        "--mask",
        mask,
        "--out",
        tmp_path / "o.png",
        "--engine",
        "telea",
        "--quiet",
        *argv,
    )
    assert rc == 2 and words in one_line(capsys) and not work


@pytest.mark.parametrize("argv", [["--short-side", 0], ["--short-side", 10**9]])
def test_segment_numbers_out_of_range(photo, tmp_path, work, capsys, argv):
    assert _segment(photo, tmp_path / "l.png", *argv) == 2
    assert "--short-side" in one_line(capsys) and not work


def test_thin_image_is_refused_clearly(tmp_path, capsys):
    thin = tmp_path / "thin.png"
    Image.fromarray(np.zeros((1, 20000, 3), np.uint8)).save(thin)
    assert _segment(thin, tmp_path / "l.png") == 2
    assert "20000×1" in one_line(capsys)


def test_dilate_is_applied_by_the_model_free_engines(photo, mask, tmp_path):
    changed = {}
    for dilate in (0, 12):
        out = tmp_path / f"d{dilate}.png"
        options = ["--engine", "telea", "--grow", 0, "--dilate", dilate, "--quiet"]
        assert run("inpaint", photo, "--mask", mask, "--out", out, *options) == 0
        diff = np.asarray(Image.open(out)) != np.asarray(Image.open(photo))
        changed[dilate] = diff.any(-1)
    inside = np.asarray(Image.open(mask)) > 0
    assert not (changed[0] & ~inside).any()  # no dilation: only the mask changes
    assert (changed[12] & ~inside).sum() > 100  # a 12 px band around it changes too


def test_pipes_and_devices_as_inputs_are_refused_not_read(tmp_path, photo, capsys):
    fifo = tmp_path / "mask.png"
    os.mkfifo(fifo)
    rc = run(
        "inpaint",
        photo,
        "--mask",
        fifo,
        "--out",
        tmp_path / "o.png",
        "--engine",
        "telea",
        "--quiet",
    )
    assert rc == 2 and "pipe or device" in one_line(capsys)
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    assert _segment(link, tmp_path / "l.png") == 2
    assert "pipe or device" in one_line(capsys)
