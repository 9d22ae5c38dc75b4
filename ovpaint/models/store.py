"""Where model files live on disk, and whether a model is installed.

Layout: ``<model_dir>/<model id>/`` holds the files at their repository paths plus
``ovpaint-manifest.json`` (repo, revision, each file's size and sha256), written by the
downloader only after every file verified. A user may instead point a model at a local file
or folder (``ovpaint models import``), recorded in the settings.
"""

from __future__ import annotations

from pathlib import Path

from ovpaint.core.errors import BadInput, ModelUnavailable
from ovpaint.core.paths import ensure_folder, model_dir
from ovpaint.core.safeio import read_json_file, under_root
from ovpaint.models.fixes import both, unavailable
from ovpaint.models.registry import ModelSpec

MANIFEST = "ovpaint-manifest.json"
MAX_MANIFEST_BYTES = 1 << 20


MISSING = (
    "The model '{title}' ({id}, about {gb:.1f} GB) is not installed. $download, or $local.$tiny"
)


def missing_message(spec: ModelSpec, app: bool = False) -> str:
    text = MISSING.format(title=spec.title, id=spec.id, gb=spec.approx_bytes / 1e9)
    return both(text, spec.id)[1 if app else 0]


class ModelStore:
    def __init__(self, root: Path | None = None, overrides: dict[str, str] | None = None) -> None:
        self._root = root
        self.overrides = dict(overrides or {})

    @classmethod
    def from_settings(cls, settings) -> ModelStore:
        """The store the settings describe: ``OVPAINT_MODEL_DIR`` wins over the 'model_dir'
        setting, which wins over the user cache folder; local copies from 'local_model_paths'."""
        import os

        chosen = settings["model_dir"]
        root = None
        if chosen and not os.environ.get("OVPAINT_MODEL_DIR"):
            root = Path(chosen).expanduser()
        return cls(root, overrides=settings["local_model_paths"])

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = model_dir()
        return ensure_folder(self._root, "setting 'model_dir'")

    def folder(self, spec: ModelSpec) -> Path:
        return self.root / spec.id

    def manifest_path(self, spec: ModelSpec) -> Path:
        return self.folder(spec) / MANIFEST

    def read_manifest(self, spec: ModelSpec) -> dict | None:
        """The manifest, when it is readable and well formed: a bounded JSON object whose
        ``files`` each name a path inside the model's folder and a size (else None: the
        model counts as not installed)."""
        path = self.manifest_path(spec)
        if not path.exists():
            return None
        try:
            data = read_json_file(path, "the model manifest", max_bytes=MAX_MANIFEST_BYTES)
            files = data["files"] if isinstance(data, dict) else None
            if not isinstance(files, list):
                return None
            for entry in files:
                under_root(self.folder(spec), entry["path"], "The model manifest")
                if not isinstance(entry.get("size"), int):
                    return None
        except (OSError, BadInput, KeyError, TypeError):
            return None
        return data

    def downloaded_path(self, spec: ModelSpec) -> Path | None:
        """The downloaded copy, when its manifest exists and every file has its recorded size."""
        manifest = self.read_manifest(spec)
        if manifest is None:
            return None
        folder = self.folder(spec)
        for entry in manifest.get("files", []):
            path = folder / entry["path"]
            if not path.is_file() or path.stat().st_size != entry.get("size"):
                return None
        return self.entrypoint(spec, folder)

    def override_path(self, spec: ModelSpec) -> Path | None:
        raw = self.overrides.get(spec.id) if isinstance(self.overrides, dict) else None
        if not raw or not isinstance(raw, str):
            return None
        return Path(raw).expanduser()

    def installed_path(self, spec: ModelSpec) -> Path | None:
        override = self.override_path(spec)
        if override is not None:
            return self.entrypoint(spec, override) if override.exists() else None
        return self.downloaded_path(spec)

    def require(self, spec: ModelSpec) -> Path:
        override = self.override_path(spec)
        if override is not None and not override.exists():
            raise unavailable(
                f"The local path chosen for '{spec.title}' ({spec.id}) no longer exists: "
                f"{override}. $download, or $local.",
                spec.id,
            )
        path = self.installed_path(spec)
        if path is None:
            raise ModelUnavailable(missing_message(spec), app_message=missing_message(spec, True))
        return path

    @staticmethod
    def entrypoint(spec: ModelSpec, base: Path) -> Path:
        """The path a loader wants: the weights file for single-file models, else the folder."""
        if base.is_file() or spec.is_folder:
            return base
        for f in spec.files:
            candidate = base / f.path
            if candidate.is_file():
                return candidate
        return base
