"""`ovpaint selftest`: check this installation end to end on the tiny offline models.

Builds the tiny CLIP, SAM2 and Stable Diffusion models, segments a generated image by text and
by a click, inpaints it, and writes and reads the results, all inside a temporary folder that is
removed afterwards. Needs no download and no GPU. Exit code 0 only if every check passed, 1 if
any failed (each failure is named, with its reason).
"""

from __future__ import annotations

import argparse
import sys

from ovpaint.cli.common import print_json


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "selftest", help="check this installation on the tiny offline models", description=__doc__
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    return p


def run(args: argparse.Namespace) -> int:
    from ovpaint.selftest import SelfTest, format_check, isolated_home, run_engine_checks

    quiet = bool(args.json)
    test = SelfTest(on_check=None if quiet else lambda c: print(format_check(c), flush=True))
    with isolated_home() as home:
        manager = test.check(
            "tiny models manager",
            lambda: _manager(getattr(args, "device", None), getattr(args, "dtype", None)),
        )
        if manager is not None:
            run_engine_checks(test, manager, home)
    if quiet:
        print_json(test.report.as_dict())
    failed = [c.name for c in test.report.checks if not c.ok]
    if failed:
        print(f"ovpaint: self-test FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    if not quiet:
        print(f"self-test passed: {len(test.report.checks)} checks")
    return 0


def _manager(device: str | None, dtype: str | None):
    from ovpaint.selftest import tiny_manager

    manager = tiny_manager(device, dtype)
    return manager, manager.banner()
