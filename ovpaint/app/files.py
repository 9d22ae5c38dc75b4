"""File operations of the window: open an image or a project, save, export, recent files,
autosave and crash recovery. Loading and writing run on the worker pool; the dialogs here."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ovpaint.app.context import EditorContext
from ovpaint.app.workers import error_message
from ovpaint.core import project
from ovpaint.core.document import Document, composite, label_map
from ovpaint.core.errors import BadInput, DiskFull
from ovpaint.core.fileio import check_output_dir, check_output_file
from ovpaint.core.image_io import IMAGE_EXTENSIONS, load_image, save_image
from ovpaint.core.mask_export import check_mask_set, mask_set_paths, write_mask_set

IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in IMAGE_EXTENSIONS) + ")"
PROJECT_FILTER = f"ovpaint projects (*{project.SUFFIX} *.zip project.json)"
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)"
MAX_RECENT = 10


def open_job(path: str, max_megapixels: int, *, progress, cancel) -> Document:
    """Worker-side: an image or a project becomes a Document."""
    p = Path(path)
    location = project.project_location(p)
    max_pixels = int(max_megapixels * 1_000_000)
    if location is not None:
        return project.load_project(
            location, progress=progress, cancel=cancel, max_pixels=max_pixels
        )
    progress.stage("open image")
    loaded = load_image(p, max_pixels=max_pixels)
    cancel.check()
    return Document(loaded.rgb, loaded.alpha, path=str(p))


def export_masks_job(
    snapshot_masks, shape, visible, folder: str, stem: str, mode: str, *, progress, cancel
) -> list[Path]:
    """The mask set of :mod:`ovpaint.core.mask_export`: in ``labels`` mode the label map of
    the visible masks, in ``layers`` mode every mask layer (they may overlap); the class file
    in both."""
    base = Path(folder) / stem
    if mode == "labels":
        labels, names = label_map(shape, visible)
        return write_mask_set(base, names, labels=labels, masks=[], check=cancel.check)
    names = ["background"] + [name for name, _ in snapshot_masks]
    masks = [(i, mask) for i, (_, mask) in enumerate(snapshot_masks, start=1)]
    progress.stage("export masks", total=len(masks) + 1)
    files = itertools.count()

    def check() -> None:  # before each file: the class file, then the masks
        cancel.check()
        progress.update(next(files), len(masks) + 1)

    return write_mask_set(base, names, masks=masks, check=check)


def openable(path: str) -> bool:
    """Whether ``path`` is something the window opens: an image or a project."""
    return (
        Path(path).suffix.lower() in IMAGE_EXTENSIONS or project.project_location(path) is not None
    )


class FileController(QObject):
    """Open/save/export, recent files and autosave for one window."""

    recent_changed = Signal(list)
    project_path_changed = Signal(object)

    def __init__(self, context: EditorContext, window: QWidget) -> None:
        super().__init__(window)
        self.context, self.window = context, window
        self.project_path: Path | None = None
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave)
        seconds = int(context.settings["autosave_seconds"])
        if seconds > 0:
            self.autosave_timer.start(seconds * 1000)
        self._autosaving = False
        self.last_autosave: float | None = None
        self.recovery = project.RecoverySlot()  # this window's own autosave copy

    # ------------------------------------------------------------------ opening
    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window,
            "Open image or project",
            self._start_dir(),
            f"{IMAGE_FILTER};;{PROJECT_FILTER};;All files (*)",
        )
        if path:
            self.open(path)

    def open(self, path: str, note: str | None = None) -> None:
        """Open an image or a project on the worker; ``note`` is shown once it is open."""
        if not Path(path).exists():
            self.context.banner.show_message(
                f"{path} is no longer there (moved or deleted); it was taken off the recent list.",
                "error",
                topic="open",
            )
            self.forget_recent(path)
            return
        if not self.confirm_discard():
            return
        location = project.project_location(path)  # Save writes back there
        self.context.run_job(
            open_job,
            path,
            self.context.settings["max_image_megapixels"],
            title=f"Open {Path(path).name}",
            on_done=lambda doc: self._opened(
                doc, location or Path(path), location is not None, note
            ),
        )

    def open_dropped(self, paths: list[str]) -> bool:
        """Files dropped on the window: open the first image or project, say what was not."""
        usable = [p for p in paths if openable(p)]
        if not usable:
            names = ", ".join(Path(p).name for p in paths[:3])
            self.context.banner.show_message(
                f"{names}: not an image or an ovpaint project. Drop a photo "
                f"({', '.join(IMAGE_EXTENSIONS)}) or a project ({project.SUFFIX}).",
                "warning",
                topic="open",
            )
            return False
        note = None
        if len(paths) > 1:
            note = (
                f"Opened {Path(usable[0]).name}: the window edits one image at a time "
                f"({len(paths) - 1} more dropped). For many files use File → Batch."
            )
        self.open(usable[0], note)
        return True

    def _opened(self, doc: Document, path: Path, is_project: bool, note: str | None = None) -> None:
        self.context.set_document(doc)
        self.recovery.clear()  # the previous document's changes were discarded
        if note:
            self.context.banner.show_message(note, "info", topic="open")
        self.project_path = path if is_project else None
        doc.dirty = False
        self.project_path_changed.emit(self.project_path)
        self.add_recent(str(path))

    def _start_dir(self) -> str:
        recent = self.recent()
        return str(Path(recent[0]).parent) if recent else ""

    def recent(self) -> list[str]:
        return [p for p in self.context.settings["recent_files"] if isinstance(p, str)]

    def add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent() if p != path]
        self.context.settings["recent_files"] = items[:MAX_RECENT]
        self.context.settings.save()
        self.recent_changed.emit(self.recent())

    def forget_recent(self, path: str) -> None:
        self.context.settings["recent_files"] = [p for p in self.recent() if p != path]
        self.context.settings.save()
        self.recent_changed.emit(self.recent())

    def clear_recent(self) -> None:
        self.context.settings["recent_files"] = []
        self.context.settings.save()
        self.recent_changed.emit([])

    def confirm_discard(self) -> bool:
        doc = self.context.document
        if doc is None or not doc.dirty:
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved changes",
            "The open document has unsaved changes. Discard them?",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    # ------------------------------------------------------------------ projects
    def ask_save_project(self, save_as: bool = False) -> None:
        if self.context.document is None:
            return
        path = self.project_path
        if path is None or save_as:
            suggested = self._suggest(project.SUFFIX)
            name, _ = QFileDialog.getSaveFileName(
                self.window, "Save project", suggested, PROJECT_FILTER
            )
            if not name:
                return
            path = Path(name)
            if path.suffix.lower() not in (project.SUFFIX, ".zip"):
                path = path.with_suffix(project.SUFFIX)
        self.save_project(path)

    def save_project(self, path: Path) -> bool:
        """Save the document as a project at ``path`` on the worker; False when nothing was
        started because the location cannot be written (said in the banner at once, while
        the user still has the dialog in mind, not after the layers were compressed)."""
        try:
            project.check_save_target(path)
        except (BadInput, DiskFull) as exc:
            self._refused(exc, topic="save")
            return False
        doc = self.context.document
        snap = project.snapshot(doc)
        self.context.run_job(
            project.save_project,
            snap,
            path,
            title="Save project",
            on_done=lambda p: self._saved(doc, Path(p)),
        )
        return True

    def _saved(self, doc: Document, path: Path) -> None:
        self.project_path = path
        doc.dirty = False
        self.context.undo_stack.setClean()
        self.project_path_changed.emit(path)
        self.add_recent(str(path))
        self.recovery.clear()

    def _suggest(self, suffix: str) -> str:
        doc = self.context.document
        if self.project_path is not None:
            return str(self.project_path.with_suffix(suffix))
        if doc is not None and doc.path:
            src = Path(doc.path)
            return str(src.with_name(src.stem + "_edited" + suffix))
        return "untitled" + suffix

    # ------------------------------------------------------------------ export
    def ask_export_image(self) -> None:
        if self.context.document is None:
            return
        name, chosen = QFileDialog.getSaveFileName(
            self.window, "Export edited image", self._suggest(".png"), EXPORT_FILTER
        )
        if name:
            self.export_image(Path(name))

    def export_image(self, path: Path, *, confirm_overwrite_original: bool | None = None) -> bool:
        doc = self.context.document
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            path = path.with_suffix(".png")
        if doc.path and path.exists() and path.resolve() == Path(doc.path).resolve():
            ok = confirm_overwrite_original
            if ok is None:
                ok = (
                    QMessageBox.question(
                        self.window,
                        "Overwrite the original?",
                        f"{path.name} is the original photo. Replace it with the edited image?",
                        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                        QMessageBox.StandardButton.No,
                    )
                    == QMessageBox.StandardButton.Yes
                )
            if not ok:
                return False
        try:  # said now, while the user still has the dialog in mind, not after the blend
            check_output_file(path)
        except (BadInput, DiskFull) as exc:
            self._refused(exc)
            return False
        base, paint, alpha = doc.rgb, doc.paint_layers(), doc.alpha  # blended in the worker

        def job(*, progress, cancel):
            progress.stage("export image")
            return save_image(path, composite(base, paint), alpha)

        self.context.run_job(
            job,
            title="Export image",
            on_done=lambda p: self._status(f"Exported {Path(p).name} ({doc.width}×{doc.height})"),
        )
        return True

    def ask_export_masks(self, mode: str = "layers") -> None:
        if self.context.document is None:
            return
        folder = QFileDialog.getExistingDirectory(
            self.window, "Export masks to folder", self._start_dir()
        )
        if folder:
            self.export_masks(Path(folder), mode)

    def export_masks(self, folder: Path, mode: str = "layers") -> bool:
        """Export the mask set to ``folder`` on the worker; False when nothing was started
        (no masks, or an output that cannot be written: said in the banner)."""
        doc = self.context.document
        masks = [(layer.name, layer.mask) for layer in doc.layers.masks()]
        if not masks:
            self.context.banner.show_message("There are no mask layers to export.", "warning")
            return False
        stem = Path(doc.path).stem if doc.path else "image"
        names = ["background"] + [name for name, _ in masks]  # the mask files' names
        layers = mode != "labels"
        paths = mask_set_paths(folder / stem, names, with_labels=not layers, with_masks=layers)
        try:  # every file of the set, before the job (see export_masks_job)
            check_output_dir(folder)
            check_mask_set(paths, inputs=[doc.path] if doc.path else [])
        except (BadInput, DiskFull) as exc:
            self._refused(exc)
            return False
        self.context.run_job(
            export_masks_job,
            masks,
            doc.shape,
            doc.visible_masks(),
            str(folder),
            stem,
            mode,
            title="Export masks",
            on_done=lambda files: self._status(f"Wrote {len(files)} file(s) to {folder}"),
        )
        return True

    def _status(self, text: str) -> None:
        self.context.banner.show_message(text, "info")

    def _refused(self, exc: BadInput | DiskFull, topic: str = "export") -> None:
        self.context.banner.show_message(error_message(exc), "error", topic=topic)

    # ------------------------------------------------------------------ autosave / recovery
    def autosave(self) -> None:
        """Write the recovery project in the background when there are unsaved changes."""
        doc = self.context.document
        if doc is None or not doc.dirty or self._autosaving:
            return
        snap = project.snapshot(doc)
        self._autosaving = True

        def done(path):
            self._autosaving = False
            self.last_autosave = time.time()

        def failed(exc):
            self._autosaving = False
            self.context.banner.show_message(f"Autosave failed: {error_message(exc)}", "warning")

        self.context.workers.submit(
            self.recovery.write,
            snap,
            name="Autosave",
            on_done=done,
            on_error=failed,
            on_cancelled=lambda: setattr(self, "_autosaving", False),
        )

    def offer_recovery(self, ask: bool = True) -> bool:
        """After a crash: offer the autosaved project. Returns True if it is being opened."""
        try:
            found = project.find_recovery()
        except BadInput as exc:  # the data folder cannot be used: say so, start anyway
            self.context.banner.show_message(error_message(exc), "warning")
            return False
        if found is None:
            return False
        if ask:
            answer = QMessageBox.question(
                self.window,
                "Recover unsaved work?",
                "ovpaint did not close normally last time. Open the automatically saved copy "
                "of your work?",
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Discard,
            )
            if answer != QMessageBox.StandardButton.Open:
                project.discard_recovery(found)
                return False
        try:
            adopted = self.recovery.adopt(found)  # kept safe as this window's copy
            self.context.run_job(
                open_job,
                str(adopted),
                self.context.settings["max_image_megapixels"],
                title="Recover",
                on_done=lambda doc: self._recovered(doc),
            )
        except BadInput as exc:
            self.context.banner.show_message(error_message(exc))
            return False
        return True

    def _recovered(self, doc: Document) -> None:
        self.context.set_document(doc)
        doc.dirty = True  # still unsaved: the recovery copy is not the user's project
        self.context.undo_stack.resetClean()  # and no undo reaches a saved state
        self.context.banner.show_message(
            "Recovered the autosaved work. Save it as a project to keep it.", "info"
        )

    def shutdown_clean(self) -> None:
        """A clean exit: the recovery copy is no longer needed."""
        self.autosave_timer.stop()
        self.recovery.clear()
