"""Ranges for every number that comes from outside (command line, settings, project files,
state files), checked in one place so the message is the same everywhere.

A number out of range is a :class:`BadInput` naming the option and its range, raised before
any work: ``--seed 2**70`` or ``--dilate 100000`` must not fail deep inside torch or OpenCV
after a long computation. ``bool`` is not accepted as a number, nor are NaN and infinities.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from ovpaint.core.errors import BadInput

SEED_MAX = 2**32 - 1  # numpy, torch and diffusers all take seeds of 32 bits
MAX_DILATE_PX = 1000  # mask growth, feather, rings: beyond this it is no longer the object's
MAX_STEPS = 500
MAX_VARIANTS = 16
MAX_SHORT_SIDE = 2048
MAX_OFFSET = 1 << 20  # layer positions (Qt draws in 32-bit integer device coordinates)
MAX_COORD = 1 << 20  # click and box coordinates: beyond the long side of any image we decode
MAX_CLICKS = 1000  # clicks of one correction: each one runs the mask decoder
MAX_PROMPT_CHARS = 2000  # inpainting prompts: the text encoder reads the first 77 tokens


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _short(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit number"
    text = str(value)
    return text if len(text) <= 24 else text[:20] + "…"


def int_in(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``, or a BadInput that names ``name`` and the range.
    Whole floats (``3.0``) and numeric strings are accepted; ``True``, ``2.5``, NaN are not."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:  # also Python's limit on the digits of an int
            number = None
    if number is None:
        raise BadInput(
            f"{name} must be a whole number from {_fmt(lo)} to {_fmt(hi)} (got {_short(value)})."
        )
    if not lo <= number <= hi:
        raise BadInput(f"{name} must be from {_fmt(lo)} to {_fmt(hi)} (got {_short(number)}).")
    return number


def float_in(value: Any, name: str, lo: float, hi: float) -> float:
    """``value`` as a finite float in ``[lo, hi]``, or a BadInput naming ``name``."""
    number = None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            number = None
    if number is None or not math.isfinite(number):
        raise BadInput(
            f"{name} must be a number from {_fmt(lo)} to {_fmt(hi)} (got {_short(value)})."
        )
    if not lo <= number <= hi:
        raise BadInput(f"{name} must be from {_fmt(lo)} to {_fmt(hi)} (got {_short(value)}).")
    return number


def text_in(value: Any, name: str, max_chars: int, *, optional: bool = False) -> str | None:
    """``value`` as a text of at most ``max_chars`` characters (None too when ``optional``),
    or a BadInput naming ``name``; a longer text is refused, not cut."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a text (got {_short(value)}).")
    if len(value) > max_chars:
        raise BadInput(f"{name} is {len(value)} characters long; at most {max_chars} are allowed.")
    return value


def _arg_type(check: Callable[..., Any], lo: float, hi: float, label: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return check(text, "value", lo, hi)
        except BadInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = label  # argparse names the type in its messages
    return parse


def arg_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type=`` that accepts whole numbers in ``[lo, hi]`` only."""
    return _arg_type(int_in, lo, hi, "integer")


def arg_float(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse ``type=`` that accepts finite numbers in ``[lo, hi]`` only."""
    return _arg_type(float_in, lo, hi, "number")
