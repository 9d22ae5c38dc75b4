"""Where things live: resources (source tree or frozen app), user data, cache and config.

Every user-writable location can be moved with an environment variable so tests and portable
installs never touch the user's real folders:
``OVPAINT_HOME`` (moves all three), ``OVPAINT_CACHE_DIR``, ``OVPAINT_CONFIG_DIR``,
``OVPAINT_DATA_DIR``. Model weights go under the cache unless ``OVPAINT_MODEL_DIR`` is set.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

import platformdirs

from ovpaint.core.errors import BadInput

APP_NAME = "ovpaint"


def resources_dir() -> Path:
    """``resources/`` beside the package in a source tree, or inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def resource(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"Resource missing from this installation: {path}")
    return path


@lru_cache(maxsize=16)
def read_list(path: str | os.PathLike) -> tuple[str, ...]:
    """The entries of a word list: one per line, ``#`` starts a comment, blank lines skipped."""
    entries = []
    for line in Path(path).read_text("utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return tuple(entries)


def ensure_folder(path: Path, what: str) -> Path:
    """``path`` as an existing folder, made when missing; one BadInput naming ``what`` (the
    setting or variable it came from) when it is a file or cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "it is a file" if path.exists() and not path.is_dir() else exc.strerror
        raise BadInput(f"The folder {path} ({what}) cannot be used: {reason}.") from exc
    if not path.is_dir():
        raise BadInput(f"The folder {path} ({what}) cannot be used: it is a file.")
    return path


def _dir(env: str, sub: str, default: str) -> Path:
    if os.environ.get(env):
        path, what = Path(os.environ[env]).expanduser(), env
    elif os.environ.get("OVPAINT_HOME"):
        path, what = Path(os.environ["OVPAINT_HOME"]).expanduser() / sub, "OVPAINT_HOME"
    else:
        path, what = Path(default), f"the user {sub} folder"
    return ensure_folder(path, what)


def cache_dir() -> Path:
    return _dir("OVPAINT_CACHE_DIR", "cache", platformdirs.user_cache_dir(APP_NAME))


def config_dir() -> Path:
    return _dir("OVPAINT_CONFIG_DIR", "config", platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    return _dir("OVPAINT_DATA_DIR", "data", platformdirs.user_data_dir(APP_NAME))


def model_dir() -> Path:
    if os.environ.get("OVPAINT_MODEL_DIR"):
        return ensure_folder(
            Path(os.environ["OVPAINT_MODEL_DIR"]).expanduser(), "OVPAINT_MODEL_DIR"
        )
    return ensure_folder(cache_dir() / "models", "the model folder")
