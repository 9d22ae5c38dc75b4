"""Projects on disk: a zip (``.ovpaint``) or a folder of PNGs plus ``project.json``.

An open format on purpose: any tool can read the layers back, and nothing is ever unpickled.
Writes are atomic (a crash or a full disk leaves the previous project intact). The same writer
serves autosave: each open document has a :class:`RecoverySlot`, its own recovery project
under the user data folder while it has unsaved changes; a clean exit removes it, so a copy
found at start-up whose owner is gone means a session ended without saving (a crash) and
the user is offered to restore it.

A project is a file from outside: reading it checks every name, size and number in it
(see :func:`load_project`); a folder project's member names are the only paths it reads,
and they must stay inside its folder.

``project.json`` (version 1)::

    {"format": "ovpaint-project", "version": 1, "width": W, "height": H,
     "image": "image.png", "alpha": "alpha.png" | null, "source": "/original/photo.jpg" | null,
     (a folder project's members carry a content hash: "image-<16 hex>.png", ...)
     "selected": "<layer id>" | null,
     "layers": [{"id", "kind": "mask" | "image", "name", "visible", "opacity", "meta",
                 mask: "mask", "color": [r, g, b], "soft": bool
                 image: "rgb", "alpha" | null, "x", "y", "role"}, ...]}   # bottom first
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from ovpaint.core.document import Document, ImageLayer, Layer, MaskLayer
from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    check_output_file,
    clean_stale_temps,
)
from ovpaint.core.image_io import DEFAULT_MAX_PIXELS, image_byte_cap, open_limited
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.limits import MAX_OFFSET, float_in, int_in, text_in
from ovpaint.core.locks import OwnerLock, is_held, pid_alive
from ovpaint.core.safeio import (
    load_json,
    open_regular,
    read_all,
    read_json_file,
    safe_name,
    under_root,
    zip_member,
)

FORMAT = "ovpaint-project"
VERSION = 1
SUFFIX = ".ovpaint"
MANIFEST = "project.json"
PNG_LEVEL = 1  # fast: a 24-megapixel layer saves in a fraction of a second; masks stay small
MAX_LAYERS = 1000
MAX_NAME = 1000
MAX_MANIFEST_BYTES = 16 << 20
MAX_ZIP_ENTRIES = 2 * MAX_LAYERS + 16
MAX_DECODED_BYTES = 8 << 30  # all layers of a project together, decoded
LAYER_ROLES = ("image", "inpaint")


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


def _manifest(snap: Snapshot, names: dict[str, str] | None = None) -> str:
    """project.json; ``names`` renames members (a folder project's content-named files)."""
    names = names or {}
    layers = [
        {
            k: names.get(v, v) if k in _MEMBER_KEYS and isinstance(v, str) else v
            for k, v in e.items()
        }
        for e in snap.layers
    ]
    height, width = snap.rgb.shape[:2]
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "width": width,
            "height": height,
            "image": names.get("image.png", "image.png"),
            "alpha": names.get("alpha.png", "alpha.png") if snap.alpha is not None else None,
            "source": snap.source,
            "selected": snap.selected,
            "saved": time.time(),
            "layers": layers,
        },
        indent=2,
    )


_MEMBER_KEYS = ("mask", "image", "alpha")


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


def check_save_target(path: str | os.PathLike) -> Path:
    """Check, before any work, that a project can be saved at ``path`` (a zip for
    ``.ovpaint``/``.zip`` names, a folder otherwise): the output checks of exports (a folder
    or a special file in the way, a parent that is a file, a read-only or full disk, no
    permission) and, for a folder, that it is an ovpaint project or empty. Raises the
    BadInput (or DiskFull) the save would have met; creates nothing."""
    path = Path(path).expanduser()
    if is_folder_target(path):
        _check_folder_project(path)
        check_output_dir(path, what="the project folder")
    else:
        check_output_file(path, what="the project")
    return path


def _check_folder_project(path: Path) -> None:
    """A folder project is saved only into a folder that is one already, or empty, and
    whose own files are not links."""
    if os.path.lexists(path) and not path.is_dir():
        raise BadInput(f"{path} is a file; a folder project needs a folder name.")
    if path.is_dir() and not (path / MANIFEST).exists() and any(path.iterdir()):
        raise BadInput(
            f"{path} is a folder that is not an ovpaint project; choose an empty "
            "folder or a name ending in .ovpaint."
        )
    for inside in (path / "layers", path / MANIFEST):
        if inside.is_symlink():
            raise BadInput(f"{inside} is a link; a project folder must hold its own files.")


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
    """Write a folder project so that every moment leaves a loadable project.

    Members get content-derived names (``layers/002-mask-<hash>.png``): new ones are written
    beside the old ones, then ``project.json`` is replaced atomically (the moment the new
    project takes over), and only then are the members the old manifest used and the new one
    does not removed. A crash at any point leaves the old or the new project, complete, in
    its folder. Only our own members are ever removed; other files in the folder are kept.
    Unchanged layers are not written again."""
    _check_folder_project(path)
    (path / "layers").mkdir(parents=True, exist_ok=True)
    for folder in (path, path / "layers"):
        clean_stale_temps(folder)
    _clean_old_save_folders(path)
    previous = _members_of(path)
    names: dict[str, str] = {}
    for done, (name, arr) in enumerate(entries, start=1):
        if cancel is not None:
            cancel.check()
        data = _png_bytes(arr)
        stem = name[: -len(".png")]
        final = f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}.png"
        target = path / final
        if not (
            target.is_file() and not target.is_symlink() and target.stat().st_size == len(data)
        ):
            atomic_write_bytes(target, data)
        names[name] = final
        if progress is not None:
            progress.update(done, len(entries))
    if cancel is not None:
        cancel.check()
    atomic_write_text(path / MANIFEST, _manifest(snap, names))
    keep = set(names.values())
    for rel in previous | _our_orphans(path, keep):
        if rel not in keep:
            with suppress(OSError, BadInput):
                member = under_root(path, rel, "The project")
                if member.is_file():
                    member.unlink()


_OURS = re.compile(r"^(?:(?:image|alpha)|layers/\d{3,}-(?:mask|rgb|alpha))(?:-[0-9a-f]{16})?\.png$")
_HASHED = re.compile(r"^(?:(?:image|alpha)|layers/\d{3,}-(?:mask|rgb|alpha))-[0-9a-f]{16}\.png$")


_OLD_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:[a-z0-9_]{8}|old-(?P<pid>\d+))$")


def _clean_old_save_folders(path: Path) -> None:
    """Remove what saves of earlier versions left beside a folder project when killed: a
    hidden temporary copy (``.NAME.xxxxxxxx``, older than an hour) or the previous version
    (``.NAME.old-PID`` of a dead process; the project itself is back in its folder). Only
    folders holding nothing but project members are removed."""
    now = time.time()
    with suppress(OSError):
        for entry in os.scandir(path.parent):
            found = _OLD_TEMP.match(entry.name)
            if (
                found is None
                or found["name"] != path.name
                or not entry.is_dir(follow_symlinks=False)
            ):
                continue
            pid = found["pid"]
            if pid is None and now - entry.stat(follow_symlinks=False).st_mtime < 3600:
                continue
            if pid is not None and pid_alive(int(pid)):
                continue
            folder = Path(entry.path)
            members = [p.relative_to(folder).as_posix() for p in folder.rglob("*")]
            if all(m in (MANIFEST, "layers") or _OURS.match(m) for m in members):
                shutil.rmtree(folder, ignore_errors=True)


def _members_of(path: Path) -> set[str]:
    """Our members the folder's current manifest uses (none when it is unreadable)."""
    try:
        info = read_json_file(
            under_root(path, MANIFEST, "The project"), MANIFEST, max_bytes=MAX_MANIFEST_BYTES
        )
    except (OSError, BadInput):
        return set()
    if not isinstance(info, dict):
        return set()
    names = [info.get("image"), info.get("alpha")]
    for entry in info.get("layers") or []:
        if isinstance(entry, dict):
            names.extend(entry.get(key) for key in _MEMBER_KEYS)
    return {n for n in names if isinstance(n, str) and _OURS.match(n)}


def _our_orphans(path: Path, keep: set[str]) -> set[str]:
    """Content-named members no manifest uses (written by a save that was killed)."""
    found = set()
    for folder, prefix in ((path, ""), (path / "layers", "layers/")):
        with suppress(OSError):
            for entry in os.scandir(folder):
                rel = prefix + entry.name
                if _HASHED.match(rel) and rel not in keep:
                    found.add(rel)
    return found


class _Reader:
    """Reads a project's members with every limit applied: names are checked (and, in a
    folder, resolved inside it), members are regular files under a byte cap, a zip's
    directory is bounded before it is parsed, images are checked from their header (size
    and a budget of decoded bytes for the whole project) before they are decoded."""

    def __init__(self, path: Path, max_pixels: int) -> None:
        self.path = path
        self.max_pixels = max_pixels
        self.zip: zipfile.ZipFile | None = None
        self.root: Path | None = None
        self.decoded = 0  # bytes of pixels decoded so far, against MAX_DECODED_BYTES
        try:
            info = path.stat()
        except OSError as exc:
            raise BadInput(f"Cannot open {path.name}: {exc.strerror or exc}.") from exc
        if stat.S_ISDIR(info.st_mode):
            self.root = Path(os.path.realpath(path))
        elif stat.S_ISREG(info.st_mode):
            self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
            try:
                _check_zip_directory(self._fh, path.name)
                self.zip = zipfile.ZipFile(self._fh)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                self._fh.close()
                raise BadInput(f"{path.name} is not an ovpaint project (not a zip file).") from exc
            except BaseException:
                self._fh.close()
                raise
        else:
            raise BadInput(f"{path.name} is a pipe or device, not a project.")

    @contextmanager
    def open(self, name: Any, cap: int) -> Iterator[IO[bytes]]:
        what = f"{name} in {self.path.name}" if isinstance(name, str) else self.path.name
        rel = safe_name(name, f"The project {self.path.name}")
        with ExitStack() as stack:
            try:
                if self.zip is not None:
                    stream = stack.enter_context(zip_member(self.zip, rel.as_posix(), cap, what))
                else:
                    real = under_root(self.root, rel.as_posix(), f"The project {self.path.name}")
                    stream = stack.enter_context(open_regular(real, cap, what))
            except (KeyError, FileNotFoundError) as exc:
                raise BadInput(f"The project {self.path.name} is missing {name}.") from exc
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise BadInput(f"Could not read {what}: {exc}") from exc
            yield stream

    def read(self, name: Any, cap: int) -> bytes:
        with self.open(name, cap) as stream:
            try:
                return read_all(stream, cap, str(name))
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise BadInput(f"Could not read {name} from {self.path.name}: {exc}") from exc

    def array(
        self,
        name: Any,
        mode: str,
        *,
        exact: tuple[int, int] | None = None,
        within: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """The image ``name`` in ``mode``; its (width, height) must equal ``exact`` or fit
        ``within``, checked from the header before decoding."""
        channels = 3 if mode == "RGB" else 1
        bound = exact or within or (self.max_pixels, 1)
        cap = image_byte_cap(bound[0] * bound[1], channels)
        what = f"{name} in {self.path.name}"
        try:
            with self.open(name, cap) as stream, open_limited(stream, what, self.max_pixels) as img:
                width, height = img.size
                if exact is not None and (width, height) != exact:
                    raise BadInput(
                        f"{what} is {width}×{height}, but the project is {exact[0]}×{exact[1]}."
                    )
                if within is not None and (width > within[0] or height > within[1]):
                    raise BadInput(f"{what} is {width}×{height}, larger than the project.")
                self.decoded += width * height * channels
                if self.decoded > MAX_DECODED_BYTES:
                    raise BadInput(
                        f"{self.path.name} holds more than {MAX_DECODED_BYTES >> 30} GiB of "
                        "layers; refusing to open it."
                    )
                img.load()
                if img.mode != mode:
                    img = img.convert(mode)
                return np.array(img)
        except BadInput:
            raise
        except (OSError, SyntaxError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise BadInput(f"{what} is corrupt: {exc}") from exc

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()
            self._fh.close()


def _check_zip_directory(fh: IO[bytes], name: str) -> None:
    """Refuse a zip whose central directory is too large to parse, before ZipFile reads it
    into memory (a crafted directory of millions of entries)."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    tail = min(size, 65557)
    fh.seek(size - tail)
    data = fh.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) - at < 22:
        raise zipfile.BadZipFile("no end of central directory")
    entries, directory_bytes = struct.unpack("<HI", data[at + 10 : at + 16])
    if entries > MAX_ZIP_ENTRIES or directory_bytes > MAX_ZIP_ENTRIES * 1024:
        raise BadInput(f"{name} has too many entries to be an ovpaint project.")
    fh.seek(0)


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise BadInput(f"{what} must be one of {', '.join(allowed)} (got {str(value)[:40]!r}).")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{what} must be true or false.")
    return value


def _manifest_from(data: bytes, name: str) -> dict:
    """project.json checked: the format, the version and the image size, within ranges."""
    info = load_json(data, f"{name}: project.json", max_bytes=MAX_MANIFEST_BYTES)
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise BadInput(f"{name} is not an ovpaint project.")
    version = int_in(info.get("version", 0), f"{name}: the format version", 0, 1 << 30)
    if version > VERSION:
        raise BadInput(
            f"{name} was saved by a newer ovpaint (format {version}); please update the program."
        )
    return info


def load_project(
    path: str | os.PathLike,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Document:
    """Read a project back into a new Document; any damage is one clear BadInput.

    Everything in the file is checked before it is used: names stay inside the project,
    members are regular files under byte caps, numbers have ranges (size, layer count,
    opacity, colour, position), JSON has a size and a depth limit."""
    path = Path(path)
    if not os.path.lexists(path):
        raise BadInput(_missing_message(path))
    reader = _Reader(path, max_pixels)
    try:
        info = _manifest_from(reader.read(MANIFEST, MAX_MANIFEST_BYTES), path.name)
        width = int_in(info.get("width"), f"{path.name}: the width", 1, max_pixels)
        height = int_in(info.get("height"), f"{path.name}: the height", 1, max_pixels)
        if width * height > max_pixels:
            raise BadInput(f"{path.name}: the image of {width}×{height} is over the pixel limit.")
        layers_info = info.get("layers")
        layers_info = [] if layers_info is None else layers_info
        if not isinstance(layers_info, list):
            raise BadInput(f"{path.name}: the layers of project.json are not a list.")
        if len(layers_info) > MAX_LAYERS:
            raise BadInput(
                f"{path.name} has {len(layers_info)} layers; at most {MAX_LAYERS} are supported."
            )
        if progress is not None:
            progress.stage("open project", total=len(layers_info) + 1)
        rgb = reader.array(info.get("image", "image.png"), "RGB", exact=(width, height))
        alpha = None
        if info.get("alpha") is not None:
            alpha = reader.array(info["alpha"], "L", exact=(width, height))
        source = text_in(info.get("source"), f"{path.name}: the source", 4096, optional=True)
        doc = Document(rgb, alpha, path=source)
        ids: set[str] = set()
        for done, entry in enumerate(layers_info, start=1):
            if cancel is not None:
                cancel.check()
            layer = _layer_from(entry, reader, doc, f"{path.name}: layer {done}")
            if layer.id in ids:  # a duplicate id gets a fresh one; nothing else refers to it
                layer.id = uuid.uuid4().hex[:12]
            ids.add(layer.id)
            doc.layers.append(layer)
            if progress is not None:
                progress.update(done, len(layers_info) + 1)
        selected = info.get("selected")
        for layer in doc.layers:
            if isinstance(selected, str) and layer.id == selected:
                doc.layers.select(layer)
                break
        doc.dirty = False
        return doc
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise BadInput(f"{path.name}: project.json is damaged ({str(exc)[:200]}).") from exc
    finally:
        reader.close()


def _missing_message(path: Path) -> str:
    """Project not found, and where an interrupted save of an older version left it."""
    left = sorted(path.parent.glob(f".{glob.escape(path.name)}.old-*")) if path.name else []
    if left:
        return (
            f"Project not found: {path}. An interrupted save left it in {left[0]}; "
            f"rename that folder to {path.name} to open it."
        )
    return f"Project not found: {path}"


def _layer_from(entry: Any, reader: _Reader, doc: Document, what: str) -> Layer:
    if not isinstance(entry, dict):
        raise BadInput(f"{what} is not a JSON object.")
    meta = entry.get("meta") or {}
    if not isinstance(meta, dict):
        raise BadInput(f"{what}: its details (meta) are not a JSON object.")
    common: dict[str, Any] = {
        "name": text_in(entry.get("name"), f"{what}: the name", MAX_NAME),
        "visible": _flag(entry.get("visible", True), f"{what}: visible"),
        "opacity": float_in(entry.get("opacity", 1.0), f"{what}: the opacity", 0.0, 1.0),
        "meta": meta,
    }
    layer_id = entry.get("id")
    if layer_id:
        common["id"] = text_in(layer_id, f"{what}: the id", 64)
    kind = _choice(entry.get("kind"), ("mask", "image"), f"{what}: the kind")
    if kind == "mask":
        color = entry.get("color")
        if not isinstance(color, list) or len(color) != 3:
            raise BadInput(f"{what}: the colour must be three numbers [r, g, b].")
        rgb = tuple(int_in(c, f"{what}: a colour component", 0, 255) for c in color)
        raw = reader.array(entry.get("mask"), "L", exact=(doc.width, doc.height))
        soft = _flag(entry.get("soft", False), f"{what}: soft")
        return MaskLayer(mask=raw if soft else raw >= 128, color=rgb, **common)
    rgb = reader.array(entry.get("image"), "RGB", within=(doc.width, doc.height))
    alpha = None
    if entry.get("alpha") is not None:
        alpha = reader.array(entry["alpha"], "L", exact=(rgb.shape[1], rgb.shape[0]))
    return ImageLayer(
        rgb=rgb,
        alpha=alpha,
        x=int_in(entry.get("x", 0), f"{what}: x", -MAX_OFFSET, MAX_OFFSET),
        y=int_in(entry.get("y", 0), f"{what}: y", -MAX_OFFSET, MAX_OFFSET),
        role=_choice(entry.get("role", "image"), LAYER_ROLES, f"{what}: the role"),
        **common,
    )


# ---------------------------------------------------------------------- autosave and recovery
RECOVERY_PREFIX = "autosave-"
LEGACY_RECOVERY = f"autosave{SUFFIX}"


def recovery_folder() -> Path:
    from ovpaint.core.paths import data_dir

    folder = data_dir() / "recovery"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class RecoverySlot:
    """The autosave copy of one open document: a project of its own under the recovery
    folder, with a lock held while its window lives. Another window or another instance of
    the program has its own slot, so no one overwrites or removes another's copy; a copy
    whose lock is free was left by a session that ended without saving (a crash)."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self.name = f"{RECOVERY_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock: OwnerLock | None = None

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = recovery_folder()
        return self._folder

    @property
    def path(self) -> Path:
        return self.folder / f"{self.name}{SUFFIX}"

    def _hold(self) -> None:
        if self._lock is None:
            self._lock = OwnerLock(self.folder / f"{self.name}.lock")
        if not self._lock.acquire(kind="autosave"):
            raise BadInput(f"The autosave slot {self.name} is in use by another window.")

    def write(
        self,
        source: Document | Snapshot,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Path:
        self._hold()
        return save_project(source, self.path, progress=progress, cancel=cancel)

    def adopt(self, found: Path) -> Path:
        """Take over a copy left by an ended session (for this window to open and keep
        safe): it becomes this slot's copy. Raises BadInput when another window took it."""
        lock = OwnerLock(found.with_suffix(".lock"))
        if not lock.acquire(kind="autosave"):
            raise BadInput("Another window is already recovering that copy.")
        try:
            self._hold()
            os.replace(found, self.path)
        except OSError as exc:
            raise BadInput(f"Could not take over the recovery copy {found}: {exc}") from exc
        finally:
            lock.release()
        return self.path

    def clear(self) -> None:
        """The document is saved, closed or discarded: its copy is no longer needed."""
        if self._folder is None:
            return  # never written (and the folder never looked for)
        with suppress(OSError):
            self.path.unlink()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def find_recoveries(folder: Path | None = None) -> list[Path]:
    """Copies left by sessions that ended without saving, newest first."""
    folder = folder or recovery_folder()
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        if not (path.name.startswith(RECOVERY_PREFIX) or path.name == LEGACY_RECOVERY):
            continue
        if path.name != LEGACY_RECOVERY and is_held(path.with_suffix(".lock")):
            continue  # its window is still open, in this process or another
        with suppress(OSError):
            found.append((path.stat().st_mtime, path))
    return [p for _, p in sorted(found, reverse=True)]


def find_recovery(folder: Path | None = None) -> Path | None:
    found = find_recoveries(folder)
    return found[0] if found else None


def discard_recovery(path: Path) -> None:
    """Remove a copy the user chose not to restore (unless its owner came back)."""
    lock = OwnerLock(path.with_suffix(".lock"))
    if path.name != LEGACY_RECOVERY and not lock.acquire(kind="discard"):
        return
    try:
        path.unlink(missing_ok=True)
    finally:
        lock.release()
