"""Benchmark reports: JSON (everything), Markdown (for people), and two charts as PNG.

Published numbers are printed beside ours for orientation only, labelled as references: they
were measured by others with real weights; the thesis's numbers are unverified claims.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import platform
from pathlib import Path

import numpy as np

from ovpaint import __version__
from ovpaint.core.fileio import atomic_write_bytes, atomic_write_text
from ovpaint.eval.datasets import DATASETS
from ovpaint.eval.runner import BenchmarkResult

#: mIoU (%) published by others, for orientation. Not measured by this program.
REFERENCES: list[dict] = [
    {
        "source": "SCLIP README (ViT-B/16, real weights)",
        "kind": "published reference",
        "results": {
            "voc21": 59.63,
            "voc20": 81.54,
            "context60": 31.74,
            "coco-object": 33.52,
            "cocostuff": 22.77,
            "ade20k": 16.45,
        },
    },
    {
        "source": "NACLIP paper, WACV 2025 (ViT-B/16, real weights, with PAMR)",
        "kind": "published reference",
        "results": {"voc21": 64.1, "cocostuff": 25.7, "ade20k": 19.1},
    },
    {
        "source": "thesis: dense SCLIP + SAM2 refinement",
        "kind": "unverified claim",
        "results": {"voc21": 48.09, "cocostuff": 49.52},
    },
    {
        "source": "thesis: proposal path (SAM2 masks scored by CLIP)",
        "kind": "unverified claim",
        "results": {"voc21": 69.3},
    },
]


def references_for(dataset: str) -> list[dict]:
    spec = DATASETS.get(dataset)
    key = spec.report_key if spec is not None and spec.report_key else dataset
    return [
        {"source": r["source"], "kind": r["kind"], "mIoU": r["results"][key]}
        for r in REFERENCES
        if key in r["results"]
    ]


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - the report must not depend on torch being usable
        pass
    return info


def compute_fields(manager) -> dict:
    """Where the models computed and in which precision per workload (``device``,
    ``weights_dtype``, ``precision``, ``precision_source``; None without a manager). What was
    measured before or during the run is read; nothing is measured for a report."""
    if manager is None:
        return {"device": None, "weights_dtype": None, "precision": None, "precision_source": None}
    return manager.compute_summary().report_fields()


def compute_line(data: dict) -> list[str]:
    """The Markdown line saying the device and each workload's precision, if recorded."""
    if not data.get("device"):
        return []
    precision = ", ".join(f"{name} {p}" for name, p in (data.get("precision") or {}).items())
    source = data.get("precision_source") or "measured"
    return [f"Compute: {data['device']}; precision ({source}): {precision or 'none recorded'}"]


def report_dict(result: BenchmarkResult, *, manager=None) -> dict:
    data = {
        "ovpaint_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": result.dataset,
        "dataset_title": result.dataset_title,
        "root": result.root,
        "method": result.method,
        "images": len(result.image_ids),
        "limit": result.limit,
        "seed": result.seed,
        "resumed_images": result.resumed_images,
        "metrics": result.scores.as_dict(),
        "seconds_per_image": {k: round(v, 4) for k, v in result.seconds_per_image.items()},
        "settings": result.settings,
        "models": result.models,
        **compute_fields(manager),
        "machine": machine_info(),
        "image_ids": result.image_ids,
        "confusion_matrix": result.matrix.tolist(),
        "references": references_for(result.dataset),
        "messages": result.messages,
    }
    return data


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x * 100:.2f}"


def images_line(data: dict) -> str:
    """'N images from `root`', and how they were picked when a subset."""
    return f"{data['images']} images from `{data['root']}`" + (
        f" (random subset, limit {data['limit']}, seed {data['seed']})" if data["limit"] else ""
    )


def references_markdown(references: list[dict]) -> list[str]:
    """The report's section of published and claimed numbers (Markdown lines)."""
    return [
        "",
        "## References (NOT measured here)",
        "",
        "Published by others with real weights, or claimed in the thesis and not "
        "reproduced; for orientation only.",
        "",
        "| source | kind | mIoU (%) |",
        "|---|---|---|",
    ] + [f"| {r['source']} | {r['kind']} | {r['mIoU']:.2f} |" for r in references]


def markdown(data: dict) -> str:
    m = data["metrics"]
    lines = [
        f"# Benchmark: {data['dataset_title']} · {data['method']}",
        "",
        images_line(data) + f"; models: {data['models'] or 'injected segmenter'}.",
        "",
        "| metric | value (%) |",
        "|---|---|",
        f"| mIoU | {_pct(m['mIoU'])} |",
        f"| pixel accuracy | {_pct(m['pixel_accuracy'])} |",
        f"| mean accuracy | {_pct(m['mean_accuracy'])} |",
        f"| mean precision | {_pct(m['mean_precision'])} |",
        f"| mean recall | {_pct(m['mean_recall'])} |",
        f"| mean F1 | {_pct(m['mean_f1'])} |",
        f"| mean boundary F1 | {_pct(m['mean_boundary_f1'])} |",
        "",
        "## Seconds per image",
        "",
        "| stage | s |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.3f} |" for k, v in data["seconds_per_image"].items()]
    lines += [
        "",
        "## Per-class IoU",
        "",
        "| id | class | IoU | F1 | boundary F1 | GT px |",
        "|---|---|---|---|---|---|",
    ]
    for c in data["metrics"]["per_class"]:
        if c["iou"] is None:
            continue
        lines.append(
            f"| {c['id']} | {c['name']} | {_pct(c['iou'])} | {_pct(c['f1'])} | "
            f"{_pct(c['boundary_f1'])} | {c['gt_pixels']} |"
        )
    lines += ["", "Classes absent from both ground truth and prediction are left out (nan)."]
    lines += references_markdown(data["references"])
    if data.get("messages"):
        lines += ["", "## Notes", ""] + [f"- {msg}" for msg in data["messages"]]
    lines += [
        "",
        f"Settings: `{json.dumps(data['settings'], default=str)}`",
        f"Machine: `{json.dumps(data['machine'], default=str)}`",
        *compute_line(data),
        "",
    ]
    return "\n".join(lines)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def confusion_png(matrix: np.ndarray, names: list[str], title: str = "") -> bytes:
    """Row-normalised confusion matrix (each ground-truth class sums to 1)."""
    import matplotlib.figure  # a bare Figure renders with Agg: no pyplot, no GUI, thread-safe

    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    k = len(names)
    size = min(18.0, 3.0 + 0.18 * k)
    fig = matplotlib.figure.Figure(figsize=(size, size))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if k <= 40:
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title or "confusion matrix (row-normalised)")
    return _png(fig)


def iou_bar_png(per_class: list[dict], title: str = "") -> bytes:
    import matplotlib.figure

    rows = [c for c in per_class if c["iou"] is not None]
    rows.sort(key=lambda c: c["iou"], reverse=True)
    height = max(2.5, 0.18 * len(rows) + 1)
    fig = matplotlib.figure.Figure(figsize=(7, min(height, 40)))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(range(len(rows)), [c["iou"] * 100 for c in rows], color="#3b7dd8")
    ax.set_yticks(range(len(rows)), [c["name"] for c in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("IoU (%)")
    ax.set_title(title or "per-class IoU")
    return _png(fig)


def report_paths(out_path: str | os.PathLike) -> dict[str, Path]:
    out_path = Path(out_path)
    stem = out_path.with_suffix("") if out_path.suffix.lower() == ".json" else out_path
    return {
        "json": stem.with_name(stem.name + ".json"),
        "markdown": stem.with_name(stem.name + ".md"),
        "confusion": stem.with_name(stem.name + "_confusion.png"),
        "iou": stem.with_name(stem.name + "_iou.png"),
    }


def write_report(
    result: BenchmarkResult, out_path: str | os.PathLike, *, manager=None
) -> dict[str, Path]:
    """Write the JSON report, the Markdown summary and both charts; returns their paths."""
    paths = report_paths(out_path)
    data = report_dict(result, manager=manager)
    title = f"{result.dataset_title} · {result.method}"
    atomic_write_bytes(paths["confusion"], confusion_png(result.matrix, result.class_names, title))
    atomic_write_bytes(paths["iou"], iou_bar_png(data["metrics"]["per_class"], title))
    atomic_write_text(paths["markdown"], markdown(data))
    atomic_write_text(paths["json"], json.dumps(data, indent=1, default=str))
    return paths
