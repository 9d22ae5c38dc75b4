"""`ovpaint segment` with the proposal/hybrid methods and --points/--box (tiny models)."""

from __future__ import annotations

import numpy as np
import pytest

from ovpaint.cli import main
from ovpaint.core.image_io import save_image
from ovpaint.core.masks import load_label_png


@pytest.fixture()
def photo(tmp_path, monkeypatch):
    monkeypatch.setenv("OVPAINT_MODELS", "tiny")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (12, 16, 3)).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    path = tmp_path / "photo.png"
    save_image(path, img)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_methods_proposal_and_hybrid_are_offered(capsys):
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    out = capsys.readouterr().out
    assert "proposal" in out and "hybrid" in out and "--points" in out and "--box" in out


def test_segment_from_a_box_and_clicks_alone(capsys, photo, tmp_path):
    out = tmp_path / "obj.png"
    code, stdout, err = _run(
        capsys,
        "segment",
        photo,
        "--box",
        "8,8,80,60",
        "--points",
        "30,30,+;70,50,-",
        "--class",
        "cup",
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    labels = load_label_png(out)
    assert labels.shape == (96, 128)
    assert not labels[60:, :].any() and not labels[:, 80:].any()  # inside the box
    assert '"cup"' in stdout


def test_points_correct_the_only_class_of_a_text_query(capsys, photo, tmp_path):
    plain, corrected = tmp_path / "plain.png", tmp_path / "corrected.png"
    code, _, err = _run(
        capsys, "segment", photo, "--prompt", "dog", "--method", "dense", "--out", plain
    )
    assert code == 0, err
    code, _, err = _run(
        capsys,
        "segment",
        photo,
        "--prompt",
        "dog",
        "--method",
        "dense",
        "--points",
        "5,5,-",
        "--out",
        corrected,
    )
    assert code == 0, err
    a, b = load_label_png(plain), load_label_png(corrected)
    assert a.shape == b.shape
    assert not (b.astype(bool) & ~a.astype(bool)).any()  # a negative click only removes
    assert "corrected" in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--points", "500,5,+"], "outside"),
        (["--box", "10,10,10,40"], "zero area"),
        (["--points", "1,2,?"], "Cannot read"),
        ([], "--prompt"),
    ],
)
def test_bad_clicks_are_one_line_exit_2(capsys, photo, tmp_path, argv, words):
    code, _, err = _run(capsys, "segment", photo, *argv, "--out", tmp_path / "x.png")
    assert code == 2
    assert words in err and "Traceback" not in err


def test_several_classes_need_class(capsys, photo, tmp_path):
    code, _, err = _run(
        capsys,
        "segment",
        photo,
        "--prompt",
        "dog, cat",
        "--method",
        "dense",
        "--points",
        "5,5,+",
        "--out",
        tmp_path / "x.png",
    )
    assert code == 2 and "--class" in err
