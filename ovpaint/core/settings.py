"""Typed, documented settings persisted as JSON under the user's config folder.

Each setting is a descriptor with a default and help text (the krita-ai-diffusion idiom), so the
settings dialog, the CLI and the defaults file are generated from one table. Layers above may
add settings of their own (:func:`register_setting`: a model family's choice of model); a
value read from the file before its setting is registered is kept, and saved back, until it is.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovpaint.core.fileio import atomic_write_text


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    choices: tuple | None = None

    def fresh_default(self) -> Any:
        """The default, copied when mutable so no caller can change the table's value."""
        return copy.deepcopy(self.default)

    def coerce(self, value: Any) -> Any:
        """The value in the setting's type, or the default when it cannot be (a hand-edited
        settings file must never stop the app, nor turn "abc" into ['a', 'b', 'c'])."""
        if value is None:
            return self.fresh_default()
        kind = type(self.default)
        if self.default is not None and not isinstance(value, kind):
            if isinstance(self.default, (list, dict, bool)) or isinstance(value, (list, dict)):
                return self.fresh_default()
            try:
                value = kind(value)
            except (TypeError, ValueError, OverflowError):
                return self.fresh_default()
        if self.choices is not None and value not in self.choices:
            return self.fresh_default()
        return value


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "model_profile",
        "real",
        "Which models to use: 'real' weights or the 'tiny' offline test profile.",
        ("real", "tiny"),
    ),
    Setting("device", "auto", "Compute device.", ("auto", "cpu", "cuda", "mps")),
    Setting("dtype", "auto", "Compute precision.", ("auto", "fp32", "bf16", "fp16")),
    Setting(
        "gpu_memory_budget_gb",
        0.0,
        "GPU memory the models may keep resident; 0 = "
        "automatic (free memory minus a margin). Models over budget are offloaded to CPU.",
    ),
    Setting("model_dir", "", "Folder for downloaded weights; empty = the user cache folder."),
    Setting(
        "cpu_bf16_unet",
        True,
        "On a CPU with native bf16 (AVX512-BF16 or AMX), run the "
        "inpainting UNet in bf16 (about 1.6× faster per step); the rest stays fp32.",
    ),
    Setting("max_image_megapixels", 250, "Refuse images larger than this (decompression bombs)."),
    Setting("overlay_opacity", 0.5, "Opacity of mask overlays on the canvas."),
    Setting("recent_files", [], "Recently opened files."),
    Setting("autosave_seconds", 120, "Autosave interval of the open project; 0 disables it."),
    Setting("local_model_paths", {}, "Model id → local file or folder chosen by the user."),
)
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def register_setting(setting: Setting) -> Setting:
    """Add ``setting`` to the table (again with the same definition is fine)."""
    known = SETTINGS_BY_NAME.get(setting.name)
    if known is not None and known != setting:
        raise ValueError(f"setting '{setting.name}' is already defined differently")
    SETTINGS_BY_NAME[setting.name] = setting
    return setting


class Settings:
    """Dictionary-like settings with defaults; ``save()`` writes atomically."""

    def __init__(self, path: Path | None = None, values: dict | None = None) -> None:
        self.path = path
        self._values: dict[str, Any] = {}
        self._unregistered: dict[str, Any] = {}  # from the file, for settings not (yet) known
        for key, value in (values or {}).items():
            self[key] = value

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        if path is None:
            from ovpaint.core.paths import config_dir

            path = config_dir() / "settings.json"
        values: dict = {}
        if path.exists():
            try:
                values = json.loads(path.read_text("utf-8"))
                if not isinstance(values, dict):
                    values = {}
            except (OSError, ValueError):
                values = {}  # a corrupt settings file must never stop the app from starting
        settings = cls(path, {k: v for k, v in values.items() if k in SETTINGS_BY_NAME})
        settings._unregistered = {k: v for k, v in values.items() if k not in SETTINGS_BY_NAME}
        return settings

    def __getitem__(self, key: str) -> Any:
        spec = SETTINGS_BY_NAME[key]
        if key in self._unregistered:  # registered since the file was read
            self[key] = self._unregistered.pop(key)
        if key in self._values:
            return self._values[key]
        return spec.fresh_default()

    def __setitem__(self, key: str, value: Any) -> None:
        spec = SETTINGS_BY_NAME.get(key)
        if spec is None:
            raise KeyError(f"Unknown setting: {key}")
        self._values[key] = spec.coerce(value)
        self._unregistered.pop(key, None)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in SETTINGS_BY_NAME else default

    def as_dict(self) -> dict[str, Any]:
        return {name: self[name] for name in SETTINGS_BY_NAME}

    def save(self) -> None:
        if self.path is not None:
            values = {**self._unregistered, **self._values}
            atomic_write_text(self.path, json.dumps(values, indent=2, sort_keys=True))
