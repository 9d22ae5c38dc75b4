"""LaMa stages (group "inpaint"): the big-lama generator at 512² as the product runs it vs a
plain fp32 forward of the same modules, and whole removals of a 300×240 hole: LaMa on a
4000×3000 photo vs a 512×512 image (cost independent of the photo's size) and vs Stable
Diffusion 2 with its default CPU steps.

Random weights (speed does not depend on their values); BatchNorm statistics are drawn so
eval-mode normalisation does real work. ``--models tiny`` / ``--quick`` use the tiny models.
"""

from __future__ import annotations

import copy

import numpy as np

from ovpaint.perf import FixedModels, PerfContext, Stage

HOLE = (240, 300)  # height, width


def _random_generator(tiny: bool):
    import torch

    from ovpaint.models.lama import LamaConfig, LamaGenerator
    from ovpaint.models.lama_loader import TINY_CONFIG

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator = LamaGenerator(TINY_CONFIG if tiny else LamaConfig()).eval()
        with torch.no_grad():
            for module in generator.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.2, 0.2)
                    module.running_var.uniform_(0.5, 2.0)
    return generator


def _generators(ctx: PerfContext, cache: dict):
    """(plain, product): the same weights, the product's copy prepared for inference."""
    if "plain" not in cache:
        plain = _random_generator(ctx.tiny or ctx.quick).to(ctx.device)
        cache["plain"] = plain
        cache["product"] = copy.deepcopy(plain).prepare_for_inference()
    return cache["plain"], cache["product"]


def _bundle(ctx: PerfContext, cache: dict):
    from ovpaint.models.lama_loader import LamaBundle

    if "bundle" not in cache:
        cache["bundle"] = LamaBundle(_generators(ctx, cache)[1], "big-lama-random")
    return cache["bundle"]


def _forward(ctx: PerfContext, cache: dict, product: bool):
    side = 128 if ctx.quick else 512

    def run():
        import torch

        from ovpaint.models.lama import predict

        plain, prepared = _generators(ctx, cache)
        image = torch.rand(1, 3, side, side, device=ctx.device)
        mask = torch.zeros(1, 1, side, side, device=ctx.device)
        mask[..., side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 1
        with torch.inference_mode():
            if product:  # as the pipeline calls it: the layer callback included
                return predict(prepared, image, mask, lambda layer: None).inpainted
            x = torch.cat([image * (1 - mask), mask], dim=1)
            return plain.model(x)

    return run


def _photo(height: int, width: int):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), bool)
    cy, cx = height // 2, width // 2
    mask[cy - HOLE[0] // 2 : cy + HOLE[0] // 2, cx - HOLE[1] // 2 : cx + HOLE[1] // 2] = True
    return image, mask


def _removal(ctx: PerfContext, cache: dict, height: int, width: int, engine: str, sd_bundle=None):
    from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, inpaint

    image, mask = _photo(height, width)
    models = FixedModels(ctx, lama=lambda: _bundle(ctx, cache), inpaint=sd_bundle)
    settings = InpaintSettings(mode="remove", engine=engine, seed=0)

    def run():
        return inpaint(image, mask, settings, manager=models)

    return run


def stages(ctx: PerfContext) -> list[Stage]:
    from ovpaint.perf.inpaint import _pipeline_bundle
    from ovpaint.pipelines.inpainting.settings import CPU_STEPS, GPU_STEPS

    cache = ctx.cache.setdefault("lama", {})
    sd_cache = ctx.cache.setdefault("inpaint", {})
    rep = ctx.repeats
    side = 128 if ctx.quick else 512
    steps = CPU_STEPS if ctx.device.type == "cpu" else GPU_STEPS
    plain = f"LaMa generator {side}², plain fp32 forward"
    small = "LaMa remove 300×240 hole, 512×512 image"
    sd = f"SD2 remove 300×240 hole, 4000×3000 photo, {steps} steps (default)"
    big, big_vs_sd = (
        "LaMa remove 300×240 hole, 4000×3000 photo",
        "LaMa remove 300×240 hole, 4000×3000 photo (vs SD2)",
    )
    return [
        Stage("inpaint", plain, _forward(ctx, cache, False), repeats=rep(3)),
        Stage(
            "inpaint",
            f"LaMa generator {side}², product forward (channels-last decoder)",
            _forward(ctx, cache, True),
            repeats=rep(3),
            baseline=plain,
            paired=True,
            note="same weights and modules; target ≥ 1",
        ),
        Stage("inpaint", small, _removal(ctx, cache, 512, 512, "lama"), repeats=rep(3)),
        Stage(
            "inpaint",
            big,
            _removal(ctx, cache, 3000, 4000, "lama"),
            repeats=rep(3),
            baseline=small,
            paired=True,
            note="speed-up below 1 = extra cost of the large photo (target ≥ 0.77, i.e. ≤ 1.3×)",
        ),
        Stage(
            "inpaint",
            sd,
            _removal(ctx, cache, 3000, 4000, "sd", lambda: _pipeline_bundle(ctx, sd_cache)),
            repeats=1,
            warmup=0,
            setup=lambda: _pipeline_bundle(ctx, sd_cache),
            note="one full call: text encoder, VAE and every denoising step",
        ),
        Stage(
            "inpaint",
            big_vs_sd,
            _removal(ctx, cache, 3000, 4000, "lama"),
            repeats=rep(3),
            baseline=sd,
            note="target ≥ 30",
        ),
    ]
