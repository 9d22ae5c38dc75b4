"""Segmentation metrics accumulated over a whole benchmark run.

Everything is computed from counts summed over all images (one dataset-wide confusion matrix,
as mmseg does), never averaged per image, so the final numbers do not depend on the order in
which images were processed or on a run being interrupted and resumed.

Conventions
-----------
- Ground truth uses ids ``0 .. K-1``; pixels equal to ``ignore_index`` (255) are left out
  everywhere. Dataset readers map their own conventions (ADE20K's 0 = "other", COCO-Stuff's
  unused ids) onto this before the metrics see them.
- A prediction outside ``0 .. K-1`` (e.g. "no class" where the dataset has no background) is
  counted as *unassigned*: it is a miss for the ground-truth class (lowers its recall and IoU)
  and a hit for no class.
- IoU_c = TP / (GT_c + Pred_c − TP). A class absent from both ground truth and prediction has
  union 0 and IoU nan; the means skip nan (mmseg's ``nanmean``). A class predicted but never in
  the ground truth has IoU 0 and does count.
- Precision_c = TP / Pred_c, Recall_c = TP / GT_c (nan on 0/0, as mmseg), F1_c their
  harmonic mean; F1_c is 0 for a class present on one side only (missed or hallucinated) and
  nan for a class on neither side. Boundary F1 follows the same rule.
- Boundary F1 (the BF score of Csurka et al., BMVC 2013): for each class, the inner boundary
  pixels of its ground-truth and predicted masks; a predicted boundary pixel is correct when a
  ground-truth boundary pixel lies within ``tolerance`` px (Euclidean), and vice versa for
  recall. The tolerance is 0.75 % of the image diagonal, at least 1 px (``boundary_tolerance``).
  Counts are summed over the run per class, then P/R/F1 per class, then the nan-aware mean.
  Boundary pixels deeper than ``tolerance`` inside the ignore region are not counted; those
  within it are (VOC draws its 255 band exactly over object edges, where a correct predicted
  edge lies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.core.limits import int_in

IGNORE_INDEX = 255
MAX_SCORED_CLASSES = 4096  # a saved image's k: its k×k int64 matrix is then 128 MB
MAX_PIXEL_COUNT = 1 << 40  # one image's count of anything
BOUNDARY_TOLERANCE_FRACTION = 0.0075


def boundary_tolerance(height: int, width: int) -> int:
    """Distance tolerance in px for boundary F1: 0.75 % of the diagonal, at least 1."""
    return max(1, int(round(BOUNDARY_TOLERANCE_FRACTION * math.hypot(height, width))))


def confusion(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> tuple[np.ndarray, np.ndarray]:
    """Confusion counts of one image: (K×K matrix [gt, pred], unassigned count per gt class)."""
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    gt = gt.astype(np.int64, copy=False).ravel()
    pred = pred.astype(np.int64, copy=False).ravel()
    valid = (gt != ignore_index) & (gt >= 0) & (gt < num_classes)
    gt = gt[valid]
    pred = pred[valid]
    in_range = (pred >= 0) & (pred < num_classes)
    matrix = np.bincount(
        gt[in_range] * num_classes + pred[in_range], minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    unassigned = np.bincount(gt[~in_range], minlength=num_classes)
    return matrix.astype(np.int64), unassigned.astype(np.int64)


def _inner_boundary(mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return mask
    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=1)
    return mask & ~eroded.astype(bool)


def _near(boundary: np.ndarray, tolerance: int) -> np.ndarray:
    """Pixels within ``tolerance`` px (Euclidean) of any pixel of ``boundary``."""
    if not boundary.any():
        return np.zeros_like(boundary)
    dist = cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= tolerance


def boundary_counts(
    gt: np.ndarray,
    pred: np.ndarray,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
    tolerance: int | None = None,
) -> np.ndarray:
    """Boundary match counts of one image, K×4: [pred matched, pred total, gt matched, gt total]."""
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    if tolerance is None:
        tolerance = boundary_tolerance(*gt.shape)
    valid = gt != ignore_index
    # A boundary pixel counts when it lies within the tolerance of a scored pixel: VOC draws
    # its 255 band exactly over object edges, where a correct predicted edge falls.
    counted = valid if valid.all() else _near(valid, tolerance)
    counts = np.zeros((num_classes, 4), dtype=np.int64)
    present = set(np.unique(gt[valid]).tolist()) | set(np.unique(pred[valid]).tolist())
    for c in sorted(present):
        if not 0 <= c < num_classes:
            continue
        gt_full = _inner_boundary(gt == c)
        pred_full = _inner_boundary(pred == c)
        gt_b, pred_b = gt_full & counted, pred_full & counted
        n_gt, n_pred = int(gt_b.sum()), int(pred_b.sum())
        pred_hit = int((pred_b & _near(gt_full, tolerance)).sum()) if gt_full.any() else 0
        gt_hit = int((gt_b & _near(pred_full, tolerance)).sum()) if pred_full.any() else 0
        counts[c] = (pred_hit, n_pred, gt_hit, n_gt)
    return counts


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _f1(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p) & ~np.isnan(r)
    s = p + r
    out[ok & (s == 0)] = 0.0
    good = ok & (s > 0)
    out[good] = 2 * p[good] * r[good] / s[good]
    return out


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass
class Scores:
    """The metrics of a run. Per-class arrays have nan where a class is undefined."""

    class_names: list[str]
    iou: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    boundary_precision: np.ndarray
    boundary_recall: np.ndarray
    boundary_f1: np.ndarray
    gt_pixels: np.ndarray
    pred_pixels: np.ndarray
    miou: float
    pixel_accuracy: float
    mean_accuracy: float
    mean_precision: float
    mean_recall: float
    mean_f1: float
    mean_boundary_f1: float
    images: int

    def as_dict(self) -> dict:
        def clean(x: float) -> float | None:
            return None if x != x else round(float(x), 6)

        return {
            "images": self.images,
            "mIoU": clean(self.miou),
            "pixel_accuracy": clean(self.pixel_accuracy),
            "mean_accuracy": clean(self.mean_accuracy),
            "mean_precision": clean(self.mean_precision),
            "mean_recall": clean(self.mean_recall),
            "mean_f1": clean(self.mean_f1),
            "mean_boundary_f1": clean(self.mean_boundary_f1),
            "per_class": [
                {
                    "id": i,
                    "name": name,
                    "iou": clean(self.iou[i]),
                    "precision": clean(self.precision[i]),
                    "recall": clean(self.recall[i]),
                    "f1": clean(self.f1[i]),
                    "boundary_f1": clean(self.boundary_f1[i]),
                    "gt_pixels": int(self.gt_pixels[i]),
                    "pred_pixels": int(self.pred_pixels[i]),
                }
                for i, name in enumerate(self.class_names)
            ],
        }


@dataclass
class ConfusionAccumulator:
    """Counts summed over a run: confusion matrix, unassigned pixels, boundary matches."""

    num_classes: int
    ignore_index: int = IGNORE_INDEX
    matrix: np.ndarray = field(init=False)
    unassigned: np.ndarray = field(init=False)
    boundary: np.ndarray = field(init=False)
    images: int = 0

    def __post_init__(self) -> None:
        k = self.num_classes
        self.matrix = np.zeros((k, k), dtype=np.int64)
        self.unassigned = np.zeros(k, dtype=np.int64)
        self.boundary = np.zeros((k, 4), dtype=np.int64)

    def image_counts(
        self, gt: np.ndarray, pred: np.ndarray, *, with_boundary: bool = True
    ) -> ImageCounts:
        matrix, unassigned = confusion(gt, pred, self.num_classes, self.ignore_index)
        boundary = (
            boundary_counts(gt, pred, self.num_classes, self.ignore_index)
            if with_boundary
            else np.zeros((self.num_classes, 4), dtype=np.int64)
        )
        return ImageCounts(matrix, unassigned, boundary)

    def update(
        self, gt: np.ndarray, pred: np.ndarray, *, with_boundary: bool = True
    ) -> ImageCounts:
        counts = self.image_counts(gt, pred, with_boundary=with_boundary)
        self.add(counts)
        return counts

    def add(self, counts: ImageCounts) -> None:
        self.matrix += counts.matrix
        self.unassigned += counts.unassigned
        self.boundary += counts.boundary
        self.images += 1

    def scores(self, class_names: list[str] | None = None) -> Scores:
        return scores_from_counts(
            self.matrix, self.unassigned, self.boundary, self.images, class_names
        )


@dataclass
class ImageCounts:
    """One image's contribution; serialisable sparsely so a run can be resumed exactly."""

    matrix: np.ndarray
    unassigned: np.ndarray
    boundary: np.ndarray

    def to_json(self) -> dict:
        idx = np.flatnonzero(self.matrix)
        b_idx = np.flatnonzero(self.boundary.any(axis=1))
        u_idx = np.flatnonzero(self.unassigned)
        return {
            "k": int(self.matrix.shape[0]),
            "cm": [idx.tolist(), self.matrix.ravel()[idx].tolist()],
            "un": [u_idx.tolist(), self.unassigned[u_idx].tolist()],
            "bd": [b_idx.tolist(), self.boundary[b_idx].tolist()],
        }

    @classmethod
    def from_json(cls, data: dict) -> ImageCounts:
        """The counts :meth:`to_json` wrote, read as input from outside (a state file): k
        bounded, every index an int in range (a negative one would wrap around), listed
        once, every count a whole number in 0..2^40; anything else is a BadInput."""
        if not isinstance(data, dict):
            raise BadInput("The saved counts are not a record.")
        k = int_in(data.get("k"), "The saved class count", 1, MAX_SCORED_CLASSES)
        matrix = np.zeros(k * k, dtype=np.int64)
        idx, vals = _sparse(data, "cm", k * k)
        matrix[idx] = vals
        unassigned = np.zeros(k, dtype=np.int64)
        idx, vals = _sparse(data, "un", k)
        unassigned[idx] = vals
        boundary = np.zeros((k, 4), dtype=np.int64)
        idx, vals = _sparse(data, "bd", k, width=4)
        boundary[idx] = vals
        return cls(matrix.reshape(k, k), unassigned, boundary)


def _whole_numbers(values: object, lo: int, hi: int, what: str) -> list[int]:
    if not isinstance(values, list) or not all(type(v) is int and lo <= v <= hi for v in values):
        raise BadInput(f"{what} must be whole numbers from {lo} to {hi}.")
    return values


def _sparse(data: dict, key: str, size: int, width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (distinct, in ``0..size-1``) and counts of one sparse entry of the counts;
    with ``width``, each index has a row of that many counts."""
    entry = data.get(key)
    what = f"The saved counts' {key!r}"
    if not isinstance(entry, list) or len(entry) != 2:
        raise BadInput(f"{what} must be a pair of lists.")
    idx = _whole_numbers(entry[0], 0, size - 1, f"{what} indices")
    rows = entry[1]
    if not isinstance(rows, list) or len(rows) != len(idx) or len(set(idx)) != len(idx):
        raise BadInput(f"{what} needs one count per index, each index once.")
    if width:
        if not all(isinstance(row, list) and len(row) == width for row in rows):
            raise BadInput(f"{what} needs {width} counts per index.")
        flat = _whole_numbers([v for row in rows for v in row], 0, MAX_PIXEL_COUNT, what)
        values = np.asarray(flat, dtype=np.int64).reshape(len(idx), width)
    else:
        values = np.asarray(_whole_numbers(rows, 0, MAX_PIXEL_COUNT, what), dtype=np.int64)
    return np.asarray(idx, dtype=np.int64), values


def scores_from_counts(
    matrix: np.ndarray,
    unassigned: np.ndarray | None = None,
    boundary: np.ndarray | None = None,
    images: int = 0,
    class_names: list[str] | None = None,
) -> Scores:
    """All metrics from summed counts (see the module docstring for the definitions)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    k = matrix.shape[0]
    unassigned = np.zeros(k, np.int64) if unassigned is None else np.asarray(unassigned)
    boundary = np.zeros((k, 4), np.int64) if boundary is None else np.asarray(boundary)
    tp = np.diag(matrix).astype(np.float64)
    gt = matrix.sum(axis=1) + unassigned
    pred = matrix.sum(axis=0)
    iou = _ratio(tp, gt + pred - tp)
    precision = _ratio(tp, pred)
    recall = _ratio(tp, gt)
    # F1 is 0 for a class that occurs on one side only (missed or hallucinated), nan when
    # it occurs on neither; P and R keep mmseg's nan on 0/0.
    occurs = (gt + pred) > 0
    f1 = np.where(occurs, np.nan_to_num(_f1(precision, recall), nan=0.0), np.nan)
    b_prec = _ratio(boundary[:, 0], boundary[:, 1])
    b_rec = _ratio(boundary[:, 2], boundary[:, 3])
    b_occurs = (boundary[:, 1] + boundary[:, 3]) > 0
    b_f1 = np.where(b_occurs, np.nan_to_num(_f1(b_prec, b_rec), nan=0.0), np.nan)
    total = gt.sum()
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    return Scores(
        class_names=names,
        iou=iou,
        precision=precision,
        recall=recall,
        f1=f1,
        boundary_precision=b_prec,
        boundary_recall=b_rec,
        boundary_f1=b_f1,
        gt_pixels=gt.astype(np.int64),
        pred_pixels=pred.astype(np.int64),
        miou=_nanmean(iou),
        pixel_accuracy=float(tp.sum() / total) if total else float("nan"),
        mean_accuracy=_nanmean(_ratio(tp, gt)),
        mean_precision=_nanmean(precision),
        mean_recall=_nanmean(recall),
        mean_f1=_nanmean(f1),
        mean_boundary_f1=_nanmean(b_f1),
        images=images,
    )
