"""Metrics against confusion matrices and boundary scores computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ovpaint.eval.metrics import (
    ConfusionAccumulator,
    ImageCounts,
    boundary_counts,
    boundary_tolerance,
    confusion,
    scores_from_counts,
)

GT = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 2, 0]])


def test_confusion_matrix_by_hand_and_ignore_label():
    matrix, unassigned = confusion(GT, PRED, 3)
    # pairs (gt, pred) without the ignored pixel: (0,0) (0,1) (1,1) (1,1) (2,2)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    assert unassigned.tolist() == [0, 0, 0]


def test_scores_by_hand():
    acc = ConfusionAccumulator(3)
    acc.update(GT, PRED)
    s = acc.scores(["a", "b", "c"])
    assert s.iou.tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    assert s.miou == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert s.pixel_accuracy == pytest.approx(4 / 5)
    assert s.precision.tolist() == pytest.approx([1.0, 2 / 3, 1.0])
    assert s.recall.tolist() == pytest.approx([0.5, 1.0, 1.0])
    assert s.f1.tolist() == pytest.approx([2 / 3, 0.8, 1.0])
    assert s.mean_precision == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert s.mean_recall == pytest.approx(2.5 / 3)
    assert s.mean_f1 == pytest.approx((2 / 3 + 0.8 + 1) / 3)
    assert s.images == 1


def test_absent_class_is_nan_and_skipped_but_false_positive_class_counts():
    # Class 3 occurs nowhere: excluded from the mean, as mmseg's nanmean does.
    s = scores_from_counts(confusion(GT, PRED, 4)[0])
    assert math.isnan(s.iou[3])
    assert s.miou == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    # Now predict class 3 on one pixel of class 0: IoU_3 = 0 and it counts in the mean.
    pred = PRED.copy()
    pred[0, 0] = 3
    s = scores_from_counts(confusion(GT, pred, 4)[0])
    assert s.iou[3] == 0.0
    assert s.iou[0] == pytest.approx(0.0)  # class 0 lost its only hit: 0 / (2 + 1 − 0)
    assert s.miou == pytest.approx((0 + 2 / 3 + 1 + 0) / 4)
    assert math.isnan(s.recall[3]) and s.precision[3] == 0.0 and s.f1[3] == 0.0


def test_prediction_outside_classes_is_a_miss():
    pred = PRED.copy()
    pred[1, 0] = 255  # gt 1 predicted as "nothing"
    matrix, unassigned = confusion(GT, pred, 3)
    assert unassigned.tolist() == [0, 1, 0]
    s = scores_from_counts(matrix, unassigned)
    # class 1: TP 1, GT 2, Pred 2 → IoU 1/3; pixel accuracy 3/5
    assert s.iou[1] == pytest.approx(1 / 3)
    assert s.recall[1] == pytest.approx(0.5)
    assert s.pixel_accuracy == pytest.approx(3 / 5)


def test_run_wide_matrix_not_mean_of_images():
    # Image A: class 1 perfect on 1 pixel; image B: class 1 wrong on 9 pixels.
    acc = ConfusionAccumulator(2)
    acc.update(np.array([[1, 0]]), np.array([[1, 0]]))
    acc.update(np.ones((3, 3), int), np.zeros((3, 3), int))
    s = acc.scores()
    # class 1: TP 1, GT 10, Pred 1 → 0.1 (a per-image mean would give (1 + 0) / 2)
    assert s.iou[1] == pytest.approx(0.1)
    assert acc.matrix.tolist() == [[1, 0], [9, 1]]


def test_counts_roundtrip_and_order_independence():
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 5, (7, 9)), rng.integers(0, 5, (7, 9))) for _ in range(4)]
    pairs[0][0][0, :] = 255
    a, b = ConfusionAccumulator(5), ConfusionAccumulator(5)
    contributions = [a.update(g, p) for g, p in pairs]
    for c in reversed(contributions):
        b.add(ImageCounts.from_json(c.to_json()))
    assert (a.matrix == b.matrix).all()
    assert (a.boundary == b.boundary).all()
    assert a.scores().miou == b.scores().miou


def _block(shape, y0, x0, h=2, w=2):
    m = np.zeros(shape, int)
    m[y0 : y0 + h, x0 : x0 + w] = 1
    return m


@pytest.mark.parametrize(
    "shift,expected_p,expected_r", [(0, 1.0, 1.0), (1, 1.0, 1.0), (2, 0.5, 0.5), (3, 0.0, 0.0)]
)
def test_boundary_counts_by_hand(shift, expected_p, expected_r):
    # A 2×2 block is all boundary. Shifted right by `shift` px, tolerance 1 px.
    gt = _block((8, 8), 2, 2)
    pred = _block((8, 8), 2, 2 + shift)
    counts = boundary_counts(gt, pred, 2, tolerance=1)
    pred_hit, n_pred, gt_hit, n_gt = counts[1]
    assert (n_pred, n_gt) == (4, 4)
    assert pred_hit / n_pred == expected_p
    assert gt_hit / n_gt == expected_r


def test_boundary_f1_ignores_ignore_region_and_missing_class():
    gt = _block((8, 8), 2, 2)
    gt[:, 6:] = 255
    pred = _block((8, 8), 2, 2)
    pred[0, 7] = 1  # a stray prediction deep in the ignored region (2 px > tolerance): not counted
    s = scores_from_counts(*confusion(gt, pred, 2), boundary_counts(gt, pred, 2, tolerance=1))
    assert s.boundary_f1[1] == 1.0
    empty = boundary_counts(gt, np.zeros_like(pred), 2, tolerance=1)
    s = scores_from_counts(*confusion(gt, np.zeros_like(pred), 2), empty)
    assert s.boundary_f1[1] == 0.0


def test_tolerance_is_fraction_of_diagonal():
    assert boundary_tolerance(375, 500) == round(0.0075 * 625)
    assert boundary_tolerance(10, 10) == 1


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError):
        confusion(np.zeros((2, 2)), np.zeros((2, 3)), 2)
