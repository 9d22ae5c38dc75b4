"""`ovpaint perf`: time each stage, print a table, optionally write JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ovpaint.core.fileio import atomic_write_text


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("perf", help="benchmark each stage (random weights, real architectures)")
    p.add_argument(
        "--only",
        help="comma-separated words: run stages whose group or name "
        "contains one (and their baselines)",
    )
    p.add_argument("--json", dest="json_path", help="write the results as JSON to this path")
    p.add_argument("--quick", action="store_true", help="one repeat, small inputs")
    p.add_argument("--list", action="store_true", help="list the stages and exit")
    return p


def run(args: argparse.Namespace) -> int:
    from ovpaint import perf
    from ovpaint.core.fileio import check_output_file
    from ovpaint.models import device as devices

    if args.json_path:
        check_output_file(args.json_path, what="--json")  # not after minutes of timing

    choice = devices.choose(
        getattr(args, "device", None) or "auto", getattr(args, "dtype", None) or "auto"
    )
    ctx = perf.PerfContext(
        device=choice.device,
        dtype=choice.dtype,
        tiny=getattr(args, "models", None) == "tiny",
        quick=args.quick,
    )
    try:
        return _run(args, perf, ctx)
    finally:
        ctx.close()  # the stages' temporary files


def _run(args: argparse.Namespace, perf, ctx) -> int:
    stages = perf.collect(ctx, args.only)
    if args.list:
        for s in stages:
            print(f"{s.group:12s} {s.name}" + (f"  (baseline: {s.baseline})" if s.baseline else ""))
        return 0
    info = perf.machine_info(ctx)
    print("ovpaint perf — " + ", ".join(f"{k}={v}" for k, v in info.items()), file=sys.stderr)
    started = time.time()
    results = perf.run(
        stages,
        on_result=lambda r: print(
            f"  {r.group}/{r.name}: " + (r.error or f"{r.median_s:.4f} s"), file=sys.stderr
        ),
    )
    print(perf.format_table(results))
    if args.json_path:
        data = {
            "machine": info,
            "started": started,
            "stages": [r.__dict__ for r in results],
        }
        atomic_write_text(args.json_path, json.dumps(data, indent=2, default=str))
    return 0 if all(r.error is None for r in results) else 1
