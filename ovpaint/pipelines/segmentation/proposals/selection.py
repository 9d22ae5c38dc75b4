"""Which masks become instances of which class, and which pixel goes to which mask
(METHOD.md §3.3–3.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ovpaint.pipelines.segmentation.settings import ProposalSettings


@dataclass
class Instance:
    """One kept mask: its class (index into the result's classes, ≥ 1) and confidence."""

    class_index: int
    mask_index: int
    score: float
    area: int

    def as_dict(self, classes: list[str]) -> dict:
        return {
            "class": classes[self.class_index],
            "mask": self.mask_index,
            "score": round(float(self.score), 4),
            "area": int(self.area),
        }


def size_penalty(ratio: np.ndarray, settings: ProposalSettings | None = None) -> np.ndarray:
    """q = 1 for r ≤ 0.15, then falling linearly to 1 − 0.85 at r ≥ 0.5 (many-class mode)."""
    s = settings or ProposalSettings()
    ratio = np.asarray(ratio, np.float64)
    ramp = np.minimum(np.maximum(ratio - s.size_penalty_start, 0.0) / s.size_penalty_span, 1.0)
    return np.where(ratio <= s.size_penalty_start, 1.0, 1.0 - s.size_penalty_max * ramp)


def mask_iou_matrix(masks: np.ndarray) -> np.ndarray:
    """Pairwise IoU of N boolean masks (one matrix product on the flattened masks)."""
    n = len(masks)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    flat = torch.from_numpy(np.ascontiguousarray(masks).reshape(n, -1)).float()
    inter = flat @ flat.T
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - inter
    return (inter / union.clamp(min=1)).numpy()


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on mask IoU: indices of the kept masks, best first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    if len(order) == 0:
        return order
    iou = mask_iou_matrix(masks[order])
    keep: list[int] = []
    for i in range(len(order)):
        if all(iou[i, j] <= iou_threshold for j in keep):
            keep.append(i)
    return order[keep]


def select_masks(
    class_sims: np.ndarray,
    bg_sims: np.ndarray | None,
    masks: np.ndarray,
    settings: ProposalSettings | None = None,
) -> list[Instance]:
    """Choose which masks become instances of which class (METHOD.md §3.3–3.5).

    ``class_sims``: N masks × C classes (scale-combined cosine, best synonym); ``bg_sims``: N
    (best similarity to the background words) or None. Classes are numbered from 1 in the
    returned instances (0 is the background).
    """
    s = settings or ProposalSettings()
    class_sims = np.asarray(class_sims, np.float64)
    n, c = class_sims.shape if class_sims.ndim == 2 else (0, 0)
    if n == 0 or c == 0:
        return []
    masks = np.asarray(masks, bool)
    areas = masks.reshape(n, -1).sum(1)
    ratio = areas / float(masks.shape[1] * masks.shape[2])
    valid = ratio >= s.min_area_ratio
    if c >= s.many_class_from:
        return _select_many(class_sims, masks, areas, ratio, valid, s)
    adjusted = class_sims - (
        s.background_weight * np.asarray(bg_sims, np.float64)[:, None]
        if bg_sims is not None
        else 0.0
    )
    best = adjusted.argmax(1)
    best_score = adjusted[np.arange(n), best]
    threshold = np.where(ratio < s.small_mask_ratio, s.threshold_small, s.threshold_large)
    candidate = valid & (best_score >= threshold)
    instances: list[Instance] = []
    for k in range(c):
        idx = np.nonzero(candidate & (best == k))[0]
        for i in idx[mask_nms(masks[idx], best_score[idx], s.mask_nms_iou)]:
            instances.append(Instance(k + 1, int(i), float(best_score[i]), int(areas[i])))
    return instances


def _select_many(class_sims, masks, areas, ratio, valid, s: ProposalSettings) -> list[Instance]:
    logits = s.temperature * class_sims
    logits = logits - logits.max(1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(1, keepdims=True)
    if not valid.any():
        return []
    best_per_class = probs[valid].max(0)
    keep_class = best_per_class >= max(float(np.median(best_per_class)), s.denoise_floor)
    penalised = probs * size_penalty(ratio, s)[:, None]
    best = probs.argmax(1)
    instances: list[Instance] = []
    for k in np.nonzero(keep_class)[0]:
        idx = np.nonzero(valid & (best == k))[0]
        scores = penalised[idx, k]
        kept = idx[mask_nms(masks[idx], scores, s.mask_nms_iou)][: s.top_k]
        for i in kept:
            instances.append(Instance(int(k) + 1, int(i), float(penalised[i, k]), int(areas[i])))
    return instances


def assign_pixels(
    instances: list[Instance], masks: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Label map and per-class confidence maps: each pixel goes to the most confident kept
    mask covering it (``n_classes`` counts the background). Background confidence is
    1 − the best class confidence."""
    h, w = masks.shape[1:] if len(masks) else (0, 0)
    labels = np.zeros((h, w), np.int32)
    best = np.full((h, w), -np.inf, np.float32)
    scores = np.zeros((n_classes, h, w), np.float32)
    for inst in sorted(instances, key=lambda x: x.score):
        m = masks[inst.mask_index]
        better = m & (inst.score > best)
        labels[better] = inst.class_index
        best[better] = inst.score
        np.maximum(
            scores[inst.class_index], np.where(m, inst.score, 0.0), out=scores[inst.class_index]
        )
    scores[0] = 1.0 - np.clip(scores[1:].max(0) if n_classes > 1 else 0.0, 0.0, 1.0)
    return labels, scores
