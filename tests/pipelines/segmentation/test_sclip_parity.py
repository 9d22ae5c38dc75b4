"""Parity with the SCLIP reference implementation on a tiny random CLIP (shared fixture).

The fixture path comes from ``SCLIP_PARITY_FIXTURE`` (default: ``../shared/fixtures`` beside
the repository); architecture, class names and settings are read from the ``.json`` beside it,
so the same test runs unchanged on another fixture of this format.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ovpaint.pipelines.segmentation import dense as D
from ovpaint.pipelines.text import TextEncoder
from tests.pipelines.segmentation.parity_fixture import (
    check_name_class,
    check_text_features,
    fixture_names,
    fixture_path,
    load_parity_fixture,
)

FIXTURE = fixture_path("SCLIP_PARITY_FIXTURE", "sclip_parity_tiny.npz")

pytestmark = pytest.mark.skipif(
    not FIXTURE.exists(), reason=f"SCLIP parity fixture not found at {FIXTURE}"
)


@pytest.fixture(scope="module")
def fx():
    return load_parity_fixture(FIXTURE, "parity-fixture")


def test_name_class_matches_json(fx):
    cfg, _, a = fx
    check_name_class(cfg, a)


def test_text_features(fx, tmp_path):
    cfg, bundle, a = fx
    check_text_features(cfg, bundle, a, tmp_path, 1e-5)


def test_preprocessing(fx):
    cfg, bundle, a = fx
    x = D.preprocess(
        a["image_uint8"], cfg["preprocess"]["short_side"], 2048, bundle.mean, bundle.std
    )
    assert tuple(x.shape) == a["input_normalized"].shape
    np.testing.assert_allclose(x.numpy(), a["input_normalized"], atol=1e-4, rtol=0)


def test_crop_dense_embeddings(fx):
    cfg, bundle, a = fx
    crop = cfg["slide"]["crop"]
    x = torch.from_numpy(a["input_normalized"])[:, :, :crop, :crop]
    with torch.no_grad():
        tokens, gh, gw = D.dense_embeddings(bundle.model.visual, x)
    assert (gh, gw) == (crop // 16, crop // 16)
    np.testing.assert_allclose(tokens.numpy(), a["crop_dense_embeddings"], atol=1e-5, rtol=0)


def _slide(cfg, bundle, a, dtype="fp32"):
    s = D.DenseSettings(
        crop=cfg["slide"]["crop"], stride=cfg["slide"]["stride"], compute_dtype=dtype, batch_size=4
    )
    feats = D.window_features(bundle, torch.from_numpy(a["input_normalized"]), s)
    return D.slide_logits(feats, torch.from_numpy(a["text_features"]))


def test_slide_and_final_logits(fx):
    cfg, bundle, a = fx
    logits = _slide(cfg, bundle, a)
    np.testing.assert_allclose(logits.numpy(), a["slide_logits"][0], atol=1e-5, rtol=0)
    final = D.final_logits(logits, a["image_uint8"].shape[:2])
    np.testing.assert_allclose(final.numpy(), a["final_logits"][0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("preset", ["voc", "default"])
def test_postprocessing(fx, preset):
    cfg, _, a = fx
    p = cfg[f"postprocess_{preset}"]
    probs, labels = D.postprocess(
        torch.from_numpy(a["final_logits"][0]),
        a["name_class"],
        p["logit_scale"],
        p["prob_thd"],
        p["area_thd"],
    )
    np.testing.assert_allclose(probs.numpy(), a[f"probs_{preset}"], atol=1e-4, rtol=0)
    agree = (labels.numpy() == a[f"labels_{preset}"][0]).mean()
    assert agree >= 0.999


def test_end_to_end_from_image(fx, tmp_path):
    """From the uint8 image through our own preprocessing, text encoder and presets."""
    cfg, bundle, a = fx
    text = TextEncoder(bundle, "openai80", cache_dir=tmp_path).encode(fixture_names(cfg))
    x = D.preprocess(
        a["image_uint8"], cfg["preprocess"]["short_side"], 2048, bundle.mean, bundle.std
    )
    feats = D.window_features(bundle, x, D.DenseSettings(compute_dtype="fp32"))
    final = D.final_logits(D.slide_logits(feats, text), a["image_uint8"].shape[:2])
    np.testing.assert_allclose(final.numpy(), a["final_logits"][0], atol=1e-5, rtol=0)
    voc = D.DenseSettings.voc()
    probs, labels = D.postprocess(
        final, a["name_class"], voc.logit_scale, voc.prob_thd, voc.area_thd
    )
    assert (labels.numpy() == a["labels_voc"][0]).mean() >= 0.999


@pytest.mark.parametrize("preset", ["voc", "default"])
def test_fastest_mode_keeps_labels(fx, preset):
    """bf16 on the CPU (the fastest mode) keeps ≥ 99.9 % of the reference labels."""
    cfg, bundle, a = fx
    p = cfg[f"postprocess_{preset}"]
    logits = _slide(cfg, bundle, a, dtype="bf16")
    final = D.final_logits(logits, a["image_uint8"].shape[:2])
    _, labels = D.postprocess(
        final, a["name_class"], p["logit_scale"], p["prob_thd"], p["area_thd"]
    )
    agree = (labels.numpy() == a[f"labels_{preset}"][0]).mean()
    assert agree >= 0.999, f"bf16 labels agree on {agree:.5f} of the pixels"


def test_fast_final_logits_matches_fixture(fx):
    """The pipeline's separable-operator path gives the reference's final logits."""
    cfg, bundle, a = fx
    s = D.DenseSettings(
        crop=cfg["slide"]["crop"], stride=cfg["slide"]["stride"], compute_dtype="fp32"
    )
    feats = D.window_features(bundle, torch.from_numpy(a["input_normalized"]), s)
    fast = D.fast_final_logits(
        feats, torch.from_numpy(a["text_features"]), a["image_uint8"].shape[:2]
    )
    np.testing.assert_allclose(fast.numpy(), a["final_logits"][0], atol=1e-5, rtol=0)
