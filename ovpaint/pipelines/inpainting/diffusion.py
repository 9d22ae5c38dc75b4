"""Stable Diffusion inpainting (diffusers): one crop at the model's resolution, with per-step
progress and cancel, schedulers chosen per call, and lighter settings after out-of-memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from PIL import Image

from ovpaint.core.errors import OutOfMemory
from ovpaint.core.jobs import Progress
from ovpaint.pipelines.inpainting.filler import SessionContext
from ovpaint.pipelines.inpainting.geometry import Crop, model_size


def set_scheduler(bundle, name: str) -> None:
    """The scheduler for this call, built from the model's own (the pipeline is shared: a
    previous call's choice must not stick). ``dpm++`` is DPM-Solver++ 2M."""
    base = bundle.default_scheduler
    if name == "default":
        bundle.pipe.scheduler = base
        return
    import diffusers

    if name == "dpm++":
        bundle.pipe.scheduler = diffusers.DPMSolverMultistepScheduler.from_config(
            base.config, algorithm_type="dpmsolver++", solver_order=2
        )
        return
    classes = {
        "ddim": diffusers.DDIMScheduler,
        "euler": diffusers.EulerDiscreteScheduler,
        "euler_a": diffusers.EulerAncestralDiscreteScheduler,
        "pndm": diffusers.PNDMScheduler,
    }
    bundle.pipe.scheduler = classes[name].from_config(base.config)


def _lighter_settings(pipe) -> list[tuple[str, Callable[[], None]]]:
    """Memory savers to try, lightest cost first, after an out-of-memory error."""
    steps = [("attention slicing", lambda: pipe.enable_attention_slicing())]
    if hasattr(pipe, "vae") and hasattr(pipe.vae, "enable_tiling"):
        steps.append(("VAE tiling", lambda: (pipe.vae.enable_tiling(), pipe.vae.enable_slicing())))
    return steps


def run_with_memory_fallbacks(
    call: Callable[[], np.ndarray],
    bundle,
    messages: list[str],
    progress: Progress | None,
    is_oom: Callable[[BaseException], bool],
) -> np.ndarray:
    """Run ``call``; on out-of-memory retry with each lighter setting, then on the CPU,
    telling the user each step. The savers stay on for later calls (memory that was short once
    is short again); the CPU move lasts until the manager places the model again, in its
    loaded dtype (:meth:`InpaintBundle.to_device`)."""
    import torch

    fallbacks = list(_lighter_settings(bundle.pipe))
    if bundle.device.type != "cpu":

        def to_cpu():
            bundle.pipe.to(torch.device("cpu"), torch.float32)

        fallbacks.append(("the CPU (slow)", to_cpu))
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - only memory errors are retried
            if not is_oom(exc):
                raise
            if bundle.device.type == "cuda":
                torch.cuda.empty_cache()
            if not fallbacks:
                raise OutOfMemory(
                    "Out of memory even on the lightest settings. Use a smaller "
                    "mask or image, fewer variants, or close other programs."
                ) from exc
            name, apply = fallbacks.pop(0)
            apply()
            message = f"Out of memory: retrying with {name}."
            messages.append(message)
            if progress:
                progress.stage("retry", message=message)


def generate(
    bundle,
    rgb: np.ndarray,
    hole: np.ndarray,
    settings,
    prompt: str,
    negative: str,
    seed: int,
    on_step: Callable[..., None],
) -> np.ndarray:
    """One crop through the pipeline at the model's resolution, scaled back to its size.
    ``on_step(step, latents)`` after each denoising step."""
    import torch

    w, h = model_size(Crop(0, 0, rgb.shape[1], rgb.shape[0]), bundle.resolution)
    image = Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS)
    mask_image = Image.fromarray(hole.astype(np.uint8) * 255).resize(
        (w, h), Image.Resampling.NEAREST
    )
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def callback(pipe, step, timestep, kwargs):
        on_step(step + 1, kwargs.get("latents"))  # the latents: for a preview
        return kwargs

    with torch.no_grad():
        out = bundle.pipe(
            prompt=prompt,
            negative_prompt=negative or None,
            image=image,
            mask_image=mask_image,
            height=h,
            width=w,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            strength=settings.strength,
            generator=generator,
            output_type="np",
            callback_on_step_end=callback,
        )
    generated = np.clip(out.images[0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if generated.shape[:2] != rgb.shape[:2]:
        generated = np.asarray(
            Image.fromarray(generated).resize(
                (rgb.shape[1], rgb.shape[0]), Image.Resampling.LANCZOS
            )
        )
    return generated


def denoising_steps(settings) -> int:
    """Steps the pipeline actually runs: img2img-style strength skips the first ones."""
    return max(1, int(settings.steps * settings.strength))


class DiffusionFiller:
    unit_name = "step"
    uses_seed = True

    def __init__(self, bundle, ctx: SessionContext, settings) -> None:
        self.bundle = bundle
        self.ctx = ctx
        self.settings = settings
        self.units = denoising_steps(settings)

    def fill(
        self, rgb: np.ndarray, hole: np.ndarray, seed: int, on_unit: Callable[[int], None]
    ) -> np.ndarray:
        from ovpaint.models.device import is_out_of_memory

        ctx = self.ctx
        return run_with_memory_fallbacks(
            lambda: generate(
                self.bundle, rgb, hole, self.settings, ctx.prompt, ctx.negative, seed, on_unit
            ),
            self.bundle,
            ctx.messages,
            ctx.progress,
            is_out_of_memory,
        )


@contextmanager
def diffusion_filler(
    ctx: SessionContext, strength: float | None = None
) -> Iterator[DiffusionFiller]:
    """The inpainting model held for the session, its scheduler and step count chosen for the
    device it computes on (``strength`` overrides the settings', for a refinement pass)."""
    measure = getattr(ctx.manager, "measure_for", None)  # the UNet's precision, when the load
    if measure is not None:  # will ask for it: measured here with progress, not silently in it
        measure("inpaint", progress=ctx.progress)
    with ctx.manager.use("inpaint") as bundle:
        settings = ctx.settings.for_device(bundle.device.type)
        if strength is not None:
            settings = replace(settings, strength=strength)
        set_scheduler(bundle, settings.scheduler)
        yield DiffusionFiller(bundle, ctx, settings)


def session(ctx: SessionContext):
    return diffusion_filler(ctx)
