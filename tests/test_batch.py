"""Folder processing: outputs, report, resume, failures, cancel and bad input."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ovpaint.batch as batch
from ovpaint.core import fileio, mask_export
from ovpaint.core.errors import BadInput, Cancelled, DiskFull
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.masks import load_label_png
from ovpaint.pipelines.result import SegmentationResult


class BrightSegmenter:
    """Class 1 = bright pixels, class 2 = red pixels; counts calls, can cancel or fail."""

    def __init__(self, cancel_after=None, cancel=None, fail_on=None):
        self.calls = 0
        self.cancel_after, self.cancel, self.fail_on = cancel_after, cancel, fail_on

    def __call__(self, rgb, queries):
        self.calls += 1
        if self.cancel_after is not None and self.calls >= self.cancel_after:
            self.cancel.cancel()
        if self.fail_on is not None and rgb.shape[1] == self.fail_on:
            raise RuntimeError("model exploded")
        labels = np.zeros(rgb.shape[:2], np.int32)
        labels[rgb.mean(-1) > 128] = 1
        labels[(rgb[..., 0] > 200) & (rgb[..., 1] < 50)] = 2
        return SegmentationResult(
            labels,
            ["background"] + [q.name for q in queries],
            method="fake",
            timings={"dense": 0.001},
        )


def _image(path: Path, w: int, h: int, seed: int, mode: str = "RGB") -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    arr[: h // 2, : w // 2] = (255, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr, "RGB")
    if mode == "RGBA":
        img = img.convert("RGBA")
    img.save(path)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    _image(src / "a.jpg", 40, 30, 0)
    _image(src / "b.png", 33, 17, 1, "RGBA")
    _image(src / "sub" / "c.png", 21, 45, 2)
    _image(src / "sub" / "deeper" / "d.jpg", 50, 20, 3)
    (src / "notes.txt").write_text("not an image")
    return src


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_outputs_mirror_the_tree_and_inputs_are_untouched(folder, tmp_path):
    before = _hashes(folder)
    out = tmp_path / "out"
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    seen = []
    report = batch.run_batch(
        folder,
        out,
        "sky, red car|car",
        "fake",
        segment_fn=BrightSegmenter(),
        progress=progress,
        on_file=seen.append,
    )
    assert _hashes(folder) == before
    assert report.count("done") == 4 and report.count("failed") == 0
    assert [f.path for f in seen] == ["a.jpg", "b.png", "sub/c.png", "sub/deeper/d.jpg"]
    labels = load_label_png(out / "sub" / "c.labels.png")
    assert labels.shape == (45, 21) and set(np.unique(labels)) <= {0, 1, 2}
    rec = {f.path: f for f in report.files}["sub/c.png"]
    assert rec.mask_areas["sky"] == int((labels == 1).sum())
    assert rec.mask_areas["red car"] == int((labels == 2).sum())
    mask = np.asarray(Image.open(out / "sub" / "c.mask-02-red_car.png"))
    assert ((mask > 0) == (labels == 2)).all()
    assert (out / "sub" / "c.classes.txt").read_text() == "0\tbackground\n1\tsky\n2\tred car\n"
    assert events[-1].done == 4 and events[-1].total == 4
    rows = list(csv.DictReader((out / "batch_report.csv").open()))
    assert [r["status"] for r in rows] == ["done"] * 4
    data = json.loads((out / "batch_report.json").read_text())
    assert data["summary"]["done"] == 4 and data["files"][0]["classes_found"]
    assert not list(out.rglob("*.part"))


def test_rerun_skips_finished_files_and_overwrite_redoes_them(folder, tmp_path):
    out = tmp_path / "out"
    batch.run_batch(folder, out, "sky", "fake", segment_fn=BrightSegmenter())
    seg = BrightSegmenter()
    report = batch.run_batch(folder, out, "sky", "fake", segment_fn=seg)
    assert seg.calls == 0 and report.count("skipped") == 4
    assert report.files[0].classes_found == ["sky"]
    # A changed prompt is not "finished"; neither is a changed input file.
    _image(folder / "a.jpg", 40, 30, 9)
    seg = BrightSegmenter()
    report = batch.run_batch(folder, out, "sky", "fake", segment_fn=seg)
    assert seg.calls == 1 and {f.path for f in report.files if f.status == "done"} == {"a.jpg"}
    seg = BrightSegmenter()
    report = batch.run_batch(folder, out, "sky, sea", "fake", segment_fn=seg)
    assert seg.calls == 4, "a changed prompt must redo every file"
    seg = BrightSegmenter()
    report = batch.run_batch(folder, out, "sky, sea", "fake", segment_fn=seg, overwrite=True)
    assert seg.calls == 4 and report.count("done") == 4


def test_failing_and_unreadable_files_are_reported_and_the_run_goes_on(folder, tmp_path):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (folder / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    report = batch.run_batch(folder, out, "sky", "fake", segment_fn=BrightSegmenter(fail_on=21))
    status = {f.path: f for f in report.files}
    assert status["broken.jpg"].status == "failed" and "broken.jpg" in status["broken.jpg"].error
    assert status["empty.png"].status == "failed" and "empty" in status["empty.png"].error
    assert status["sub/c.png"].status == "failed" and "model exploded" in status["sub/c.png"].error
    assert status["a.jpg"].status == "done" and status["sub/deeper/d.jpg"].status == "done"
    assert not (out / "sub" / "c.labels.png").exists()
    rows = {r["path"]: r for r in csv.DictReader((out / "batch_report.csv").open())}
    assert rows["sub/c.png"]["status"] == "failed" and rows["sub/c.png"]["error"]
    # The next run retries only the failed ones.
    seg = BrightSegmenter()
    report = batch.run_batch(folder, out, "sky", "fake", segment_fn=seg)
    assert seg.calls == 1  # c.png; the two unreadable files fail again while loading
    assert report.count("skipped") == 3 and report.count("failed") == 2
    assert report.count("done") == 1


def test_cancel_leaves_no_partial_output_and_next_run_resumes(folder, tmp_path):
    out = tmp_path / "out"
    cancel = CancelToken()
    seg = BrightSegmenter(cancel_after=2, cancel=cancel)
    with pytest.raises(Cancelled):
        batch.run_batch(folder, out, "sky", "fake", segment_fn=seg, cancel=cancel)
    # The second file was computed when the cancel came: none of its outputs exist.
    assert (out / "a.labels.png").exists() and not list(out.glob("b.*"))
    data = json.loads((out / "batch_report.json").read_text())
    assert data["cancelled"] is True and data["summary"]["done"] == 1
    seg = BrightSegmenter()
    report = batch.run_batch(folder, out, "sky", "fake", segment_fn=seg)
    assert seg.calls == 3 and report.count("skipped") == 1 and report.count("done") == 3


def test_disk_full_stops_with_nothing_half_written(folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = {"n": 0}
    real = mask_export.save_mask_png

    def full_after_first_file(path, mask, **kw):
        calls["n"] += 1
        if calls["n"] > 1:
            raise DiskFull(f"Disk full while writing {path}; nothing was written.")
        return real(path, mask, **kw)

    monkeypatch.setattr(mask_export, "save_mask_png", full_after_first_file)
    with pytest.raises(DiskFull):
        batch.run_batch(folder, out, "sky", "fake", segment_fn=BrightSegmenter())
    assert (out / "a.labels.png").exists() and (out / "a.classes.txt").exists()
    assert not (out / "b.labels.png").exists()  # written, then removed with its sibling
    assert not (out / "b.classes.txt").exists()
    assert not list(out.rglob("*.part"))
    assert json.loads((out / "batch_report.json").read_text())["stopped_by"] == "disk full"


def test_output_inside_input_is_excluded_and_same_folder_refused(folder):
    out = folder / "results"
    report = batch.run_batch(folder, out, "sky", "fake", segment_fn=BrightSegmenter())
    assert report.count("done") == 4 and "excluded" in report.messages[0]
    seg = BrightSegmenter()
    report = batch.run_batch(folder, out, "sky", "fake", segment_fn=seg, overwrite=True)
    assert seg.calls == 4  # its own outputs were not picked up as inputs
    with pytest.raises(BadInput, match="differ"):
        batch.run_batch(folder, folder, "sky", "fake", segment_fn=BrightSegmenter())


def test_bad_inputs(tmp_path, folder, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="No images"):
        batch.run_batch(
            tmp_path / "empty", tmp_path / "o", "sky", "x", segment_fn=BrightSegmenter()
        )
    with pytest.raises(BadInput, match="not found"):
        batch.run_batch(tmp_path / "nope", tmp_path / "o", "sky", "x", segment_fn=BrightSegmenter())
    with pytest.raises(BadInput, match="prompt is empty"):
        batch.run_batch(folder, tmp_path / "o", " ", "x", segment_fn=BrightSegmenter())
    report = batch.run_batch(
        folder,
        tmp_path / "o2",
        "sky",
        "x",
        segment_fn=BrightSegmenter(),
        recursive=False,
        extensions="png",
    )
    assert [f.path for f in report.files] == ["b.png"]

    def no_permission(*a, **k):
        raise PermissionError("denied")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", no_permission)
    with pytest.raises(BadInput, match="No permission"):
        batch.run_batch(folder, tmp_path / "o3", "sky", "x", segment_fn=BrightSegmenter())


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores modes")
def test_read_only_output_folder(folder, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(BadInput, match="No permission"):
            batch.run_batch(folder, out, "sky", "x", segment_fn=BrightSegmenter())
    finally:
        out.chmod(0o700)


def test_inpaint_writes_edited_images_in_the_input_format(folder, tmp_path):
    def fill_white(rgb, mask):
        out = rgb.copy()
        out[mask] = 255
        return out

    out = tmp_path / "out"
    report = batch.run_batch(
        folder,
        out,
        "sky",
        "fake",
        segment_fn=BrightSegmenter(),
        inpaint=batch.InpaintOptions("a wall", "replace"),
        inpaint_fn=fill_white,
    )
    assert report.count("done") == 4
    edited = np.asarray(Image.open(out / "sub" / "c.edited.png").convert("RGB"))
    labels = load_label_png(out / "sub" / "c.labels.png")
    original = np.asarray(Image.open(folder / "sub" / "c.png").convert("RGB"))
    assert (edited[labels == 1] == 255).all()
    assert (edited[labels == 0] == original[labels == 0]).all()
    assert (out / "a.edited.jpg").exists()
    assert Image.open(out / "b.edited.png").mode == "RGBA"  # alpha kept


def test_same_stem_in_one_folder_does_not_collide(tmp_path):
    _image(tmp_path / "in" / "cat.jpg", 20, 20, 0)
    _image(tmp_path / "in" / "cat.png", 20, 20, 1)
    report = batch.run_batch(
        tmp_path / "in", tmp_path / "out", "sky", "x", segment_fn=BrightSegmenter()
    )
    assert report.count("done") == 2
    assert (tmp_path / "out" / "cat_jpg.labels.png").exists()
    assert (tmp_path / "out" / "cat_png.labels.png").exists()
