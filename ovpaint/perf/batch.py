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

import numpy as np

from ovpaint.perf import PerfContext, Stage

PROMPT = "sky, dog, person"


def _shared_bundle(ctx: PerfContext, role: str, arch: dict, dtype):
    """The dense and proposal stages' random-weight CLIP or SAM2, when it is this architecture."""
    import torch

    from ovpaint.perf.proposals import PERF_CLIP, PERF_SAM2, _clip_bundle, _sam_bundle

    if dtype != torch.float32:
        return None
    if role == "clip" and arch.get("open_clip_name") == PERF_CLIP and not ctx.tiny:
        return _clip_bundle(ctx)
    if role == "sam2" and arch.get("config") == PERF_SAM2 and not (ctx.quick or ctx.tiny):
        return _sam_bundle(ctx)
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


def _scene(w: int, h: int, seed: int) -> np.ndarray:
    from ovpaint.eval.synthetic import make_scene

    rgb, _ = make_scene((w, h), 0, (8, 12, 15), seed)
    noise = np.random.default_rng(seed).integers(-12, 13, rgb.shape)
    return np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8)


def stages(ctx: PerfContext) -> list[Stage]:
    from ovpaint.batch import run_batch
    from ovpaint.core.image_io import save_image
    from ovpaint.core.prompt import parse_prompt
    from ovpaint.eval.runner import run_benchmark
    from ovpaint.eval.synthetic import make_synthetic

    w, h = (160, 120) if ctx.quick or ctx.tiny else (500, 375)
    method = "dense"
    repeats = ctx.repeats(3)
    count = repeats + 1  # warm-up + timed calls, each on a new image
    state: dict = {}
    label = "tiny" if ctx.tiny else "real archs, random weights"

    def setup() -> None:
        if state:
            return
        state["tmp"] = tmp = ctx.temp_dir("batch")
        for i in range(count):
            save_image(tmp / "in" / f"f{i}" / "photo.png", _scene(w, h, i))
            make_synthetic("voc", tmp / "voc" / f"d{i}", n_images=1, seed=i)
        state["folders"] = itertools.cycle(range(count))
        state["bench"] = itertools.cycle(range(count))
        state["segment"] = itertools.cycle(range(count))
        state["images"] = [_scene(w, h, i) for i in range(count)]

    def segment_only() -> None:
        from ovpaint.pipelines.segmentation.segment import segment

        i = next(state["segment"])
        segment(state["images"][i], parse_prompt(PROMPT), method=method, manager=_manager(ctx))

    def batch_one() -> None:
        i = next(state["folders"])
        tmp = state["tmp"]
        report = run_batch(
            tmp / "in" / f"f{i}",
            tmp / "out" / f"f{i}",
            PROMPT,
            method,
            _manager(ctx),
            overwrite=True,
        )
        if report.count("done") != 1:
            raise RuntimeError(f"batch failed: {report.files[0].error}")

    def benchmark_one() -> None:
        i = next(state["bench"])
        tmp = state["tmp"]
        run_benchmark(
            "voc",
            tmp / "voc" / f"d{i}",
            method,
            _manager(ctx),
            out_path=tmp / "reports" / f"r{i}.json",
            resume=False,
        )

    base = f"segment() alone, {w}×{h}, {method} ({label})"
    return [
        Stage("batch", base, segment_only, repeats=repeats, setup=setup),
        Stage(
            "batch",
            f"batch per image, {w}×{h}, {method} ({label})",
            batch_one,
            repeats=repeats,
            setup=setup,
            baseline=base,
            note="one image end to end: read, segment, write masks + report; "
            "images/s = 1 / median; ratio < 1 is batch's overhead",
        ),
        Stage(
            "batch",
            f"benchmark per image, synthetic VOC, {method} ({label})",
            benchmark_one,
            repeats=repeats,
            setup=setup,
            note="read image + annotation, segment 21 classes, confusion + boundary counts",
        ),
    ]
