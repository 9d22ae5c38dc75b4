"""Inpainting: remove, replace or restyle a masked region (METHOD.md §5).

Seamless at any image size:

1. The mask is dilated (``dilate_px``); its connected regions are grouped into crops (regions
   far apart get crops of their own), each crop enlarged by context and made as square as the
   image allows.
2. Each crop runs at the model's native resolution (long side = resolution, multiples of 8)
   and the result is scaled back to the crop's size.
3. The generated pixels' colour and brightness are matched to the original in a ring around
   the mask, so the patch does not stand out.
4. The patch is pasted through an alpha that is 1 on the mask and ramps to 0 across the
   dilation band; it is exactly 0 outside the dilated mask, so every pixel there is
   byte-identical to the input.

A model-free fallback (OpenCV Telea or Navier-Stokes) is used with ``engine="telea"|"ns"``, or
when no inpainting model is installed and ``allow_fallback`` is set.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image

from ovpaint.core.errors import BadInput, Cancelled, ModelUnavailable, OutOfMemory
from ovpaint.core.jobs import CancelToken, Preview, Progress
from ovpaint.core.masks import bbox, feather, grow
from ovpaint.pipelines.inpainting.preview import PREVIEW_EVERY_STEPS, latents_to_rgb

MODES = ("remove", "replace", "restyle")
ENGINES = ("sd", "telea", "ns")
DEFAULT_STRENGTH = {"remove": 1.0, "replace": 1.0, "restyle": 0.7}
SCHEDULERS = ("default", "ddim", "euler", "euler_a", "dpm++", "pndm")

_QUALITY = "highly detailed, photorealistic, natural lighting, sharp focus"
_NEGATIVE = (
    "blurry, low quality, distorted, deformed, artifacts, watermark, text, "
    "signature, frame, border, seam, oversaturated"
)
_REMOVE_PROMPT = "empty background, seamless continuation of the surrounding scene"


@dataclass
class InpaintSettings:
    """How to inpaint. ``prompt`` is the user's words; when ``negative_prompt`` is None the
    pipeline expands both (see :func:`expand_prompt`). A front-end that shows the expanded
    prompts for editing passes them back with ``negative_prompt`` set, and they are used as
    they are."""

    mode: str = "remove"
    prompt: str = ""
    negative_prompt: str | None = None
    removed_class: str | None = None
    steps: int = 50
    guidance: float = 7.5
    strength: float | None = None  # None: 1.0 for remove/replace, 0.7 for restyle
    seed: int | None = None  # None: a random seed, reported in the result
    scheduler: str = "default"
    variants: int = 1
    dilate_px: int = 8
    feather_px: int | None = None  # width of the soft edge; None = the dilation (never wider)
    context: float = 0.4  # crop margin as a fraction of the masked region's size
    min_context_px: int = 32
    ring_px: int = 16
    color_match: bool = True
    engine: str = "sd"
    allow_fallback: bool = False  # use the model-free fill when no model is installed

    def validated(self) -> InpaintSettings:
        if self.mode not in MODES:
            raise BadInput(f"Unknown mode '{self.mode}'. Use one of: {', '.join(MODES)}.")
        if self.engine not in ENGINES:
            raise BadInput(f"Unknown engine '{self.engine}'. Use one of: {', '.join(ENGINES)}.")
        if self.scheduler not in SCHEDULERS:
            raise BadInput(
                f"Unknown scheduler '{self.scheduler}'. Use one of: {', '.join(SCHEDULERS)}."
            )
        if not 1 <= int(self.steps) <= 500:
            raise BadInput("Steps must be between 1 and 500.")
        if not 1 <= int(self.variants) <= 16:
            raise BadInput("Variants must be between 1 and 16.")
        strength = DEFAULT_STRENGTH[self.mode] if self.strength is None else float(self.strength)
        if not 0.0 < strength <= 1.0:
            raise BadInput("Strength must be in (0, 1].")
        if self.dilate_px < 0 or (self.feather_px is not None and self.feather_px < 0):
            raise BadInput("Mask dilation and feather must be 0 or more pixels.")
        if self.mode in ("replace", "restyle") and not self.prompt.strip() and self.engine == "sd":
            raise BadInput(f"Mode '{self.mode}' needs a prompt saying what to paint.")
        seed = self.seed if self.seed is not None else random.randrange(2**31)
        return replace(
            self,
            strength=strength,
            seed=int(seed),
            steps=int(self.steps),
            variants=int(self.variants),
        )


@dataclass
class InpaintResult:
    images: list[np.ndarray]  # one H×W×3 uint8 per variant
    seeds: list[int]
    prompt: str
    negative_prompt: str
    engine: str
    messages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        return self.images[0]


def expand_prompt(mode: str, user_text: str, removed_class: str | None = None) -> tuple[str, str]:
    """The user's words as a full prompt and a default negative prompt (shown, editable)."""
    if mode not in MODES:
        raise BadInput(f"Unknown mode '{mode}'. Use one of: {', '.join(MODES)}.")
    text = " ".join((user_text or "").split())
    negative = _NEGATIVE
    if mode == "remove":
        prompt = f"{text}, {_REMOVE_PROMPT}" if text else _REMOVE_PROMPT
        if removed_class:
            negative = f"{removed_class}, object, person, {negative}"
        else:
            negative = f"object, person, {negative}"
        return f"{prompt}, {_QUALITY}", negative
    if mode == "restyle":
        return f"{text}, same composition, {_QUALITY}", negative
    return f"{text}, {_QUALITY}", negative


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Crop:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def slice(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def overlaps(self, other: Crop) -> bool:
        return not (
            self.x1 <= other.x0 or other.x1 <= self.x0 or self.y1 <= other.y0 or other.y1 <= self.y0
        )

    def union(self, other: Crop) -> Crop:
        return Crop(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )


def _expand_to_square(x0: int, y0: int, x1: int, y1: int, width: int, height: int) -> Crop:
    """Grow the shorter side towards a square, staying inside the image."""
    w, h = x1 - x0, y1 - y0
    side = min(max(w, h), width if w >= h else height)
    if w < side:
        extra = min(side, width) - w
        x0 = max(0, x0 - extra // 2)
        x1 = min(width, x0 + w + extra)
        x0 = max(0, x1 - (w + extra))
    if h < side:
        extra = min(side, height) - h
        y0 = max(0, y0 - extra // 2)
        y1 = min(height, y0 + h + extra)
        y0 = max(0, y1 - (h + extra))
    return Crop(x0, y0, x1, y1)


def plan_crops(region: np.ndarray, settings: InpaintSettings) -> list[Crop]:
    """Crops (with context) covering every connected part of ``region``; parts whose crops
    overlap are merged, parts far apart stay separate."""
    height, width = region.shape
    box = bbox(region)
    if box is None:
        return []
    bx0, by0, bx1, by1 = box
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(
        region[by0:by1, bx0:bx1].astype(np.uint8), 8
    )
    crops: list[Crop] = []
    for i in range(1, count):
        x, y, w, h = (int(v) for v in stats[i, :4])
        x, y = x + bx0, y + by0
        margin = max(settings.min_context_px, int(settings.context * max(w, h)))
        crops.append(
            Crop(
                max(0, x - margin),
                max(0, y - margin),
                min(width, x + w + margin),
                min(height, y + h + margin),
            )
        )
    merged = True
    while merged:
        merged = False
        for i in range(len(crops)):
            for j in range(i + 1, len(crops)):
                if crops[i].overlaps(crops[j]):
                    crops[i] = crops[i].union(crops.pop(j))
                    merged = True
                    break
            if merged:
                break
    return [_expand_to_square(c.x0, c.y0, c.x1, c.y1, width, height) for c in crops]


def model_size(crop: Crop, resolution: int) -> tuple[int, int]:
    """(width, height) at the model's resolution: long side = resolution, multiples of 8."""
    scale = resolution / max(crop.width, crop.height)
    w = max(64, int(round(crop.width * scale / 8)) * 8)
    h = max(64, int(round(crop.height * scale / 8)) * 8)
    return w, h


def _paste_alpha_dense(
    mask: np.ndarray, dilate_px: int, feather_px: int
) -> tuple[np.ndarray, np.ndarray]:
    region = grow(mask, dilate_px) if dilate_px > 0 else mask.copy()
    if feather_px <= 0:
        return region, region.astype(np.float32)
    alpha = feather(region, feather_px)
    alpha[mask] = 1.0
    return region, alpha


def paste_alpha(
    mask: np.ndarray, dilate_px: int, feather_px: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(dilated mask, alpha): alpha is 1 on the mask, ramps down over ``feather_px`` (default:
    the dilation) towards the edge of the dilated mask and is exactly 0 outside it. The ramp
    starts from the dilated edge, so a feather wider than the dilation cannot reach outside.

    The morphology runs only in a window around the mask, so a small mask on a 12-megapixel
    photo costs about what it costs on a small image.
    """
    box = bbox(mask)
    region = np.zeros(mask.shape, bool)
    alpha = np.zeros(mask.shape, np.float32)
    if box is None:
        return region, alpha
    pad = max(0, dilate_px) + 2
    x0, y0 = max(0, box[0] - pad), max(0, box[1] - pad)
    x1, y1 = min(mask.shape[1], box[2] + pad), min(mask.shape[0], box[3] + pad)
    window = (slice(y0, y1), slice(x0, x1))
    feather_px = dilate_px if feather_px is None else feather_px
    region[window], alpha[window] = _paste_alpha_dense(mask[window], dilate_px, feather_px)
    return region, alpha


def match_colors(
    generated: np.ndarray, original: np.ndarray, region: np.ndarray, ring_px: int
) -> np.ndarray:
    """Shift and scale each channel of ``generated`` so that, in a ring around ``region``,
    its mean and spread match the original's. Returns float32."""
    ring = grow(region, ring_px) & ~region
    gen = generated.astype(np.float32)
    if ring.sum() < 16:
        return gen
    orig = original.astype(np.float32)
    g_ring, o_ring = gen[ring], orig[ring]
    g_mean, o_mean = g_ring.mean(0), o_ring.mean(0)
    g_std, o_std = g_ring.std(0) + 1e-3, o_ring.std(0) + 1e-3
    gain = np.clip(o_std / g_std, 0.5, 2.0)
    return (gen - g_mean) * gain + o_mean


def composite(base: np.ndarray, patch: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend ``patch`` into ``base`` through ``alpha``; where alpha is 0 the base bytes stay."""
    out = base.copy()
    inside = alpha > 0
    a = alpha[inside][:, None]
    blended = a * np.asarray(patch, np.float32)[inside] + (1.0 - a) * base[inside]
    out[inside] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def _validate_inputs(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInput("Inpainting needs an H×W×3 8-bit RGB image (keep alpha aside).")
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise BadInput(
            f"The mask is {mask.shape[1]}×{mask.shape[0]} but the image is "
            f"{image.shape[1]}×{image.shape[0]}."
        )
    return image, mask.astype(bool)


# --------------------------------------------------------------------------- fallback
def fallback_inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    method: str = "telea",
    *,
    radius: int = 5,
    dilate_px: int = 4,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> InpaintResult:
    """Instant model-free removal (OpenCV Telea or Navier-Stokes), same paste guarantees."""
    t0 = time.perf_counter()
    image, mask = _validate_inputs(image, mask)
    if cancel:
        cancel.check()
    if not mask.any():
        return InpaintResult(
            [image.copy()], [0], "", "", method, ["The mask is empty: nothing to inpaint."]
        )
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}.get(method)
    if flags is None:
        raise BadInput(f"Unknown fallback method '{method}'. Use telea or ns.")
    if progress:
        progress.stage("fill", total=1)
    region, alpha = paste_alpha(mask, dilate_px)
    out = image.copy()
    for crop in plan_crops(region, InpaintSettings(min_context_px=2 * radius + 4)):
        ys, xs = crop.slice()
        filled = cv2.inpaint(
            np.ascontiguousarray(image[ys, xs]),
            region[ys, xs].astype(np.uint8) * 255,
            radius,
            flags,
        )
        out[ys, xs] = composite(out[ys, xs], filled, alpha[ys, xs])
        if cancel:
            cancel.check()
    if progress:
        progress.update(1, 1)
    return InpaintResult([out], [0], "", "", method, timings={"total": time.perf_counter() - t0})


# --------------------------------------------------------------------------- diffusion
def _set_scheduler(bundle, name: str) -> None:
    """The scheduler for this call, built from the model's own (the pipeline is shared: a
    previous call's choice must not stick)."""
    base = bundle.default_scheduler
    if name == "default":
        bundle.pipe.scheduler = base
        return
    import diffusers

    classes = {
        "ddim": diffusers.DDIMScheduler,
        "euler": diffusers.EulerDiscreteScheduler,
        "euler_a": diffusers.EulerAncestralDiscreteScheduler,
        "dpm++": diffusers.DPMSolverMultistepScheduler,
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


def _generate(
    bundle,
    crop_rgb: np.ndarray,
    crop_region: np.ndarray,
    size: tuple[int, int],
    settings: InpaintSettings,
    prompt: str,
    negative: str,
    seed: int,
    on_step: Callable[..., None],
) -> np.ndarray:
    import torch

    w, h = size
    image = Image.fromarray(crop_rgb).resize((w, h), Image.Resampling.LANCZOS)
    mask_image = Image.fromarray(crop_region.astype(np.uint8) * 255).resize(
        (w, h), Image.Resampling.NEAREST
    )
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def callback(pipe, step, timestep, kwargs):
        on_step(step + 1, kwargs.get("latents"))
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
    if generated.shape[:2] != crop_rgb.shape[:2]:
        generated = np.asarray(
            Image.fromarray(generated).resize(
                (crop_rgb.shape[1], crop_rgb.shape[0]), Image.Resampling.LANCZOS
            )
        )
    return generated


def _where(region: int, regions: int, variant: int, variants: int) -> str:
    parts = [f"region {region}/{regions}"] if regions > 1 else []
    parts += [f"variant {variant}/{variants}"] if variants > 1 else []
    return ", ".join(parts)


def crop_preview(latents, crop: Crop, alpha: np.ndarray) -> Preview:
    """The unfinished result of ``crop`` from its latents, shown through the paste alpha."""
    rgb = latents_to_rgb(latents)
    ys, xs = crop.slice()
    small = cv2.resize(alpha[ys, xs], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
    return Preview(rgb, (crop.x0, crop.y0, crop.x1, crop.y1), np.rint(small * 255).astype(np.uint8))


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    settings: InpaintSettings | None = None,
    *,
    manager=None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> InpaintResult:
    """Inpaint ``image`` (H×W×3 uint8) inside ``mask`` (H×W bool). Never modifies its inputs;
    raises :class:`Cancelled` (and returns nothing) when cancelled."""
    t_start = time.perf_counter()
    settings = (settings or InpaintSettings()).validated()
    image, mask = _validate_inputs(image, mask)
    cancel = cancel or CancelToken()
    if not mask.any():
        return InpaintResult(
            [image.copy()],
            [settings.seed],
            "",
            "",
            settings.engine,
            ["The mask is empty: nothing to inpaint."],
        )
    if settings.engine != "sd":
        return fallback_inpaint(image, mask, settings.engine, progress=progress, cancel=cancel)
    if manager is None:
        raise ModelUnavailable("No model manager was given for Stable Diffusion inpainting.")
    try:
        manager.check_available("inpaint")
    except ModelUnavailable as exc:
        if not settings.allow_fallback:
            raise
        result = fallback_inpaint(image, mask, "telea", progress=progress, cancel=cancel)
        result.messages.insert(0, f"{exc} Used the instant model-free fill instead.")
        return result

    if settings.negative_prompt is None:
        prompt, negative = expand_prompt(settings.mode, settings.prompt, settings.removed_class)
    else:
        prompt, negative = settings.prompt, settings.negative_prompt
    region, alpha = paste_alpha(mask, settings.dilate_px, settings.feather_px)
    messages: list[str] = []
    timings: dict[str, float] = {}
    from ovpaint.models.device import is_out_of_memory

    with manager.use("inpaint") as bundle:
        _set_scheduler(bundle, settings.scheduler)
        crops = plan_crops(region, settings)
        seeds = [settings.seed + i for i in range(settings.variants)]
        steps_per_crop = max(1, int(settings.steps * settings.strength))
        total = steps_per_crop * len(crops) * len(seeds)
        if progress:
            progress.stage("step", total=total)
        done = 0
        images = []
        for seed in seeds:
            out = image.copy()
            for number, crop in enumerate(crops, start=1):
                cancel.check()
                ys, xs = crop.slice()
                size = model_size(crop, bundle.resolution)
                base_done = done
                where = _where(number, len(crops), seed - settings.seed + 1, len(seeds))

                def on_step(step, latents=None, base_done=base_done, crop=crop, where=where):
                    if progress:
                        preview = None
                        if latents is not None and step % PREVIEW_EVERY_STEPS == 0:
                            preview = crop_preview(latents, crop, alpha)
                        done_now = min(total, base_done + step)
                        progress.update(done_now, total, where, preview=preview)
                    cancel.check()  # raising here stops the denoising loop at once

                t0 = time.perf_counter()
                generated = run_with_memory_fallbacks(
                    lambda crop=crop, ys=ys, xs=xs, size=size, seed=seed, on_step=on_step: (
                        _generate(
                            bundle,
                            image[ys, xs],
                            region[ys, xs],
                            size,
                            settings,
                            prompt,
                            negative,
                            seed,
                            on_step,
                        )
                    ),
                    bundle,
                    messages,
                    progress,
                    is_out_of_memory,
                )
                timings["generate"] = timings.get("generate", 0.0) + time.perf_counter() - t0
                done = base_done + steps_per_crop
                if settings.color_match:
                    generated = match_colors(
                        generated, image[ys, xs], region[ys, xs], settings.ring_px
                    )
                out[ys, xs] = composite(out[ys, xs], generated, alpha[ys, xs])
            images.append(out)
    if len(crops) > 1:
        messages.append(f"{len(crops)} separate regions were inpainted one by one.")
    timings["total"] = time.perf_counter() - t_start
    return InpaintResult(images, seeds, prompt, negative, "sd", messages, timings)


__all__ = [
    "Cancelled",
    "InpaintResult",
    "InpaintSettings",
    "expand_prompt",
    "fallback_inpaint",
    "inpaint",
    "plan_crops",
    "paste_alpha",
    "match_colors",
    "composite",
]
