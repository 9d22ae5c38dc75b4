"""Typed, documented settings persisted as JSON under the user's config folder.

Each setting is a descriptor with a default and help text (the krita-ai-diffusion idiom), so the
settings dialog, the CLI and the defaults file are generated from one table.
"""

from __future__ import annotations

import copy
import json
import os
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
    Setting("clip_model", "clip-vit-b16", "CLIP model for text-driven segmentation."),
    Setting(
        "sam2_model", "", "SAM2 model; empty = chosen by device (tiny on CPU, base-plus on GPU)."
    ),
    Setting("inpaint_model", "sd2-inpaint", "Inpainting model."),
    Setting("lama_model", "big-lama", "Object-removal model (LaMa)."),
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
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


class Settings:
    """Dictionary-like settings with defaults; ``save()`` writes atomically."""

    def __init__(self, path: Path | None = None, values: dict | None = None) -> None:
        self.path = path
        self._values: dict[str, Any] = {}
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
        return cls(path, {k: v for k, v in values.items() if k in SETTINGS_BY_NAME})

    def __getitem__(self, key: str) -> Any:
        spec = SETTINGS_BY_NAME[key]
        if key in self._values:
            return self._values[key]
        return spec.fresh_default()

    def __setitem__(self, key: str, value: Any) -> None:
        spec = SETTINGS_BY_NAME.get(key)
        if spec is None:
            raise KeyError(f"Unknown setting: {key}")
        self._values[key] = spec.coerce(value)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in SETTINGS_BY_NAME else default

    def as_dict(self) -> dict[str, Any]:
        return {s.name: self[s.name] for s in SETTINGS}

    def save(self) -> None:
        if self.path is not None:
            atomic_write_text(self.path, json.dumps(self._values, indent=2, sort_keys=True))


def env_or(key: str, default: str) -> str:
    value = os.environ.get(key, "").strip()
    return value or default
