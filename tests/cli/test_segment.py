"""`ovpaint segment` end to end on the tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ovpaint.cli import main
from ovpaint.core.masks import load_label_png


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    path = tmp_path / "in.png"
    Image.fromarray(data).save(path)
    return path


@pytest.mark.parametrize("method", ["dense", "naclip", "naclip-refined"])
def test_segment_writes_labels_masks_and_json(photo, tmp_path, capsys, method):
    out = tmp_path / "labels.png"
    masks = tmp_path / "masks"
    before = photo.read_bytes()
    rc = main(
        [
            "--models",
            "tiny",
            "segment",
            str(photo),
            "--prompt",
            "dog, sky",
            "--method",
            method,
            "--out",
            str(out),
            "--masks-dir",
            str(masks),
            "--json",
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == method
    assert [c["name"] for c in summary["classes"]] == ["dog", "sky"]
    labels = load_label_png(out)
    assert labels.shape == (60, 80)
    files = sorted(p.name for p in masks.iterdir())
    assert files == ["labels.mask-01-dog.png", "labels.mask-02-sky.png"]
    assert (tmp_path / "labels.classes.txt").read_text() == "0\tbackground\n1\tdog\n2\tsky\n"
    dog = np.asarray(Image.open(masks / "labels.mask-01-dog.png")) > 0
    assert np.array_equal(dog, labels == 1)
    assert sum(c["pixels"] for c in summary["classes"]) == int((labels > 0).sum())
    assert photo.read_bytes() == before


def test_refined_default_prints_summary(photo, tmp_path, capsys):
    rc = main(
        [
            "--models",
            "tiny",
            "segment",
            str(photo),
            "--prompt",
            "cat",
            "--out",
            str(tmp_path / "l.png"),
            "--quiet",
        ]
    )
    assert rc == 0
    assert "method refined" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--prompt", " , ; "],
        ["--prompt", "dog", "--method", "nope"],
    ],
)
def test_bad_usage_exit_2(photo, tmp_path, args, capsys):
    rc = None
    try:
        rc = main(
            ["--models", "tiny", "segment", str(photo), "--out", str(tmp_path / "o.png"), *args]
        )
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_image_and_overwrite_original(photo, tmp_path):
    assert (
        main(
            [
                "--models",
                "tiny",
                "segment",
                str(tmp_path / "none.png"),
                "--prompt",
                "dog",
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
        == 2
    )
    before = photo.read_bytes()
    assert (
        main(["--models", "tiny", "segment", str(photo), "--prompt", "dog", "--out", str(photo)])
        == 2
    )
    assert photo.read_bytes() == before


def test_method_choices_and_default_follow_registry(monkeypatch):
    import dataclasses

    from ovpaint.cli import build_parser
    from ovpaint.pipelines.segmentation import methods

    extra = dataclasses.replace(methods.METHODS["dense"], name="extra")
    monkeypatch.setitem(methods.METHODS, "extra", extra)
    args = build_parser().parse_args(
        ["segment", "x.png", "--prompt", "a", "--out", "o.png", "--method", "extra"]
    )
    assert args.method == "extra"
    args = build_parser().parse_args(["segment", "x.png", "--prompt", "a", "--out", "o.png"])
    assert args.method == methods.DEFAULT_METHOD
    args = build_parser().parse_args(["benchmark", "--dataset", "voc", "--root", ".", "--out", "r"])
    assert args.method == methods.DEFAULT_BENCHMARK_METHOD


@pytest.mark.parametrize(
    "setting, named",
    [
        ("dense.no_such_key=1", "dense.no_such_key"),
        ("nosection.x=1", "nosection"),
        ("prob_thd=0.2", "dense.prob_thd"),
        ("dense.prob_thd=high", "dense.prob_thd"),
        ("dense.prob_thd=7", "dense.prob_thd"),
    ],
)
def test_bad_settings_exit_2_naming_the_key_before_any_work(tmp_path, capsys, setting, named):
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    code = main(
        [
            "--models",
            "tiny",
            "segment",
            str(photo),
            "--prompt",
            "dog",
            "--out",
            str(tmp_path / "o.png"),
            "--set",
            setting,
        ]
    )
    assert code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
