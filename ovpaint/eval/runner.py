"""The benchmark runner: segment every image of a dataset split and score the whole run.

One confusion matrix over the run (see :mod:`ovpaint.eval.metrics`). Each image's counts and
timings are appended to a state file beside the report as soon as the image is done, so a run
that was cancelled, killed or crashed continues where it stopped, and the final matrix is the
sum of the same per-image counts: identical to an uninterrupted run. ``limit`` with ``seed``
picks a reproducible subset.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import append_json_line
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.limits import float_in, int_in
from ovpaint.core.masks import save_label_png
from ovpaint.core.prompt import ClassQuery
from ovpaint.core.safeio import load_json, read_regular
from ovpaint.eval.datasets import IGNORE, Dataset, dataset_spec, open_dataset
from ovpaint.eval.metrics import ConfusionAccumulator, ImageCounts, Scores
from ovpaint.models.protocols import Models
from ovpaint.pipelines.result import SegmentationResult
from ovpaint.pipelines.segmentation.segment import model_ids
from ovpaint.pipelines.segmentation.segment import (
    segment_fn as _default_segment_fn,  # tests replace it
)
from ovpaint.pipelines.segmentation.settings import merge_settings

#: ``fn(rgb, queries) -> SegmentationResult``; ``result.classes[0]`` is the background and
#: ``result.classes[1:]`` name the queries.
SegmentFn = Callable[[np.ndarray, list[ClassQuery]], SegmentationResult]

STATE_VERSION = 1
MAX_STATE_BYTES = 512 << 20


@dataclass
class BenchmarkResult:
    """What a run measured; :mod:`ovpaint.eval.report` turns it into files."""

    dataset: str
    dataset_title: str
    root: str
    method: str
    class_names: list[str]
    scores: Scores
    matrix: np.ndarray
    seconds_per_image: dict[str, float]  # stage → mean seconds per image
    image_ids: list[str]
    settings: dict[str, Any]
    models: dict[str, str]
    limit: int | None
    seed: int
    resumed_images: int = 0
    messages: list[str] = field(default_factory=list)


def select_samples(dataset: Dataset, limit: int | None, seed: int) -> list:
    """The whole split, or ``limit`` samples drawn with ``seed`` (kept in dataset order)."""
    samples = dataset.samples
    if limit is None or limit >= len(samples):
        return list(samples)
    if limit < 1:
        raise BadInput("--limit must be at least 1.")
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(samples), size=limit, replace=False))
    return [samples[i] for i in picked]


def label_lookup(result: SegmentationResult, dataset: Dataset) -> np.ndarray:
    """Map the result's label indices to dataset ids (255 = no dataset class)."""
    by_name = {c.label: i for i, c in enumerate(dataset.classes)}
    lut = np.full(len(result.classes), IGNORE, dtype=np.int32)
    if dataset.background_id is not None:
        lut[0] = dataset.background_id
    for index, name in enumerate(result.classes[1:], start=1):
        if name not in by_name:
            raise BadInput(
                f"The segmentation returned class '{name}', which {dataset.title} does not have."
            )
        lut[index] = by_name[name]
    return lut


def state_path_for(out_path: str | os.PathLike) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".state.jsonl")


def _config(dataset: Dataset, method: str, settings: dict, ids: list[str], models: dict) -> dict:
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    return {
        "version": STATE_VERSION,
        "dataset": dataset.key,
        "root": str(dataset.root),
        "method": method,
        "settings": settings,
        "models": models,
        "images": digest,
    }


def _read_state(path: Path, config: dict, num_classes: int) -> dict[str, dict]:
    """Per-image records of an earlier run with the same configuration. The file is read as
    untrusted input: bounded, and a record without the expected types is done again."""
    if not path.exists():
        return {}
    lines = read_regular(path, MAX_STATE_BYTES, f"the state file {path}").splitlines()
    try:
        header = load_json(lines[0], "the state header") if lines else None
    except BadInput:
        header = None
    expected = json.loads(json.dumps(config, default=str))
    if not isinstance(header, dict) or header.get("config") != expected:
        raise BadInput(
            f"{path} belongs to a benchmark run with other settings, dataset, method or images. "
            "Delete it, choose another --out, or run without resume (--restart)."
        )
    records: dict[str, dict] = {}
    for line in lines[1:]:
        try:
            record = load_json(line, "a state line")
            if int_in(record["counts"]["k"], "k", 1, 1 << 16) != num_classes:
                continue
            ImageCounts.from_json(record["counts"])
            timings = {
                str(k): float_in(v, "a timing", 0.0, 1e9) for k, v in record["timings"].items()
            }
        except (BadInput, KeyError, TypeError, ValueError, AttributeError, IndexError):
            continue  # a line torn by a crash (or damaged): that image is simply done again
        if isinstance(record.get("id"), str):
            records[record["id"]] = {**record, "timings": timings}
    return records


def run_benchmark(
    dataset: str | Dataset,
    root: str | os.PathLike | None,
    method: str,
    manager: Models | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    save_predictions_dir: str | os.PathLike | None = None,
    out_path: str | os.PathLike | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    resume: bool = True,
    settings: dict[str, Any] | None = None,
    segment_fn: SegmentFn | None = None,
    boundary: bool = True,
    stage: str = "benchmark",
    warm_up: bool = False,
) -> BenchmarkResult:
    """Segment each selected image and score the run; see the module docstring.

    ``out_path`` is where the caller will write the report; the state file lives beside it
    (``<out>.state.jsonl``) and is what makes the run resumable. ``segment_fn`` replaces the
    product's segmentation (tests inject a known segmenter). ``stage`` names the progress
    stage. ``warm_up``: segment the first image still to do once, untimed and unscored, before
    the timed run, so its seconds per image leave out what a run pays once (loading the
    models, encoding the class names). Raises :class:`Cancelled` when ``cancel`` fires;
    everything finished so far stays in
    the state file.
    """
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset, root)
    samples = select_samples(ds, limit, seed)
    # the dataset's preset for the method (METHOD.md §1.6), the caller's settings over it
    run_settings = merge_settings(dataset_spec(ds.key).preset(method), settings)
    if segment_fn is None:
        segment_fn = _default_segment_fn(method, manager, run_settings)
    models = model_ids(manager, method)
    ids = [s.id for s in samples]
    config = _config(ds, method, run_settings, ids, models)
    queries = ds.class_queries()
    save_dir = Path(save_predictions_dir) if save_predictions_dir else None

    records: dict[str, dict] = {}
    state_path = state_path_for(out_path) if out_path else None
    if state_path is not None:
        if resume:
            records = _read_state(state_path, config, ds.num_classes)
        if not resume or not state_path.exists():
            state_path.parent.mkdir(parents=True, exist_ok=True)
            state_path.write_text(json.dumps({"config": config}, default=str) + "\n", "utf-8")
        records = {k: v for k, v in records.items() if k in set(ids)}

    if warm_up:
        todo = next((s for s in samples if s.id not in records), None)
        if todo is not None:
            if cancel:
                cancel.check()
            segment_fn(ds.load(todo).image.rgb, queries)
    acc = ConfusionAccumulator(ds.num_classes)
    totals: dict[str, float] = {}
    resumed = 0
    if progress:
        progress.stage(stage, total=len(samples), message=ds.title)
    for n, sample in enumerate(samples):
        if cancel:
            cancel.check()
        record = records.get(sample.id)
        if record is not None and (save_dir is None or (save_dir / f"{sample.id}.png").exists()):
            acc.add(ImageCounts.from_json(record["counts"]))
            resumed += 1
        else:
            t0 = time.perf_counter()
            loaded = ds.load(sample)
            t_load = time.perf_counter() - t0
            t1 = time.perf_counter()
            result = segment_fn(loaded.image.rgb, queries)
            t_seg = time.perf_counter() - t1
            if result.labels.shape != loaded.gt.shape:
                raise BadInput(
                    f"The segmentation of {sample.image_path.name} has size "
                    f"{result.labels.shape}, its annotation {loaded.gt.shape}."
                )
            pred = label_lookup(result, ds)[result.labels]
            counts = acc.image_counts(loaded.gt, pred, with_boundary=boundary)
            if save_dir is not None:
                save_label_png(save_dir / f"{sample.id}.png", ds.prediction_png_ids(pred))
            timings = {
                "load": t_load,
                **{k: float(v) for k, v in result.timings.items()},
                "segment": t_seg,
                "total": time.perf_counter() - t0,
            }
            record = {"id": sample.id, "counts": counts.to_json(), "timings": timings}
            if state_path is not None:
                append_json_line(state_path, record)
            acc.add(counts)
        for stage, seconds in record["timings"].items():
            totals[stage] = totals.get(stage, 0.0) + float(seconds)
        if progress:
            miou = acc.scores().miou
            progress.update(
                n + 1, len(samples), message=f"mIoU so far {miou * 100:.2f}" if miou == miou else ""
            )

    images = max(1, len(samples))
    result = BenchmarkResult(
        dataset=ds.key,
        dataset_title=ds.title,
        root=str(ds.root),
        method=method,
        class_names=ds.class_names,
        scores=acc.scores(ds.class_names),
        matrix=acc.matrix.copy(),
        seconds_per_image={k: v / images for k, v in totals.items()},
        image_ids=ids,
        settings=run_settings,
        models=models,
        limit=limit,
        seed=seed,
        resumed_images=resumed,
    )
    if resumed:
        result.messages.append(
            f"{resumed} of {len(samples)} images were taken from the "
            "state of an earlier, interrupted run."
        )
    return result
