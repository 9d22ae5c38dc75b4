"""CLIP scoring of mask crops at several scales (METHOD.md §3.2)."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.models.clip_loader import ClipBundle
from ovpaint.pipelines.segmentation import dense as _dense
from ovpaint.pipelines.segmentation.proposals.amg import AutoMasks
from ovpaint.pipelines.segmentation.settings import ProposalSettings


def mask_crop(
    image: np.ndarray, mask: np.ndarray, box: np.ndarray, margin: float, fill: np.ndarray
) -> np.ndarray:
    """A square crop around ``mask``: its box plus a margin, pixels outside the mask set to
    ``fill`` (CLIP's mean colour, so they normalise to zero), padded square with ``fill``."""
    h, w = mask.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = margin * max(x1 - x0 + 1, y1 - y0 + 1)
    x0, y0 = max(0, int(math.floor(x0 - pad))), max(0, int(math.floor(y0 - pad)))
    x1, y1 = min(w, int(math.ceil(x1 + 1 + pad))), min(h, int(math.ceil(y1 + 1 + pad)))
    crop = image[y0:y1, x0:x1].copy()
    crop[~mask[y0:y1, x0:x1]] = fill
    ch, cw = crop.shape[:2]
    side = max(ch, cw)
    square = np.empty((side, side, 3), np.uint8)
    square[:] = fill
    oy, ox = (side - ch) // 2, (side - cw) // 2
    square[oy : oy + ch, ox : ox + cw] = crop
    return square


def _resize_square(square: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(square, (size, size), interpolation=interp)


def encode_images(visual: Any, pixels: torch.Tensor, low: dict | None = None) -> torch.Tensor:
    """CLIP image embeddings (L2-normalised) of a batch at any size divisible by the patch.

    open_clip's own forward with the positional embedding interpolated (bicubic, as the dense
    path does) to the input's grid; with ``low`` (the dense path's low-precision weight copies,
    e.g. int8) its blocks run through the dense path's :func:`vit_block` instead.
    """
    from ovpaint.pipelines.segmentation.dense import _embed, vit_block

    x, _, _ = _embed(visual, pixels)  # (patch dropout is the identity in eval mode)
    if low is None:
        x = visual.transformer(x)
    else:
        for block in visual.transformer.resblocks:
            x = vit_block(block, x, low=low)
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return F.normalize(pooled.float(), dim=-1)


def _autocast(device: torch.device, dtype: torch.dtype, precision: str):
    import contextlib

    if device.type == "cpu" and precision in ("bf16", "fp16"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16):
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def scoring_precision(settings: ProposalSettings, manager: Any = None, **kwargs: Any) -> str:
    """The CLIP tower's precision for mask scoring: fp32 when ``low_precision_cpu`` is off,
    else the ``scoring`` workload's (``--dtype``, else measured; see ``resolve_precision``,
    which takes ``device``, ``progress`` and ``cancel``)."""
    from ovpaint.pipelines.segmentation.dense import resolve_precision

    if not settings.low_precision_cpu:
        return "fp32"
    return resolve_precision("auto", manager, "scoring", **kwargs)


def _scoring_kernel(block: Any, x: torch.Tensor, precision: str, low: dict | None):
    """One ViT block as :func:`mask_features` runs it in ``precision`` (calibration probe):
    int8 through the dense path's blocks, bf16 under autocast, fp32 as open_clip runs it."""
    with torch.no_grad(), _autocast(x.device, x.dtype, precision):
        return _dense.vit_block(block, x, low=low) if precision == "int8" else block(x)


# mask scoring: one 512 px crop (1025 tokens), the scale that costs most
scoring_probe = _dense.vit_block_probe(1, 1025, _scoring_kernel)


def mask_features(
    clip_bundle: ClipBundle,
    image: np.ndarray,
    masks: AutoMasks | tuple,
    settings: ProposalSettings | None = None,
    *,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
    precision: str | None = None,
) -> list[np.ndarray]:
    """CLIP embeddings of every mask's crop, one N×D array per scale (text-independent, so a
    session caches them and a new query costs one matrix product).

    ``masks`` is an :class:`AutoMasks` or a ``(masks, boxes)`` pair; ``precision`` as
    :func:`scoring_precision` gives it (by default measured on this machine).
    """
    s = settings or ProposalSettings()
    mask_arr, boxes = (masks.masks, masks.boxes) if isinstance(masks, AutoMasks) else masks
    n = len(mask_arr)
    model = clip_bundle.model
    visual = model.visual
    device = clip_bundle.device
    fill = np.round(np.array(clip_bundle.mean) * 255).astype(np.uint8)
    mean = torch.tensor(clip_bundle.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(clip_bundle.std, device=device).view(1, 3, 1, 1)
    squares = [mask_crop(image, mask_arr[i], boxes[i], s.crop_margin, fill) for i in range(n)]
    out: list[np.ndarray] = []
    if progress:
        progress.stage("scoring", total=n * len(s.scales), unit="masks")
    done = 0
    # no_grad, not inference_mode: autocast caches its low-precision weight copies only
    # outside inference mode (bf16 under inference_mode was 4× slower than fp32 on a CPU)
    precision = precision or scoring_precision(s, device=device)
    int8 = precision == "int8" and device.type == "cpu"
    low = _dense.low_weights(clip_bundle, torch.int8) if int8 else None
    with torch.no_grad(), _autocast(device, clip_bundle.dtype, precision):
        for size in s.scales:
            feats = []
            step = max(1, s.clip_batch)
            if device.type == "cpu" and s.clip_batch_tokens > 0:
                # big batches of 1,025-token crops thrash the CPU caches (slower than one by one)
                tokens = (size // clip_bundle.patch_size) ** 2 + 1
                step = max(1, min(step, s.clip_batch_tokens // tokens))
            for a in range(0, n, step):
                if cancel:
                    cancel.check()
                batch = np.stack([_resize_square(sq, size) for sq in squares[a : a + step]])
                x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float() / 255.0
                x = ((x - mean) / std).to(clip_bundle.dtype)
                feats.append(encode_images(visual, x, low).cpu())
                done += len(batch)
                if progress:
                    progress.update(done)
            dim = int(visual.output_dim) if hasattr(visual, "output_dim") else 0
            out.append(torch.cat(feats).numpy() if feats else np.zeros((0, dim), np.float32))
    return out


def combine_scales(
    features: list[np.ndarray], text: np.ndarray, weights: tuple[float, ...]
) -> np.ndarray:
    """score = Σ w_s · cos(image_s, text): N masks × T texts (0.2·s224 + 0.5·s336 + 0.3·s512)."""
    text = np.asarray(text, np.float32)
    total = np.zeros((features[0].shape[0], text.shape[0]), np.float32)
    for feats, weight in zip(features, weights, strict=True):
        total += weight * (feats.astype(np.float32) @ text.T)
    return total
