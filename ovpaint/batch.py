"""Folder processing shared by the CLI and the batch dialog: segment (and optionally inpaint)
every image of a folder by one text prompt.

Promises, each tested:
- Inputs are only read. Outputs go under ``out_dir`` mirroring the input tree, in the mask
  layout of :mod:`ovpaint.core.mask_export` (``<stem>.labels.png``, ``<stem>.classes.txt``,
  ``<stem>.mask-<NN>-<class>.png`` for each class found), plus ``<stem>.edited<ext>`` when
  inpainting; ``batch_report.json`` and
  ``batch_report.csv`` (per file: status done/skipped/failed, classes found, mask areas,
  seconds, error).
- Every file is written atomically, and a file's outputs are written only after all of them
  were computed; if writing fails half-way (disk full, Ctrl-C) the ones already written are
  removed, so a file has all its outputs or none.
- A rerun skips files finished with the same prompt, method and options (recorded in
  ``.ovpaint-batch-state.jsonl``) unless ``overwrite``; a failing file is reported and the run
  goes on; cancel stops before the next file and the next run resumes.
- An output folder inside the input folder is excluded from the scan (never reprocessed);
  the same folder for both is refused. A full disk stops the run with :class:`DiskFull`.
- One ModelManager for the run, so models load once; the segmentation's text-embedding cache
  is reused because every file asks the same prompt.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ovpaint.core.errors import BadInput, Cancelled, DiskFull, OvpaintError
from ovpaint.core.fileio import append_json_line, atomic_write_text
from ovpaint.core.image_io import IMAGE_EXTENSIONS, load_image, save_image
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.mask_export import write_mask_set
from ovpaint.core.prompt import ClassQuery, parse_prompt
from ovpaint.models.protocols import Models
from ovpaint.pipelines.result import SegmentationResult
from ovpaint.pipelines.segmentation.segment import model_ids
from ovpaint.pipelines.segmentation.segment import (
    segment_fn as default_segment_fn,  # tests replace it
)

STATE_NAME = ".ovpaint-batch-state.jsonl"
REPORT_JSON = "batch_report.json"
REPORT_CSV = "batch_report.csv"

SegmentFn = Callable[[np.ndarray, list[ClassQuery]], SegmentationResult]
#: ``fn(rgb, mask) -> edited rgb`` (same size); mask is the union of the classes found.
InpaintFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class InpaintOptions:
    """Optional inpainting of what was segmented. ``settings`` is passed through to the
    inpainting pipeline as is (its own settings object); ``prompt`` and ``mode`` are the
    common case given on the command line."""

    prompt: str = ""
    mode: str = "remove"  # remove | replace | restyle
    settings: Any = None

    def describe(self) -> dict:
        extra = self.settings
        if extra is not None and hasattr(extra, "__dataclass_fields__"):
            extra = asdict(extra)
        return {"prompt": self.prompt, "mode": self.mode, "settings": extra}


@dataclass
class FileRecord:
    path: str  # relative to the input folder, with '/'
    status: str  # done | skipped | failed
    classes_found: list[str] = field(default_factory=list)
    mask_areas: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""
    outputs: list[str] = field(default_factory=list)  # relative to the output folder
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class BatchReport:
    input_dir: str
    out_dir: str
    prompt: str
    method: str
    files: list[FileRecord] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    cancelled: bool = False
    stopped_by: str = ""
    models: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def seconds_per_image(self) -> float | None:
        done = [f.seconds for f in self.files if f.status == "done"]
        return sum(done) / len(done) if done else None

    def summary(self) -> str:
        spi = self.seconds_per_image
        rate = f", {spi:.2f} s per image" if spi is not None else ""
        return (
            f"{self.count('done')} done, {self.count('skipped')} skipped, "
            f"{self.count('failed')} failed{rate}"
        )

    def as_dict(self) -> dict:
        return {
            "input_dir": self.input_dir,
            "out_dir": self.out_dir,
            "prompt": self.prompt,
            "method": self.method,
            "models": self.models,
            "cancelled": self.cancelled,
            "stopped_by": self.stopped_by,
            "seconds": round(self.seconds, 3),
            "summary": {
                "done": self.count("done"),
                "skipped": self.count("skipped"),
                "failed": self.count("failed"),
                "seconds_per_image": self.seconds_per_image,
            },
            "messages": self.messages,
            "files": [asdict(f) for f in self.files],
        }


# --------------------------------------------------------------------------- scanning
def _within(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def _normalise_extensions(extensions) -> tuple[str, ...]:
    if not extensions:
        return IMAGE_EXTENSIONS
    if isinstance(extensions, str):
        extensions = re.split(r"[,\s]+", extensions)
    out = tuple("." + e.lower().lstrip(".") for e in extensions if e.strip())
    if not out:
        raise BadInput("No file extensions given.")
    return out


def find_images(
    input_dir: Path, *, recursive: bool, extensions: tuple[str, ...], exclude: list[Path]
) -> list[Path]:
    """Image files under ``input_dir`` (sorted), skipping hidden files and ``exclude`` trees."""
    found = []
    for dirpath, dirnames, filenames in os.walk(input_dir):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not any(_within(here / d, ex) for ex in exclude)
        )
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in extensions:
                continue
            found.append(here / name)
        if not recursive:
            break
    return found


def _output_stems(files: list[Path], input_dir: Path) -> dict[Path, str]:
    """Relative output stem per input: ``sub/cat`` or, when two inputs share a stem in one
    folder (cat.jpg and cat.png), ``sub/cat_jpg``."""
    stems: dict[Path, str] = {}
    seen: dict[str, int] = {}
    for f in files:
        key = f.relative_to(input_dir).with_suffix("").as_posix().lower()
        seen[key] = seen.get(key, 0) + 1
    for f in files:
        rel = f.relative_to(input_dir)
        key = rel.with_suffix("").as_posix()
        if seen[key.lower()] > 1:
            key = rel.with_name(rel.name.replace(".", "_")).as_posix()
        stems[f] = key
    return stems


# --------------------------------------------------------------------------- state
def _fingerprint(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _read_state(path: Path) -> dict[str, dict]:
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    for line in path.read_text("utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # torn by a crash: that file is simply done again
        if isinstance(rec, dict) and "path" in rec:
            records[rec["path"]] = rec
    return records


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ovpaint-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except PermissionError as exc:
        raise BadInput(f"No permission to write in the output folder {out_dir}.") from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"The disk holding {out_dir} is full.") from exc
        raise BadInput(f"Cannot write in the output folder {out_dir}: {exc}") from exc


# --------------------------------------------------------------------------- pipeline glue
def default_inpaint_fn(
    options: InpaintOptions, manager, notes: list[str] | None = None
) -> InpaintFn:
    """The pipeline as an ``InpaintFn``; what it says (which engine ran, fallbacks) is added
    once to ``notes``."""
    from ovpaint.pipelines.inpainting import inpaint as inpaint_module

    settings = options.settings
    if settings is None or isinstance(settings, dict):
        settings = inpaint_module.InpaintSettings.from_dict(
            {"mode": options.mode, "prompt": options.prompt, **(settings or {})}
        )
    settings.validated()  # a bad option fails before the first image

    def fn(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = inpaint_module.inpaint(rgb, mask, settings, manager=manager)
        if notes is not None:
            notes.extend(m for m in result.messages if m not in notes)
        return result.image

    return fn


# --------------------------------------------------------------------------- the job
def _write_outputs(
    out_dir: Path,
    stem: str,
    src: Path,
    result: SegmentationResult,
    edited: np.ndarray | None,
    alpha: np.ndarray | None,
) -> list[str]:
    """Write all outputs of one file (the mask set of :mod:`ovpaint.core.mask_export` and the
    edited image); on any failure remove the ones already written."""
    written: list[Path] = []
    try:
        written += write_mask_set(
            out_dir / stem, result.classes, labels=result.labels, skip_empty=True, inputs=(src,)
        )
        if edited is not None:
            ext = (
                src.suffix.lower()
                if src.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
                else ".png"
            )
            target = out_dir / f"{stem}.edited{ext}"
            save_image(target, edited, alpha)
            written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return [p.relative_to(out_dir).as_posix() for p in written]


def _write_report(report: BatchReport, out_dir: Path) -> None:
    atomic_write_text(out_dir / REPORT_JSON, json.dumps(report.as_dict(), indent=1))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        ["path", "status", "classes_found", "mask_areas", "seconds", "error", "outputs"]
    )
    for f in report.files:
        writer.writerow(
            [
                f.path,
                f.status,
                ";".join(f.classes_found),
                ";".join(f"{k}={v}" for k, v in f.mask_areas.items()),
                f"{f.seconds:.3f}",
                f.error,
                ";".join(f.outputs),
            ]
        )
    atomic_write_text(out_dir / REPORT_CSV, buf.getvalue())


def run_batch(
    input_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    prompt: str | list[ClassQuery],
    method: str,
    manager: Models | None = None,
    *,
    recursive: bool = True,
    extensions: str | list[str] | tuple[str, ...] | None = None,
    inpaint: InpaintOptions | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    settings: dict | None = None,
    segment_fn: SegmentFn | None = None,
    inpaint_fn: InpaintFn | None = None,
    on_file: Callable[[FileRecord], None] | None = None,
) -> BatchReport:
    """Process every image of ``input_dir``; see the module docstring for the guarantees.

    Raises :class:`Cancelled` when cancelled (the report is written first) and
    :class:`DiskFull` when the disk fills (the report is written if it still fits).
    """
    t_start = time.perf_counter()
    input_dir = Path(input_dir).expanduser()
    out_dir = Path(out_dir).expanduser()
    if not input_dir.is_dir():
        raise BadInput(f"Input folder not found: {input_dir}")
    in_res, out_res = input_dir.resolve(), out_dir.resolve()
    if in_res == out_res:
        raise BadInput(
            "The output folder must differ from the input folder, so originals "
            "and results never mix."
        )
    queries = parse_prompt(prompt) if isinstance(prompt, str) else list(prompt)
    if not queries:
        raise BadInput("The prompt has no classes.")
    exts = _normalise_extensions(extensions)
    exclude = [out_res] if _within(out_res, in_res) else []
    report = BatchReport(
        str(input_dir),
        str(out_dir),
        prompt if isinstance(prompt, str) else ", ".join(q.name for q in queries),
        method,
        models=model_ids(manager, method),
    )
    if exclude:
        report.messages.append(
            f"The output folder {out_dir} is inside the input folder; it is "
            "excluded from the scan, so outputs are never reprocessed."
        )
    files = find_images(in_res, recursive=recursive, extensions=exts, exclude=exclude)
    if not files:
        raise BadInput(
            f"No images found in {input_dir} (looked for "
            f"{', '.join(exts)}{', recursively' if recursive else ''})."
        )
    _check_writable(out_dir)
    if segment_fn is None:
        segment_fn = default_segment_fn(method, manager, settings)
    if inpaint is not None and inpaint_fn is None:
        inpaint_fn = default_inpaint_fn(inpaint, manager, report.messages)
    config = json.dumps(
        {
            "queries": [[q.name, *q.synonyms] for q in queries],
            "method": method,
            "settings": settings,
            "models": report.models,
            "inpaint": inpaint.describe() if inpaint else None,
        },
        sort_keys=True,
        default=str,
    )
    config_hash = hashlib.sha256(config.encode()).hexdigest()[:16]
    state_path = out_dir / STATE_NAME
    state = _read_state(state_path)
    stems = _output_stems(files, in_res)

    if progress:
        progress.stage("batch", total=len(files), message=str(input_dir))
    try:
        for n, src in enumerate(files):
            if cancel:
                cancel.check()
            rel = src.relative_to(in_res).as_posix()
            prev = state.get(rel)
            fingerprint = _fingerprint(src)
            if (
                not overwrite
                and prev
                and prev.get("status") == "done"
                and prev.get("config") == config_hash
                and prev.get("fingerprint") == fingerprint
                and all((out_dir / o).exists() for o in prev.get("outputs", []))
            ):
                record = FileRecord(
                    rel,
                    "skipped",
                    prev.get("classes_found", []),
                    prev.get("mask_areas", {}),
                    0.0,
                    "",
                    prev.get("outputs", []),
                )
            else:
                record = _process_one(
                    src, rel, stems[src], out_dir, queries, segment_fn, inpaint_fn, cancel
                )
                if record.status == "done":
                    old = set(prev.get("outputs", [])) if prev else set()
                    for stale in old - set(record.outputs):
                        (out_dir / stale).unlink(missing_ok=True)
                    append_json_line(
                        state_path,
                        {
                            "path": rel,
                            "status": "done",
                            "config": config_hash,
                            "fingerprint": fingerprint,
                            "classes_found": record.classes_found,
                            "mask_areas": record.mask_areas,
                            "outputs": record.outputs,
                        },
                    )
            report.files.append(record)
            if on_file:
                on_file(record)
            if progress:
                progress.update(n + 1, len(files), message=f"{rel}: {record.status}")
    except Cancelled:
        report.cancelled = True
        report.stopped_by = "cancelled"
        report.messages.append("Cancelled; finished files are kept and the next run resumes.")
        _finish(report, out_dir, t_start)
        raise
    except DiskFull as exc:
        report.stopped_by = "disk full"
        report.messages.append(str(exc))
        try:
            _finish(report, out_dir, t_start)
        except OvpaintError:
            pass
        raise
    _finish(report, out_dir, t_start)
    return report


def _finish(report: BatchReport, out_dir: Path, t_start: float) -> None:
    report.seconds = time.perf_counter() - t_start
    _write_report(report, out_dir)


def _process_one(
    src: Path,
    rel: str,
    stem: str,
    out_dir: Path,
    queries: list[ClassQuery],
    segment_fn: SegmentFn,
    inpaint_fn: InpaintFn | None,
    cancel: CancelToken | None,
) -> FileRecord:
    t0 = time.perf_counter()
    try:
        loaded = load_image(src)
        result = segment_fn(loaded.rgb, queries)
        if result.labels.shape != (loaded.height, loaded.width):
            raise BadInput(f"The segmentation of {rel} has the wrong size {result.labels.shape}.")
        edited = None
        timings = {k: float(v) for k, v in result.timings.items()}
        if inpaint_fn is not None:
            mask = result.labels > 0
            if mask.any():
                t1 = time.perf_counter()
                edited = np.asarray(inpaint_fn(loaded.rgb, mask), dtype=np.uint8)
                timings["inpaint"] = time.perf_counter() - t1
                if edited.shape != loaded.rgb.shape:
                    raise BadInput(f"Inpainting returned size {edited.shape} for {rel}.")
            else:
                edited = loaded.rgb  # nothing found: the edited copy equals the input
        if cancel:
            cancel.check()  # after the compute, before any write: a cancel leaves nothing
        outputs = _write_outputs(out_dir, stem, src, result, edited, loaded.alpha)
    except (Cancelled, DiskFull):
        raise
    except OvpaintError as exc:
        return FileRecord(rel, "failed", seconds=time.perf_counter() - t0, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
        return FileRecord(
            rel, "failed", seconds=time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}"
        )
    areas = result.areas()
    found = [name for name, px in areas.items() if px > 0]
    return FileRecord(
        rel,
        "done",
        found,
        {k: v for k, v in areas.items()},
        time.perf_counter() - t0,
        "",
        outputs,
        timings,
    )
