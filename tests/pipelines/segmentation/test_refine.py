"""SAM2 refinement: interior points, batched decoder calls equal to per-point predict,
voting and combination rules."""

from __future__ import annotations

import numpy as np

from ovpaint.pipelines import sam2_adapter
from ovpaint.pipelines.segmentation import refine as R
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
        labels[(c - 1) * 35 : (c - 1) * 35 + 30, :] = c
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
            _, sc, lr = pred.predict(
                point_coords=p[None],
                point_labels=np.array([1]),
                multimask_output=True,
                return_logits=True,
            )
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
    coords = sam2_adapter.model_coords(pred, coords)
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
    out, info = R.refine_labels(
        ImageSession(np.zeros((50, 50, 3), np.uint8)), tiny_manager, labels, probs, s
    )
    assert info["points"] == [] and np.array_equal(out, labels)


def test_vote_matches_a_plain_count_across_chunks():
    import torch

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (40, 50)).astype(np.int32)
    labels[:, :20] = 1  # a large class-1 region so some masks pass the 60 % vote
    low = torch.from_numpy(rng.normal(0, 1, (5, 3, 16, 16)).astype(np.float32))
    low[:2, :, :, :6] += 4.0
    pts = [R.PromptPoint(5, 5, c, 0) for c in (1, 1, 2, 0, 1)]
    s = R.RefineSettings(decoder_chunk=2)
    claimed = R.vote(low, pts, labels, 3, s)
    import torch.nn.functional as F

    masks = (F.interpolate(low, size=(40, 50), mode="bilinear", align_corners=False) > 0).numpy()
    expected = np.zeros((3, 40, 50), bool)
    for p, three in zip(pts, masks, strict=True):
        for m in three:
            inside = (m & (labels == p.label)).sum()
            if m.sum() and inside >= 0.6 * m.sum():
                expected[p.label] |= m
    assert expected[1].any() and not expected[1].all()
    assert np.array_equal(claimed, expected)


def test_bf16_decoder_follows_fp32(tiny_manager):
    import torch
    import torch.nn.functional as F

    from ovpaint.pipelines.segmentation.prompt_decoder import PromptDecoder, decoder_copy

    rng = np.random.default_rng(2)
    image = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    pts = np.stack([rng.uniform(0, 159, 7), rng.uniform(0, 119, 7)], 1).astype(np.float32)
    with tiny_manager.use("sam2") as sam:
        pred = ImageSession(image).sam2_predictor(sam)
        exact, iou = R.decode_points(pred, pts)
        low, iou16 = R.decode_points(pred, pts, dtype=torch.bfloat16)
        assert low.dtype == torch.float32 and low.shape == exact.shape
        assert not torch.equal(low, exact)  # it did run in bf16

        def masks(t):
            return F.interpolate(t, size=(120, 160), mode="bilinear", align_corners=False) > 0

        agree = (masks(low) == masks(exact)).float().mean().item()
        assert agree > 0.99, agree
        np.testing.assert_allclose(iou16.numpy(), iou.numpy(), atol=0.05)
        decoder = sam.model.sam_mask_decoder
        assert next(decoder.parameters()).dtype == torch.float32  # the model is untouched
        R.decode_points(pred, pts, dtype=torch.bfloat16, derived=sam.derived)
        kept = decoder_copy(decoder, torch.bfloat16, sam.derived)
        assert kept is decoder_copy(decoder, torch.bfloat16, sam.derived)  # made once per bundle
        assert next(kept.parameters()).dtype == torch.bfloat16

        with torch.inference_mode():
            fast = PromptDecoder(pred, torch.bfloat16)
            h, w = fast.embed_hw
            src = torch.randn(3, 256, h, w).to(torch.bfloat16)
            hyper = torch.randn(3, 4, 32).to(torch.bfloat16)
            whole = fast._masks_by_band(src, hyper, rows=h)
            for rows in (1, 3):  # bands, including a short last one, give the same logits
                torch.testing.assert_close(
                    fast._masks_by_band(src, hyper, rows=rows), whole, atol=0.05, rtol=0.01
                )


def test_reassociated_attention_equals_sam2_attention():
    """The reduced-precision path's cross attentions are sam2's ``Attention`` rearranged: in
    fp32 they agree to rounding, with and without the shared query projection."""
    import torch
    import torch.nn.functional as F
    from sam2.modeling.sam.transformer import Attention

    from ovpaint.pipelines.segmentation.prompt_decoder import PromptDecoder, _separate_heads

    dec = object.__new__(PromptDecoder)
    dec.exact = False
    torch.manual_seed(0)
    attn = Attention(64, 4, downsample_rate=2).eval()
    for p in attn.parameters():  # non-zero biases, so dropping or misplacing one shows
        torch.nn.init.normal_(p, std=0.3)
    tokens, image = torch.randn(3, 7, 64), torch.randn(3, 300, 64)
    with torch.no_grad():
        close = dict(atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            dec._to_image(attn, tokens, image, image * 0.5),
            attn(q=tokens, k=image, v=image * 0.5),
            **close,
        )
        want = attn(q=image, k=tokens, v=tokens * 2)
        torch.testing.assert_close(dec._from_image(attn, image, tokens, tokens * 2), want, **close)
        q_t = _separate_heads(attn.q_proj(image), 4).transpose(-2, -1)
        torch.testing.assert_close(
            dec._from_image(attn, None, tokens, tokens * 2, q_t=q_t), want, **close
        )
        q, k, v = (torch.randn(2, 4, n, 8) for n in (7, 300, 300))
        torch.testing.assert_close(
            dec._sdpa(q, k, v), F.scaled_dot_product_attention(q, k, v), **close
        )


def test_refine_precision_setting():
    import pytest
    import torch

    from ovpaint.core.errors import BadInput

    with pytest.raises(BadInput):
        R.RefineSettings(compute_dtype="int4")

    class Sam:
        model = torch.nn.Linear(2, 2)
        device = torch.device("cpu")

    assert R.decoder_dtype("fp32", Sam()) == torch.float32
    assert R.decoder_dtype("bf16", Sam()) == torch.bfloat16
    assert R.decoder_dtype("int8", Sam()) == torch.float32  # int8 is no decoder mode


def test_refined_auto_runs_the_decoder_precision_measured_on_this_machine():
    from fixed_precision import manager_measuring

    from ovpaint.pipelines.segmentation.segment import segment

    rng = np.random.default_rng(1)
    image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    image[20:70, 30:90] = (200, 40, 40)
    for measured in ("fp32", "bf16"):
        manager = manager_measuring(measured)
        auto = segment(image, "dog, tree", method="refined", manager=manager)
        assert manager.calibrator.asked == ["dense", "decoder"]
        named = segment(
            image,
            "dog, tree",
            method="refined",
            manager=manager,
            settings={"dense.compute_dtype": measured, "refine.compute_dtype": measured},
        )
        assert auto.extras["points"] and np.array_equal(auto.labels, named.labels)
