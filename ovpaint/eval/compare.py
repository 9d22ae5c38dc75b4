"""Several segmentation methods over one dataset in one run, reported side by side.

Each method is an ordinary benchmark run (:func:`ovpaint.eval.runner.run_benchmark`) with its
own state file and report beside the comparison's (``REPORT.<method>.json``), so an
interrupted comparison resumes method by method and image by image. The methods run one after
the other, each on a fresh session per image after one untimed warm-up image (the models
loaded, the class names encoded; whichever method ran first would pay for these otherwise):
its seconds per image are what it costs alone.
The comparison report puts the runs' metrics side by side: mIoU, pixel accuracy, mean F1,
boundary F1 and seconds per image per method, and the per-class IoU of every method.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ovpaint import __version__
from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import atomic_write_bytes, atomic_write_text
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.eval.datasets import Dataset, open_dataset
from ovpaint.eval.report import (
    _pct,
    _png,
    compute_fields,
    compute_line,
    images_line,
    machine_info,
    references_for,
    references_markdown,
    report_dict,
    report_paths,
    write_report,
)
from ovpaint.eval.runner import BenchmarkResult, SegmentFn, run_benchmark

MAX_METHODS = 12
#: The metrics a comparison shows, as (key in ``Scores.as_dict()``, label).
SUMMARY_METRICS = (
    ("mIoU", "mIoU"),
    ("pixel_accuracy", "pixel accuracy"),
    ("mean_f1", "mean F1"),
    ("mean_boundary_f1", "boundary F1"),
)


def parse_methods(value: str | Sequence[str], known: Sequence[str]) -> list[str]:
    """Method names from ``"dense,naclip"`` (or a list), in order, each once; an unknown
    name is refused with the choices."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = list(dict.fromkeys(n.strip() for n in items if n and n.strip()))
    if not names:
        raise BadInput("Name at least one method, e.g. --method dense,naclip.")
    if len(names) > MAX_METHODS:
        raise BadInput(f"At most {MAX_METHODS} methods in one comparison.")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInput(f"Unknown method(s): {', '.join(unknown)}. Choose from: {', '.join(known)}.")
    return names


def method_out_path(out_path: str | os.PathLike, method: str) -> Path:
    """Where one method's own report (and its resumable state) goes: ``REPORT.<method>.json``."""
    stem = report_paths(out_path)["json"].with_suffix("")
    return stem.with_name(f"{stem.name}.{method}.json")


@dataclass
class Comparison:
    """The runs of one comparison, in the order the methods were given."""

    results: list[BenchmarkResult]

    @property
    def methods(self) -> list[str]:
        return [r.method for r in self.results]

    @property
    def first(self) -> BenchmarkResult:
        return self.results[0]


def run_comparison(
    dataset: str | Dataset,
    root: str | os.PathLike | None,
    methods: Sequence[str],
    manager=None,
    *,
    out_path: str | os.PathLike | None = None,
    segment_fns: Mapping[str, SegmentFn] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    **options: Any,
) -> Comparison:
    """Run every method over the same images (``options`` as :func:`run_benchmark` takes
    them: limit, seed, resume, settings, boundary, ...; predictions are saved in one folder
    per method under ``save_predictions_dir``). ``segment_fns`` replaces the product's
    segmentation per method (tests)."""
    if not methods:
        raise BadInput("Name at least one method to benchmark.")
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset, root)
    save_dir = options.pop("save_predictions_dir", None)
    results = []
    for i, method in enumerate(methods, start=1):
        if cancel:
            cancel.check()
        results.append(
            run_benchmark(
                ds,
                None,
                method,
                manager,
                out_path=None if out_path is None else method_out_path(out_path, method),
                segment_fn=(segment_fns or {}).get(method),
                progress=progress,
                cancel=cancel,
                stage=f"{method} ({i}/{len(methods)})",
                save_predictions_dir=None if save_dir is None else Path(save_dir) / method,
                warm_up=True,
                **options,
            )
        )
    return Comparison(results)


# --------------------------------------------------------------------------- the report
def _seconds(result: BenchmarkResult) -> float | None:
    return result.seconds_per_image.get("total")


def comparison_dict(comparison: Comparison, *, manager=None) -> dict:
    """Everything a comparison measured: a summary row and the per-class IoU of every method,
    and each run's full report."""
    first = comparison.first
    runs = {r.method: report_dict(r, manager=manager) for r in comparison.results}
    summary = []
    for r in comparison.results:
        metrics = runs[r.method]["metrics"]
        seconds = _seconds(r)
        summary.append(
            {
                "method": r.method,
                **{key: metrics[key] for key, _ in SUMMARY_METRICS},
                "seconds_per_image": None if seconds is None else round(seconds, 4),
                "images": metrics["images"],
            }
        )
    per_class = []
    for i, name in enumerate(first.class_names):
        ious = {
            r.method: runs[r.method]["metrics"]["per_class"][i]["iou"] for r in comparison.results
        }
        if all(v is None for v in ious.values()):
            continue
        per_class.append({"id": i, "name": name, "iou": ious})
    return {
        "ovpaint_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": first.dataset,
        "dataset_title": first.dataset_title,
        "root": first.root,
        "methods": comparison.methods,
        "images": len(first.image_ids),
        "limit": first.limit,
        "seed": first.seed,
        "summary": summary,
        "per_class": per_class,
        **compute_fields(manager),
        "machine": machine_info(),
        "references": references_for(first.dataset),
        "runs": runs,
    }


def comparison_markdown(data: dict) -> str:
    methods = data["methods"]
    lines = [
        f"# Benchmark comparison: {data['dataset_title']}",
        "",
        images_line(data) + f"; methods: {', '.join(methods)}.",
        "",
        "| method | " + " | ".join(label for _, label in SUMMARY_METRICS) + " | s per image |",
        "|---" * (len(SUMMARY_METRICS) + 2) + "|",
    ]
    for row in data["summary"]:
        seconds = row["seconds_per_image"]
        lines.append(
            f"| {row['method']} | "
            + " | ".join(_pct(row[key]) for key, _ in SUMMARY_METRICS)
            + f" | {'n/a' if seconds is None else f'{seconds:.3f}'} |"
        )
    lines += [
        "",
        "Metrics in %, from one confusion matrix per method over the same images; seconds are "
        "each method's own mean time per image (fresh image caches per image, after one "
        "untimed warm-up image that loaded the models and encoded the class names).",
        "",
        "## Per-class IoU (%)",
        "",
        "| id | class | " + " | ".join(methods) + " |",
        "|---" * (len(methods) + 2) + "|",
    ]
    for c in data["per_class"]:
        lines.append(
            f"| {c['id']} | {c['name']} | " + " | ".join(_pct(c["iou"][m]) for m in methods) + " |"
        )
    lines += ["", "Classes absent from every method's ground truth and prediction are left out."]
    lines += references_markdown(data["references"])
    lines += ["", f"Machine: `{json.dumps(data['machine'], default=str)}`", *compute_line(data), ""]
    return "\n".join(lines)


def comparison_png(data: dict) -> bytes:
    """Grouped bars of the summary metrics per method, and seconds per image beside them."""
    import matplotlib.figure

    methods = data["methods"]
    rows = {row["method"]: row for row in data["summary"]}
    fig = matplotlib.figure.Figure(figsize=(9.5, 3.6))
    ax, ax_time = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(methods)
    x = np.arange(len(SUMMARY_METRICS))
    colors = _colors(len(methods))
    for i, method in enumerate(methods):
        values = [(rows[method][key] or 0.0) * 100 for key, _ in SUMMARY_METRICS]
        bars = ax.bar(x + (i - (len(methods) - 1) / 2) * width, values, width, label=method)
        for bar in bars:
            bar.set_color(colors[i])
    ax.set_xticks(x, [label for _, label in SUMMARY_METRICS])
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.legend(fontsize=8, ncols=min(4, len(methods)), loc="upper right")
    ax.set_title(f"{data['dataset_title']} · {data['images']} images")
    seconds = [rows[m]["seconds_per_image"] or 0.0 for m in methods]
    ax_time.barh(range(len(methods)), seconds, color=colors)
    ax_time.set_yticks(range(len(methods)), methods, fontsize=8)
    ax_time.invert_yaxis()
    ax_time.set_xlabel("s per image")
    fig.tight_layout()
    return _png(fig)


def per_class_png(data: dict) -> bytes:
    """Per-class IoU of every method as a heat map (classes down, methods across)."""
    import matplotlib.figure

    methods = data["methods"]
    classes = data["per_class"]
    grid = np.array(
        [[np.nan if c["iou"][m] is None else c["iou"][m] * 100 for m in methods] for c in classes]
    ).reshape(len(classes), len(methods))
    height = min(40.0, 1.5 + 0.22 * max(len(classes), 1))
    fig = matplotlib.figure.Figure(figsize=(2.5 + 1.1 * len(methods), height))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="IoU (%)")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), [c["name"] for c in classes], fontsize=7)
    if len(classes) * len(methods) <= 400:
        for (r, c), value in np.ndenumerate(grid):
            if value == value:
                ax.text(c, r, f"{value:.0f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_title("per-class IoU")
    fig.tight_layout()
    return _png(fig)


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def comparison_paths(out_path: str | os.PathLike) -> dict[str, Path]:
    base = report_paths(out_path)
    stem = base["json"].with_suffix("")
    return {
        "json": base["json"],
        "markdown": base["markdown"],
        "chart": stem.with_name(stem.name + "_comparison.png"),
        "per_class": stem.with_name(stem.name + "_per_class.png"),
    }


def write_comparison(
    comparison: Comparison,
    out_path: str | os.PathLike,
    *,
    manager=None,
) -> dict[str, Path]:
    """Each method's own report beside ``out_path`` (``REPORT.<method>.*``) and the
    comparison: JSON, Markdown and two charts. Returns the comparison's paths."""
    for result in comparison.results:
        write_report(result, method_out_path(out_path, result.method), manager=manager)
    paths = comparison_paths(out_path)
    data = comparison_dict(comparison, manager=manager)
    for run in data["runs"].values():
        run.pop("confusion_matrix", None)  # in each method's own report
    atomic_write_bytes(paths["chart"], comparison_png(data))
    atomic_write_bytes(paths["per_class"], per_class_png(data))
    atomic_write_text(paths["markdown"], comparison_markdown(data))
    atomic_write_text(paths["json"], json.dumps(data, indent=1, default=str))
    return paths
