"""Typed errors that carry a message fit to show a user, and the CLI exit code they map to."""

from __future__ import annotations


class OvpaintError(Exception):
    """Base of every error a user may see. ``str(err)`` is the whole message; ``app_message``
    says the same to a user of the desktop app, who has no terminal (menus, not commands)."""

    exit_code = 1

    def __init__(self, *args: object, app_message: str | None = None) -> None:
        super().__init__(*args)
        self.app_message = app_message


class BadInput(OvpaintError):
    """The user's input (file, prompt, option) cannot be used."""

    exit_code = 2


class ModelUnavailable(OvpaintError):
    """A model is missing, corrupt or cannot be loaded. The message says how to get it."""

    exit_code = 3


class OutOfMemory(OvpaintError):
    """Memory ran out even after the lighter fallbacks were tried."""

    exit_code = 4


class DiskFull(OvpaintError):
    """The output could not be written for lack of space; nothing half-written was left."""

    exit_code = 5


class Cancelled(OvpaintError):
    """The job was cancelled by the user. Nothing was changed."""

    exit_code = 130

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)
