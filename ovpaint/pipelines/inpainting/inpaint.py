"""Inpainting: remove, replace or restyle a masked region (METHOD.md §5, §7).

Seamless at any image size, whatever the engine (:mod:`.engines`: LaMa, Stable Diffusion,
OpenCV):

1. For remove, the mask is grown a little (``grow_px``: the object's rim and shadow), then
   dilated (``dilate_px``) into the band the result is blended over. Its connected regions are
   grouped into crops (regions far apart get crops of their own), each with context around it.
2. The engine fills each crop: LaMa at the crop's own resolution up to a bound, Stable
   Diffusion at its native resolution, scaled back.
3. The fill's colour and brightness are matched to the original in a ring around the region.
4. The result is returned as patches: the final pixels over each region's box, blended through
   an alpha that is 1 on the mask and ramps to 0 across the band. Every pixel outside the
   dilated mask is byte-identical to the input; nothing full-size is copied unless a caller
   asks for whole images (:attr:`InpaintResult.images`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ovpaint.core.errors import BadInput, Cancelled
from ovpaint.core.jobs import CancelToken, Preview, Progress
from ovpaint.core.masks import grow
from ovpaint.pipelines.inpainting.diffusion import run_with_memory_fallbacks
from ovpaint.pipelines.inpainting.engines import (
    ENGINES,
    Filler,
    InpaintEngine,
    SessionContext,
    choose_engine,
)
from ovpaint.pipelines.inpainting.geometry import (
    Crop,
    CropPlan,
    Patch,
    apply_patches,
    composite,
    make_patch,
    match_colors,
    merge_patches,
    model_size,
    paste_alpha,
    plan_regions,
)
from ovpaint.pipelines.inpainting.preview import PREVIEW_EVERY_STEPS, latents_to_rgb
from ovpaint.pipelines.inpainting.settings import (
    DEFAULT_STRENGTH,
    MODES,
    SCHEDULERS,
    InpaintSettings,
)

_QUALITY = "highly detailed, photorealistic, natural lighting, sharp focus"
_NEGATIVE = (
    "blurry, low quality, distorted, deformed, artifacts, watermark, text, "
    "signature, frame, border, seam, oversaturated"
)
_REMOVE_PROMPT = "empty background, seamless continuation of the surrounding scene"


@dataclass
class InpaintResult:
    """One list of patches per variant, over ``base`` (the input, not copied)."""

    base: np.ndarray
    variants: list[list[Patch]]
    seeds: list[int]
    prompt: str
    negative_prompt: str
    engine: str
    messages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def images(self) -> list[np.ndarray]:
        """Each variant as a whole image (H×W×3 uint8, a new array)."""
        return [apply_patches(self.base, patches) for patches in self.variants]

    @property
    def image(self) -> np.ndarray:
        return apply_patches(self.base, self.variants[0])

    def layer_patches(self) -> list[Patch | None]:
        """Each variant's patches as one (the union of their boxes), e.g. for an image layer."""
        return [merge_patches(patches) for patches in self.variants]


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


def plan_crops(region: np.ndarray, settings: InpaintSettings) -> list[Crop]:
    """The crops the model sees for ``region`` (see :func:`plan_regions`)."""
    context = ENGINES["sd"].context if settings.context is None else settings.context
    return [p.crop for p in plan_regions(region, context, settings.min_context_px)]


def changed_region(mask: np.ndarray, settings: InpaintSettings) -> np.ndarray:
    """Where a result may differ from the input: the mask grown (remove) and dilated. Every
    pixel outside it is byte-identical to the input."""
    settings = settings.validated()
    hole = grow(mask, settings.grow_px) if settings.grow_px else np.asarray(mask, bool)
    return paste_alpha(hole, settings.dilate_px, settings.feather_px)[0]


def _validate_inputs(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInput(
            "Inpainting needs an H×W×3 8-bit RGB image (convert grey, 16-bit or RGBA images "
            "first; ovpaint's image loader does, keeping the alpha aside)."
        )
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise BadInput(
            f"The mask is {mask.shape[1]}×{mask.shape[0]} but the image is "
            f"{image.shape[1]}×{image.shape[0]}."
        )
    return image, mask.astype(bool, copy=False)


def _prompts(settings: InpaintSettings, engine: InpaintEngine) -> tuple[str, str]:
    if not (engine.uses_prompt or settings.refine_strength > 0):
        return "", ""
    if settings.negative_prompt is None:
        return expand_prompt(settings.mode, settings.prompt, settings.removed_class)
    return settings.prompt, settings.negative_prompt


class _Meter:
    """Progress over all model calls of a job: units done ("step 14/50"), a message naming
    the engine and region, and every few denoising steps a preview of the crop."""

    def __init__(self, progress: Progress | None, engine: InpaintEngine, filler: Filler, calls):
        self.progress = progress
        self.filler = filler
        self.calls = calls
        self.total = filler.units * calls
        self.done = 0
        self.title = engine.title
        if progress:
            progress.stage(filler.unit_name, total=self.total, message=engine.title)

    def on_unit(self, call: int, cancel: CancelToken, crop: Crop, alpha: np.ndarray):
        base = call * self.filler.units

        def report(unit: int, latents=None) -> None:
            if self.progress:
                where = f" · region {call + 1}/{self.calls}" if self.calls > 1 else ""
                preview = None
                if latents is not None and unit % PREVIEW_EVERY_STEPS == 0:
                    preview = crop_preview(latents, crop, alpha)
                self.progress.update(
                    min(self.total, base + unit),
                    self.total,
                    f"{self.title}: {self.filler.unit_name} {unit}/{self.filler.units}{where}",
                    preview=preview,
                )
            cancel.check()  # raising here stops a denoising loop or a network pass at once

        return report


def crop_preview(latents, crop: Crop, alpha: np.ndarray) -> Preview:
    """The unfinished result of ``crop`` from its latents, shown through the paste alpha."""
    rgb = latents_to_rgb(latents)
    ys, xs = crop.slice()
    small = cv2.resize(alpha[ys, xs], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
    alpha8 = np.rint(np.asarray(small, np.float32) * 255).astype(np.uint8)
    return Preview(rgb, (crop.x0, crop.y0, crop.x1, crop.y1), alpha8)


def _fill_all(
    image: np.ndarray,
    region: np.ndarray,
    alpha: np.ndarray,
    plans: list[CropPlan],
    seeds: list[int],
    filler: Filler,
    meter: _Meter,
    settings: InpaintSettings,
    cancel: CancelToken,
) -> list[list[Patch]]:
    variants = []
    call = 0
    for seed in seeds:
        patches = []
        for plan in plans:
            cancel.check()
            ys, xs = plan.crop.slice()
            crop_rgb, crop_region = image[ys, xs], region[ys, xs]
            on_unit = meter.on_unit(call, cancel, plan.crop, alpha)
            filled = filler.fill(crop_rgb, crop_region, seed, on_unit)
            call += 1
            if settings.color_match:
                filled = match_colors(filled, crop_rgb, crop_region, settings.ring_px)
            patch = make_patch(image, plan, filled, alpha)
            if patch is not None:
                patches.append(patch)
        variants.append(patches)
    return variants


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
            image, [[]], [settings.seed], "", "", "none", ["The mask is empty: nothing to inpaint."]
        )
    engine, messages = choose_engine(settings, manager)
    prompt, negative = _prompts(settings, engine)
    hole = grow(mask, settings.grow_px) if settings.grow_px else mask
    region, alpha = paste_alpha(hole, settings.dilate_px, settings.feather_px)
    context = engine.context if settings.context is None else settings.context
    plans = plan_regions(region, context, settings.min_context_px)
    ctx = SessionContext(manager, settings, prompt, negative, messages, progress)
    timings: dict[str, float] = {}
    with engine.session(ctx) as filler:
        seeds = [settings.seed + i for i in range(settings.variants if filler.uses_seed else 1)]
        if settings.variants > len(seeds):
            messages.append(f"{engine.title} gives one result: variants need a seed to vary.")
        meter = _Meter(progress, engine, filler, len(plans) * len(seeds))
        t0 = time.perf_counter()
        variants = _fill_all(image, region, alpha, plans, seeds, filler, meter, settings, cancel)
        timings["generate"] = time.perf_counter() - t0
    if len(plans) > 1:
        messages.append(f"{len(plans)} separate regions were inpainted one by one.")
    timings["total"] = time.perf_counter() - t_start
    return InpaintResult(image, variants, seeds, prompt, negative, engine.name, messages, timings)


def fallback_inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    method: str = "telea",
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> InpaintResult:
    """Instant model-free removal (OpenCV Telea or Navier-Stokes), same paste guarantees."""
    if method not in ("telea", "ns"):
        raise BadInput(f"Unknown fallback method '{method}'. Use telea or ns.")
    return inpaint(image, mask, InpaintSettings(engine=method), progress=progress, cancel=cancel)


__all__ = [
    "DEFAULT_STRENGTH",
    "ENGINES",
    "MODES",
    "SCHEDULERS",
    "Cancelled",
    "Crop",
    "InpaintResult",
    "InpaintSettings",
    "Patch",
    "changed_region",
    "composite",
    "expand_prompt",
    "fallback_inpaint",
    "inpaint",
    "match_colors",
    "model_size",
    "paste_alpha",
    "plan_crops",
    "run_with_memory_fallbacks",
]
