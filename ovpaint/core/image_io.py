"""The one image loader of the product, and atomic image export.

Every path (CLI, batch, benchmark, app) loads through :func:`load_image`, so odd files get the
same treatment everywhere: EXIF orientation applied; grayscale, palette, 16-bit, CMYK and
alpha converted to 8-bit RGB with the alpha kept aside for export; a pixel limit against
decompression bombs and a byte cap that follows it (:func:`image_byte_cap`); one clear
:class:`BadInput` for corrupt, truncated, empty or non-images.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import atomic_save
from ovpaint.core.safeio import open_regular

DEFAULT_MAX_PIXELS = 250_000_000
MAX_BYTES_PER_PIXEL = 8  # 16-bit RGBA (or CMYK) stored uncompressed: the largest pixels we read
IMAGE_BYTES_MARGIN = 4 << 20  # what a file holds beside its pixels: EXIF, ICC, text, previews
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
EXPORT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


@dataclass
class LoadedImage:
    rgb: np.ndarray  # H×W×3 uint8, C-contiguous
    alpha: np.ndarray | None  # H×W uint8, or None when the file had no transparency
    path: Path | None
    source_mode: str
    source_format: str | None

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL says it."""
        return self.width, self.height


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    # 16-bit and 32-bit integer images: scale by the type's range, not by the content,
    # so two exposures of one scene keep their relative brightness.
    info_max = 65535 if arr.max(initial=0) <= 65535 else np.iinfo(arr.dtype).max
    return (arr.astype(np.float64) * (255.0 / info_max) + 0.5).astype(np.uint8)


def pil_to_arrays(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert any PIL mode to (RGB uint8, alpha uint8 or None)."""
    mode = img.mode
    alpha = None
    if mode in ("P", "L", "RGB") and "transparency" in img.info:
        img = img.convert("RGBA")  # a tRNS colour or palette entry is an alpha channel
        mode = img.mode
    elif mode == "P":
        img = img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba)
        alpha = np.ascontiguousarray(arr[..., 3])
        return np.ascontiguousarray(arr[..., :3]), alpha
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        gray = _to_uint8(arr)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2)), None
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(img)), None
    # L, 1, CMYK, YCbCr, LAB, HSV and the rest.
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), None


_PIL_LIMIT_LOCK = threading.Lock()


@contextmanager
def _pil_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Make PIL's own bomb check agree with ours while a header is read: its fixed limit
    (about 179 MP) would otherwise refuse images the user's setting allows, with a message
    that does not name the setting."""
    with _PIL_LIMIT_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(1, int(max_pixels))
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _exif_transpose(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a good image unreadable
        return img


def _too_large(
    name: str, pixels: int | None, max_pixels: int, size: tuple[int, int] | None = None
) -> str:
    dims = f"{size[0]}×{size[1]} = " if size else ""
    what = f"is {dims}{pixels / 1e6:.0f} megapixels" if pixels else "is too large"
    return (
        f"{name} {what}, over the limit of {max_pixels / 1e6:.0f} megapixels "
        "(setting 'max_image_megapixels')."
    )


@contextmanager
def open_limited(
    source: str | os.PathLike | IO[bytes], name: str, max_pixels: int | None = None
) -> Iterator[Image.Image]:
    """``Image.open`` for every reader of images (photos, masks, project layers): the size is
    checked against ``max_pixels`` (default: ``DEFAULT_MAX_PIXELS``) from the header, before
    any pixel is decoded, and PIL's own bomb check uses the same limit. Too large is a
    BadInput naming ``name``."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _pil_pixel_limit(limit):
                img = Image.open(source)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise BadInput(_too_large(name, int(found.group(1)) if found else None, limit)) from exc
    with img:
        width, height = img.size
        if width * height > limit:
            raise BadInput(_too_large(name, width * height, limit, (width, height)))
        yield img


def image_byte_cap(max_pixels: int, bytes_per_pixel: int = MAX_BYTES_PER_PIXEL) -> int:
    """The most bytes an image file of at most ``max_pixels`` may take: every pixel stored
    uncompressed at ``bytes_per_pixel``, 1% for framing (PNG filter bytes, deflate's stored
    blocks, TIFF strips) and room for metadata. A larger file is not an image we would
    decode, so it is refused before it is read."""
    return int(max_pixels * bytes_per_pixel * 1.01) + IMAGE_BYTES_MARGIN


@contextmanager
def open_image_file(
    path: Path, *, max_pixels: int | None = None, what: str = "The image file"
) -> Iterator[Image.Image]:
    """An image file opened for decoding under both limits: a regular file of at most
    :func:`image_byte_cap` bytes (its size checked before a byte is read, and the stream
    stopped there should it grow), then :func:`open_limited`'s pixel check from the header.
    Too many bytes is a BadInput naming ``what``, the path and the cap."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    with (
        open_regular(path, image_byte_cap(limit), f"{what} {path}") as stream,
        open_limited(stream, path.name, limit) as img,
    ):
        yield img


def require_regular_file(path: Path, what: str = "File") -> None:
    """Refuse before opening what is not a regular file: a pipe would block the reader
    forever, a device such as /dev/zero never ends."""
    if not path.exists():
        raise BadInput(f"{what} not found: {path}")
    if path.is_dir():
        raise BadInput(f"Expected an image file, got a folder: {path}")
    if not path.is_file():
        raise BadInput(f"{path} is a pipe or device, not a file.")


def load_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    path = Path(path)
    require_regular_file(path)
    if path.stat().st_size == 0:
        raise BadInput(f"The file is empty: {path}")
    try:
        with open_image_file(path, max_pixels=max_pixels) as img:
            fmt = img.format
            source_mode = img.mode
            img.load()
            img = _exif_transpose(img)
            rgb, alpha = pil_to_arrays(img)
    except BadInput:
        raise
    except UnidentifiedImageError as exc:
        raise BadInput(f"{path.name} is not an image this program can read.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"{path.name} is corrupt or truncated: {exc}") from exc
    if rgb.size == 0:
        raise BadInput(f"{path.name} has no pixels.")
    return LoadedImage(rgb=rgb, alpha=alpha, path=path, source_mode=source_mode, source_format=fmt)


def image_from_array(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if alpha is None:
        return Image.fromarray(rgb, "RGB")
    rgba = np.dstack([rgb, np.asarray(alpha, dtype=np.uint8)])
    return Image.fromarray(rgba, "RGBA")


def save_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    quality: int = 95,
    overwrite: bool = True,
) -> Path:
    """Save atomically; the format follows the extension. JPEG drops the alpha."""
    path = Path(path)
    fmt = EXPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadInput(
            f"Unsupported export format '{path.suffix}'. Use one of: "
            + ", ".join(sorted(set(EXPORT_FORMATS)))
        )
    img = image_from_array(rgb, None if fmt == "JPEG" else alpha)
    kwargs: dict = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    return atomic_save(path, lambda tmp: img.save(tmp, format=fmt, **kwargs), overwrite=overwrite)


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
