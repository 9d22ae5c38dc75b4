"""Global command-line options shared by the ``ovpaint`` CLI and the desktop app."""

from __future__ import annotations

import argparse

MODEL_PROFILES = ("tiny", "real")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "bf16", "fp16")


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """``--models``, ``--device``, ``--dtype``. With ``suppress`` an unset option leaves no
    attribute, so a subcommand's options do not overwrite the same options given before it."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--models",
        choices=MODEL_PROFILES,
        default=default,
        help="model profile: real weights (default) or the tiny offline test "
        "models (also OVPAINT_MODELS=tiny)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=default,
        help="compute device (default: auto = cuda > mps > cpu)",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default=default,
        help="compute precision (default: auto = for each workload the precision measured "
        "fastest on this machine, see `ovpaint models calibrate`)",
    )
