"""`ovpaint benchmark --dataset NAME --root PATH --out REPORT.json`: mIoU
and friends on a public benchmark, from one confusion matrix over the run. Writes REPORT.json,
REPORT.md, REPORT_confusion.png and REPORT_iou.png. Resumable: a cancelled or crashed run
continues from ``REPORT.json.state.jsonl`` (``--restart`` starts over).

``--method dense,naclip,...`` compares several methods on the same images: each gets its own
report (REPORT.<method>.json, ...) and REPORT.json/.md, REPORT_comparison.png and
REPORT_per_class.png put them side by side."""

from __future__ import annotations

import argparse
import sys

from ovpaint.cli.common import (
    add_method_option,
    add_settings_option,
    cancel_on_interrupt,
    methods_from_args,
    new_cancel,
    settings_from_args,
    tqdm_progress,
)
from ovpaint.core.limits import SEED_MAX, arg_int


def register(sub) -> argparse.ArgumentParser:
    from ovpaint.eval.datasets import DATASETS
    from ovpaint.pipelines.segmentation.methods import DEFAULT_BENCHMARK_METHOD

    p = sub.add_parser(
        "benchmark",
        help="measure segmentation quality on " + " / ".join(d.title for d in DATASETS.values()),
        description=__doc__,
    )
    datasets = "; ".join(
        f"{d.key} ({d.label}" + (f"; also {', '.join(d.aliases)})" if d.aliases else ")")
        for d in DATASETS.values()
    )
    p.add_argument("--dataset", required=True, help="the benchmark: " + datasets)
    p.add_argument("--root", required=True, help="the dataset's folder")
    p.add_argument("--out", required=True, help="report path (REPORT.json)")
    add_method_option(p, DEFAULT_BENCHMARK_METHOD, several=True)
    p.add_argument(
        "--limit",
        type=arg_int(1, 10_000_000),
        default=None,
        help="score a random subset of N images (reproducible with --seed)",
    )
    p.add_argument(
        "--seed", type=arg_int(0, SEED_MAX), default=0, help="seed of the --limit subset"
    )
    p.add_argument(
        "--save-predictions",
        metavar="DIR",
        default=None,
        help="also save each prediction as a label PNG in the dataset's own ids",
    )
    p.add_argument(
        "--restart", action="store_true", help="ignore the state of an earlier interrupted run"
    )
    add_settings_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _check_outputs(args: argparse.Namespace) -> None:
    """The report files, the state file and the predictions folder, before the run."""
    from pathlib import Path

    from ovpaint.core.errors import BadInput
    from ovpaint.core.fileio import check_output_dir, check_output_file
    from ovpaint.core.safeio import within
    from ovpaint.eval.report import report_paths
    from ovpaint.eval.runner import state_path_for

    for path in [*report_paths(args.out).values(), state_path_for(args.out)]:
        check_output_file(path, what="--out")
    if args.save_predictions:
        predictions = check_output_dir(args.save_predictions, what="--save-predictions")
        if within(predictions.resolve(), Path(args.root).expanduser().resolve()):
            raise BadInput(
                f"--save-predictions {predictions} is inside the dataset folder, where "
                "predictions could replace annotations; choose a folder outside it."
            )


def run(args: argparse.Namespace) -> int:
    from ovpaint.cli.common import manager_for
    from ovpaint.eval.compare import Comparison, run_comparison, write_comparison
    from ovpaint.eval.report import write_report
    from ovpaint.eval.runner import run_benchmark

    methods = methods_from_args(args)
    settings = settings_from_args(args)
    _check_outputs(args)
    manager = manager_for(args)
    options = {
        "limit": args.limit,
        "seed": args.seed,
        "save_predictions_dir": args.save_predictions,
        "resume": not args.restart,
        "settings": settings,
    }
    progress, close = tqdm_progress("benchmark", disable=True if args.quiet else None)
    try:
        with cancel_on_interrupt(new_cancel(), "the current image") as cancel:
            where = {"manager": manager, "out_path": args.out, "progress": progress}
            if len(methods) == 1:
                one = run_benchmark(
                    args.dataset, args.root, methods[0], cancel=cancel, **where, **options
                )
                results = [one]
            else:
                results = run_comparison(
                    args.dataset, args.root, methods, cancel=cancel, **where, **options
                ).results
    finally:
        close()
    if len(results) == 1:
        paths = write_report(results[0], args.out, manager=manager)
    else:
        paths = write_comparison(Comparison(results), args.out, manager=manager)
    _print_results(results)
    print("report: " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


def _print_results(results) -> None:
    """One line for a single run; a table of the methods side by side for a comparison."""
    first = results[0]
    if len(results) == 1:
        s = first.scores
        spi = first.seconds_per_image.get("total")
        print(
            f"{first.dataset_title} · {first.method} · {s.images} images: "
            f"mIoU {s.miou * 100:.2f}, pixel accuracy {s.pixel_accuracy * 100:.2f}, "
            f"mean F1 {s.mean_f1 * 100:.2f}, boundary F1 {s.mean_boundary_f1 * 100:.2f}"
            + (f", {spi:.2f} s per image" if spi is not None else "")
        )
    else:
        width = max(len(r.method) for r in results)
        print(f"{first.dataset_title} · {first.scores.images} images")
        print(
            f"{'method':{width}}  {'mIoU':>6}  {'pix.acc':>7}  {'mean F1':>7}  {'bound.F1':>8}  s/image"
        )
        for r in results:
            s = r.scores
            spi = r.seconds_per_image.get("total")
            print(
                f"{r.method:{width}}  {s.miou * 100:6.2f}  {s.pixel_accuracy * 100:7.2f}  "
                f"{s.mean_f1 * 100:7.2f}  {s.mean_boundary_f1 * 100:8.2f}  "
                + ("n/a" if spi is None else f"{spi:7.2f}")
            )
    for r in results:
        for message in r.messages:
            prefix = f"{r.method}: " if len(results) > 1 else ""
            print(f"ovpaint: {prefix}{message}", file=sys.stderr)
