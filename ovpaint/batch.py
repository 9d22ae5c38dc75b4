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
  the same folder for both, or an output folder that holds the input folder, is refused, and
  no output is written outside the output folder (through a link) or onto an input. Two
  inputs never share outputs (``cat.jpg``, ``cat.png``, ``cat_jpg.png``, ``Cat.png``).
  A full disk stops the run with :class:`DiskFull`.
- The state file is input like any other: its records are checked before use, a damaged
  line only means that file is done again, and the only files a rerun removes are outputs
  of that input's own name pattern inside the output folder.
- One batch at a time per output folder (a lock that names the process holding it; the
  lock of a killed run is free again at once). Temporaries a killed run left are removed.
- Broken links, link loops, pipes and unreadable folders in the input are reported as
  failed entries; the run goes on.
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
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ovpaint.core.errors import BadInput, Cancelled, DiskFull, OvpaintError
from ovpaint.core.fileio import (
    append_json_line,
    atomic_write_text,
    check_output_dir,
    clean_stale_temps,
    file_id,
    file_ids,
    write_error,
)
from ovpaint.core.image_io import IMAGE_EXTENSIONS, load_image, save_image
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.locks import OwnerLock
from ovpaint.core.mask_export import mask_set_paths, write_mask_set
from ovpaint.core.prompt import ClassQuery, parse_prompt
from ovpaint.core.safeio import load_json, open_regular, read_all, under_root, within
from ovpaint.models.protocols import Models
from ovpaint.pipelines.result import SegmentationResult
from ovpaint.pipelines.segmentation.segment import model_ids
from ovpaint.pipelines.segmentation.segment import (
    segment_fn as default_segment_fn,  # tests replace it
)

STATE_NAME = ".ovpaint-batch-state.jsonl"
LOCK_NAME = ".ovpaint-batch.lock"
MAX_STATE_BYTES = 256 << 20
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
    return within(path, parent)


def _normalise_extensions(extensions) -> tuple[str, ...]:
    if not extensions:
        return IMAGE_EXTENSIONS
    if isinstance(extensions, str):
        extensions = re.split(r"[,\s]+", extensions)
    out = tuple("." + e.lower().lstrip(".") for e in extensions if e.strip())
    if not out:
        raise BadInput("No file extensions given.")
    return out


@dataclass
class Scan:
    files: list[Path]
    problems: list[FileRecord]  # entries that could not be taken, as failed records


def scan_images(
    input_dir: Path, *, recursive: bool, extensions: tuple[str, ...], exclude: list[Path]
) -> Scan:
    """Image files under ``input_dir`` (sorted), skipping hidden files and ``exclude`` trees.
    Links are followed to regular files only; a broken link, a link loop, a pipe or a device,
    and a folder that cannot be read become failed records instead of stopping the scan."""
    found: list[Path] = []
    problems: list[FileRecord] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename or input_dir)
        rel = where.relative_to(input_dir).as_posix() if _within(where, input_dir) else str(where)
        problems.append(
            FileRecord(f"{rel}/", "failed", error=f"folder could not be read: {exc.strerror}")
        )

    for dirpath, dirnames, filenames in os.walk(input_dir, onerror=unreadable):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not any(_within(here / d, ex) for ex in exclude)
        )
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in extensions:
                continue
            path = here / name
            rel = path.relative_to(input_dir).as_posix()
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                kind = "a link loop" if exc.errno == errno.ELOOP else "a broken link"
                if not path.is_symlink():
                    kind = f"unreadable ({exc.strerror})"
                problems.append(FileRecord(rel, "failed", error=f"{rel} is {kind}."))
                continue
            if not stat.S_ISREG(mode):
                problems.append(
                    FileRecord(
                        rel, "failed", error=f"{rel} is not a regular file (a pipe or device)."
                    )
                )
                continue
            found.append(path)
        if not recursive:
            break
    return Scan(found, problems)


def find_images(
    input_dir: Path, *, recursive: bool, extensions: tuple[str, ...], exclude: list[Path]
) -> list[Path]:
    return scan_images(input_dir, recursive=recursive, extensions=extensions, exclude=exclude).files


def _output_stems(files: list[Path], input_dir: Path) -> dict[Path, str]:
    """A distinct output stem per input, also where case does not count (Windows, macOS):
    ``sub/cat`` when no other input has that stem; ``sub/cat_jpg`` for ``cat.jpg`` beside
    ``cat.png``; ``~2``, ``~3`` appended when that is taken too (``cat_jpg.png`` exists)."""
    rel = {f: f.relative_to(input_dir) for f in files}
    plain = {f: r.with_suffix("").as_posix() for f, r in rel.items()}
    counts: dict[str, int] = {}
    for stem in plain.values():
        counts[stem.casefold()] = counts.get(stem.casefold(), 0) + 1
    wanted = {
        f: stem
        if counts[stem.casefold()] == 1
        else r.with_name(r.name.replace(".", "_")).as_posix()
        for (f, stem), r in zip(plain.items(), rel.values(), strict=True)
    }
    taken: set[str] = set()
    stems: dict[Path, str] = {}
    # plain stems first, so a file keeps its natural outputs whenever it can
    for f in sorted(files, key=lambda f: (wanted[f] != plain[f], rel[f].as_posix())):
        stem, n = wanted[f], 1
        while stem.casefold() in taken:
            n += 1
            stem = f"{wanted[f]}~{n}"
        taken.add(stem.casefold())
        stems[f] = stem
    return stems


def _is_output_of(stem: str, rel: str) -> bool:
    """Whether ``rel`` is named like one of the outputs :func:`_write_outputs` makes for
    ``stem``: the only files a rerun may remove."""
    if not rel.startswith(stem + "."):
        return False
    tail = rel[len(stem) + 1 :]
    return (
        tail in ("labels.png", "classes.txt")
        or re.fullmatch(r"mask-\d{2,3}-[\w\-]{1,60}\.png", tail) is not None
        or re.fullmatch(r"edited\.(png|jpe?g|webp|tiff?|bmp)", tail) is not None
    )


# --------------------------------------------------------------------------- state
def _fingerprint(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _valid_record(rec: Any) -> bool:
    """A state record with the types a rerun relies on (anything else: done again)."""
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("path"), str)
        and rec.get("status") == "done"
        and isinstance(rec.get("config"), str)
        and isinstance(rec.get("fingerprint"), list)
        and isinstance(rec.get("outputs"), list)
        and all(isinstance(o, str) for o in rec["outputs"])
        and isinstance(rec.get("classes_found", []), list)
        and all(isinstance(c, str) for c in rec.get("classes_found", []))
        and isinstance(rec.get("mask_areas", {}), dict)
        and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in rec.get("mask_areas", {}).items()
        )
    )


def _read_state(path: Path) -> tuple[dict[str, dict], int]:
    """The records of earlier runs and how many lines were damaged. The file is read as
    untrusted: a regular file (not a link) under a byte cap, line by line."""
    records: dict[str, dict] = {}
    if not os.path.lexists(path):
        return records, 0
    if path.is_symlink():
        raise BadInput(
            f"The batch state file {path} is a link; remove it (outputs are never written "
            "through links)."
        )
    with open_regular(path, MAX_STATE_BYTES, f"the batch state file {path}") as fh:
        data = read_all(fh, MAX_STATE_BYTES, f"the batch state file {path}")
    damaged = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rec = load_json(line, "a state line", max_depth=4)
        except BadInput:
            damaged += 1  # torn by a crash, or tampered: that file is simply done again
            continue
        if not _valid_record(rec):
            damaged += 1
            continue
        records[rec["path"]] = rec
    return records, damaged


def _check_writable(out_dir: Path) -> None:
    check_output_dir(out_dir, what="the output folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, out_dir, "the output folder") from exc
    check_output_dir(out_dir, what="the output folder")  # now probed with a real file


def _clean_leftovers(out_dir: Path) -> None:
    """Temporaries of outputs a killed run left (never a user's file: see fileio)."""
    for dirpath, dirnames, _ in os.walk(out_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        clean_stale_temps(dirpath)


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
    input_ids: frozenset | set = frozenset(),
) -> list[str]:
    """Write all outputs of one file (the mask set of :mod:`ovpaint.core.mask_export` and the
    edited image); on any failure remove the ones already written."""
    written: list[Path] = []
    try:
        base = out_dir / stem
        for path in mask_set_paths(base, result.classes):  # each inside, none an input
            _output_target(out_dir, path.relative_to(out_dir).as_posix(), input_ids)
        written += write_mask_set(
            base, result.classes, labels=result.labels, skip_empty=True, inputs=(src,)
        )
        if edited is not None:
            ext = (
                src.suffix.lower()
                if src.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
                else ".png"
            )
            target = _output_target(out_dir, f"{stem}.edited{ext}", input_ids)
            save_image(target, edited, alpha)
            written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return [p.relative_to(out_dir).as_posix() for p in written]


def _output_target(out_dir: Path, rel: str, input_ids: set[tuple[int, int]]) -> Path:
    """``out_dir / rel`` after checking that its folder, links resolved, is inside the output
    folder (a linked sub-folder could lead into the inputs) and that it is no input (the
    inputs' file identities, so a hard link counts too)."""
    target = out_dir / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if not within(os.path.realpath(target.parent), os.path.realpath(out_dir)):
        raise BadInput(f"The output {rel} would be written outside the output folder (a link).")
    if file_id(target) in input_ids:
        raise BadInput(f"The output {rel} is an input file; refusing to overwrite it.")
    return target


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
    if _within(in_res, out_res):
        raise BadInput(
            f"The output folder {out_dir} holds the input folder {input_dir}; outputs could "
            "land on inputs. Choose an output folder outside it."
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
    scan = scan_images(in_res, recursive=recursive, extensions=exts, exclude=exclude)
    if not scan.files and not scan.problems:
        raise BadInput(
            f"No images found in {input_dir} (looked for "
            f"{', '.join(exts)}{', recursively' if recursive else ''})."
        )
    _check_writable(out_dir)
    if segment_fn is None:
        segment_fn = default_segment_fn(method, manager, settings)
    if inpaint is not None and inpaint_fn is None:
        inpaint_fn = default_inpaint_fn(inpaint, manager, report.messages)  # checked here
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
    lock = OwnerLock(out_dir / LOCK_NAME)
    if not lock.acquire(kind="batch"):
        raise BadInput(
            f"Another batch ({lock.describe_holder()}) is writing to {out_dir}; wait for it to "
            "finish or choose another output folder."
        )
    try:
        _clean_leftovers(out_dir)
        run = _Run(
            in_res,
            out_dir,
            queries,
            hashlib.sha256(config.encode()).hexdigest()[:16],
            segment_fn,
            inpaint_fn,
            overwrite,
            cancel,
        )
        run.all(scan, report, progress, on_file, t_start)
    finally:
        lock.release()
    return report


@dataclass
class _Run:
    """One batch run over scanned files, with the output folder locked."""

    in_res: Path
    out_dir: Path
    queries: list[ClassQuery]
    config_hash: str
    segment_fn: SegmentFn
    inpaint_fn: InpaintFn | None
    overwrite: bool
    cancel: CancelToken | None

    def all(self, scan: Scan, report: BatchReport, progress, on_file, t_start: float) -> None:
        state_path = self.out_dir / STATE_NAME
        state, damaged = _read_state(state_path)
        if damaged:
            report.messages.append(
                f"{damaged} line(s) of {STATE_NAME} were damaged and ignored; "
                "those files are done again."
            )
        files = scan.files
        stems = _output_stems(files, self.in_res)
        input_ids = file_ids(files)  # looked up once for the whole run
        total = len(files) + len(scan.problems)
        if progress:
            progress.stage("batch", total=total, message=str(report.input_dir))
        try:
            for record in scan.problems:
                report.files.append(record)
                if on_file:
                    on_file(record)
            for n, src in enumerate(files, start=len(scan.problems)):
                if self.cancel:
                    self.cancel.check()
                record = self.one(src, stems[src], state, state_path, input_ids)
                report.files.append(record)
                if on_file:
                    on_file(record)
                if progress:
                    progress.update(n + 1, total, message=f"{record.path}: {record.status}")
        except Cancelled:
            report.cancelled = True
            report.stopped_by = "cancelled"
            report.messages.append("Cancelled; finished files are kept and the next run resumes.")
            _finish(report, self.out_dir, t_start)
            raise
        except DiskFull as exc:
            report.stopped_by = "disk full"
            report.messages.append(str(exc))
            try:
                _finish(report, self.out_dir, t_start)
            except OvpaintError:
                pass
            raise
        _finish(report, self.out_dir, t_start)

    def _outputs_of(self, prev: dict | None, stem: str) -> list[str] | None:
        """The recorded outputs of ``stem`` when every one is its own (by name, inside the
        output folder); None for a record that names anything else."""
        if prev is None:
            return None
        outputs = prev["outputs"]
        for rel in outputs:
            if not _is_output_of(stem, rel):
                return None
            try:
                under_root(self.out_dir, rel, "the batch state file")
            except BadInput:
                return None
        return outputs

    def one(self, src: Path, stem: str, state: dict, state_path: Path, input_ids) -> FileRecord:
        rel = src.relative_to(self.in_res).as_posix()
        prev = state.get(rel)
        previous_outputs = self._outputs_of(prev, stem)
        try:
            fingerprint = _fingerprint(src)
        except OSError as exc:
            return FileRecord(rel, "failed", error=f"{rel} could not be read: {exc.strerror}")
        if (
            not self.overwrite
            and previous_outputs is not None
            and prev.get("config") == self.config_hash
            and prev.get("fingerprint") == fingerprint
            and all((self.out_dir / o).is_file() for o in previous_outputs)
        ):
            return FileRecord(
                rel,
                "skipped",
                prev.get("classes_found", []),
                prev.get("mask_areas", {}),
                0.0,
                "",
                previous_outputs,
            )
        record = _process_one(
            src,
            rel,
            stem,
            self.out_dir,
            self.queries,
            self.segment_fn,
            self.inpaint_fn,
            self.cancel,
            input_ids,
        )
        if record.status == "done":
            for stale in set(previous_outputs or ()) - set(record.outputs):
                (self.out_dir / stale).unlink(missing_ok=True)
            append_json_line(
                state_path,
                {
                    "path": rel,
                    "status": "done",
                    "config": self.config_hash,
                    "fingerprint": fingerprint,
                    "classes_found": record.classes_found,
                    "mask_areas": record.mask_areas,
                    "outputs": record.outputs,
                },
            )
        return record


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
    input_ids: frozenset | set = frozenset(),
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
        outputs = _write_outputs(out_dir, stem, src, result, edited, loaded.alpha, input_ids)
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
