"""Inpainting on the tiny SD pipeline: the paste guarantees, seeds, cancel, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from ovpaint.core.errors import BadInput, Cancelled, ModelUnavailable, OutOfMemory
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.pipelines.inpainting.inpaint import (
    InpaintSettings,
    changed_region,
    composite,
    expand_prompt,
    fallback_inpaint,
    inpaint,
    match_colors,
    model_size,
    paste_alpha,
    plan_crops,
    run_with_memory_fallbacks,
)

FAST = dict(steps=2, seed=3, engine="sd")


def _image(h=333, w=517, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h=333, w=517):
    mask = np.zeros((h, w), bool)
    mask[120:170, 200:290] = True
    return mask


@pytest.mark.parametrize("mode", ["remove", "replace", "restyle"])
def test_outside_dilated_mask_is_byte_identical(tiny_manager, mode):
    image, mask = _image(), _mask()
    before = image.copy()
    settings = InpaintSettings(mode=mode, prompt="a red car", **FAST)
    result = inpaint(image, mask, settings, manager=tiny_manager)
    region = changed_region(mask, settings)
    out = result.image
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~region], image[~region])
    assert (out[mask] != image[mask]).any(axis=1).mean() > 0.9
    assert np.array_equal(image, before), "the input must never be modified"


def test_rgba_alpha_is_kept_aside_and_untouched(tiny_manager, tmp_path):
    from ovpaint.core.image_io import load_image, save_image

    rgb, alpha = _image(64, 97), np.random.default_rng(1).integers(0, 256, (64, 97), np.uint8)
    path = tmp_path / "in.png"
    save_image(path, rgb, alpha)
    loaded = load_image(path)
    mask = np.zeros((64, 97), bool)
    mask[20:40, 30:60] = True
    result = inpaint(loaded.rgb, mask, InpaintSettings(**FAST), manager=tiny_manager)
    region = changed_region(mask, InpaintSettings(**FAST))
    assert np.array_equal(result.image[~region], rgb[~region])
    assert np.array_equal(loaded.alpha, alpha)


def test_feather_band_is_bounded_by_the_dilation():
    mask = _mask()
    region, alpha = paste_alpha(mask, 8)
    assert np.all(alpha[mask] == 1.0)
    assert np.all(alpha[~region] == 0.0)
    band = region & ~mask
    assert band.any() and np.all((alpha[band] > 0) & (alpha[band] <= 1))
    # the band is no wider than the dilation radius
    from ovpaint.core.masks import grow

    assert not (region & ~grow(mask, 9)).any()


def test_composite_keeps_bytes_where_alpha_is_zero():
    base = _image(40, 50)
    patch = np.full_like(base, 7)
    alpha = np.zeros((40, 50), np.float32)
    alpha[10:20, 10:20] = 0.5
    alpha[12:18, 12:18] = 1.0
    out = composite(base, patch, alpha)
    assert np.array_equal(out[alpha == 0], base[alpha == 0])
    assert np.all(out[alpha == 1.0] == 7)


def test_feather_can_be_narrower_than_the_dilation_and_never_reaches_outside():
    mask = np.zeros((80, 90), bool)
    mask[30:50, 30:60] = True
    region, hard = paste_alpha(mask, 10, 0)
    assert set(np.unique(hard)) == {0.0, 1.0} and np.array_equal(hard > 0, region)
    region_w, wide = paste_alpha(mask, 4, 12)
    assert np.array_equal(region_w, paste_alpha(mask, 4)[0])
    assert (wide[~region_w] == 0).all() and (wide[mask] == 1).all()
    with pytest.raises(BadInput, match="feather"):
        InpaintSettings(feather_px=-1).validated()


def test_color_matching_moves_the_region_toward_the_ring():
    original = np.full((100, 100, 3), 200, np.uint8)
    generated = np.full((100, 100, 3), 60, np.uint8)  # far too dark everywhere
    region = np.zeros((100, 100), bool)
    region[30:70, 30:70] = True
    matched = match_colors(generated, original, region, ring_px=10)
    ring_mean = original[~region].mean()
    before = abs(generated[region].mean() - ring_mean)
    after = abs(matched[region].mean() - ring_mean)
    assert after < before * 0.1


def test_same_seed_same_output_and_other_seed_differs(tiny_manager):
    image, mask = _image(), _mask()
    a = inpaint(image, mask, InpaintSettings(**FAST), manager=tiny_manager).image
    b = inpaint(image, mask, InpaintSettings(**FAST), manager=tiny_manager).image
    c = inpaint(image, mask, InpaintSettings(**{**FAST, "seed": 4}), manager=tiny_manager).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_variants_have_consecutive_seeds(tiny_manager):
    image, mask = _image(80, 90), np.ones((80, 90), bool)
    result = inpaint(image, mask, InpaintSettings(variants=2, **FAST), manager=tiny_manager)
    assert result.seeds == [3, 4] and len(result.images) == 2
    single = inpaint(image, mask, InpaintSettings(**{**FAST, "seed": 4}), manager=tiny_manager)
    assert np.array_equal(result.images[1], single.image)


def test_cancel_mid_run_changes_nothing(tiny_manager):
    image, mask = _image(), _mask()
    before = image.copy()
    cancel, progress = CancelToken(), Progress()
    seen = []

    def on_event(event):
        seen.append(event.done)
        if event.done >= 2:
            cancel.cancel()

    progress.subscribe(on_event)
    with pytest.raises(Cancelled):
        inpaint(
            image,
            mask,
            InpaintSettings(steps=6, seed=1, engine="sd"),
            manager=tiny_manager,
            progress=progress,
            cancel=cancel,
        )
    assert max(seen) < 6, "denoising must stop at the step after the cancel"
    assert np.array_equal(image, before)


def test_empty_mask_returns_the_input_with_a_message(tiny_manager):
    image = _image(50, 60)
    result = inpaint(image, np.zeros((50, 60), bool), InpaintSettings(**FAST), manager=tiny_manager)
    assert np.array_equal(result.image, image)
    assert "empty" in result.messages[0]


def test_full_image_mask_works(tiny_manager):
    image = _image(70, 130)
    result = inpaint(image, np.ones((70, 130), bool), InpaintSettings(**FAST), manager=tiny_manager)
    assert result.image.shape == image.shape
    assert (result.image != image).any(axis=2).mean() > 0.9


def test_disjoint_far_regions_are_separate_crops(tiny_manager):
    image = _image(400, 900)
    mask = np.zeros((400, 900), bool)
    mask[20:60, 20:60] = True
    mask[330:380, 820:880] = True
    settings = InpaintSettings(**FAST)
    region = changed_region(mask, settings)
    crops = plan_crops(region, settings)
    assert len(crops) == 2
    for crop in crops:
        assert crop.width * crop.height < 400 * 900 / 4
    # near regions share one crop
    near = np.zeros((400, 900), bool)
    near[100:140, 100:140] = True
    near[100:140, 150:190] = True
    assert len(plan_crops(grow_mask(near), settings)) == 1
    result = inpaint(image, mask, settings, manager=tiny_manager)
    assert any("2 separate regions" in m for m in result.messages)
    assert np.array_equal(result.image[~region], image[~region])


def grow_mask(mask):
    return paste_alpha(mask, 8)[0]


def test_model_size_is_a_multiple_of_8_with_the_native_long_side():
    from ovpaint.pipelines.inpainting.inpaint import Crop

    w, h = model_size(Crop(0, 0, 333, 517), 512)
    assert h == 512 and w % 8 == 0 and abs(w / h - 333 / 517) < 0.02


def test_fallback_works_without_any_model():
    image, mask = _image(), _mask()
    for method in ("telea", "ns"):
        result = fallback_inpaint(image, mask, method)
        region = changed_region(mask, InpaintSettings(engine=method))
        assert np.array_equal(result.image[~region], image[~region])
        assert (result.image[mask] != image[mask]).any()


def test_missing_model_raises_or_falls_back_when_allowed():
    from ovpaint.models.manager import ModelManager

    manager = ModelManager(profile="real", device="cpu")
    image, mask = _image(60, 60), np.ones((60, 60), bool)
    with pytest.raises(ModelUnavailable, match="ovpaint models download sd2-inpaint"):
        inpaint(image, mask, InpaintSettings(engine="sd"), manager=manager)
    with pytest.raises(ModelUnavailable, match="ovpaint models download sd2-inpaint"):
        inpaint(image, mask, InpaintSettings(mode="replace", prompt="a car"), manager=manager)
    sd = InpaintSettings(engine="sd", allow_fallback=True)
    result = inpaint(image, mask, sd, manager=manager)
    assert result.engine == "telea" and "model-free" in result.messages[0]
    auto = inpaint(image, mask, InpaintSettings(), manager=manager)
    assert auto.engine == "telea"
    assert auto.messages[0].startswith("Removed with OpenCV Telea")
    assert "LaMa and Stable Diffusion are not installed" in auto.messages[0]


def test_prompt_expansion_and_validation():
    prompt, negative = expand_prompt("remove", "", removed_class="dog")
    assert "dog" in negative and "dog" not in prompt
    prompt, negative = expand_prompt("replace", "a  red   car")
    assert prompt.startswith("a red car") and negative
    with pytest.raises(BadInput):
        InpaintSettings(mode="replace", prompt="  ").validated()
    with pytest.raises(BadInput):
        InpaintSettings(mode="paint").validated()
    assert InpaintSettings(mode="restyle", prompt="oil").validated().strength == 0.7


def test_explicit_prompts_are_used_verbatim(tiny_manager):
    image, mask = _image(60, 60), np.ones((60, 60), bool)
    settings = InpaintSettings(mode="replace", prompt="exactly this", negative_prompt="", **FAST)
    result = inpaint(image, mask, settings, manager=tiny_manager)
    assert result.prompt == "exactly this" and result.negative_prompt == ""


def test_a_scheduler_choice_does_not_stick_to_the_shared_pipeline(tiny_manager):
    image, mask = _image(60, 60), _mask(60, 60)
    mask[:] = False
    mask[20:40, 20:40] = True
    bundle = tiny_manager.get("inpaint")
    default = type(bundle.default_scheduler)
    inpaint(image, mask, InpaintSettings(scheduler="euler", **FAST), manager=tiny_manager)
    assert type(bundle.pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    inpaint(image, mask, InpaintSettings(scheduler="default", **FAST), manager=tiny_manager)
    assert type(bundle.pipe.scheduler) is default and default.__name__ != "EulerDiscreteScheduler"


class _FakeOOM(RuntimeError):
    pass


def test_out_of_memory_retries_with_lighter_settings_then_gives_up():
    class Pipe:
        def __init__(self):
            self.calls = []

        def enable_attention_slicing(self):
            self.calls.append("slicing")

    class Bundle:
        def __init__(self):
            self.pipe = Pipe()

        @property
        def device(self):
            import torch

            return torch.device("cpu")

    bundle, messages, attempts = Bundle(), [], []

    def call():
        attempts.append(1)
        if len(attempts) < 2:
            raise _FakeOOM("CUDA out of memory")
        return "ok"

    is_oom = lambda exc: isinstance(exc, _FakeOOM)  # noqa: E731
    assert run_with_memory_fallbacks(call, bundle, messages, None, is_oom) == "ok"
    assert bundle.pipe.calls == ["slicing"] and "attention slicing" in messages[0]

    def always():
        raise _FakeOOM("out of memory")

    with pytest.raises(OutOfMemory):
        run_with_memory_fallbacks(always, Bundle(), [], None, is_oom)


def test_bad_inputs_are_clear():
    with pytest.raises(BadInput, match="mask is"):
        fallback_inpaint(_image(10, 10), np.ones((5, 5), bool))
    with pytest.raises(BadInput, match="RGB"):
        fallback_inpaint(np.zeros((10, 10), np.uint8), np.ones((10, 10), bool))
