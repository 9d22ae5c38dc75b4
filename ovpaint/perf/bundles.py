"""What several stage modules share: the synthetic scene and the models they time (real
architectures with random weights, or the tiny ones), each built once per run."""

from __future__ import annotations

import numpy as np

from ovpaint.perf import PerfContext

PERF_CLIP = "ViT-B-16-quickgelu"  # the real architectures, with random weights
PERF_SAM2 = "configs/sam2.1/sam2.1_hiera_t.yaml"


def scene(h: int, w: int) -> np.ndarray:
    """A synthetic photo-like scene: smooth background, a few filled shapes, mild noise."""
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([90 + 60 * yy / h, 120 + 40 * xx / w, 160 - 50 * yy / h], -1)
    for _ in range(8):
        color = rng.integers(0, 255, 3).tolist()
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(h // 12, h // 5))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, color, -1)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, -1)
    img = img + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def sam2_bundle(ctx: PerfContext):
    """SAM2.1 hiera-tiny at 1024 px with random weights (the tiny model when quick/tiny)."""
    key = ("sam2-perf", ctx.tiny or ctx.quick)
    if key not in ctx.cache:
        import torch

        from ovpaint.models import sam2_loader

        if ctx.tiny or ctx.quick:
            bundle = sam2_loader.build_tiny(0)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = sam2_loader._build(PERF_SAM2, None, torch.device("cpu"))
            bundle = sam2_loader.Sam2Bundle(model.eval(), "sam2.1-hiera-tiny (random)")
        bundle.to_device(ctx.device)
        ctx.cache[key] = bundle
    return ctx.cache[key]


def clip_bundle(ctx: PerfContext):
    """CLIP ViT-B/16 with random weights (the tiny model with ``--models tiny``)."""
    key = ("clip-perf", ctx.tiny)
    if key not in ctx.cache:
        import torch

        from ovpaint.models import clip_loader

        if ctx.tiny:
            bundle = clip_loader.build_tiny(0)
        else:
            import open_clip

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = open_clip.create_model(PERF_CLIP, pretrained=None)
            bundle = clip_loader.ClipBundle(
                model.eval(), clip_loader.tokenizer(), "clip-vit-b16 (random)"
            )
        bundle.to_device(ctx.device)
        ctx.cache[key] = bundle
    return ctx.cache[key]
