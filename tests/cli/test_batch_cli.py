"""`ovpaint batch` and `ovpaint benchmark` from the command line: files, exit codes, messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import ovpaint.batch as batch
import ovpaint.eval.runner as runner
from ovpaint.cli import main
from ovpaint.eval.synthetic import color_oracle, make_synthetic
from ovpaint.pipelines.result import SegmentationResult


def _bright(rgb, queries):
    labels = (rgb.mean(-1) > 128).astype(np.int32)
    return SegmentationResult(labels, ["background"] + [q.name for q in queries])


@pytest.fixture
def fake_segmentation(monkeypatch):
    monkeypatch.setattr(batch, "default_segment_fn", lambda *a, **k: _bright)
    state = {}

    def oracle_factory(method, manager, settings):
        state["settings"] = settings

        def fn(rgb, queries):
            ids = state["oracle"](rgb)
            return SegmentationResult(ids + 1, ["background"] + [q.name for q in queries])

        return fn

    monkeypatch.setattr(runner, "_default_segment_fn", oracle_factory)
    return state


def _images(folder):
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.jpg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(folder / name)


def test_batch_cli_writes_outputs_and_report(tmp_path, capsys, fake_segmentation):
    _images(tmp_path / "in")
    (tmp_path / "in" / "bad.jpg").write_bytes(b"nope")
    code = main(
        [
            "--models",
            "tiny",
            "batch",
            str(tmp_path / "in"),
            "--prompt",
            "sky",
            "--out",
            str(tmp_path / "out"),
            "--json",
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1  # one file failed; the others are done
    data = json.loads(captured.out)
    assert data["summary"] == {
        "done": 2,
        "skipped": 0,
        "failed": 1,
        "seconds_per_image": data["summary"]["seconds_per_image"],
    }
    assert "failed: bad.jpg" in captured.err and "TINY" in captured.err
    assert (tmp_path / "out" / "sub" / "b.labels.png").exists()
    (tmp_path / "in" / "bad.jpg").unlink()
    assert (
        main(
            [
                "--models",
                "tiny",
                "batch",
                str(tmp_path / "in"),
                "--prompt",
                "sky",
                "--out",
                str(tmp_path / "out"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "2 skipped" in capsys.readouterr().err


def test_batch_cli_bad_input_exit_codes(tmp_path, capsys, fake_segmentation):
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "--models",
                "tiny",
                "batch",
                str(tmp_path / "empty"),
                "--prompt",
                "sky",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "No images" in capsys.readouterr().err
    _images(tmp_path / "in")
    assert (
        main(
            [
                "--models",
                "tiny",
                "batch",
                str(tmp_path / "in"),
                "--prompt",
                ",,",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
            ]
        )
        == 2
    )
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(tmp_path / "in")])  # --prompt and --out are required
    assert exc.value.code == 2


def test_benchmark_cli_writes_report(tmp_path, capsys, fake_segmentation):
    info = make_synthetic("voc", tmp_path / "voc", n_images=3)
    fake_segmentation["oracle"] = color_oracle(info.colors)
    out = tmp_path / "rep" / "voc.json"
    code = main(
        [
            "--models",
            "tiny",
            "benchmark",
            "--dataset",
            "voc",
            "--root",
            str(tmp_path / "voc"),
            "--out",
            str(out),
            "--limit",
            "2",
            "--quiet",
            "--save-predictions",
            str(tmp_path / "pred"),
            "--set",
            "dense.prob_thd=0.2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "mIoU 100.00" in captured.out
    data = json.loads(out.read_text())
    assert data["images"] == 2 and data["metrics"]["mIoU"] == 1.0
    dense = data["settings"]["dense"]
    assert dense["prob_thd"] == 0.2 and dense["logit_scale"] == 65.0  # the VOC preset, overridden
    assert fake_segmentation["settings"]["dense"]["prob_thd"] == 0.2
    assert data["models"]["clip"] == "tiny-clip"
    assert (tmp_path / "rep" / "voc.md").exists() and (tmp_path / "rep" / "voc_iou.png").exists()
    assert len(list((tmp_path / "pred").glob("*.png"))) == 2


def test_benchmark_cli_compares_methods(tmp_path, capsys, monkeypatch):
    info = make_synthetic("voc", tmp_path / "voc", n_images=2)
    oracle = color_oracle(info.colors)
    asked = []

    def factory(method, manager, settings):
        asked.append(method)

        def fn(rgb, queries):
            ids = oracle(rgb)
            if method == "refined":  # a worse method: cats become dogs
                ids = np.where(ids == 8, 12, ids)
            return SegmentationResult(ids + 1, ["background"] + [q.name for q in queries])

        return fn

    monkeypatch.setattr(runner, "_default_segment_fn", factory)
    out = tmp_path / "rep" / "cmp.json"
    args = ["--models", "tiny", "benchmark", "--dataset", "voc", "--root", str(tmp_path / "voc")]
    code = main(args + ["--out", str(out), "--quiet", "--method", "dense,refined"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert asked == ["dense", "refined"]
    lines = {line.split()[0]: line.split() for line in captured.out.splitlines()[2:]}
    assert lines["dense"][1] == "100.00" and float(lines["refined"][1]) < 100
    data = json.loads(out.read_text())
    assert data["methods"] == ["dense", "refined"] and data["images"] == 2
    assert (tmp_path / "rep" / "cmp_comparison.png").exists()
    assert json.loads((tmp_path / "rep" / "cmp.refined.json").read_text())["method"] == "refined"
    # an unknown method is refused before any work
    assert main(args + ["--out", str(out), "--quiet", "--method", "dense,nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_benchmark_cli_bad_dataset(tmp_path, capsys, fake_segmentation):
    make_synthetic("voc", tmp_path / "voc", n_images=1)
    (tmp_path / "voc" / "ImageSets" / "Segmentation" / "val.txt").unlink()
    assert (
        main(
            [
                "--models",
                "tiny",
                "benchmark",
                "--dataset",
                "voc",
                "--root",
                str(tmp_path / "voc"),
                "--out",
                str(tmp_path / "r.json"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "val.txt" in capsys.readouterr().err
    assert (
        main(
            [
                "--models",
                "tiny",
                "benchmark",
                "--dataset",
                "kitti",
                "--root",
                str(tmp_path),
                "--out",
                str(tmp_path / "r.json"),
                "--quiet",
            ]
        )
        == 2
    )


def test_first_ctrl_c_cancels_cleanly_second_interrupts():
    import os
    import signal

    from ovpaint.cli.common import cancel_on_interrupt
    from ovpaint.core.jobs import CancelToken

    before = signal.getsignal(signal.SIGINT)
    with cancel_on_interrupt(CancelToken()) as token:
        os.kill(os.getpid(), signal.SIGINT)
        assert token.cancelled
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_batch_cli_removes_with_lama(tmp_path, capsys, fake_segmentation):
    _images(tmp_path / "in")
    argv = ["--models", "tiny", "batch", str(tmp_path / "in"), "--prompt", "sky"]
    argv += ["--out", str(tmp_path / "out"), "--engine", "lama", "--json", "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["summary"]["done"] == 2
    assert "Removed with LaMa." not in data["messages"]  # an explicit choice is not reported
    edited = tmp_path / "out" / "a.edited.png"
    assert edited.exists()
    original = np.asarray(Image.open(tmp_path / "in" / "a.png").convert("RGB"))
    assert not np.array_equal(np.asarray(Image.open(edited).convert("RGB")), original)
    auto = ["--models", "tiny", "batch", str(tmp_path / "in"), "--prompt", "sky", "--mode"]
    auto += ["remove", "--out", str(tmp_path / "out2"), "--json", "--quiet"]
    assert main(auto) == 0
    assert "Removed with LaMa." in json.loads(capsys.readouterr().out)["messages"]
