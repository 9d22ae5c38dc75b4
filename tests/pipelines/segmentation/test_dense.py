"""Dense path and the segment entry point on the tiny models: windows, caches, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixed_precision import manager_measuring

from ovpaint.core.errors import BadInput
from ovpaint.core.prompt import ClassQuery
from ovpaint.pipelines.segmentation import dense as D
from ovpaint.pipelines.segmentation.segment import segment
from ovpaint.pipelines.session import ImageSession


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = (rng.random((150, 200, 3)) * 255).astype(np.uint8)
    img[40:110, 60:150] = (30, 200, 40)
    return img


def test_window_boxes_cover_and_stay_inside():
    for h, w in [(336, 448), (224, 224), (100, 300), (500, 337)]:
        boxes = D.window_boxes(h, w, 224, 112)
        cover = np.zeros((h, w), int)
        for y1, y2, x1, x2 in boxes:
            assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
            assert y2 - y1 == min(224, h) and x2 - x1 == min(224, w)
            cover[y1:y2, x1:x2] += 1
        assert cover.min() >= 1
    assert len(D.window_boxes(336, 448)) == 6


def test_resized_size_caps_long_side():
    assert D.resized_size(300, 400, 336, 2048) == (336, 448)
    h, w = D.resized_size(100, 10_000, 336, 2048)
    assert w == 2048 and 16 <= h < 336


def test_small_input_interpolates_positional_embedding(tiny_manager):
    with tiny_manager.use("clip") as clip:
        x = torch.zeros(1, 3, 48, 80)
        with torch.no_grad():
            tokens, gh, gw = D.dense_embeddings(clip.model.visual, x)
    assert (gh, gw) == (3, 5) and tokens.shape[1] == 1 + 15


def test_multi_layer_aggregation_is_normalised_average(tiny_manager):
    with tiny_manager.use("clip") as clip, torch.no_grad():
        x = torch.randn(1, 3, 224, 224)
        vis = clip.model.visual
        one, _, _ = D.dense_embeddings(vis, x)
        same, _, _ = D.dense_embeddings(vis, x, layers=(3,))
        agg, _, _ = D.dense_embeddings(vis, x, layers=(1, 3))
    torch.testing.assert_close(same, torch.nn.functional.normalize(one, dim=-1))
    assert not torch.allclose(agg, same)


def test_class_names_background_rules():
    q = [ClassQuery("dog", ("dog",)), ClassQuery("sky", ("sky", "heaven"))]
    names, owner, classes = D.class_names(q)
    assert classes == ["background", "dog", "sky"]
    assert "sky" not in names[: owner.count(0)]  # asked-for words leave the background
    assert owner.count(0) == len(D.background_words()) - 1
    explicit = [ClassQuery("background", ("wall", "floor"))] + q
    names, owner, classes = D.class_names(explicit)
    assert names[:2] == ["wall", "floor"] and classes == ["background", "dog", "sky"]
    names, owner, _ = D.class_names(q, implicit_background=False)
    assert 0 not in owner


def test_postprocess_area_and_prob_thresholds():
    logits = torch.zeros(3, 10, 10)
    logits[1, :, :9] = 1.0  # class 1 wins 90 px
    logits[2, :, 9] = 1.0  # class 2 wins 10 px (10 % of the foreground)
    probs, labels = D.postprocess(logits, [0, 1, 2], 40.0, 0.0, area_thd=0.2)
    assert probs[2].max() == 0 and (labels != 2).all()
    probs, labels = D.postprocess(logits, [0, 1, 2], 1.0, prob_thd=0.9)
    assert (labels == 0).all()


def test_requery_reuses_window_features(tiny_manager, image):
    session = ImageSession(image)
    a = segment(image, "grass", method="dense", manager=tiny_manager, session=session)
    keys = [k for k in session._cache if k[0] == "dense_windows"]
    assert len(keys) == 1
    cached = session.get(keys[0])
    b = segment(image, "grass, person", method="dense", manager=tiny_manager, session=session)
    assert session.get(keys[0]) is cached
    assert a.labels.shape == b.labels.shape == image.shape[:2]
    assert b.scores.shape == (3, *image.shape[:2])
    np.testing.assert_allclose(b.scores.sum(0) <= 1 + 1e-5, True)


def test_single_word_gives_a_mask_and_background(tiny_manager, image):
    r = segment(image, "dog", method="dense", manager=tiny_manager)
    assert r.classes == ["background", "dog"]
    assert set(np.unique(r.labels)) <= {0, 1}


def test_bf16_matches_fp32_mostly(tiny_manager, image):
    s = ImageSession(image)
    a = segment(
        image,
        "dog, tree",
        method="dense",
        manager=tiny_manager,
        session=s,
        settings={"dense": {"compute_dtype": "fp32"}},
    )
    b = segment(
        image,
        "dog, tree",
        method="dense",
        manager=tiny_manager,
        session=s,
        settings={"dense": {"compute_dtype": "bf16"}},
    )
    # 97 % of this image is background, so also compare where either found a class
    found = (a.labels != 0) | (b.labels != 0)
    assert found.sum() > 500
    assert (a.labels == b.labels).mean() >= 0.999
    assert (a.labels == b.labels)[found].mean() >= 0.98


@pytest.mark.parametrize("measured", ["fp32", "bf16", "int8"])
def test_auto_runs_the_precision_measured_on_this_machine(image, measured):
    """``auto`` is the manager's measured choice for the dense workload; the result is the one
    of that precision named explicitly (same models, same kernels)."""
    manager = manager_measuring(measured)
    auto = segment(image, "dog, tree", method="dense", manager=manager)
    assert manager.calibrator.asked == ["dense"]
    named = segment(
        image,
        "dog, tree",
        method="dense",
        manager=manager,
        settings={"dense.compute_dtype": measured},
    )
    assert np.array_equal(auto.labels, named.labels)
    assert np.array_equal(auto.scores, named.scores)


def test_int8_matches_fp32_mostly(tiny_manager, image):
    s = ImageSession(image)
    a, b = (
        segment(
            image,
            "dog, tree",
            method="dense",
            manager=tiny_manager,
            session=s,
            settings={"dense.compute_dtype": p},
        )
        for p in ("fp32", "int8")
    )
    found = (a.labels != 0) | (b.labels != 0)
    assert found.sum() > 500
    assert (a.labels == b.labels).mean() >= 0.99
    assert (a.labels == b.labels)[found].mean() >= 0.9


def test_int8_product_is_the_quantised_product():
    """Rows and weight channels that int8 holds exactly give the exact product; random data
    stays within the rounding of 8 bits."""
    gen = torch.Generator().manual_seed(0)
    w_int = torch.randint(-127, 128, (48, 64), generator=gen).float()
    w_int[:, 0] = 127  # each channel's largest magnitude is 127 units
    w_scale = torch.rand(48, generator=gen) + 0.5
    y_int = torch.randint(-127, 128, (2, 5, 64), generator=gen).float()
    y_int[..., 0] = -127
    y_scale = torch.rand(2, 5, 1, generator=gen) + 0.1
    weight, y = w_int * w_scale[:, None], y_int * y_scale
    entry = D._low_copy(weight, torch.int8)
    assert entry[0].dtype == torch.int8 and entry[0].shape == (64, 48)
    exact = torch.nn.functional.linear(y.double(), weight.double()).float()
    got = D._int8_product(y, *entry)
    torch.testing.assert_close(got, exact, rtol=1e-5, atol=1e-3)
    y_rand = torch.randn(3, 7, 64, generator=gen)
    w_rand = torch.randn(48, 64, generator=gen)
    got = D._int8_product(y_rand, *D._low_copy(w_rand, torch.int8))
    want = torch.nn.functional.linear(y_rand, w_rand)
    assert float((got - want).norm() / want.norm()) < 0.02


def test_low_precision_weights_are_kept_and_follow_changes(tiny_manager):
    """bf16 weights are converted once per bundle (kept in its own cache, dropped with it), and
    remade when a weight changes in place (e.g. loading other weights into the same model)."""
    import copy
    import dataclasses

    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    s = D.DenseSettings(compute_dtype="bf16", crop=64, stride=32)
    with tiny_manager.use("clip") as clip:
        bundle = dataclasses.replace(clip, model=copy.deepcopy(clip.model))
    assert len(bundle.derived) == 0  # a bundle of its own: nothing shared with the original
    visual = bundle.model.visual
    first = D.window_features(bundle, x, s).features
    cache = D.low_weights(bundle, torch.bfloat16)
    held = {k: v[1] for k, v in cache.items() if k != "dtype"}
    assert held  # converted once ...
    assert torch.equal(D.window_features(bundle, x, s).features, first)
    assert all(cache[k][1] is w for k, w in held.items())  # ... and reused
    fc = visual.transformer.resblocks[0].mlp.c_fc.weight
    with torch.no_grad():
        fc.mul_(3.0)
    changed = D.window_features(bundle, x, s).features
    fresh = dataclasses.replace(bundle, model=copy.deepcopy(bundle.model))  # its own conversion
    assert not torch.equal(changed, first)
    assert torch.equal(changed, D.window_features(fresh, x, s).features)


@pytest.mark.parametrize("prompt", ["", "   ", ",,;|\n", None])
def test_empty_prompts_are_bad_input(tiny_manager, image, prompt):
    with pytest.raises(BadInput):
        segment(image, prompt, method="dense", manager=tiny_manager)


def test_odd_prompts(tiny_manager, image):
    r = segment(image, "Dog, dog, DOG | hound, 猫, собака", method="dense", manager=tiny_manager)
    assert r.classes == ["background", "Dog", "猫", "собака"]
    with pytest.raises(BadInput):
        segment(image, "x" * 10_000, method="dense", manager=tiny_manager)
    with pytest.raises(BadInput):
        segment(image, "dog", method="nonsense", manager=tiny_manager)


@pytest.mark.parametrize("shape", [(3, 300, 3), (300, 3, 3)])
def test_strip_at_the_aspect_limit_is_segmented(tiny_manager, shape):
    r = segment(np.full(shape, 90, np.uint8), "dog", method="dense", manager=tiny_manager)
    assert r.labels.shape == shape[:2] and r.scores.shape == (2, *shape[:2])


@pytest.mark.parametrize("shape", [(3, 900, 3), (900, 2, 3)])
def test_strip_past_the_aspect_limit_is_refused(tiny_manager, shape):
    with pytest.raises(BadInput, match="times the short one"):
        segment(np.full(shape, 90, np.uint8), "dog", method="naclip", manager=tiny_manager)


def test_network_input_never_under_a_patch():
    """Callers of the pipeline below segment() get no side under one patch for a strip
    past the 1:128 ratio at the 2048 long-side cap: it is stretched across."""
    assert D.resized_size(3, 900, 336, 2048) == (D.MIN_INPUT_SIDE, 2048)
    assert D.resized_size(900, 2, 336, 2048) == (2048, D.MIN_INPUT_SIDE)


@pytest.mark.parametrize("method", ["dense", "refined"])
def test_image_smaller_than_a_patch(tiny_manager, method):
    img = np.full((7, 10, 3), 128, np.uint8)
    r = segment(img, "dog", method=method, manager=tiny_manager)
    assert r.labels.shape == (7, 10) and r.scores.shape == (2, 7, 10)


def test_huge_image_is_bounded(tiny_manager, monkeypatch):
    """12,000×9,000: maps are computed at the capped work size, scores left out."""
    img = np.zeros((9000, 12000, 3), np.uint8)
    img[:, 6000:] = 200
    r = segment(img, "dog, sky", method="dense", manager=tiny_manager)
    assert r.labels.shape == (9000, 12000)
    assert r.scores is None
    assert any("working-size cap" in m for m in r.messages)
    assert any("scores were left out" in m for m in r.messages)


def test_class_absent_everywhere_is_empty_mask(tiny_manager, image):
    r = segment(
        image,
        [ClassQuery("dog", ("dog",)), ClassQuery("cat", ("cat",))],
        method="dense",
        manager=tiny_manager,
        settings={"dense.prob_thd": 0.0},
    )
    # force absence: a zero-weighted class is never argmax with area_thd at 1.0
    r2 = segment(
        image,
        "dog, cat",
        method="dense",
        manager=tiny_manager,
        settings={"dense": {"area_thd": 1.0}},
    )
    assert set(r2.areas().values()) == {0}
    assert all(m.dtype == bool for m in r.masks().values())


def test_work_size_respects_both_caps():
    s = D.DenseSettings(max_work_pixels=1_000_000, max_map_bytes=40_000_000)
    h, w = D.work_size(9000, 12000, 2, s)
    assert h * w <= 1_000_000 and abs(w / h - 12000 / 9000) < 0.01
    h, w = D.work_size(9000, 12000, 100, s)
    assert h * w * 4 * 100 <= 40_000_000


def test_dense_settings_presets_and_ranges():
    s = D.DenseSettings.voc(short_side=448)
    assert (s.logit_scale, s.prob_thd, s.area_thd, s.short_side) == (65.0, 0.1, 0.1, 448)
    for bad in ({"compute_dtype": "int4"}, {"prob_thd": 1.5}, {"stride": 0}):
        with pytest.raises(BadInput):
            D.DenseSettings(**bad)


def test_cancel_before_work(tiny_manager, image):
    from ovpaint.core.errors import Cancelled
    from ovpaint.core.jobs import CancelToken

    token = CancelToken()
    token.cancel()
    session = ImageSession(image)
    with pytest.raises(Cancelled):
        segment(image, "dog", method="refined", manager=tiny_manager, session=session, cancel=token)
    assert not [k for k in session._cache if k[0] == "dense_windows"]


@pytest.mark.parametrize(
    "hw,out",
    [
        ((336, 448), (300, 400)),
        ((200, 100), (190, 95)),
        ((336, 700), (1200, 2500)),
        ((30, 40), (7, 10)),
    ],
)
def test_fast_final_logits_equals_reference_chain(hw, out):
    torch.manual_seed(0)
    boxes = D.window_boxes(*hw)
    crop = (boxes[0][1] - boxes[0][0], boxes[0][3] - boxes[0][2])
    feats = torch.nn.functional.normalize(
        torch.randn(len(boxes), 16, crop[0] // 16 or 1, crop[1] // 16 or 1), dim=1
    )
    wf = D.WindowFeatures(feats, boxes, hw, crop)
    text = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    ref = D.final_logits(D.slide_logits(wf, text), out)
    torch.testing.assert_close(D.fast_final_logits(wf, text, out), ref, atol=1e-5, rtol=0)


def test_postprocess_consume_equals_copy():
    torch.manual_seed(1)
    logits = torch.randn(6, 20, 30)
    owner = [0, 0, 1, 2, 2, 2]
    p1, l1 = D.postprocess(logits.clone() * 40, owner, 1.0)
    p2, l2 = D.postprocess(logits, owner, 40.0)
    torch.testing.assert_close(p1, p2)
    assert torch.equal(l1, l2)
    ref = torch.softmax(logits * 40, 0)
    torch.testing.assert_close(p2[2], ref[3:].amax(0))


def test_missing_model_is_reported_before_any_work(tmp_path):
    """A method's models are checked first: with CLIP present and SAM2 missing, 'refined'
    says SAM2 is missing instead of running the dense pass and failing later."""
    from ovpaint.core.errors import ModelUnavailable
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    clip = tmp_path / "open_clip_model.safetensors"
    clip.write_bytes(b"not a real model")  # never loaded: the check comes first
    # chosen in an earlier session (an import today would check the file and refuse it)
    settings = Settings(
        tmp_path / "settings.json", {"local_model_paths": {"clip-vit-b16": str(clip)}}
    )
    manager = ModelManager(profile="real", device="cpu", settings=settings)
    assert manager.spec("clip").id == "clip-vit-b16"
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ModelUnavailable) as err:
        segment(image, "sky", method="refined", manager=manager)
    assert manager.spec("sam2").id in str(err.value) or "SAM" in str(err.value)
    assert manager.states()[0].state != "loaded"
