"""SAM2 prompted refinement of the dense label map (METHOD.md §2, the thesis's contribution).

A few targeted point prompts per class (interior points of the dense map's components) replace
the 1,024–2,304 grid prompts of automatic mask generation. All points go through SAM2's mask
decoder in one batched call on the cached image embedding; each point's three masks vote by
their overlap with the dense class, the kept masks of a class are OR-ed, conflicts go to the
class of highest dense probability and unclaimed pixels keep their dense label.

Everything runs at the dense path's working size (the original size unless capped), so a huge
photo never holds ``points × 3`` full-size masks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.masks import component_distance
from ovpaint.core.prompt import ClassQuery
from ovpaint.models import device as devices
from ovpaint.models.protocols import Derived, Models
from ovpaint.models.sam2_loader import Sam2Bundle
from ovpaint.pipelines import sam2_adapter
from ovpaint.pipelines.result import SegmentationResult
from ovpaint.pipelines.segmentation.dense import compute_dtype, resolve_precision
from ovpaint.pipelines.segmentation.prompt_decoder import PromptDecoder
from ovpaint.pipelines.segmentation.settings import DenseSettings, RefineSettings
from ovpaint.pipelines.session import ImageSession


@dataclass
class PromptPoint:
    x: float  # work-size pixel coordinates
    y: float
    label: int  # the class it prompts for
    rank: int  # 0 for a class's first point, 1 for its second, ...


def component_points(
    mask: np.ndarray, settings: RefineSettings, min_sep: float
) -> list[tuple[float, float, int]]:
    """Interior points (x, y, component area) of one class mask: the distance-transform maximum
    of each component (a centroid can fall outside a non-convex region), plus extra points on
    large components, at least ``min_sep`` apart, best components first."""
    h, w = mask.shape
    m = mask.astype(np.uint8)
    k = max(1, int(settings.opening_px))
    if k > 1:
        m = cv2.morphologyEx(
            m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        )
    n, comp, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    min_area = max(settings.min_area_px, settings.min_area_frac * h * w)
    large = max(1.0, settings.large_area_frac * h * w)
    out: list[tuple[float, float, int]] = []
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    for i in order:
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area:
            continue
        x0, y0, dist = component_distance(comp, stats, i)
        bh, bw = dist.shape
        wanted = min(1 + int(area // large), settings.max_points_per_class)
        sy, sx = np.ogrid[y0 : y0 + bh, x0 : x0 + bw]  # the component's box, not the image
        for _ in range(wanted):
            j = int(np.argmax(dist))
            d = float(dist.flat[j])
            if d <= 0:
                break
            py, px = divmod(j, bw)
            out.append((float(x0 + px), float(y0 + py), area))
            radius = max(min_sep, d)
            dist[(sy - (y0 + py)) ** 2 + (sx - (x0 + px)) ** 2 < radius * radius] = 0
    return out


def select_points(
    labels: np.ndarray, n_classes: int, settings: RefineSettings, min_sep: float
) -> list[PromptPoint]:
    """Prompt points of every class present, within the per-class and per-image caps: each
    class's first points are taken before any class's later ones."""
    points: list[PromptPoint] = []
    first = 0 if settings.refine_background else 1
    for c in range(first, n_classes):
        mask = labels == c
        if not mask.any():
            continue
        found = component_points(mask, settings, min_sep)[: settings.max_points_per_class]
        points += [PromptPoint(x, y, c, r) for r, (x, y, _) in enumerate(found)]
    points.sort(key=lambda p: (p.rank, p.label))
    return points[: settings.max_points]


# Prompts per decoder call. Every prompt updates all 4096 image tokens, so a batch does the same
# work as separate calls; on a CPU small batches win because their working set stays in cache
# (60 points on 2 cores: 60 per call 4.35 s, 16: 4.46 s, 6: 2.48 s, 4: 2.55 s; 60 predict
# calls 3.58 s). A GPU wants large batches.
CPU_PROMPTS_PER_CALL = 6
GPU_PROMPTS_PER_CALL = 32
# the calibration's decoder call on a CPU: the smallest batch decode_points makes. Per prompt
# it has the shapes of every call (each prompt updates all 4096 image tokens), at a third of
# the cost of a 6-prompt call (2-core AMD EPYC: bf16 2.4× fp32 with 2 prompts, 2.5-3.0× with 6)
CPU_PROBE_PROMPTS = 2


def decode_points(
    predictor: Any,
    points_xy: np.ndarray,
    prompts_per_call: int | None = None,
    dtype: torch.dtype | None = None,
    derived: Derived | None = None,
    progress: Progress | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-resolution mask logits (B×3×256×256) and predicted IoUs (B×3) of B single-point
    prompts (image pixel coordinates), as ``predictor.predict`` gives for each point alone.

    The prompts run through the decoder in batches of about ``prompts_per_call`` (by device
    when None), with the image-side projections of its first block computed once for all of
    them (``PromptDecoder``, shared with the proposal path). Batches are balanced so none has a
    single prompt (sam2 rounds a lone prompt differently)."""
    device = predictor.device
    coords = torch.as_tensor(points_xy, dtype=torch.float32, device=device).view(-1, 1, 2)
    coords = sam2_adapter.model_coords(predictor, coords)
    labels = torch.ones((coords.shape[0], 1), dtype=torch.int, device=device)
    n = coords.shape[0]
    with torch.inference_mode():
        if n < 2:  # sam2's own path for a lone prompt (it rounds differently)
            return _decode_plain(predictor, coords, labels)
        decoder = PromptDecoder(predictor, dtype, derived)
        if prompts_per_call is None:
            prompts_per_call = (
                CPU_PROMPTS_PER_CALL if device.type == "cpu" else GPU_PROMPTS_PER_CALL
            )
        calls = max(1, min(n // 2, math.ceil(n / max(2, int(prompts_per_call)))))
        ious, masks = [], []
        if progress:
            progress.stage("SAM2 points", n)
        for index in torch.arange(n).tensor_split(calls):
            iou, state = decoder.iou_and_state(coords[index], labels[index])
            ious.append(iou)
            masks.append(decoder.masks_for(state, torch.arange(len(index))))
            if progress:
                progress.update(int(index[-1]) + 1)
    return torch.cat(masks).float(), torch.cat(ious).float()


def decoder_probe(device: torch.device, precision: str):
    """Calibration probe: one call of SAM2.1's prompt decoder as :func:`decode_points` makes
    it (a call's prompts on the 64×64 embedding, masks included) in ``precision``. The
    decoder (its reduced-precision copy, the image side of its first block) is made once, as
    a refinement makes it once for all its calls."""
    predictor = sam2_adapter.decoder_stand_in(device)
    dtype = None if precision == "fp32" else devices.DTYPES[precision]
    n = CPU_PROBE_PROMPTS if device.type == "cpu" else GPU_PROMPTS_PER_CALL
    coords = torch.rand(n, 1, 2, device=device) * 1024
    labels = torch.ones((n, 1), dtype=torch.int, device=device)
    with torch.inference_mode():
        decoder = PromptDecoder(predictor, dtype, Derived())

    def run():
        with torch.inference_mode():
            _, state = decoder.iou_and_state(coords, labels)
            return decoder.masks_for(state, torch.arange(n))

    return run


def _decode_plain(
    predictor: Any, coords: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """sam2's own prompt encoder + mask decoder on the whole batch."""
    model = predictor.model
    sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    embed, high_res = sam2_adapter.image_features(predictor)
    low_res, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=embed,
        image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
        repeat_image=coords.shape[0] > 1,
        high_res_features=high_res,
    )
    return low_res.float(), iou.float()


def decoder_dtype(name: str, sam: Sam2Bundle) -> torch.dtype:
    """The mask decoder's precision for a setting (the dense path's rule, shared with it by the
    ``compute_dtype`` setting; ``auto`` is the ``decoder`` workload's measured choice). On a
    2-core CPU with fast bf16, 60 points take 3.2–3.7× less time in bf16 than 60 fp32
    ``predict`` calls (1.5× in fp32); on the perf scene 0.3 % of the mask pixels and 0.013 % of
    the refined labels differ from fp32. int8 is not a decoder mode: it runs fp32."""
    model_dtype = next(sam.model.parameters()).dtype
    dtype = compute_dtype(name, sam.device, model_dtype, "decoder")
    return model_dtype if dtype == torch.int8 else dtype


def vote(
    low_res: torch.Tensor,
    points: Sequence[PromptPoint],
    labels: np.ndarray,
    n_classes: int,
    settings: RefineSettings,
) -> np.ndarray:
    """n_classes×h×w bool: per class, the OR of the masks whose share inside the dense class
    is at least ``vote_threshold``. (Pixel counts per mask with numpy: torch's reductions of
    bool tensors go through int64 copies and took most of the vote's time.)"""
    h, w = labels.shape
    claimed = np.zeros((n_classes, h, w), dtype=bool)
    inside = {c: labels == c for c in {p.label for p in points}}
    for start in range(0, len(points), settings.decoder_chunk):
        part = points[start : start + settings.decoder_chunk]
        chunk = low_res[start : start + len(part)].float()
        masks = (
            F.interpolate(chunk, size=(h, w), mode="bilinear", align_corners=False) > 0
        ).numpy()
        for point, three in zip(part, masks, strict=True):
            own = inside[point.label]
            for mask in three:
                area = np.count_nonzero(mask)
                if area and np.count_nonzero(mask & own) >= settings.vote_threshold * area:
                    claimed[point.label] |= mask
    return claimed


def combine(claimed: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Refined labels: claimed pixels to the claiming class of highest dense probability,
    unclaimed pixels keep the dense label."""
    any_claim = claimed.any(axis=0)
    masked = np.where(claimed, probs, -1.0)
    best = masked.argmax(axis=0).astype(np.int32)
    return np.where(any_claim, best, labels).astype(np.int32)


def refine_labels(
    session: ImageSession,
    manager: Models,
    labels: np.ndarray,
    probs: np.ndarray,
    settings: RefineSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    timings: dict | None = None,
) -> tuple[np.ndarray, dict]:
    """Refine a work-size dense label map with SAM2; returns (labels, info)."""
    s = settings or RefineSettings()
    timings = {} if timings is None else timings
    h, w = labels.shape
    n_classes = probs.shape[0]
    scale_x, scale_y = session.width / w, session.height / h
    min_sep = s.min_point_distance / max(scale_x, scale_y)
    t0 = time.perf_counter()
    points = select_points(labels, n_classes, s, min_sep)
    timings["points"] = time.perf_counter() - t0
    info = {"points": [(p.x * scale_x, p.y * scale_y, p.label) for p in points]}
    if not points:
        return labels, info
    precision = resolve_precision(
        s.compute_dtype, manager, "decoder", progress=progress, cancel=cancel
    )
    if cancel:
        cancel.check()
    t0 = time.perf_counter()
    if progress:
        progress.stage("SAM2 image embedding")
    with manager.use("sam2") as sam:
        predictor = session.sam2_predictor(sam)
        timings["sam2_embedding"] = time.perf_counter() - t0
        if cancel:
            cancel.check()
        t0 = time.perf_counter()
        xy = np.array([[(p.x + 0.5) * scale_x, (p.y + 0.5) * scale_y] for p in points], np.float32)
        dtype = decoder_dtype(precision, sam)
        low_res, _ = decode_points(
            predictor, xy, dtype=dtype, derived=sam.derived, progress=progress
        )
    timings["decoder"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    claimed = vote(low_res.cpu(), points, labels, n_classes, s)
    refined = combine(claimed, labels, probs)
    timings["vote"] = time.perf_counter() - t0
    return refined, info


def segment_refined(
    session: ImageSession,
    queries: Sequence[ClassQuery],
    manager: Models,
    dense_settings: DenseSettings | None = None,
    settings: RefineSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    name: str = "refined",
) -> SegmentationResult:
    """A refined method: the dense map (SCLIP's, or NACLIP's with its settings), refined by
    SAM2 prompts; ``name`` is what the result says."""
    from ovpaint.pipelines.segmentation.dense import dense_probabilities, to_full_size

    ds = dense_settings or DenseSettings()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    probs, labels, classes, messages = dense_probabilities(
        session, queries, manager, ds, progress=progress, cancel=cancel, timings=timings
    )
    probs_np = probs.numpy()
    refined, info = refine_labels(
        session,
        manager,
        labels.numpy(),
        probs_np,
        settings,
        progress=progress,
        cancel=cancel,
        timings=timings,
    )
    full, scores, more = to_full_size(
        refined, probs_np, (session.height, session.width), ds.max_score_bytes
    )
    timings["total"] = time.perf_counter() - t0
    return SegmentationResult(
        full, classes, scores, name, timings, messages + more, {"points": info["points"]}
    )
