"""The ``ovpaint`` command.

One module per subcommand (``ovpaint/cli/<name>.py``, each with ``register(subparsers)`` and
``run(args) -> int``) so commands grow independently. Exit codes: 0 success, 2 bad usage or
bad input (one line on stderr), 3 a model is unavailable, 4 out of memory, 5 disk full,
130 cancelled.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ovpaint import __version__
from ovpaint.core.errors import Cancelled, OvpaintError
from ovpaint.core.options import add_global_options

SUBCOMMANDS = ("segment", "inpaint", "batch", "benchmark", "perf", "models", "selftest")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for bad input
        self.exit(2, f"ovpaint: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ovpaint", description="Open-vocabulary segmentation and inpainting.")
    parser.add_argument("--version", action="version", version=f"ovpaint {__version__}")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"ovpaint.cli.{name}")
        sub_parser = module.register(sub)
        add_global_options(sub_parser, suppress=True)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except Cancelled:
        print("ovpaint: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("ovpaint: cancelled", file=sys.stderr)
        return 130
    except OvpaintError as exc:
        print(f"ovpaint: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `ovpaint models list | head`: the reader left; that is not an error worth a traceback.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
