"""Proposal path (METHOD.md §3): SAM2 automatic masks, each scored by CLIP, then selected.

Three parts, each usable alone, one module each:

1. :mod:`.amg`, :func:`generate_masks` — SAM2 automatic mask generation with the thesis's settings (32×32
   grid, predicted IoU 0.88, stability 0.95, the rest as sam2's ``SAM2AutomaticMaskGenerator``).
   It returns the same masks, boxes and scores as sam2's generator in fp32, several times
   faster, because it

   - reuses the image embedding cached in :class:`~ovpaint.pipelines.session.ImageSession`;
   - computes the prompt-independent half of the decoder's first two-way block once per image
     (the image-side key/value/query projections) instead of once per grid point, and keeps
     the positional encoding in the memory layout the additions want;
   - runs the decoder's upscaling head only for prompts with at least one mask that passes the
     predicted-IoU filter (the IoU head reads the transformer's tokens only, so the filter is
     decided before any mask exists), and upsamples to full size only those masks;
   - decodes in small chunks that stay in the CPU cache, and keeps survivors as bit-packed
     masks instead of RLE lists deep-copied per batch.

   Every per-prompt tensor operation is the one sam2 runs, on tensors of the same memory layout
   (a matrix product's rounding depends on the layout of its input), so the masks, boxes and the
   set and order of kept masks are identical to sam2's, and the float scores equal within 1e-6
   relative. Not bitwise: a CPU's math library may pick another kernel for our chunk size than
   for sam2's batch (seen on an Intel Xeon: the last bit of a predicted IoU moved), and a score
   that close to a threshold could then fall on the other side of it.
   ``tests/pipelines/segmentation/test_proposals.py`` compares them with sam2's generator.

2. :mod:`.scoring`, :func:`mask_features` and :func:`combine_scales` — CLIP similarity of every mask at 224, 336 and 512 px (weights
   0.2/0.5/0.3), crops batched per scale.

3. :mod:`.selection`, :func:`select_masks` / :func:`assign_pixels` — background suppression, size filter,
   size-dependent thresholds, same-class mask NMS, or in many-class mode the softmax, adaptive
   class denoising, size penalty and top-K; then each pixel goes to the most confident mask.

This module is the method itself: image + classes → :class:`SegmentationResult`, with the
masks and their CLIP features cached per image in the session.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.prompt import ClassQuery
from ovpaint.models.protocols import Models
from ovpaint.pipelines.result import BACKGROUND, SegmentationResult
from ovpaint.pipelines.segmentation.proposals.amg import AutoMasks, generate_masks
from ovpaint.pipelines.segmentation.proposals.scoring import (
    combine_scales,
    encode_images,
    mask_crop,
    mask_features,
    scoring_precision,
)
from ovpaint.pipelines.segmentation.proposals.selection import (
    Instance,
    assign_pixels,
    mask_iou_matrix,
    mask_nms,
    select_masks,
    size_penalty,
)
from ovpaint.pipelines.segmentation.settings import CPU_GRID, THESIS_GRID, ProposalSettings
from ovpaint.pipelines.session import ImageSession, sam2_autocast

__all__ = [
    "AutoMasks",
    "Instance",
    "ProposalSettings",
    "assign_pixels",
    "combine_scales",
    "encode_images",
    "encode_texts",
    "generate_masks",
    "mask_crop",
    "mask_features",
    "mask_iou_matrix",
    "mask_nms",
    "scoring_precision",
    "segment_proposals",
    "select_masks",
    "session_mask_features",
    "session_masks",
    "size_penalty",
    "work_size",
]


def work_size(h: int, w: int, s: ProposalSettings) -> tuple[int, int]:
    """The size masks are made and selected at (see ``ProposalSettings.max_side``)."""
    if not s.max_side or max(h, w) <= s.max_side:
        return h, w
    scale = s.max_side / max(h, w)
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def _amg_key(model_id: str, s: ProposalSettings, device_type: str = "cpu") -> tuple:
    return (
        "proposal_masks",
        model_id,
        s.max_side,
        s.grid(device_type),
        s.points_per_batch,
        s.pred_iou_thresh,
        s.stability_score_thresh,
        s.stability_score_offset,
        s.mask_threshold,
        s.box_nms_thresh,
        s.min_mask_region_area,
    )


def session_masks(
    session: ImageSession,
    manager: Models,
    settings: ProposalSettings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> AutoMasks:
    """The image's automatic masks, generated once per image, SAM2 model and AMG settings."""
    with manager.use("sam2") as sam:
        key = _amg_key(sam.model_id, settings, sam.device.type)
        cached = session.get(key)
        if cached is not None:
            return cached
        predictor = session.sam2_predictor(sam)
        with sam2_autocast(sam.device):
            masks = generate_masks(
                predictor,
                settings,
                progress=progress,
                cancel=cancel,
                out_hw=work_size(session.height, session.width, settings),
            )
    return session.put(key, masks)


def session_mask_features(
    session: ImageSession,
    manager: Models,
    masks: AutoMasks,
    settings: ProposalSettings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> list[np.ndarray]:
    """CLIP features of the candidate masks' crops, computed once per image and settings
    (they do not depend on the text, so a new query costs one matrix product)."""
    precision = scoring_precision(settings, manager, progress=progress, cancel=cancel)
    with manager.use("clip") as clip:
        key = (
            "proposal_features",
            clip.model_id,
            _amg_key(manager.model_id("sam2"), settings),
            masks.grid,
            settings.scales,
            settings.crop_margin,
            settings.min_area_ratio,
            precision,
            len(masks),
        )
        cached = session.get(key)
        if cached is not None:
            return cached
        image = session.image
        if masks.masks.shape[1:] != image.shape[:2]:  # masks made at the work size
            mh, mw = masks.masks.shape[1:]
            image = cv2.resize(image, (mw, mh), interpolation=cv2.INTER_AREA)
        feats = mask_features(
            clip, image, masks, settings, progress=progress, cancel=cancel, precision=precision
        )
    return session.put(key, feats)


def encode_texts(manager: Models, names: list[str], templates: str) -> np.ndarray:
    """L2-normalised text embeddings (N×D) through the shared, cached text encoder."""
    from ovpaint.pipelines.text import text_encoder_for

    encoder = text_encoder_for(manager, templates)
    return np.asarray(encoder.encode(list(names)), np.float32)


def segment_proposals(
    session: ImageSession,
    queries: list[ClassQuery],
    manager: Models,
    settings: ProposalSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SegmentationResult:
    """Segment ``queries`` in the session's image with SAM2 proposals scored by CLIP."""
    s = settings or ProposalSettings()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    auto = session_masks(session, manager, s, progress=progress, cancel=cancel)
    timings["masks"] = time.perf_counter() - t0
    full_hw = (session.height, session.width)
    h, w = work_size(*full_hw, s)
    classes = [BACKGROUND] + [q.name for q in queries]
    # masks under the size floor can never be selected: do not spend CLIP time on them
    big = auto.areas >= s.min_area_ratio * h * w
    candidates = auto.select(np.nonzero(big)[0])
    messages: list[str] = []
    if s.points_per_side is None and auto.grid == CPU_GRID:
        messages.append(
            f"Proposals came from a {CPU_GRID}×{CPU_GRID} point grid, the default on a CPU "
            f"(about 4× faster than the {THESIS_GRID}×{THESIS_GRID} the benchmark uses; "
            f"proposal.points_per_side={THESIS_GRID} asks for it)."
        )
    if len(candidates) == 0:
        messages.append(
            f"SAM2 proposed no mask large enough to score ({len(auto)} masks "
            "in all); nothing was segmented. Try the refined method."
        )
        return SegmentationResult(
            np.zeros(full_hw, np.int32),
            classes,
            _empty_scores(len(classes), *full_hw),
            "proposal",
            timings,
            messages,
            {"instances": [], "n_masks": len(auto)},
        )
    if cancel:
        cancel.check()
    t1 = time.perf_counter()
    feats = session_mask_features(session, manager, candidates, s, progress=progress, cancel=cancel)
    timings["scoring"] = time.perf_counter() - t1
    names = [n for q in queries for n in q.synonyms]
    owner = np.array([i for i, q in enumerate(queries) for _ in q.synonyms])
    text = encode_texts(manager, names + list(s.background_words), s.templates)
    sims = combine_scales(feats, text, s.scale_weights)
    name_sims, bg = sims[:, : len(names)], sims[:, len(names) :].max(1)
    class_sims = np.stack([name_sims[:, owner == k].max(1) for k in range(len(queries))], 1)
    instances = select_masks(class_sims, bg, candidates.masks, s)
    labels, scores = assign_pixels(instances, candidates.masks, len(classes))
    if (h, w) != full_hw:
        from ovpaint.pipelines.segmentation.dense import to_full_size

        labels, scores, notes = to_full_size(labels, scores, full_hw, s.max_score_bytes)
        messages += notes
    found = {inst.class_index for inst in instances}
    missing = [classes[k] for k in range(1, len(classes)) if k not in found]
    if not instances:
        messages.append(
            "No mask scored high enough for "
            + ", ".join(missing)
            + "; the result is empty. Try the refined method or a lower threshold."
        )
    elif missing:
        messages.append("No mask scored high enough for: " + ", ".join(missing) + ".")
    timings["total"] = time.perf_counter() - t0
    extras = {
        "instances": [i.as_dict(classes) for i in instances],
        "n_masks": len(auto),
        "n_scored": len(candidates),
    }
    return SegmentationResult(labels, classes, scores, "proposal", timings, messages, extras)


def _empty_scores(n: int, h: int, w: int) -> np.ndarray:
    scores = np.zeros((n, h, w), np.float32)
    scores[0] = 1.0
    return scores
