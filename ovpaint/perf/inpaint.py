"""Inpainting stages: one SD2-inpainting UNet step with classifier-free guidance (stock fp32
vs the fastest CPU setting), the VAE at 512 px, and whole calls that show a small mask on a
4000×3000 photo costs about what it costs on a 512×512 image.

The real architectures (SD2-inpainting UNet and VAE configs) are built with random weights:
speed does not depend on weight values. ``--models tiny`` uses the tiny pipeline.
"""

from __future__ import annotations

import copy

import numpy as np

from ovpaint.perf import FixedModels, PerfContext, Stage, product_default

# stabilityai/stable-diffusion-2-inpainting unet/config.json and vae/config.json (architecture).
SD2_INPAINT_UNET = dict(
    sample_size=64,
    in_channels=9,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=(
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=1024,
    attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True,
)
SD_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    sample_size=512,
)


def _real_parts(cache: dict):
    if "unet" not in cache:
        import torch
        from diffusers import AutoencoderKL, UNet2DConditionModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            cache["unet"] = UNet2DConditionModel(**SD2_INPAINT_UNET).eval()
            cache["vae"] = AutoencoderKL(**SD_VAE).eval()
    return cache["unet"], cache["vae"]


def _fast_unet(cache: dict):
    """The product's CPU setting (``tune_for_cpu``): bf16 weights, channels-last memory, SDPA
    attention, fp32 in and out through its hooks."""
    if "unet_fast" not in cache:
        from ovpaint.models.inpaint_loader import make_bf16_unet

        unet, _ = _real_parts(cache)
        cache["unet_fast"] = make_bf16_unet(copy.deepcopy(unet))
    return cache["unet_fast"]


def _product_unet(cache: dict, precision: str):
    """The UNet as the ModelManager leaves it on a CPU: tuned (``tune_for_cpu``) when the
    measured choice is bf16, stock fp32 otherwise."""
    return _fast_unet(cache) if precision == "bf16" else _real_parts(cache)[0]


def _unet_step(unet_of):
    def run():
        import torch

        unet = unet_of()
        # classifier-free guidance: the unconditional and conditional halves as one batch of 2
        sample = torch.randn(2, 9, 64, 64)
        text = torch.randn(2, 77, 1024)
        with torch.no_grad():
            noise = unet(sample, 999, encoder_hidden_states=text).sample
            uncond, cond = noise.chunk(2)
            return uncond + 7.5 * (cond - uncond)

    return run


def _vae_roundtrip(cache: dict):
    def run():
        import torch

        _, vae = _real_parts(cache)
        with torch.no_grad():
            latents = vae.encode(torch.randn(1, 3, 512, 512)).latent_dist.sample()
            return vae.decode(latents).sample

    return run


# The OpenCLIP ViT-H text tower SD2 uses, as a transformers CLIPTextModel (architecture only).
SD2_TEXT_ENCODER = dict(
    vocab_size=49408,
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=23,
    num_attention_heads=16,
    max_position_embeddings=77,
    hidden_act="gelu",
    projection_dim=512,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
)


def _pipeline_bundle(ctx: PerfContext, cache: dict):
    """The tiny pipeline, or the full SD2-inpainting architecture (random weights)."""
    if "bundle" not in cache:
        from ovpaint.models import inpaint_loader

        if ctx.tiny or ctx.quick:
            cache["bundle"] = inpaint_loader.build_tiny(0)
        else:
            import torch
            from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline
            from transformers import CLIPTextConfig, CLIPTextModel

            unet, vae = _real_parts(cache)
            unet = copy.deepcopy(unet)  # the product's CPU tuning below must not touch the
            # fp32 UNet of the stock stage
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                text_encoder = CLIPTextModel(CLIPTextConfig(**SD2_TEXT_ENCODER)).eval()
            pipe = StableDiffusionInpaintPipeline(
                vae=vae,
                text_encoder=text_encoder,
                tokenizer=inpaint_loader.clip_tokenizer(),
                unet=unet,
                scheduler=DDIMScheduler(**inpaint_loader.scheduler_config()),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
            pipe.set_progress_bar_config(disable=True)
            cache["bundle"] = inpaint_loader.InpaintBundle(pipe, "sd2-inpaint-random", "sd", 512)
        if ctx.device.type == "cpu":
            # as the ModelManager does by default: the UNet in bf16 where measured faster
            inpaint_loader.tune_for_cpu(cache["bundle"], ctx.precision("unet"))
    return cache["bundle"]


def _whole_call(ctx: PerfContext, cache: dict, height: int, width: int, steps: int):
    from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, inpaint

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), bool)
    cy, cx = height // 2, width // 2
    mask[cy - 120 : cy + 120, cx - 150 : cx + 150] = True  # 300×240: fits a 512 crop with context
    settings = InpaintSettings(mode="replace", prompt="a red car", steps=steps, seed=0)
    manager = FixedModels(ctx, inpaint=lambda: _pipeline_bundle(ctx, cache))

    def run():
        return inpaint(image, mask, settings, manager=manager)

    return run


def stages(ctx: PerfContext) -> list[Stage]:
    cache = ctx.cache.setdefault("inpaint", {})
    rep = ctx.repeats
    steps = 2
    out = []
    if not (ctx.tiny or ctx.quick):
        out += [
            Stage(
                "inpaint",
                "UNet step 512² CFG, stock fp32",
                _unet_step(lambda: _real_parts(cache)[0]),
                repeats=rep(2),
                note="SD2-inpainting UNet, batch 2 (classifier-free guidance)",
            ),
            Stage(
                "inpaint",
                "UNet step 512² CFG, bf16 + channels-last + SDPA",
                _unet_step(lambda: _fast_unet(cache)),
                repeats=rep(2),
                baseline="UNet step 512² CFG, stock fp32",
            ),
            product_default(
                ctx,
                "inpaint",
                "UNet step 512² CFG, product default",
                "unet",
                lambda precision: _unet_step(lambda: _product_unet(cache, precision))(),
                repeats=rep(2),
                baseline="UNet step 512² CFG, stock fp32",
            ),
            Stage("inpaint", "VAE encode + decode 512²", _vae_roundtrip(cache), repeats=rep(2)),
        ]
    name_small = f"whole call, 512×512 image, 300×240 mask, {steps} steps"
    out += [
        Stage("inpaint", name_small, _whole_call(ctx, cache, 512, 512, steps), repeats=rep(3)),
        Stage(
            "inpaint",
            f"whole call, 4000×3000 image, same mask, {steps} steps",
            _whole_call(ctx, cache, 3000, 4000, steps),
            repeats=rep(3),
            baseline=name_small,
            note="speed-up below 1 = extra cost of the large image (target ≥ 0.77, i.e. "
            "≤ 1.3× the small image)",
        ),
    ]
    return out
