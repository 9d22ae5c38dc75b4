"""NACLIP on the dense pipeline (tiny models): shared trunk, caches, PAMR, settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ovpaint.core.errors import BadInput
from ovpaint.core.prompt import parse_prompt
from ovpaint.pipelines.segmentation import dense as D
from ovpaint.pipelines.segmentation.segment import segment
from ovpaint.pipelines.segmentation.settings import (
    DenseSettings,
    NaclipSettings,
    parse_settings,
    section_from_dict,
)
from ovpaint.pipelines.session import ImageSession


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(3)
    img = (rng.random((150, 260, 3)) * 255).astype(np.uint8)
    img[30:120, 40:150] = (200, 40, 30)
    return img


def _keys(session, kind):
    return [k for k in session._cache if k[0] == kind]


def test_sclip_and_naclip_share_the_trunk(tiny_manager, image, monkeypatch):
    calls = []
    trunk = D.trunk_tokens
    monkeypatch.setattr(D, "trunk_tokens", lambda *a, **k: calls.append(1) or trunk(*a, **k))
    session = ImageSession(image)
    queries = parse_prompt("cat, grass")
    sclip = DenseSettings(compute_dtype="fp32")
    naclip = NaclipSettings(compute_dtype="fp32")
    p1, l1, _, _ = D.dense_probabilities(session, queries, tiny_manager, sclip)
    p2, l2, _, _ = D.dense_probabilities(session, queries, tiny_manager, naclip)
    assert len(calls) == 1  # the expensive part ran once
    assert len(_keys(session, "dense_trunk")) == 1
    assert len(_keys(session, "dense_windows")) == 2
    assert not torch.allclose(p1, p2)
    # each method's features equal a fresh computation without the cache
    with tiny_manager.use("clip") as clip:
        x = D.preprocess(image, 336, 2048, clip.mean, clip.std)
        fresh = D.window_features(clip, x, naclip)
        cached = D.session_window_features(session, clip, naclip)
    torch.testing.assert_close(cached.features, fresh.features)
    # a re-query reuses everything
    before = len(calls)
    D.dense_probabilities(session, parse_prompt("dog"), tiny_manager, naclip)
    assert len(calls) == before and len(_keys(session, "dense_windows")) == 2


def test_naclip_probabilities_are_renormalised_and_pamr_timed(tiny_manager, image):
    session = ImageSession(image)
    timings: dict = {}
    probs, labels, classes, _ = D.dense_probabilities(
        session, parse_prompt("cat, grass"), tiny_manager, NaclipSettings(), timings=timings
    )
    assert classes == ["background", "cat", "grass"]
    torch.testing.assert_close(probs.sum(0), torch.ones(image.shape[:2]))
    assert torch.equal(labels, probs.argmax(0))
    assert "pamr" in timings


def test_requery_refines_only_new_names(tiny_manager, image, monkeypatch):
    """PAMR's step matrix and each name's refined map are kept: a re-query refines only the
    names it has not seen, with the same numbers as without the cache."""
    from ovpaint.pipelines.segmentation import pamr as P

    refined = []
    apply = P.PamrOperator.apply
    monkeypatch.setattr(
        P.PamrOperator,
        "apply",
        lambda op, maps, steps: refined.append(len(maps)) or apply(op, maps, steps),
    )
    built = []
    operator = P.pamr_operator
    monkeypatch.setattr(P, "pamr_operator", lambda *a: built.append(1) or operator(*a))
    s = NaclipSettings(compute_dtype="fp32")
    session = ImageSession(image)
    first, _, _, _ = D.dense_probabilities(session, parse_prompt("cat, grass"), tiny_manager, s)
    again, _, _, _ = D.dense_probabilities(session, parse_prompt("cat, grass"), tiny_manager, s)
    assert len(refined) == 1 and torch.equal(first, again)
    more, labels, _, _ = D.dense_probabilities(
        session, parse_prompt("cat, person"), tiny_manager, s
    )
    assert refined[1:] == [1] and len(built) == 1  # only "person", on the kept matrix
    nocache = NaclipSettings(compute_dtype="fp32", pamr_cache_bytes=0)
    plain, plain_labels, _, _ = D.dense_probabilities(
        ImageSession(image), parse_prompt("cat, person"), tiny_manager, nocache
    )
    assert refined[-1] == len(D.class_names(parse_prompt("cat, person"))[0]) and len(built) == 2
    torch.testing.assert_close(more, plain, atol=1e-6, rtol=0)
    assert (labels == plain_labels).float().mean() > 0.9999


def test_pamr_is_an_option_for_sclip(tiny_manager, image):
    session = ImageSession(image)
    q = parse_prompt("cat, grass, person")
    plain = DenseSettings(compute_dtype="fp32")
    refined = parse_settings({"dense.pamr": True, "dense.compute_dtype": "fp32"}).dense
    p1, _, _, _ = D.dense_probabilities(session, q, tiny_manager, plain)
    t: dict = {}
    p2, _, _, _ = D.dense_probabilities(session, q, tiny_manager, refined, timings=t)
    assert "pamr" in t and not torch.allclose(p1, p2)
    assert len(_keys(session, "dense_windows")) == 1  # PAMR works on the same features
    r = segment(image, q, method="dense", manager=tiny_manager, settings={"dense.pamr": True})
    assert "pamr" in r.timings and r.method == "dense"


def test_voc_presets_are_each_methods_own(tiny_manager, image):
    from ovpaint.eval.datasets import DATASETS

    s = parse_settings(DATASETS["voc"].preset("naclip"))["naclip"]
    assert s.whole_image and s.prob_thd == 0.1 and s.area_thd is None and s.pamr
    assert s.logit_scale == 40.0
    session = ImageSession(image)
    probs, labels, _, _ = D.dense_probabilities(session, parse_prompt("cat"), tiny_manager, s)
    (feats,) = [session.get(k) for k in _keys(session, "dense_windows")]
    assert feats.boxes == [(0, *feats.input_hw[:1], 0, feats.input_hw[1])]
    assert labels.shape == image.shape[:2]
    sclip = parse_settings(DATASETS["voc"].preset("dense")).dense  # SCLIP's stays its own
    assert (sclip.logit_scale, sclip.area_thd, sclip.whole_image) == (65.0, 0.1, False)


def test_pamr_size_keeps_pamr_under_the_map_bytes_cap():
    from ovpaint.pipelines.segmentation.pamr import operator_bytes_per_pixel

    s = NaclipSettings(max_map_bytes=100_000_000)
    work = D.work_size(3000, 4000, 30, s)
    assert work[0] * work[1] * 4 * 30 <= 100_000_000
    h, w = D.pamr_size(work, 30, s)
    assert h * w * (12 * 30 + operator_bytes_per_pixel(s.pamr_dilations)) <= 100_000_000
    assert abs(w / h - 4 / 3) < 0.01
    assert D.pamr_size((375, 500), 30, NaclipSettings()) == (375, 500)  # a dataset image
    h, w = D.pamr_size((1500, 2000), 5, NaclipSettings())  # a photo: at most 1 MP
    assert 990_000 < h * w <= 1_000_000


@pytest.mark.parametrize(
    "values",
    [
        {"last_block": "qk"},
        {"pos_interp": "nearest"},
        {"gaussian_std": 0},
        {"pamr_steps": 1000},
        {"pamr_dilations": [0]},
        {"pamr_dilations": [8, 8]},
        {"logit_scale": -1},
        {"prob_thd": 2},
        {"pamr_max_pixels": 0},
        {"gaussian": 5},
    ],
)
def test_bad_settings_are_refused(values):
    with pytest.raises(BadInput, match="naclip"):
        section_from_dict("naclip", values)


def test_registered_with_their_own_settings(tiny_manager, image):
    from ovpaint.pipelines.segmentation.methods import METHODS

    assert METHODS["naclip"].settings == {"naclip": NaclipSettings}
    assert set(METHODS["naclip-refined"].roles) == {"clip", "sam2"}
    r = segment(image, "cat", method="naclip-refined", manager=tiny_manager)
    assert r.method == "naclip-refined" and "points" in r.extras and "pamr" in r.timings


# --------------------------------------------------------------------------- bad input
def _naclip(manager, image, prompt, **settings):
    return segment(image, prompt, method="naclip", manager=manager, settings={"naclip": settings})


@pytest.mark.parametrize("shape", [(7, 10, 3), (1, 1, 3), (3, 300, 3), (300, 3, 3)])
def test_tiny_and_thin_images(tiny_manager, shape):
    img = np.full(shape, 128, np.uint8)
    for whole_image in (False, True):  # the default and the VOC path
        r = _naclip(tiny_manager, img, "dog", whole_image=whole_image)
        assert r.labels.shape == shape[:2] and r.scores.shape == (2, *shape[:2])
        assert np.isfinite(r.scores).all()
        np.testing.assert_allclose(r.scores.sum(0), 1.0, atol=1e-5)


def test_huge_image_is_bounded(tiny_manager):
    """12,000×9,000: the maps and PAMR run at the capped work size (guide downscaled with
    them), the labels come back at full size, the scores are left out and it says so."""
    img = np.zeros((9000, 12000, 3), np.uint8)
    img[:, 6000:] = 200
    r = _naclip(tiny_manager, img, "dog, sky", max_work_pixels=300_000)
    assert r.labels.shape == (9000, 12000) and r.scores is None
    assert "pamr" in r.timings
    assert any("working-size cap" in m for m in r.messages)
    assert not any("PAMR refined" in m for m in r.messages)  # PAMR at the work size
    r = _naclip(tiny_manager, img, "dog, sky", max_work_pixels=300_000, pamr_max_pixels=50_000)
    assert r.labels.shape == (9000, 12000)
    assert any("PAMR refined the class maps at 258×193" in m for m in r.messages), r.messages
    assert any("scores were left out" in m for m in r.messages)


def test_class_found_nowhere_gives_empty_masks(tiny_manager, image):
    r = _naclip(tiny_manager, image, "dog, cat", prob_thd=1.0)
    assert set(r.areas().values()) == {0} and (r.labels == 0).all()
    assert all(not m.any() for m in r.masks().values())
    np.testing.assert_allclose(r.scores.sum(0), 1.0, atol=1e-5)


def test_many_names_shrink_the_work_size_not_the_output(tiny_manager, image):
    prompt = ", ".join(f"thing {i}" for i in range(12))
    r = _naclip(tiny_manager, image, prompt, max_map_bytes=4_000_000)
    assert r.labels.shape == image.shape[:2] and len(r.classes) == 13
    assert any("working-size cap" in m for m in r.messages)


@pytest.mark.parametrize("prompt", ["", "   ", ",,;|\n"])
def test_empty_prompts_are_bad_input(tiny_manager, image, prompt):
    with pytest.raises(BadInput):
        _naclip(tiny_manager, image, prompt)
