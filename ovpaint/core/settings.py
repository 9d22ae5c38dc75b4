"""Typed, documented settings persisted as JSON under the user's config folder.

Each setting is a descriptor with a default and help text (the krita-ai-diffusion idiom), so the
settings dialog, the CLI and the defaults file are generated from one table. Layers above may
add settings of their own (:func:`register_setting`: a model family's choice of model); a
value read from the file before its setting is registered is kept, and saved back, until it is.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import atomic_write_bytes, atomic_write_text
from ovpaint.core.safeio import load_json, read_regular

MAX_SETTINGS_BYTES = 1 << 20
MAX_SETTINGS_DEPTH = 8
MAX_RECENT = 50
MAX_TEXT = 4096


@dataclass(frozen=True)
class Setting:
    """One setting: its default (whose type values must have), help text, and optionally the
    choices or the range allowed, and ``validate``: what the setting's own values must be
    beyond their type (it gets the value in the setting's type and returns the value to keep,
    cleaned, or raises ValueError saying why it cannot be used)."""

    name: str
    default: Any
    help: str
    choices: tuple | None = None
    lo: float | None = None  # numbers: the range they must be in
    hi: float | None = None
    validate: Callable[[Any], Any] | None = None

    def fresh_default(self) -> Any:
        """The default, copied when mutable so no caller can change the table's value."""
        return copy.deepcopy(self.default)

    def coerce(self, value: Any) -> Any:
        """The value in the setting's type, or the default when it cannot be (a hand-edited
        settings file must never stop the app, nor turn "abc" into ['a', 'b', 'c'])."""
        try:
            return self.check(value)
        except ValueError:
            return self.fresh_default()

    def check(self, value: Any) -> Any:
        """The value in the setting's type and range; ValueError saying why when it is not.
        ``None`` means the default."""
        if value is None:
            return self.fresh_default()
        if isinstance(value, bool) and not isinstance(self.default, bool):
            raise ValueError(f"{value} is not a {type(self.default).__name__}")
        kind = type(self.default)
        if self.default is not None and not isinstance(value, kind):
            if (
                isinstance(self.default, (list, dict, bool))
                or isinstance(value, (list, dict, bool))
                or (isinstance(value, float) and kind is int and not value.is_integer())
            ):
                raise ValueError(f"{value!r:.60} is not a {kind.__name__}")
            try:
                value = kind(value)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"{value!r:.60} is not a {kind.__name__}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        if self.lo is not None and not (self.lo <= value <= self.hi):
            raise ValueError(f"{value} is not in {self.lo:g}…{self.hi:g}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{value!r:.60} is not one of {', '.join(map(str, self.choices))}")
        if isinstance(self.default, str) and len(value) > MAX_TEXT:
            raise ValueError("the text is too long")
        if self.validate is not None:
            value = self.validate(value)
        return value


def recent_files(value: list) -> list:
    """The paths among ``value`` (texts of a sane length), the newest ``MAX_RECENT``: a list
    edited by hand loses its odd entries, not the rest."""
    return [v for v in value if isinstance(v, str) and len(v) < MAX_TEXT][:MAX_RECENT]


def model_paths(value: dict) -> dict:
    """Model id → path, every path a non-empty text (it is resolved and checked where it is
    used, against the model's files)."""
    bad = [k for k, v in value.items() if not isinstance(v, str) or not v]
    if bad:
        raise ValueError(f"the entries for {', '.join(map(str, bad))[:80]} are not paths")
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
        lo=0.0,
        hi=4096.0,
    ),
    Setting("model_dir", "", "Folder for downloaded weights; empty = the user cache folder."),
    Setting(
        "cpu_bf16_unet",
        True,
        "On the CPU, run the inpainting UNet in bf16 where that was measured faster on this "
        "machine (`ovpaint models calibrate`); off: always fp32. The rest stays fp32.",
    ),
    Setting(
        "int8_vit",
        False,
        "Also time dynamic int8 (per-channel weights) for CLIP's ordinary ViT blocks on the "
        "CPU, and use it where it is measured fastest. Off until its labels are checked on "
        "real weights.",
    ),
    Setting(
        "max_image_megapixels",
        250,
        "Refuse images larger than this (decompression bombs).",
        lo=1,
        hi=2000,
    ),
    Setting(
        "max_segment_megapixels",
        24,
        "Segment larger images at this size and scale the labels up, so memory stays bounded.",
        lo=1,
        hi=1000,
    ),
    Setting("overlay_opacity", 0.5, "Opacity of mask overlays on the canvas.", lo=0.0, hi=1.0),
    Setting("recent_files", [], "Recently opened files.", validate=recent_files),
    Setting(
        "autosave_seconds",
        120,
        "Autosave interval of the open project; 0 disables it.",
        lo=0,
        hi=86400,
    ),
    Setting(
        "local_model_paths",
        {},
        "Model id → local file or folder chosen by the user.",
        validate=model_paths,
    ),
    Setting(
        "method_seconds",
        {},
        "Seconds the last segmentation of each method took on this machine (the method list "
        "shows them as the time to expect).",
    ),
    Setting(
        "models_assistant_at_start",
        True,
        "Open the model assistant when the app starts and a model it needs is missing.",
    ),
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
    """Dictionary-like settings with defaults; ``save()`` writes atomically.

    A settings file is input like any other: :meth:`load` reads it bounded, checks every
    value's type and range, and never lets it stop the program. What it could not use is in
    :attr:`problems` (one line each, for the CLI's stderr and the app's banner), and the file
    as it was is kept beside it (``settings.json.damaged-<time>``) before anything rewrites it.
    """

    def __init__(self, path: Path | None = None, values: dict | None = None) -> None:
        self.path = path
        self.problems: list[str] = []
        self._values: dict[str, Any] = {}
        self._unregistered: dict[str, Any] = {}  # from the file, for settings not (yet) known
        for key, value in (values or {}).items():
            self[key] = value

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        problems: list[str] = []
        if path is None:
            from ovpaint.core.paths import config_dir

            try:
                path = config_dir() / "settings.json"
            except BadInput as exc:  # the config folder is a file, or cannot be made
                settings = cls(None)
                settings.problems.append(
                    f"{exc} Using the default settings; changes are not saved."
                )
                return settings
        values: dict = {}
        raw = b""
        if os.path.lexists(path):
            try:
                raw = read_regular(path, MAX_SETTINGS_BYTES, f"The settings file {path}")
                values = load_json(raw, f"The settings file {path}", max_depth=MAX_SETTINGS_DEPTH)
                if not isinstance(values, dict):
                    raise BadInput(f"The settings file {path} does not hold a JSON object.")
            except (OSError, BadInput) as exc:
                message = str(exc) if isinstance(exc, BadInput) else f"{path}: {exc.strerror}"
                problems.append(f"{message} Using the default settings.")
                values = {}
        settings = cls(path)
        for key, value in values.items():
            spec = SETTINGS_BY_NAME.get(key)
            if spec is None:
                settings._unregistered[key] = value  # checked when it is registered
                continue
            try:
                settings._values[key] = spec.check(value)
            except ValueError as exc:
                problems.append(
                    f"Setting '{key}' in {path.name}: {exc}; using {spec.default!r} instead."
                )
        if problems:
            kept = _keep_aside(path, raw)
            if kept is not None:
                problems.append(f"The settings file as it was is kept in {kept}.")
                with suppress(OSError, BadInput):
                    settings.save()  # the usable values only: the next start is clean
        settings.problems = problems
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


def _keep_aside(path: Path, raw: bytes) -> Path | None:
    """Keep the settings file the user had before anything rewrites it: moved aside when it
    could not be read, copied when only some values were unusable."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        if raw:
            atomic_write_bytes(aside, raw)
        else:
            os.replace(path, aside)
    except (OSError, BadInput):
        return None
    return aside
