"""SAM2 automatic mask generation, fast and equal to sam2's generator (see the package
docstring for how and how equal)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ovpaint.core.errors import BadInput
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.pipelines import sam2_adapter
from ovpaint.pipelines.segmentation.prompt_decoder import PromptDecoder
from ovpaint.pipelines.segmentation.settings import ProposalSettings


@dataclass
class AutoMasks:
    """Masks of one image, in the order sam2's generator returns them (by predicted IoU)."""

    masks: np.ndarray  # N×H×W bool
    boxes: np.ndarray  # N×4 float32, x0, y0, x1, y1 inclusive (sam2's convention)
    predicted_iou: np.ndarray  # N float32
    stability_score: np.ndarray  # N float32
    points: np.ndarray  # N×2 float32, the grid point that produced each mask
    timings: dict[str, float] = field(default_factory=dict)
    grid: int = 0  # points per side of the grid they were made from

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def areas(self) -> np.ndarray:
        return self.masks.reshape(len(self), -1).sum(1) if len(self) else np.zeros(0, np.int64)

    def select(self, keep: np.ndarray) -> AutoMasks:
        return AutoMasks(
            self.masks[keep],
            self.boxes[keep],
            self.predicted_iou[keep],
            self.stability_score[keep],
            self.points[keep],
            dict(self.timings),
            self.grid,
        )


def _grid_points(n_per_side: int, h: int, w: int) -> np.ndarray:
    from sam2.utils.amg import build_point_grid

    return build_point_grid(n_per_side) * np.array([[w, h]])


def _warn_no_hole_filling(area: int) -> None:
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        warnings.warn(
            f"min_mask_region_area={area} needs sam2's compiled extension, which this install "
            "lacks; hole filling and small-region removal are skipped (as sam2 does).",
            UserWarning,
            stacklevel=3,
        )
        return
    raise BadInput(
        "min_mask_region_area > 0 with sam2's compiled extension is not supported "
        "by the fast generator; use sam2's generator for it."
    )


def generate_masks(
    predictor: Any,
    settings: ProposalSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    out_hw: tuple[int, int] | None = None,
) -> AutoMasks:
    """Automatic masks of the image set in ``predictor`` (``ImageSession.sam2_predictor``).

    Same output as ``SAM2AutomaticMaskGenerator(model, <same settings>).generate(image)`` with
    ``crop_n_layers=0`` and ``use_m2m=False`` (the thesis's settings). ``out_hw`` makes the
    masks at another size than the image's (same embedding; as if the image had that size).
    """
    from sam2.utils.amg import batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge
    from torchvision.ops.boxes import batched_nms

    s = settings or ProposalSettings()
    if s.min_mask_region_area > 0:
        _warn_no_hole_filling(s.min_mask_region_area)
    t0 = time.perf_counter()
    h, w = out_hw or sam2_adapter.image_hw(predictor)
    device = predictor.device
    per_side = s.grid(device.type)
    grid = _grid_points(per_side, h, w)
    decoder = PromptDecoder(predictor)
    chunk = max(2, s.decoder_chunk)
    crop_box, orig_box = [0, 0, w, h], [0, 0, w, h]

    kept_bits: list[np.ndarray] = []
    kept_boxes, kept_iou, kept_stab, kept_points = [], [], [], []
    total = len(grid)
    if progress:
        progress.stage("SAM2 points", total=total)

    def finish(
        points: torch.Tensor, iou: torch.Tensor, low: torch.Tensor, full: torch.Tensor | None = None
    ) -> None:
        """sam2's per-batch filtering for masks already known to pass the IoU filter."""
        if iou.shape[0] == 0:
            return
        if full is None:  # upsampled here, only for masks that passed the IoU filter
            logits = F.interpolate(low.float(), (h, w), mode="bilinear", align_corners=False)
        else:
            logits = full
        logits = logits[:, 0]  # N×H×W, as sam2 flattens them
        stab = calculate_stability_score(logits, s.mask_threshold, s.stability_score_offset)
        if s.stability_score_thresh > 0.0:
            ok = stab >= s.stability_score_thresh
            logits, stab, iou, points = logits[ok], stab[ok], iou[ok], points[ok]
        binary = logits > s.mask_threshold
        boxes = batched_mask_to_box(binary)
        ok = ~is_box_near_crop_edge(boxes, crop_box, orig_box)
        if not torch.all(ok):
            binary, boxes, stab, iou, points = binary[ok], boxes[ok], stab[ok], iou[ok], points[ok]
        if binary.shape[0]:
            kept_bits.append(np.packbits(binary.cpu().numpy(), axis=-1))
            kept_boxes.append(boxes)
            kept_iou.append(iou)
            kept_stab.append(stab)
            kept_points.append(points)

    with torch.inference_mode():
        for start in range(0, total, s.points_per_batch):
            batch = grid[start : start + s.points_per_batch]
            points = torch.as_tensor(batch, dtype=torch.float32, device=device)
            coords = sam2_adapter.model_coords(predictor, points, (h, w))
            labels = torch.ones(coords.shape[0], dtype=torch.int, device=device)
            coords, labels = coords[:, None, :], labels[:, None]
            if coords.shape[0] == 1:  # sam2 runs a lone prompt differently; so do we
                iou, full, _ = decoder.decode_single(coords, labels)
                _finish_flat(finish, points, iou, full, s.pred_iou_thresh)
                continue
            bounds = list(range(0, coords.shape[0], chunk))
            if coords.shape[0] - bounds[-1] < 2 and len(bounds) > 1:
                bounds.pop()  # no chunk of one: its rounding would differ
            bounds.append(coords.shape[0])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                if cancel:
                    cancel.check()
                iou, state = decoder.iou_and_state(coords[a:b], labels[a:b])
                passing = (
                    iou > s.pred_iou_thresh
                    if s.pred_iou_thresh > 0.0
                    else torch.ones_like(iou, dtype=torch.bool)
                )
                rows = torch.nonzero(passing.any(1)).flatten()
                if rows.numel():
                    low = decoder.masks_for(state, rows)  # n×3×h×w
                    sel = passing[rows]
                    flat_low = low.flatten(0, 1)[sel.flatten()][:, None]
                    flat_iou = iou[rows].flatten()[sel.flatten()]
                    flat_pts = points[a:b][rows].repeat_interleave(3, dim=0)[sel.flatten()]
                    finish(flat_pts, flat_iou, flat_low)
                if progress:
                    progress.update(start + b)
    t_decode = time.perf_counter() - t0

    if not kept_boxes:
        empty = AutoMasks(
            np.zeros((0, h, w), bool),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 2), np.float32),
        )
        empty.timings = {"amg_decode": t_decode, "amg_total": time.perf_counter() - t0}
        empty.grid = per_side
        return empty
    boxes = torch.cat(kept_boxes)
    iou = torch.cat(kept_iou)
    keep = batched_nms(
        boxes.float(), iou, torch.zeros_like(boxes[:, 0]), iou_threshold=s.box_nms_thresh
    )
    keep_np = keep.cpu().numpy()
    bits = np.concatenate(kept_bits)[keep_np]
    masks = np.unpackbits(bits, axis=-1, count=w).astype(bool)
    result = AutoMasks(
        masks=masks,
        boxes=boxes[keep].float().cpu().numpy(),
        predicted_iou=iou[keep].float().cpu().numpy(),
        stability_score=torch.cat(kept_stab)[keep].float().cpu().numpy(),
        points=torch.cat(kept_points)[keep].float().cpu().numpy(),
    )
    result.timings = {"amg_decode": t_decode, "amg_total": time.perf_counter() - t0}
    result.grid = per_side
    return result


def _finish_flat(finish, points, iou, full, thresh) -> None:
    """Filter a lone prompt's three full-size masks by predicted IoU, then ``finish`` them."""
    iou, full = iou.flatten(0, 1), full.flatten(0, 1)
    pts = points.repeat_interleave(full.shape[0] // points.shape[0], dim=0)
    ok = iou > thresh if thresh > 0.0 else torch.ones_like(iou, dtype=torch.bool)
    finish(pts[ok], iou[ok], None, full[ok][:, None])
