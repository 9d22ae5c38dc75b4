"""`ovpaint inpaint` end to end on the tiny profile and the model-free fill."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from ovpaint.cli import main
from ovpaint.core.image_io import load_image, save_image
from ovpaint.core.masks import save_label_png, save_mask_png
from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, changed_region, paste_alpha


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    alpha = np.full((70, 90), 200, np.uint8)
    image = tmp_path / "photo.png"
    save_image(image, rgb, alpha)
    labels = np.zeros((70, 90), np.uint8)
    labels[10:30, 10:40] = 1
    labels[40:60, 50:80] = 2
    palette = tmp_path / "labels.png"
    save_label_png(palette, labels)
    gray = tmp_path / "mask.png"
    save_mask_png(gray, labels == 2)
    return tmp_path, image, palette, gray, rgb, labels


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_sd_with_a_palette_class(files, capsys):
    tmp, image, palette, _gray, rgb, labels = files
    before = _digest(image)
    out = tmp / "out.png"
    code = main(
        [
            "inpaint",
            str(image),
            "--mask",
            str(palette),
            "--class",
            "2",
            "--out",
            str(out),
            "--mode",
            "replace",
            "--prompt",
            "a cat",
            "--steps",
            "2",
            "--seed",
            "5",
            "--models",
            "tiny",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seeds"] == [5] and summary["engine"] == "sd"
    result = load_image(out)
    region, _ = paste_alpha(labels == 2, 8)
    assert np.array_equal(result.rgb[~region], rgb[~region])
    assert np.all(result.alpha == 200), "transparency is kept"
    assert _digest(image) == before


def test_model_free_fill_and_variants_need_no_model(files):
    tmp, image, _palette, gray, rgb, labels = files
    out = tmp / "filled.png"
    assert (
        main(
            [
                "inpaint",
                str(image),
                "--mask",
                str(gray),
                "--engine",
                "telea",
                "--out",
                str(out),
                "--variants",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    filled = load_image(out).rgb
    masked = labels == 2
    assert (filled[masked] != rgb[masked]).any(axis=1).mean() > 0.5  # the hole was filled
    far = ~changed_region(masked, InpaintSettings(engine="telea"))
    assert np.array_equal(filled[far], rgb[far])
    assert not (tmp / "filled-2.png").exists()  # the instant fill has one result, not copies


def test_refuses_to_overwrite_the_input_or_an_existing_output(files, capsys):
    tmp, image, _palette, gray, _rgb, _labels = files
    before = _digest(image)
    assert (
        main(
            [
                "inpaint",
                str(image),
                "--mask",
                str(gray),
                "--engine",
                "telea",
                "--out",
                str(image),
                "--overwrite",
            ]
        )
        == 2
    )
    assert "never overwritten" in capsys.readouterr().err
    assert _digest(image) == before
    existing = tmp / "exists.png"
    existing.write_bytes(b"keep")
    assert (
        main(
            [
                "inpaint",
                str(image),
                "--mask",
                str(gray),
                "--engine",
                "telea",
                "--out",
                str(existing),
            ]
        )
        == 2
    )
    assert existing.read_bytes() == b"keep"


def test_bad_inputs_and_missing_model_exit_codes(files, capsys, tmp_path):
    tmp, image, palette, gray, _rgb, _labels = files
    assert (
        main(
            [
                "inpaint",
                str(image),
                "--mask",
                str(palette),
                "--class",
                "9",
                "--engine",
                "telea",
                "--out",
                str(tmp / "a.png"),
            ]
        )
        == 2
    )
    small = tmp / "small.png"
    save_mask_png(small, np.ones((5, 5), bool))
    assert (
        main(
            [
                "inpaint",
                str(image),
                "--mask",
                str(small),
                "--engine",
                "telea",
                "--out",
                str(tmp / "b.png"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "inpaint",
                str(image),
                "--mask",
                str(gray),
                "--mode",
                "replace",
                "--out",
                str(tmp / "c.png"),
            ]
        )
        == 2
    )  # replace needs a prompt
    capsys.readouterr()
    code = main(
        [
            "inpaint",
            str(image),
            "--mask",
            str(gray),
            "--out",
            str(tmp / "d.png"),
            "--engine",
            "sd",
            "--models",
            "real",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3 and "ovpaint models download sd2-inpaint" in err
    assert "Traceback" not in err and not (tmp / "d.png").exists()
    code = main(
        [
            "inpaint",
            str(image),
            "--mask",
            str(gray),
            "--out",
            str(tmp / "e.png"),
            "--models",
            "real",
        ]
        + ["--engine", "lama", "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 3 and "ovpaint models download big-lama" in err
    assert not (tmp / "e.png").exists()


@pytest.mark.parametrize("kind", ["rgba", "grey16", "grey"])
def test_remove_with_lama_on_rgba_16_bit_and_grey_images(tmp_path, capsys, kind):
    from PIL import Image

    rng = np.random.default_rng(1)
    path = tmp_path / f"{kind}.png"
    if kind == "rgba":
        Image.fromarray(rng.integers(0, 256, (60, 80, 4), dtype=np.uint8), "RGBA").save(path)
    elif kind == "grey16":
        Image.fromarray(rng.integers(0, 65536, (60, 80), dtype=np.uint16)).save(path)
    else:
        Image.fromarray(rng.integers(0, 256, (60, 80), dtype=np.uint8), "L").save(path)
    mask = np.zeros((60, 80), bool)
    mask[20:35, 25:50] = True
    mask_path = tmp_path / "mask.png"
    save_mask_png(mask_path, mask)
    before = _digest(path)
    loaded = load_image(path)
    out = tmp_path / "out.png"
    argv = ["inpaint", str(path), "--mask", str(mask_path), "--out", str(out)]
    assert main(argv + ["--models", "tiny", "--seed", "0", "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["engine"] == "lama" and "Removed with LaMa." in captured.err
    result = load_image(out)
    region = changed_region(mask, InpaintSettings())
    assert np.array_equal(result.rgb[~region], loaded.rgb[~region])
    assert (result.rgb[mask] != loaded.rgb[mask]).any()
    if kind == "rgba":
        assert np.array_equal(result.alpha, loaded.alpha), "transparency is kept"
    assert _digest(path) == before


def test_engine_lama_explicit_and_its_options(files, capsys):
    tmp, image, _palette, gray, rgb, labels = files
    out = tmp / "lama.png"
    argv = ["inpaint", str(image), "--mask", str(gray), "--out", str(out), "--engine", "lama"]
    argv += ["--grow", "0", "--dilate", "2", "--lama-max-side", "64", "--models", "tiny"]
    assert main(argv + ["--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "lama" and summary["messages"] == []
    masked = labels == 2
    region = changed_region(masked, InpaintSettings(grow_px=0, dilate_px=2))
    result = load_image(out).rgb
    assert np.array_equal(result[~region], rgb[~region])
    (box,) = summary["edited_boxes"][0]
    x0, y0, x1, y1 = box
    assert region[y0:y1, x0:x1].any() and not region[:y0].any() and not region[y1:].any()
    bad = main(argv + ["--mode", "replace", "--prompt", "a cat", "--overwrite", "--quiet"])
    assert bad == 2 and "cannot replace" in capsys.readouterr().err


def test_a_mask_of_another_size_is_refused_before_it_is_decoded(files, capsys):
    """A mask PNG of a few KB can declare millions of pixels: its size is compared with the
    image's from its header."""
    import tracemalloc

    from PIL import Image

    tmp, image, _palette, _gray, _rgb, _labels = files
    big = tmp / "big.png"
    Image.new("L", (6000, 4000)).save(big)
    out = tmp / "out.png"
    tracemalloc.start()
    try:
        code = main(["inpaint", str(image), "--mask", str(big), "--out", str(out)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert err.endswith("The image is 90×70 but " + str(big) + " is 6000×4000.")
    assert peak < 16_000_000  # decoded, it would be 24 MB, 96 MB as int32
