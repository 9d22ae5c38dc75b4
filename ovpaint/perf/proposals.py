"""Proposal-path stages: automatic mask generation (sam2's generator vs the fast one, same
masks), CLIP scoring of mask crops at three scales (one call per crop and scale vs batched),
and one click with a cached embedding.

Real architectures (SAM2.1 hiera-tiny at 1024 px, CLIP ViT-B/16) with random weights; with
``--models tiny``/``--quick`` the tiny models and smaller grids. Random weights: SAM2's
predicted IoUs sit near 0.5, so at the thesis's thresholds (0.88/0.95) no mask survives in
either generator; the second AMG pair lowers the thresholds to 0 so every mask is kept — the
fast path's worst case — and each stage's note says how many masks both produced and whether
they were identical.
"""

from __future__ import annotations

import numpy as np

from ovpaint.perf import INT8_NOTE, FixedModels, PerfContext, Stage, precision_modes
from ovpaint.perf.bundles import clip_bundle, sam2_bundle, scene


def _amg_pair(ctx: PerfContext, label: str, image_of, **kwargs) -> list[Stage]:
    from ovpaint.pipelines.segmentation.proposals import ProposalSettings, generate_masks
    from ovpaint.pipelines.session import ImageSession

    out: dict = {}
    stages: list[Stage] = []

    def baseline() -> None:
        import torch
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

        from ovpaint.pipelines.sam2_adapter import fix_feature_sizes

        bundle = sam2_bundle(ctx)
        gen = SAM2AutomaticMaskGenerator(bundle.model, output_mode="uncompressed_rle", **kwargs)
        fix_feature_sizes(gen.predictor, bundle.image_size)
        with torch.inference_mode():
            out["ref"] = gen.generate(image_of())  # includes its set_image

    def fast() -> None:
        bundle = sam2_bundle(ctx)
        session = ImageSession(image_of())  # a fresh session: its embedding is timed too
        predictor = session.sam2_predictor(bundle)
        out["mine"] = generate_masks(predictor, ProposalSettings(**kwargs))
        stages[1].note = _equality_note(out)

    base_name = f"AMG {label}: sam2 generator"
    stages.append(
        Stage(
            "proposals",
            base_name,
            baseline,
            repeats=1,
            warmup=0,
            note="sam2's SAM2AutomaticMaskGenerator.generate incl. set_image",
        )
    )
    stages.append(
        Stage(
            "proposals",
            f"AMG {label}: fast generator",
            fast,
            repeats=1,
            warmup=0,
            baseline=base_name,
        )
    )
    return stages


def _equality_note(out: dict) -> str:
    import torch
    from sam2.utils.amg import mask_to_rle_pytorch

    mine, ref = out.get("mine"), out.get("ref")
    if mine is None or ref is None:
        return ""
    same = len(mine) == len(ref)
    if same and len(mine):
        rles = mask_to_rle_pytorch(torch.as_tensor(mine.masks))
        same = all(
            a["counts"] == r["segmentation"]["counts"]
            and float(mine.predicted_iou[i]) == r["predicted_iou"]
            and float(mine.stability_score[i]) == r["stability_score"]
            for i, (a, r) in enumerate(zip(rles, ref, strict=True))
        )
    return f"{len(mine)} masks (sam2: {len(ref)}); identical to sam2's: {'yes' if same else 'NO'}"


def _scoring_stages(ctx: PerfContext) -> list[Stage]:
    from ovpaint.pipelines.segmentation.proposals import ProposalSettings, mask_features

    n = 8 if ctx.quick else 100
    h, w = (240, 320) if ctx.quick else (768, 1024)
    data: dict = {}

    def inputs():
        """Built on first use, not when the stage list is collected."""
        if not data:
            rng = np.random.default_rng(1)
            masks = np.zeros((n, h, w), bool)
            boxes = np.zeros((n, 4), np.float32)
            for i in range(n):
                bw, bh = int(rng.integers(w // 10, w // 2)), int(rng.integers(h // 10, h // 2))
                x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                masks[i, y0 : y0 + bh, x0 : x0 + bw] = True
                boxes[i] = (x0, y0, x0 + bw - 1, y0 + bh - 1)
            data.update(image=scene(h, w), masks=masks, boxes=boxes)
        return data

    one = ProposalSettings(clip_batch=1, low_precision_cpu=False)
    batched = ProposalSettings()
    base = f"score {n} masks × 3 scales: one CLIP call per crop and scale (fp32)"

    def run(settings, precision):
        d = inputs()
        masks = (d["masks"], d["boxes"])
        return mask_features(clip_bundle(ctx), d["image"], masks, settings, precision=precision)

    def batched_in(precision):
        return run(batched, precision)

    def name_of(mode):
        return f"score {n} masks × 3 scales: " + (mode if "default" in mode else f"batched {mode}")

    return [
        Stage("proposals", base, lambda: run(one, "fp32"), repeats=1, warmup=0),
        *precision_modes(
            ctx,
            "proposals",
            "scoring",
            batched_in,
            {"fp32": "", "bf16": "", "int8": INT8_NOTE},
            name_of,
            repeats=1,
            warmup=0,
            baseline=base,
        ),
    ]


def _click_stage(ctx: PerfContext) -> list[Stage]:
    from ovpaint.pipelines.segmentation.interactive import ClickSession
    from ovpaint.pipelines.session import ImageSession

    h, w = (240, 320) if ctx.quick else (768, 1024)
    state: dict = {}
    rng = np.random.default_rng(2)

    def setup() -> None:
        bundle = sam2_bundle(ctx)
        session = ImageSession(scene(h, w))
        session.sam2_predictor(bundle)  # the cached embedding: not part of a click
        mask = np.zeros((h, w), bool)
        mask[h // 4 : h // 2, w // 4 : w // 2] = True
        models = FixedModels(ctx, sam2=lambda: bundle)
        state["clicks"] = ClickSession(session, models, initial_mask=mask)

    def click() -> None:
        x, y = float(rng.integers(0, w)), float(rng.integers(0, h))
        state["clicks"].add_point(x, y, positive=bool(rng.integers(0, 2)))

    stage = Stage(
        "proposals",
        "one click, cached embedding (median)",
        click,
        repeats=ctx.repeats(15),
        warmup=1,
        setup=setup,
        note="target < 80 ms",
    )
    return [stage]


def stages(ctx: PerfContext) -> list[Stage]:
    small = ctx.tiny or ctx.quick
    h, w = (192, 256) if small else (768, 1024)
    cache: dict = {}

    def image() -> np.ndarray:
        if "image" not in cache:
            cache["image"] = scene(h, w)
        return cache["image"]

    grid = 16 if small else 32
    worst = 8
    out = _amg_pair(
        ctx,
        f"{grid}×{grid} thesis thresholds",
        image,
        points_per_side=grid,
        pred_iou_thresh=0.88,
        stability_score_thresh=0.95,
    )
    out += _amg_pair(
        ctx,
        f"{worst}×{worst} thresholds 0 (all masks kept)",
        image,
        points_per_side=worst,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
    )
    out += _scoring_stages(ctx)
    out += _click_stage(ctx)
    return out
