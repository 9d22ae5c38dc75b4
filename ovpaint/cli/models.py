"""`ovpaint models`: filled in by its own issue; until then it says so and exits 2."""

from __future__ import annotations

import argparse

from ovpaint.core.errors import BadInput


def register(sub) -> argparse.ArgumentParser:
    return sub.add_parser("models", help="(not available in this build yet)")


def run(args: argparse.Namespace) -> int:
    raise BadInput("'ovpaint models' is not available in this build yet.")
