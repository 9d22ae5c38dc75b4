"""LaMa removal: the crop filled at its own resolution (up to a bound), optionally refined by
Stable Diffusion at a small strength (the fill guides the diffusion, which adds texture)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import cv2
import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.pipelines.inpainting.filler import SessionContext

MIN_SIDE = 32  # smaller crops are scaled up: the generator downsamples 8× and pads by 3


def model_scale(height: int, width: int, max_side: int) -> float:
    """The factor from the crop to the size LaMa runs at: 1 (native) unless the long side is
    over ``max_side``, or the short side under :data:`MIN_SIDE`."""
    scale = min(1.0, max_side / max(height, width))
    if min(height, width) * scale < MIN_SIDE:
        scale = MIN_SIDE / min(height, width)
        if max(height, width) * scale > 4 * max_side:
            raise BadInput(
                f"The area to fill ({width}×{height} with its context) is too thin for LaMa; "
                "use the telea engine for it."
            )
    return scale


def _resize(array: np.ndarray, size: tuple[int, int], shrink: bool) -> np.ndarray:
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def lama_fill(
    bundle,
    rgb: np.ndarray,
    hole: np.ndarray,
    max_side: int,
    on_layer: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``rgb`` (H×W×3 uint8) with ``hole`` filled by LaMa; the same size, uint8. Outside the
    hole the pixels are the input's when LaMa ran at the crop's own size."""
    import torch

    from ovpaint.models.lama import predict

    height, width = hole.shape
    scale = model_scale(height, width, max_side)
    image, mask = rgb, hole.astype(np.float32)
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = _resize(rgb, size, scale < 1)
        if scale < 1:  # any coverage makes a hole pixel: a thin stroke must not vanish
            mask = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0).astype(np.float32)
        else:
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    device = bundle.device
    # a copy (the caller's image may be read-only, which torch.from_numpy warns about)
    x = torch.tensor(image, dtype=torch.float32, device=device).permute(2, 0, 1)[None]
    m = torch.from_numpy(mask).to(device)[None, None]
    with torch.inference_mode():
        result = predict(bundle.generator, x / 255.0, m, on_layer)
        out = (result.inpainted[0].clamp(0, 1) * 255.0).round().to(torch.uint8)
    filled = out.permute(1, 2, 0).cpu().numpy()
    if scale != 1.0:
        filled = _resize(filled, (width, height), scale > 1)
    return np.ascontiguousarray(filled)


class LamaFiller:
    unit_name = "layer"

    def __init__(self, bundle, max_side: int, refine=None) -> None:
        self.bundle = bundle
        self.max_side = max_side
        self.refine = refine  # a DiffusionFiller at the refinement strength, or None
        self.layers = bundle.generator.num_layers
        self.units = self.layers + (refine.units if refine is not None else 0)
        self.uses_seed = refine is not None

    def fill(
        self, rgb: np.ndarray, hole: np.ndarray, seed: int, on_unit: Callable[[int], None]
    ) -> np.ndarray:
        filled = lama_fill(self.bundle, rgb, hole, self.max_side, on_unit)
        if self.refine is None:
            return filled
        return self.refine.fill(
            filled, hole, seed, lambda step, latents=None: on_unit(self.layers + step, latents)
        )


@contextmanager
def session(ctx: SessionContext) -> Iterator[LamaFiller]:
    """LaMa held for the session; with ``refine_strength`` the inpainting model too."""
    from ovpaint.pipelines.inpainting.diffusion import diffusion_filler

    with ExitStack() as stack:
        bundle = stack.enter_context(ctx.manager.use("lama"))
        settings = ctx.settings.for_device(bundle.device.type)
        refine = None
        if settings.refine_strength > 0:
            refine = stack.enter_context(diffusion_filler(ctx, settings.refine_strength))
        yield LamaFiller(bundle, settings.lama_max_side, refine)
