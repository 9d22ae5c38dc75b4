"""`ovpaint batch` against prepared folders: the state file cannot make it delete or skip
anything of the user's, inputs are never overwritten, odd entries are reported, two runs on
one output folder do not overlap, and leftovers of killed runs are removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import ovpaint.batch as batch
from ovpaint.cli import main
from ovpaint.core.masks import load_label_png
from ovpaint.pipelines.result import SegmentationResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def calls(monkeypatch):
    """Segmentation by brightness (label 1 where the mean is over 128); counts its calls."""
    seen = []

    def bright(rgb, queries):
        seen.append(rgb.shape)
        labels = (rgb.mean(-1) > 128).astype(np.int32)
        return SegmentationResult(labels, ["background"] + [q.name for q in queries])

    monkeypatch.setattr(batch, "default_segment_fn", lambda *a, **k: bright)
    return seen


def _image(path, value, size=(12, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


def _batch(inp, out, *extra):
    args = ["--models", "tiny", "batch", str(inp), "--prompt", "sky", "--out", str(out)]
    try:
        return main([*args, "--quiet", *extra])
    except SystemExit as exc:  # argparse refused an option
        return exc.code


def _state(out):
    return out / batch.STATE_NAME


def test_state_file_cannot_make_batch_delete_other_files(tmp_path, calls):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "a.png", 200)
    out.mkdir()
    victims = [tmp_path / "victim.txt", tmp_path / "absolute.txt", out / "notes.txt"]
    for v in victims:
        v.write_text("keep me")
    (out / "sub").mkdir()
    (out / "sub" / "a.labels.png").write_text("a user's file of the same name, in another folder")
    record = {
        "path": "a.png",
        "status": "done",
        "config": "another run",
        "fingerprint": [0, 0],
        "outputs": [
            "../victim.txt",
            str(victims[1]),
            "notes.txt",
            "sub/a.labels.png",
            "a.labels.png",
        ],
    }
    _state(out).write_text(json.dumps(record) + "\n")
    assert _batch(inp, out) == 0
    for v in victims:
        assert v.read_text() == "keep me"
    assert (out / "sub" / "a.labels.png").exists()
    assert (out / "a.labels.png").exists() and len(calls) == 1


def test_state_file_cannot_make_batch_skip_with_outputs_outside(tmp_path, calls):
    """A record claiming outputs outside the folder (which exist) is not a finished file."""
    inp, out = tmp_path / "in", tmp_path / "out"
    src = _image(inp / "a.png", 200)
    out.mkdir()
    assert _batch(inp, out) == 0
    config = json.loads(_state(out).read_text().splitlines()[0])["config"]
    st = src.stat()
    forged = {
        "path": "a.png",
        "status": "done",
        "config": config,
        "fingerprint": [st.st_size, st.st_mtime_ns],
        "outputs": ["../in/a.png"],
    }
    (out / "a.labels.png").unlink()
    _state(out).write_text(json.dumps(forged) + "\n")
    assert _batch(inp, out) == 0
    assert (out / "a.labels.png").exists() and len(calls) == 2


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00\x01binary\x00garbage\n",
        b'{"path": 7, "status": "done", "outputs": 5}\n',
        b'{"path": "a.png", "status": "done", "config": "x", "fingerprint": "x", "outputs": [1]}\n',
        b'{"path": "a.png", "status": "done", "mask_areas": {"sky": "many"}, "outputs": []}\n',
        b"[" * 100_000 + b"\n",
        b"[1, 2, 3]\nnull\n",
    ],
)
def test_tampered_state_file_is_ignored_with_a_message(tmp_path, calls, capsys, content):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "a.png", 200)
    out.mkdir()
    _state(out).write_bytes(content)
    assert _batch(inp, out) == 0
    assert "damaged" in capsys.readouterr().err
    assert (out / "a.labels.png").exists()


def test_state_file_that_is_a_link_is_refused(tmp_path, calls, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "a.png", 200)
    out.mkdir()
    elsewhere = tmp_path / "profile.txt"
    elsewhere.write_text("a user's file\n")
    _state(out).symlink_to(elsewhere)
    assert _batch(inp, out) == 2
    assert "link" in capsys.readouterr().err
    assert elsewhere.read_text() == "a user's file\n" and not calls


def test_colliding_output_stems_get_distinct_outputs(tmp_path, calls):
    inp, out = tmp_path / "in", tmp_path / "out"
    values = {"cat.jpg": 250, "cat.png": 10, "cat_jpg.png": 250, "Cat.png": 10, "cat_png.bmp": 250}
    for name, value in values.items():
        _image(inp / name, value)
    assert _batch(inp, out, "--json") == 0
    labels = sorted(out.glob("*.labels.png"))
    assert len(labels) == len(values)  # one label map per input, none overwritten
    report = json.loads((out / batch.REPORT_JSON).read_text())
    outputs = [f["outputs"][0] for f in report["files"]]
    assert len({o.casefold() for o in outputs}) == len(values)
    for f in report["files"]:  # each output holds its own input's result
        expected = 1 if values[f["path"]] > 128 else 0
        assert (load_label_png(out / f["outputs"][0]) == expected).all(), f


def test_output_folder_holding_the_input_folder_is_refused(tmp_path, calls, capsys):
    root = tmp_path / "photos"
    inp = root / "in"
    _image(inp / "in" / "a.png", 200)  # would write root/in/a.labels.png: inside the inputs
    precious = _image(inp / "a.labels.png", 30)
    before = precious.read_bytes()
    assert _batch(inp, root) == 2
    assert "holds the input folder" in capsys.readouterr().err
    assert precious.read_bytes() == before and not calls


def test_output_subfolder_linked_into_the_inputs_is_not_written(tmp_path, calls):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "sub" / "a.png", 200)
    precious = _image(inp / "sub" / "a.labels.png", 30)
    before = precious.read_bytes()
    out.mkdir()
    (out / "sub").symlink_to(inp / "sub")
    assert _batch(inp, out, "--ext", "jpg,png") == 1
    assert precious.read_bytes() == before
    report = json.loads((out / batch.REPORT_JSON).read_text())
    failed = {f["path"]: f["error"] for f in report["files"] if f["status"] == "failed"}
    assert "outside the output folder" in failed["sub/a.png"]


def test_odd_entries_in_the_input_are_reported_and_the_run_goes_on(tmp_path, calls, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "good.png", 200)
    (inp / "dangling.png").symlink_to(tmp_path / "gone.png")
    (inp / "loop.png").symlink_to(inp / "loop2.png")
    (inp / "loop2.png").symlink_to(inp / "loop.png")
    os.mkfifo(inp / "pipe.png")
    assert _batch(inp, out) == 1
    err = capsys.readouterr().err
    report = json.loads((out / batch.REPORT_JSON).read_text())
    status = {f["path"]: (f["status"], f["error"]) for f in report["files"]}
    assert status["good.png"][0] == "done"
    assert "broken link" in status["dangling.png"][1]
    assert "link loop" in status["loop.png"][1]
    assert "not a regular file" in status["pipe.png"][1]
    assert "failed: pipe.png" in err


def test_unreadable_subfolder_is_reported(tmp_path, calls, monkeypatch):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "good.png", 200)
    _image(inp / "private" / "x.png", 200)
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("private"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert _batch(inp, out) == 1
    report = json.loads((out / batch.REPORT_JSON).read_text())
    status = {f["path"]: (f["status"], f["error"]) for f in report["files"]}
    assert status["private/"] == ("failed", "folder could not be read: Permission denied")
    assert status["good.png"][0] == "done"


def test_out_of_range_numbers_fail_before_any_segmentation(tmp_path, calls, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "a.png", 200)
    assert _batch(inp, out, "--mode", "remove", "--steps", "0") == 2
    assert _batch(inp, out, "--mode", "remove", "--seed", str(2**70)) == 2
    err = capsys.readouterr().err
    assert "--steps" in err and "--seed" in err and "Traceback" not in err
    assert not calls


HOLD_LOCK = """
import sys, time
sys.path.insert(0, {root!r})
from ovpaint.core.locks import OwnerLock
lock = OwnerLock({path!r})
assert lock.acquire(kind="batch")
print("held", flush=True)
time.sleep(120)
"""


def test_two_batches_on_one_output_folder(tmp_path, calls, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "a.png", 200)
    out.mkdir()
    code = HOLD_LOCK.format(root=ROOT, path=str(out / batch.LOCK_NAME))
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _batch(inp, out) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and "Another batch" in err
        assert not calls and not (out / "a.labels.png").exists()
    finally:
        holder.kill()  # a killed run: its lock must not stop the next one
        holder.wait()
    assert _batch(inp, out) == 0
    assert (out / "a.labels.png").exists()
    assert not (out / batch.LOCK_NAME).exists()


def test_leftovers_of_killed_runs_are_removed_and_nothing_else(tmp_path, calls):
    inp, out = tmp_path / "in", tmp_path / "out"
    _image(inp / "sub" / "a.png", 200)
    (out / "sub").mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    from ovpaint.core import fileio

    tag = fileio._HOST_TAG
    left = [
        out / f".a.labels.png.ovp{dead_pid}@{tag}-abcd1234.part",
        out / "sub" / f".a.mask-01-sky.png.ovp{dead_pid}@{tag}-zz99__aa.part",
    ]
    old_untagged = out / ".x.labels.png.k3j2h1g0.part"  # an older version's, hours old
    kept = [
        out / f".a.labels.png.ovp{os.getpid()}@{tag}-abcd1234.part",  # a live writer's
        out / "notes.part",  # the user's
        out / ".recent.part",  # not our pattern
    ]
    for p in [*left, old_untagged, *kept]:
        p.write_bytes(b"x" * 1000)
    hours_ago = time.time() - 3 * 3600
    os.utime(old_untagged, (hours_ago, hours_ago))
    assert _batch(inp, out) == 0
    assert not any(p.exists() for p in [*left, old_untagged])
    assert all(p.exists() for p in kept)
