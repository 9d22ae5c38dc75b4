"""Batch and benchmark stages: per-image cost of a whole folder run and of a benchmark run.

Each timed call processes one new image end to end (read, segment, write the label map and
the per-class masks and the report; for the benchmark: read the annotation, segment, score),
so the median is the per-image time and its inverse the throughput. The baseline is
``segment()`` alone on the same image size, so the ratio is the overhead batch adds around
the model. With the tiny profile the models are miniature; otherwise the real architectures
(ViT-B/16 CLIP, SAM2.1 hiera-tiny) run with random weights: speed does not depend on the
weight values.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ovpaint.perf import PerfContext, Stage

PROMPT = "sky, dog, person"


def _shared_bundle(ctx: PerfContext, role: str, arch: dict, dtype):
    """The dense and proposal stages' random-weight CLIP or SAM2, when it is this architecture."""
    import torch

    from ovpaint.perf.bundles import PERF_CLIP, PERF_SAM2, clip_bundle, sam2_bundle

    if dtype != torch.float32:
        return None
    if role == "clip" and arch.get("open_clip_name") == PERF_CLIP and not ctx.tiny:
        return clip_bundle(ctx)
    if role == "sam2" and arch.get("config") == PERF_SAM2 and not (ctx.quick or ctx.tiny):
        return sam2_bundle(ctx)
    return None


def _random_weights_manager(ctx: PerfContext):
    """A ModelManager whose models are the real architectures with random weights."""
    cached = ctx.cache.get("random_weights_manager")
    if cached is not None:
        return cached
    import torch

    from ovpaint.models import clip_loader, sam2_loader
    from ovpaint.models.manager import ModelManager, _Slot

    class RandomWeightsManager(ModelManager):
        def check_available(self, role: str) -> None:  # nothing to download: random weights
            return None

        def _load(self, role: str):
            spec = self.spec(role)
            shared = _shared_bundle(ctx, role, spec.arch, self.dtype)
            if shared is not None:  # the one the other stages built: not built twice per run
                return _Slot(role, spec.id, shared, self.dtype)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                if role == "clip":
                    import open_clip

                    name = spec.arch["open_clip_name"]
                    model = open_clip.create_model(name, pretrained=None).eval()
                    bundle = clip_loader.ClipBundle(
                        model.to(self.dtype), open_clip.get_tokenizer(name), spec.id
                    )
                elif role == "sam2":
                    model = sam2_loader._build(spec.arch["config"], None, torch.device("cpu"))
                    bundle = sam2_loader.Sam2Bundle(model.eval(), spec.id)
                else:
                    return super()._load(role)
            return _Slot(role, spec.id, bundle, self.dtype)

    manager = RandomWeightsManager(
        profile="real",
        device=str(ctx.device),
        dtype={"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}.get(
            str(ctx.dtype), "auto"
        ),
    )
    ctx.cache["random_weights_manager"] = manager
    return manager


def _manager(ctx: PerfContext):
    if ctx.tiny:
        cached = ctx.cache.get("tiny_manager")
        if cached is None:
            from ovpaint.models.manager import ModelManager

            cached = ctx.cache["tiny_manager"] = ModelManager(
                profile="tiny", device=str(ctx.device)
            )
        return cached
    return _random_weights_manager(ctx)


def _photo(w: int, h: int, seed: int) -> np.ndarray:
    from ovpaint.eval.synthetic import make_scene

    rgb, _ = make_scene((w, h), 0, (8, 12, 15), seed)
    noise = np.random.default_rng(seed).integers(-12, 13, rgb.shape)
    return np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8)


class BatchBench:
    """One folder and one synthetic VOC split per timed call (warm-up included), written on
    first use; each call takes the next, so every call processes a new image."""

    method = "dense"

    def __init__(self, ctx: PerfContext) -> None:
        self.ctx = ctx
        self.w, self.h = (160, 120) if ctx.quick or ctx.tiny else (500, 375)
        self.count = ctx.repeats(3) + 1
        self.label = "tiny" if ctx.tiny else "real archs, random weights"
        self.images: list[np.ndarray] = []

    @property
    def tmp(self) -> Path:
        return self.ctx.temp_dir("batch")  # made on first use, removed with the run's folder

    def setup(self) -> None:
        from ovpaint.core.image_io import save_image
        from ovpaint.eval.synthetic import make_synthetic

        if self.images:
            return
        for i in range(self.count):
            save_image(self.tmp / "in" / f"f{i}" / "photo.png", _photo(self.w, self.h, i))
            make_synthetic("voc", self.tmp / "voc" / f"d{i}", n_images=1, seed=i)
        self.folders = itertools.cycle(range(self.count))
        self.splits = itertools.cycle(range(self.count))
        self.next_image = itertools.cycle(range(self.count))
        self.images = [_photo(self.w, self.h, i) for i in range(self.count)]

    def segment_only(self) -> None:
        from ovpaint.core.prompt import parse_prompt
        from ovpaint.pipelines.segmentation.segment import segment

        image = self.images[next(self.next_image)]
        segment(image, parse_prompt(PROMPT), method=self.method, manager=_manager(self.ctx))

    def batch_one(self) -> None:
        from ovpaint.batch import run_batch

        i = next(self.folders)
        folder, out = self.tmp / "in" / f"f{i}", self.tmp / "out" / f"f{i}"
        report = run_batch(folder, out, PROMPT, self.method, _manager(self.ctx), overwrite=True)
        if report.count("done") != 1:
            raise RuntimeError(f"batch failed: {report.files[0].error}")

    def benchmark_one(self) -> None:
        from ovpaint.eval.runner import run_benchmark

        i = next(self.splits)
        run_benchmark(
            "voc",
            self.tmp / "voc" / f"d{i}",
            self.method,
            _manager(self.ctx),
            out_path=self.tmp / "reports" / f"r{i}.json",
            resume=False,
        )


def stages(ctx: PerfContext) -> list[Stage]:
    b = BatchBench(ctx)
    repeats = ctx.repeats(3)
    what = f"{b.w}×{b.h}, {b.method} ({b.label})"
    base = f"segment() alone, {what}"
    return [
        Stage("batch", base, b.segment_only, repeats=repeats, setup=b.setup),
        Stage(
            "batch",
            f"batch per image, {what}",
            b.batch_one,
            repeats=repeats,
            setup=b.setup,
            baseline=base,
            note="one image end to end: read, segment, write masks + report; "
            "images/s = 1 / median; ratio < 1 is batch's overhead",
        ),
        Stage(
            "batch",
            f"benchmark per image, synthetic VOC, {b.method} ({b.label})",
            b.benchmark_one,
            repeats=repeats,
            setup=b.setup,
            note="read image + annotation, segment 21 classes, confusion + boundary counts",
        ),
    ]
