"""`ovpaint batch INPUT_DIR --prompt "sky" --out OUT_DIR`: segment (and optionally inpaint)
every image of a folder. Exit code 0 when every file is done or skipped, 1 when some failed
(the run still finishes them all), 130 when cancelled (Ctrl-C: the next run resumes)."""

from __future__ import annotations

import argparse
import sys

from ovpaint.cli.common import (
    add_method_option,
    add_settings_option,
    cancel_on_interrupt,
    new_cancel,
    print_json,
    settings_from_args,
    tqdm_progress,
)
from ovpaint.core.limits import MAX_STEPS, SEED_MAX, arg_int


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "batch", help="segment / inpaint every image of a folder by text", description=__doc__
    )
    p.add_argument("input_dir", help="folder of images (never modified)")
    p.add_argument(
        "--prompt", required=True, help="classes to find, e.g. 'sky, dog' ('|' separates synonyms)"
    )
    p.add_argument("--out", required=True, help="output folder (mirrors the input tree)")
    add_method_option(p)
    add_settings_option(p)
    p.add_argument(
        "--no-recursive",
        dest="recursive",
        action="store_false",
        help="only the top folder, not its sub-folders",
    )
    p.add_argument(
        "--ext",
        default=None,
        help="image types to take, e.g. 'jpg,png' (default: all readable types)",
    )
    p.add_argument(
        "--inpaint",
        metavar="PROMPT",
        default=None,
        help="also inpaint what was found, with this prompt (replace / restyle)",
    )
    p.add_argument(
        "--mode",
        choices=("remove", "replace", "restyle"),
        default=None,
        help="inpainting mode (default: replace with --inpaint, remove with only --engine, "
        "else none)",
    )
    from ovpaint.cli.inpaint import engine_choices, engine_help

    p.add_argument("--engine", choices=engine_choices(), default=None, help=engine_help())
    p.add_argument("--steps", type=arg_int(1, MAX_STEPS), default=None, help="inpainting steps")
    p.add_argument("--seed", type=arg_int(0, SEED_MAX), default=None, help="inpainting seed")
    p.add_argument(
        "--overwrite", action="store_true", help="redo files already finished by an earlier run"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _inpaint_options(args: argparse.Namespace):
    from ovpaint.batch import InpaintOptions

    if args.inpaint is None and args.mode is None and args.engine is None:
        return None
    mode = args.mode or ("replace" if args.inpaint else "remove")
    given = (("steps", args.steps), ("seed", args.seed), ("engine", args.engine))
    extra = {k: v for k, v in given if v is not None}
    return InpaintOptions(prompt=args.inpaint or "", mode=mode, settings=extra or None)


def run(args: argparse.Namespace) -> int:
    from ovpaint.batch import run_batch
    from ovpaint.cli.common import manager_for

    settings = settings_from_args(args)
    manager = manager_for(args)
    progress, close = tqdm_progress("batch", disable=True if args.quiet else None)
    try:
        with cancel_on_interrupt(new_cancel(), "the current image") as cancel:
            report = run_batch(
                args.input_dir,
                args.out,
                args.prompt,
                args.method,
                manager,
                recursive=args.recursive,
                extensions=args.ext,
                inpaint=_inpaint_options(args),
                overwrite=args.overwrite,
                settings=settings,
                progress=progress,
                cancel=cancel,
            )
    finally:
        close()
    for message in report.messages:
        print(f"ovpaint: {message}", file=sys.stderr)
    for f in report.files:
        if f.status == "failed":
            print(f"ovpaint: failed: {f.path}: {f.error}", file=sys.stderr)
    print(f"ovpaint: {report.summary()}; report in {args.out}", file=sys.stderr)
    if args.json:
        print_json(report.as_dict())
    return 1 if report.count("failed") else 0
