"""The one image loader on every odd file a user may give it."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from ovpaint.core.errors import BadInput
from ovpaint.core.image_io import is_image_file, load_image, save_image


def _rgb(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _halves(h=20, w=40):
    """Left half red, right half blue: easy to follow through rotations and JPEG."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (255, 0, 0)
    img[:, w // 2 :] = (0, 0, 255)
    return img


@pytest.mark.parametrize(
    "ext, lossless",
    [(".png", True), (".bmp", True), (".tif", True), (".webp", False), (".jpg", False)],
)
def test_formats_round_trip(tmp_path, ext, lossless):
    rgb = _halves()
    path = save_image(tmp_path / f"a{ext}", rgb)
    loaded = load_image(path)
    assert loaded.rgb.shape == (20, 40, 3) and loaded.rgb.dtype == np.uint8
    assert loaded.rgb.flags.c_contiguous and loaded.alpha is None
    if lossless:
        assert np.array_equal(loaded.rgb, rgb)
    else:
        assert np.abs(loaded.rgb.astype(int) - rgb).mean() < 8
    assert loaded.size == (40, 20) and is_image_file(path)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path, orientation):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_halves()).save(path, exif=exif.tobytes(), quality=95)
    loaded = load_image(path)
    red_blue = loaded.rgb.astype(int)
    if orientation == 3:  # rotated 180°: red now on the right
        assert loaded.rgb.shape == (20, 40, 3)
        assert red_blue[:, 30, 0].min() > 200 and red_blue[:, 5, 2].min() > 200
    elif orientation == 6:  # stored sideways, shown after 90° clockwise: red on top
        assert loaded.rgb.shape == (40, 20, 3)
        assert red_blue[5, :, 0].min() > 200 and red_blue[35, :, 2].min() > 200
    else:  # 8: 90° counter-clockwise: red at the bottom
        assert loaded.rgb.shape == (40, 20, 3)
        assert red_blue[35, :, 0].min() > 200 and red_blue[5, :, 2].min() > 200


def test_grayscale_and_one_bit(tmp_path):
    gray = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    assert loaded.source_mode == "L" and loaded.rgb.shape == (12, 20, 3)
    assert all(np.array_equal(loaded.rgb[..., c], gray) for c in range(3))
    bits = Image.fromarray(gray > 100).convert("1")
    bits.save(tmp_path / "b.png")
    loaded = load_image(tmp_path / "b.png")
    assert loaded.source_mode == "1"
    assert np.array_equal(loaded.rgb[..., 0] == 255, gray > 100)
    assert set(np.unique(loaded.rgb)) <= {0, 255}


def test_palette_with_and_without_transparency(tmp_path):
    idx = np.zeros((10, 12), np.uint8)
    idx[:, 6:] = 1
    pal = Image.fromarray(idx, "P")
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.save(tmp_path / "p.png")
    loaded = load_image(tmp_path / "p.png")
    assert loaded.alpha is None and tuple(loaded.rgb[0, 0]) == (10, 20, 30)
    assert tuple(loaded.rgb[0, 11]) == (200, 100, 50)
    pal.save(tmp_path / "pt.png", transparency=0)
    loaded = load_image(tmp_path / "pt.png")
    assert loaded.alpha is not None
    assert (loaded.alpha[:, :6] == 0).all() and (loaded.alpha[:, 6:] == 255).all()
    assert tuple(loaded.rgb[0, 11]) == (200, 100, 50)


def test_gray_with_transparent_colour(tmp_path):
    gray = np.full((6, 6), 80, np.uint8)
    gray[0, 0] = 7
    Image.fromarray(gray, "L").save(tmp_path / "t.png", transparency=7)
    loaded = load_image(tmp_path / "t.png")
    assert loaded.alpha is not None and loaded.alpha[0, 0] == 0 and loaded.alpha[1, 1] == 255


def test_rgba_and_la_keep_alpha_aside(tmp_path):
    rgb = _rgb()
    alpha = np.tile(np.arange(32, dtype=np.uint8) * 8, (24, 1))
    save_image(tmp_path / "a.png", rgb, alpha)
    loaded = load_image(tmp_path / "a.png")
    assert np.array_equal(loaded.rgb, rgb) and np.array_equal(loaded.alpha, alpha)
    assert loaded.source_mode == "RGBA"
    la = Image.fromarray(np.dstack([rgb[..., 0], alpha]), "LA")
    la.save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    assert np.array_equal(loaded.alpha, alpha)
    assert np.array_equal(loaded.rgb[..., 2], rgb[..., 0])
    # JPEG cannot hold alpha: it is dropped on export, the colours are kept
    out = save_image(tmp_path / "a.jpg", rgb, alpha, quality=100)
    assert load_image(out).alpha is None


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_sixteen_bit_scaled_by_type_range(tmp_path, ext):
    values = np.array([[0, 257, 32896], [65535, 1000, 65280]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / f"d{ext}")
    loaded = load_image(tmp_path / f"d{ext}")
    assert loaded.source_mode.startswith("I")
    expected = np.array([[0, 1, 128], [255, 4, 254]], np.uint8)
    assert np.array_equal(loaded.rgb[..., 0], expected)
    assert np.array_equal(loaded.rgb[..., 1], expected)


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk(tmp_path, ext):
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in print colours
    cmyk.paste((255, 0, 255, 0), (8, 0, 16, 8))  # pure green
    cmyk.save(tmp_path / f"c{ext}", **({"quality": 100} if ext == ".jpg" else {}))
    loaded = load_image(tmp_path / f"c{ext}")
    assert loaded.source_mode == "CMYK" and loaded.rgb.shape == (8, 16, 3)
    assert np.abs(loaded.rgb[4, 2].astype(int) - (255, 0, 0)).max() < 10
    assert np.abs(loaded.rgb[4, 13].astype(int) - (0, 255, 0)).max() < 10


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "side, limit, words",
    [
        (100_000, None, "10000 megapixels"),  # far beyond PIL's own bomb limit
        (14_000, 150_000_000, "over the limit of 150 megapixels"),  # between ours and PIL's
        (300, 50_000, "over the limit"),
    ],
)
def test_pixel_limit_refuses_from_the_header(tmp_path, side, limit, words):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    kwargs = {} if limit is None else {"max_pixels": limit}
    t0 = time.perf_counter()
    with pytest.raises(BadInput) as err:
        load_image(path, **kwargs)
    assert time.perf_counter() - t0 < 5  # refused from the header, nothing was decoded
    assert words in str(err.value) and "max_image_megapixels" in str(err.value)


def test_byte_cap_follows_the_pixel_limit(tmp_path, monkeypatch):
    """A file far larger than any image of the allowed pixels could be is refused from its
    size, before decoding; the cap grows with the pixel limit the user sets."""
    from ovpaint.core import image_io

    monkeypatch.setattr(image_io, "IMAGE_BYTES_MARGIN", 0)  # the cap is then 8.08 B/pixel
    path = save_image(tmp_path / "x.png", _rgb(24, 32))
    with open(path, "ab") as f:  # trailing bytes: the pixels decode as before
        f.write(bytes(20_000))
    with pytest.raises(BadInput, match=r"x\.png is larger than 8\.1 KB"):
        load_image(path, max_pixels=1000)
    assert np.array_equal(load_image(path, max_pixels=3000).rgb, _rgb(24, 32))


def test_pil_global_limit_restored(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    save_image(tmp_path / "x.png", _rgb())
    load_image(tmp_path / "x.png", max_pixels=10_000)
    assert Image.MAX_IMAGE_PIXELS == before


def _bad_files(tmp_path):
    good = save_image(tmp_path / "good.jpg", _rgb(64, 64), quality=90).read_bytes()
    png = save_image(tmp_path / "good.png", _rgb(64, 64)).read_bytes()
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("this is not an image\n")
    (tmp_path / "trunc.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "trunc.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "garbage.png").write_bytes(png[:16] + bytes(range(256)) * 4)
    (tmp_path / "folder.png").mkdir()
    return {
        "empty.png": "empty",
        "notes.png": "not an image",
        "trunc.jpg": "corrupt or truncated",
        "trunc.png": "corrupt or truncated",
        "garbage.png": "",
        "folder.png": "folder",
        "missing.png": "not found",
    }


def test_bad_files_give_one_bad_input_each(tmp_path):
    for name, words in _bad_files(tmp_path).items():
        with pytest.raises(BadInput) as err:
            load_image(tmp_path / name)
        assert words in str(err.value), (name, str(err.value))
        assert "\n" not in str(err.value)


def test_broken_exif_does_not_block_a_good_image(tmp_path, monkeypatch):
    from ovpaint.core import image_io

    save_image(tmp_path / "x.jpg", _rgb())

    def broken(img):
        raise struct.error("bad EXIF")

    monkeypatch.setattr(image_io.ImageOps, "exif_transpose", broken)
    assert load_image(tmp_path / "x.jpg").rgb.shape == (24, 32, 3)


def test_save_refuses_unknown_format_and_overwrite(tmp_path):
    with pytest.raises(BadInput, match="Unsupported export format"):
        save_image(tmp_path / "x.gif", _rgb())
    save_image(tmp_path / "x.png", _rgb())
    with pytest.raises(BadInput, match="Refusing to overwrite"):
        save_image(tmp_path / "x.png", _rgb(seed=1), overwrite=False)
    assert np.array_equal(load_image(tmp_path / "x.png").rgb, _rgb())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temp files left


def test_header_between_pil_default_and_ours_is_accepted(tmp_path):
    """210 MP: over PIL's own bomb limit (~179 MP), under ours (250 MP): opened, not refused."""
    from ovpaint.core.image_io import open_limited

    path = tmp_path / "large.png"
    path.write_bytes(_png_header_only(15_000, 14_000))
    with open_limited(path, path.name) as img:  # the header only: nothing is decoded
        assert img.size == (15_000, 14_000)
    with pytest.raises(BadInput, match="over the limit of 200 megapixels"):
        with open_limited(path, path.name, max_pixels=200_000_000):
            pass


def test_masks_and_project_layers_are_size_checked(tmp_path):
    """Every reader goes through the same check: a bomb in a mask file or inside a project is
    one clear BadInput (it was an uncaught DecompressionBombError)."""
    import zipfile

    from ovpaint.core import project
    from ovpaint.core.document import Document
    from ovpaint.core.masks import load_mask

    bomb = _png_header_only(100_000, 100_000)
    (tmp_path / "mask.png").write_bytes(bomb)
    with pytest.raises(BadInput, match="mask.png is 10000 megapixels"):
        load_mask(tmp_path / "mask.png")
    doc = Document(_rgb(32, 48))
    doc.layers.append(doc.new_mask_layer("sky", np.ones((32, 48), bool)))
    saved = project.save_project(doc, tmp_path / "p.ovpaint")
    with zipfile.ZipFile(saved) as zf:
        data = {n: zf.read(n) for n in zf.namelist()}
    layer = next(n for n in data if n.startswith("layers/") and n.endswith(".png"))
    data[layer] = bomb
    with zipfile.ZipFile(tmp_path / "bomb.ovpaint", "w") as zf:
        for n, b in data.items():
            zf.writestr(n, b)
    with pytest.raises(BadInput, match="megapixels"):
        project.load_project(tmp_path / "bomb.ovpaint")
