"""Projects on disk: a zip (``.ovpaint``) or a folder of PNGs plus ``project.json``.

An open format on purpose: any tool can read the layers back, and nothing is ever unpickled.
Writes are atomic (a crash or a full disk leaves the previous project intact). The same writer
serves autosave: :func:`write_recovery` keeps one recovery project under the user data folder
while the document has unsaved changes; a clean exit removes it, so finding it at start-up
means the last session ended without saving (a crash) and the user is offered to restore it.

``project.json`` (version 1)::

    {"format": "ovpaint-project", "version": 1, "width": W, "height": H,
     "image": "image.png", "alpha": "alpha.png" | null, "source": "/original/photo.jpg" | null,
     "selected": "<layer id>" | null,
     "layers": [{"id", "kind": "mask" | "image", "name", "visible", "opacity", "meta",
                 mask: "mask", "color": [r, g, b], "soft": bool
                 image: "rgb", "alpha" | null, "x", "y", "role"}, ...]}   # bottom first
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ovpaint.core.document import Document, ImageLayer, Layer, MaskLayer
from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import atomic_path, atomic_write_text
from ovpaint.core.image_io import open_limited
from ovpaint.core.jobs import CancelToken, Progress

FORMAT = "ovpaint-project"
VERSION = 1
SUFFIX = ".ovpaint"
MANIFEST = "project.json"
PNG_LEVEL = 1  # fast: a 24-megapixel layer saves in a fraction of a second; masks stay small


@dataclass
class Snapshot:
    """Everything a project file holds, taken on the UI thread and written from any thread.

    Layer arrays are shared, not copied: the document never edits them in place.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    source: str | None
    layers: list[dict[str, Any]]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    selected: str | None = None


def snapshot(doc: Document) -> Snapshot:
    layers, arrays = [], {}
    for i, layer in enumerate(doc.layers):
        entry: dict[str, Any] = {
            "id": layer.id,
            "kind": layer.kind,
            "name": layer.name,
            "visible": layer.visible,
            "opacity": layer.opacity,
            "meta": _jsonable(layer.meta),
        }
        if isinstance(layer, MaskLayer):
            entry["mask"] = f"layers/{i:03d}-mask.png"
            entry["color"] = list(layer.color)
            entry["soft"] = layer.mask.dtype != np.bool_
            arrays[entry["mask"]] = layer.mask
        elif isinstance(layer, ImageLayer):
            entry["image"] = f"layers/{i:03d}-rgb.png"
            arrays[entry["image"]] = layer.rgb
            entry["alpha"] = None
            if layer.alpha is not None:
                entry["alpha"] = f"layers/{i:03d}-alpha.png"
                arrays[entry["alpha"]] = layer.alpha
            entry.update(x=layer.x, y=layer.y, role=layer.role)
        layers.append(entry)
    selected = doc.layers.selected.id if doc.layers.selected is not None else None
    return Snapshot(doc.rgb, doc.alpha, doc.path, layers, arrays, selected)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return str(value)


def _png_bytes(arr: np.ndarray) -> bytes:
    if arr.dtype == np.bool_:
        img = Image.fromarray(arr.astype(np.uint8) * 255, "L")
    elif arr.ndim == 2:
        img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), "L")
    else:
        img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()


def _entries(snap: Snapshot) -> list[tuple[str, np.ndarray]]:
    entries = [("image.png", snap.rgb)]
    if snap.alpha is not None:
        entries.append(("alpha.png", snap.alpha))
    entries.extend(snap.arrays.items())
    return entries


def _manifest(snap: Snapshot) -> str:
    height, width = snap.rgb.shape[:2]
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "width": width,
            "height": height,
            "image": "image.png",
            "alpha": "alpha.png" if snap.alpha is not None else None,
            "source": snap.source,
            "selected": snap.selected,
            "saved": time.time(),
            "layers": snap.layers,
        },
        indent=2,
    )


def project_location(path: str | os.PathLike) -> Path | None:
    """The project a path opens (a ``.ovpaint``/``.zip`` file, or the folder of a folder
    project, given as the folder or as its ``project.json``), or None for anything else."""
    path = Path(path)
    if path.suffix.lower() in (SUFFIX, ".zip"):
        return path
    if path.name == MANIFEST:
        return path.parent
    if (path / MANIFEST).exists():
        return path
    return None


def is_folder_target(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_dir() or path.suffix.lower() not in (SUFFIX, ".zip")


def save_project(
    source: Document | Snapshot,
    path: str | os.PathLike,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write a project atomically: a zip for ``.ovpaint``/``.zip`` names, a folder otherwise.

    A job function (``progress``/``cancel``): cancelling leaves any previous project untouched.
    """
    snap = snapshot(source) if isinstance(source, Document) else source
    path = Path(path)
    entries = _entries(snap)
    if progress is not None:
        progress.stage("save project", total=len(entries))
    if is_folder_target(path):
        _save_folder(snap, entries, path, progress, cancel)
    else:
        with atomic_path(path) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr(MANIFEST, _manifest(snap))
                for done, (name, arr) in enumerate(entries, start=1):
                    if cancel is not None:
                        cancel.check()
                    zf.writestr(name, _png_bytes(arr))
                    if progress is not None:
                        progress.update(done, len(entries))
    return path


def _save_folder(snap: Snapshot, entries, path: Path, progress, cancel) -> None:
    if path.exists() and not (path / MANIFEST).exists() and any(path.iterdir()):
        raise BadInput(
            f"{path} is a folder that is not an ovpaint project; choose an empty "
            "folder or a name ending in .ovpaint."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / "layers").mkdir()
        for done, (name, arr) in enumerate(entries, start=1):
            if cancel is not None:
                cancel.check()
            (tmp / name).write_bytes(_png_bytes(arr))
            if progress is not None:
                progress.update(done, len(entries))
        atomic_write_text(tmp / MANIFEST, _manifest(snap))
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise BadInput(f"{path.name} is not an ovpaint project (not a zip file).") from exc

    def read(self, name: str) -> bytes:
        if "\\" in name or name.startswith("/") or ".." in Path(name).parts:
            raise BadInput(f"The project refers to an unsafe path: {name}")
        try:
            if self.zip is not None:
                return self.zip.read(name)
            return (self.path / name).read_bytes()
        except (KeyError, FileNotFoundError) as exc:
            raise BadInput(f"The project {self.path.name} is missing {name}.") from exc
        except (OSError, zipfile.BadZipFile) as exc:
            raise BadInput(f"Could not read {name} from {self.path.name}: {exc}") from exc

    def array(self, name: str, mode: str) -> np.ndarray:
        try:
            with open_limited(io.BytesIO(self.read(name)), f"{name} in {self.path.name}") as img:
                img.load()
                if img.mode != mode:
                    img = img.convert(mode)
                return np.array(img)
        except BadInput:
            raise
        except (OSError, SyntaxError, ValueError) as exc:
            raise BadInput(f"{name} in {self.path.name} is corrupt: {exc}") from exc

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def load_project(
    path: str | os.PathLike, *, progress: Progress | None = None, cancel: CancelToken | None = None
) -> Document:
    """Read a project back into a new Document; any damage is one clear BadInput."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"Project not found: {path}")
    reader = _Reader(path)
    try:
        try:
            info = json.loads(reader.read(MANIFEST).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadInput(f"{path.name}: project.json is corrupt: {exc}") from exc
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise BadInput(f"{path.name} is not an ovpaint project.")
        if int(info.get("version", 0)) > VERSION:
            raise BadInput(
                f"{path.name} was saved by a newer ovpaint (format "
                f"{info.get('version')}); please update the program."
            )
        layers_info = info.get("layers") or []
        if progress is not None:
            progress.stage("open project", total=len(layers_info) + 1)
        rgb = reader.array(info.get("image", "image.png"), "RGB")
        alpha = reader.array(info["alpha"], "L") if info.get("alpha") else None
        if rgb.shape[:2] != (int(info["height"]), int(info["width"])):
            raise BadInput(f"{path.name}: the image size does not match project.json.")
        doc = Document(rgb, alpha, path=info.get("source"))
        for done, entry in enumerate(layers_info, start=1):
            if cancel is not None:
                cancel.check()
            doc.layers.append(_layer_from(entry, reader, doc))
            if progress is not None:
                progress.update(done, len(layers_info) + 1)
        selected = info.get("selected")
        for layer in doc.layers:
            if layer.id == selected:
                doc.layers.select(layer)
        doc.dirty = False
        return doc
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{path.name}: project.json is damaged ({exc}).") from exc
    finally:
        reader.close()


def _layer_from(entry: dict, reader: _Reader, doc: Document) -> Layer:
    common = {
        "name": str(entry["name"]),
        "visible": bool(entry.get("visible", True)),
        "opacity": float(entry.get("opacity", 1.0)),
        "meta": dict(entry.get("meta") or {}),
    }
    if entry.get("id"):
        common["id"] = str(entry["id"])
    if entry["kind"] == "mask":
        raw = reader.array(entry["mask"], "L")
        if raw.shape != doc.shape:
            raise BadInput(f"Layer '{common['name']}' does not match the image size.")
        mask = raw if entry.get("soft") else raw >= 128
        return MaskLayer(mask=mask, color=tuple(int(c) for c in entry["color"]), **common)
    if entry["kind"] == "image":
        rgb = reader.array(entry["image"], "RGB")
        alpha = reader.array(entry["alpha"], "L") if entry.get("alpha") else None
        return ImageLayer(
            rgb=rgb,
            alpha=alpha,
            x=int(entry.get("x", 0)),
            y=int(entry.get("y", 0)),
            role=str(entry.get("role", "image")),
            **common,
        )
    raise BadInput(f"Unknown layer kind '{entry['kind']}' in the project.")


# ---------------------------------------------------------------------- autosave and recovery
def recovery_path() -> Path:
    from ovpaint.core.paths import data_dir

    folder = data_dir() / "recovery"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"autosave{SUFFIX}"


def write_recovery(
    source: Document | Snapshot,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    return save_project(source, recovery_path(), progress=progress, cancel=cancel)


def find_recovery() -> Path | None:
    path = recovery_path()
    return path if path.is_file() else None


def clear_recovery() -> None:
    recovery_path().unlink(missing_ok=True)
