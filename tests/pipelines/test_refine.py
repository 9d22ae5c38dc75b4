"""SAM2 refinement: interior points, batched decoder calls equal to per-point predict,
voting and combination rules."""

from __future__ import annotations

import numpy as np

from ovpaint.pipelines import refine as R
from ovpaint.pipelines.session import ImageSession


def test_point_is_inside_non_convex_region():
    mask = np.zeros((200, 200), bool)
    mask[20:180, 20:50] = True  # a "U": its centroid lies outside
    mask[150:180, 20:180] = True
    mask[20:180, 150:180] = True
    pts = R.component_points(mask, R.RefineSettings(large_area_frac=1.0), 20)
    assert len(pts) == 1
    x, y, _ = pts[0]
    assert mask[int(y), int(x)]


def test_small_components_dropped_and_points_spaced():
    mask = np.zeros((400, 400), bool)
    mask[5:9, 5:9] = True  # tiny speck
    mask[100:400, 0:400] = True  # large region: several points
    s = R.RefineSettings(large_area_frac=0.05, max_points_per_class=8)
    pts = R.component_points(mask, s, 20)
    assert 2 <= len(pts) <= 8
    assert all(y >= 100 for _, y, _ in pts)
    xy = np.array([(x, y) for x, y, _ in pts])
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
    assert d.min() >= 20


def test_caps_per_class_and_image():
    labels = np.zeros((300, 300), np.int32)
    for c in range(1, 9):
        labels[(c - 1) * 35:(c - 1) * 35 + 30, :] = c
    s = R.RefineSettings(max_points_per_class=3, max_points=10, large_area_frac=0.01)
    pts = R.select_points(labels, 9, s, 20)
    assert len(pts) == 10
    assert all(sum(p.label == c for p in pts) <= 3 for c in range(9))
    assert {p.label for p in pts} == set(range(9))  # first points of every class come first


def test_vote_and_combine():
    labels = np.zeros((10, 10), np.int32)
    labels[:, 5:] = 1
    probs = np.stack([(labels == 0) * 0.9 + 0.05, (labels == 1) * 0.9 + 0.05]).astype(np.float32)
    import torch

    low = torch.full((1, 3, 10, 10), -5.0)
    low[0, 0, :, 3:] = 5.0  # 70 % inside class 1: kept, claims columns 3-4
    low[0, 1, :, 0:6] = 5.0  # 1/6 inside: rejected
    pts = [R.PromptPoint(7, 5, 1, 0)]
    claimed = R.vote(low, pts, labels, 2, R.RefineSettings())
    assert claimed[1].sum() == 70 and not claimed[0].any()
    out = R.combine(claimed, labels, probs)
    assert (out[:, 3:] == 1).all() and (out[:, :3] == 0).all()


def test_batched_decoder_equals_predict(tiny_manager):
    import torch

    rng = np.random.default_rng(0)
    image = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    session = ImageSession(image)
    pts = np.array([[10, 10], [80, 60], [150, 110]], np.float32)
    with tiny_manager.use("sam2") as sam:
        pred = session.sam2_predictor(sam)
        low, iou = R.decode_points(pred, pts)
        assert low.shape[:2] == (3, 3)
        for i, p in enumerate(pts):
            _, sc, lr = pred.predict(point_coords=p[None], point_labels=np.array([1]),
                                     multimask_output=True, return_logits=True)
            np.testing.assert_allclose(np.clip(low[i].numpy(), -32, 32), lr, atol=1e-4)
            np.testing.assert_allclose(iou[i].numpy(), sc, atol=1e-4)
        one, _ = R.decode_points(pred, pts[1:2])  # a single prompt takes sam2's own path
        np.testing.assert_allclose(one[0].numpy(), low[1].numpy(), atol=1e-3)
        with torch.no_grad():
            plain, _ = R._decode_plain(pred, *_prompts(pred, pts))
        np.testing.assert_allclose(plain.numpy(), low.numpy(), atol=1e-3)


def test_decoder_batches_split_without_reordering_or_lone_prompts(tiny_manager):
    rng = np.random.default_rng(1)
    image = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    session = ImageSession(image)
    pts = np.stack([rng.uniform(0, 159, 7), rng.uniform(0, 119, 7)], 1).astype(np.float32)
    with tiny_manager.use("sam2") as sam:
        pred = session.sam2_predictor(sam)
        whole, iou_whole = R.decode_points(pred, pts, prompts_per_call=64)
        for per_call in (2, 3, 6):  # 7 prompts: 3+2+2, 3+2+2... never a batch of one
            split, iou_split = R.decode_points(pred, pts, prompts_per_call=per_call)
            np.testing.assert_allclose(split.numpy(), whole.numpy(), atol=1e-4)
            np.testing.assert_allclose(iou_split.numpy(), iou_whole.numpy(), atol=1e-5)


def _prompts(pred, pts):
    import torch

    coords = torch.as_tensor(pts).view(-1, 1, 2)
    coords = pred._transforms.transform_coords(coords, normalize=True, orig_hw=pred._orig_hw[-1])
    return coords, torch.ones((len(pts), 1), dtype=torch.int)


def test_refine_only_changes_claimed_pixels(tiny_manager, monkeypatch):
    votes = []

    def spy(*args, **kwargs):
        votes.append(vote(*args, **kwargs))
        return votes[-1]

    vote = R.vote
    monkeypatch.setattr(R, "vote", spy)
    rng = np.random.default_rng(1)
    image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    labels = np.zeros((96, 128), np.int32)
    labels[20:80, 30:100] = 1
    probs = np.stack([(labels == 0), (labels == 1)]).astype(np.float32)
    refined, info = R.refine_labels(ImageSession(image), tiny_manager, labels, probs)
    assert refined.shape == labels.shape and refined.dtype == np.int32
    assert 1 <= len(info["points"]) <= 60
    (claimed,) = votes
    unclaimed = ~claimed.any(axis=0)
    assert np.array_equal(refined[unclaimed], labels[unclaimed])
    changed = refined != labels
    assert changed.any()  # the random-weight masks do claim pixels here
    ys, xs = np.nonzero(changed)
    assert claimed[refined[ys, xs], ys, xs].all()  # a changed pixel goes to a claiming class


def test_no_points_means_dense_labels(tiny_manager):
    labels = np.zeros((50, 50), np.int32)
    probs = np.ones((1, 50, 50), np.float32)
    s = R.RefineSettings(refine_background=False)
    out, info = R.refine_labels(ImageSession(np.zeros((50, 50, 3), np.uint8)), tiny_manager,
                                labels, probs, s)
    assert info["points"] == [] and np.array_equal(out, labels)
