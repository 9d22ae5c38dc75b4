"""LaMa removal through the inpainting pipeline (tiny profile): the engine choice and its
message, native-resolution crops and their bound, cost independent of the image's size, the
paste guarantees on awkward masks, cancel, progress, and the optional SD refinement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ovpaint.core.errors import BadInput, Cancelled, ModelUnavailable
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.pipelines.inpainting.engines import choose_engine
from ovpaint.pipelines.inpainting.geometry import apply_patches, merge_patches
from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, changed_region, inpaint
from ovpaint.pipelines.inpainting.lama import MIN_SIDE, model_scale


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture()
def generator_inputs(tiny_manager):
    """The shapes the LaMa generator is called with, recorded by a forward pre-hook."""
    shapes = []
    generator = tiny_manager.get("lama").generator
    handle = generator.register_forward_pre_hook(lambda m, args: shapes.append(args[0].shape))
    yield shapes
    handle.remove()


def _check_outside_untouched(image, mask, settings, result):
    region = changed_region(mask, settings)
    for out in result.images:
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.array_equal(out[~region], image[~region])
    return region


def test_remove_uses_lama_by_default_and_says_so(tiny_manager):
    image = _image(120, 160)
    mask = np.zeros((120, 160), bool)
    mask[40:70, 50:100] = True
    before = image.copy()
    result = inpaint(image, mask, InpaintSettings(seed=1), manager=tiny_manager)
    assert result.engine == "lama" and result.messages[0] == "Removed with LaMa."
    region = _check_outside_untouched(image, mask, InpaintSettings(seed=1), result)
    out = result.image
    assert (out[mask] != image[mask]).any(axis=1).mean() > 0.9
    assert region.sum() > mask.sum(), "remove grows the mask before filling"
    assert np.array_equal(image, before), "the input is never modified"
    assert result.prompt == "" and result.seeds == [1]


def test_replace_still_goes_to_stable_diffusion(tiny_manager):
    settings = InpaintSettings(mode="replace", prompt="a boat", steps=2, seed=2)
    engine, messages = choose_engine(settings.validated(), tiny_manager)
    assert engine.name == "sd" and messages == ["Replaced with Stable Diffusion."]
    with pytest.raises(BadInput, match="cannot replace"):
        choose_engine(InpaintSettings(mode="replace", prompt="x", engine="lama"), tiny_manager)


def test_without_lama_remove_falls_back_to_sd_and_says_why(tiny_manager):
    class NoLama:
        def __getattr__(self, name):
            return getattr(tiny_manager, name)

        def check_available(self, role):
            if role == "lama":
                raise ModelUnavailable("The model 'LaMa' is not installed.")

    engine, messages = choose_engine(InpaintSettings().validated(), NoLama())
    assert engine.name == "sd"
    assert messages == ["Removed with Stable Diffusion. (LaMa is not installed: see Models.)"]
    with pytest.raises(ModelUnavailable, match="not installed"):
        choose_engine(InpaintSettings(engine="lama").validated(), NoLama())


def test_lama_runs_at_the_crops_own_resolution(tiny_manager, generator_inputs):
    image = _image(300, 400)
    mask = np.zeros((300, 400), bool)
    mask[100:150, 150:230] = True
    settings = InpaintSettings(engine="lama")
    result = inpaint(image, mask, settings, manager=tiny_manager)
    (patch,) = result.variants[0]
    (shape,) = generator_inputs
    crop_side = max(patch.rgb.shape[:2])
    # the generator saw the crop at 1:1 (padded to a multiple of 8), not a fixed 512
    assert shape[-1] == -(-shape[-1] // 8) * 8 and shape[-1] >= crop_side
    assert shape[-1] - 8 < 300 and shape[-2] - 8 < 300
    _check_outside_untouched(image, mask, settings, result)


def test_crops_over_the_bound_are_scaled_down_and_back(tiny_manager, generator_inputs):
    image = _image(600, 700)
    mask = np.zeros((600, 700), bool)
    mask[150:450, 200:520] = True
    settings = InpaintSettings(engine="lama", lama_max_side=128)
    result = inpaint(image, mask, settings, manager=tiny_manager)
    (shape,) = generator_inputs
    assert max(shape[-2:]) <= 128 + 7
    _check_outside_untouched(image, mask, settings, result)
    assert (result.image[mask] != image[mask]).any(axis=1).mean() > 0.9


def test_the_model_sees_the_same_crop_on_a_small_and_a_huge_photo(tiny_manager, generator_inputs):
    """Cost independent of the image: the same 300×240 hole gets the same model input on a
    512×512 image and on a 12,000×9,000 photo, and the result is one small patch."""

    def run(h, w):
        image = np.zeros((h, w, 3), np.uint8)
        cy, cx = h // 2, w // 2
        image[cy - 256 : cy + 256, cx - 256 : cx + 256] = _image(512, 512)
        mask = np.zeros((h, w), bool)
        mask[cy - 120 : cy + 120, cx - 150 : cx + 150] = True
        result = inpaint(image, mask, InpaintSettings(engine="lama"), manager=tiny_manager)
        return image, mask, result

    _, _, small = run(512, 512)
    image, mask, big = run(9000, 12000)
    assert generator_inputs[0] == generator_inputs[1]
    (patch,) = big.variants[0]
    assert patch.rgb.shape[0] * patch.rgb.shape[1] < 400 * 400
    assert patch.box.x0 > 5000 and patch.box.y0 > 4000
    ys, xs = patch.box.slice()
    assert np.array_equal(np.asarray(image[ys, xs])[patch.alpha == 0], patch.rgb[patch.alpha == 0])
    assert not (patch.alpha == 0).all()


@pytest.mark.parametrize(
    "name",
    ["one pixel", "whole image", "every border", "many islands", "thin line"],
)
def test_awkward_masks(tiny_manager, name):
    h, w = 90, 130
    image = _image(h, w, 3)
    mask = np.zeros((h, w), bool)
    if name == "one pixel":
        mask[45, 65] = True
    elif name == "whole image":
        mask[:] = True
    elif name == "every border":
        mask[:4, :] = mask[-4:, :] = mask[:, :4] = mask[:, -4:] = True
    elif name == "many islands":
        rng = np.random.default_rng(5)
        mask[rng.integers(0, h, 400), rng.integers(0, w, 400)] = True
    else:
        mask[30, :] = True
    settings = InpaintSettings(engine="lama", seed=0)
    result = inpaint(image, mask, settings, manager=tiny_manager)
    _check_outside_untouched(image, mask, settings, result)
    out = result.image
    assert (out[mask] != image[mask]).any(axis=1).mean() > 0.5
    boxes = [p.box for p in result.variants[0]]
    for i, a in enumerate(boxes):  # patches never compete for a pixel
        for b in boxes[i + 1 :]:
            owned_a = np.zeros((h, w), bool)
            owned_b = np.zeros((h, w), bool)
            pa, pb = result.variants[0][i], result.variants[0][boxes.index(b)]
            owned_a[a.slice()] = pa.alpha > 0
            owned_b[b.slice()] = pb.alpha > 0
            assert not (owned_a & owned_b).any()


def test_thousands_of_islands_stay_fast_and_exact(tiny_manager):
    h, w = 400, 600
    rng = np.random.default_rng(1)
    mask = np.zeros((h, w), bool)
    mask[rng.integers(0, h, 3000), rng.integers(0, w, 3000)] = True
    image = _image(h, w)
    settings = InpaintSettings(engine="lama", dilate_px=1, grow_px=0)
    result = inpaint(image, mask, settings, manager=tiny_manager)
    _check_outside_untouched(image, mask, settings, result)
    merged = merge_patches(result.variants[0])
    assert np.array_equal(apply_patches(image, [merged]), result.image)


def test_tiny_image_and_extreme_aspect():
    assert model_scale(8, 8, 1024) == MIN_SIDE / 8
    assert model_scale(2000, 3000, 1024) == pytest.approx(1024 / 3000)
    assert model_scale(300, 200, 1024) == 1.0
    with pytest.raises(BadInput, match="too thin"):
        model_scale(2, 9000, 1024)


def test_tiny_image_is_filled(tiny_manager):
    image = _image(6, 7)
    mask = np.zeros((6, 7), bool)
    mask[2:4, 3] = True
    result = inpaint(image, mask, InpaintSettings(engine="lama"), manager=tiny_manager)
    _check_outside_untouched(image, mask, InpaintSettings(engine="lama"), result)


def test_progress_counts_network_layers_and_cancel_stops_inside_a_pass(tiny_manager):
    image = _image(100, 120)
    mask = np.zeros((100, 120), bool)
    mask[30:60, 40:80] = True
    layers = tiny_manager.get("lama").generator.num_layers
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    inpaint(image, mask, InpaintSettings(engine="lama"), manager=tiny_manager, progress=progress)
    assert events[0].stage == "layer" and events[0].total == layers
    assert events[0].message == "LaMa"
    done = [e.done for e in events[1:]]
    assert done == list(range(1, layers + 1))
    assert events[-1].message == f"LaMa: layer {layers}/{layers}"

    cancel, seen = CancelToken(), []
    stopper = Progress()

    def on_event(event):
        seen.append(event.done)
        if event.done >= 3:
            cancel.cancel()

    stopper.subscribe(on_event)
    before = image.copy()
    with pytest.raises(Cancelled):
        inpaint(
            image,
            mask,
            InpaintSettings(engine="lama"),
            manager=tiny_manager,
            progress=stopper,
            cancel=cancel,
        )
    assert max(seen) == 3 < layers, "the pass stops at the layer after the cancel"
    assert np.array_equal(image, before)


def test_variants_make_one_result_unless_sd_refines(tiny_manager):
    image = _image(80, 100)
    mask = np.zeros((80, 100), bool)
    mask[20:50, 30:70] = True
    plain = inpaint(
        image, mask, InpaintSettings(engine="lama", variants=3, seed=4), manager=tiny_manager
    )
    assert plain.seeds == [4] and len(plain.images) == 1
    assert any("one result" in m for m in plain.messages)
    settings = InpaintSettings(engine="lama", variants=2, seed=4, refine_strength=0.5, steps=4)
    refined = inpaint(image, mask, settings, manager=tiny_manager)
    assert refined.seeds == [4, 5] and refined.prompt  # the remove prompt guides the refinement
    a, b = refined.images
    _check_outside_untouched(image, mask, settings, refined)
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, plain.image)


def test_refinement_reports_lama_layers_then_diffusion_steps(tiny_manager):
    image = _image(80, 100)
    mask = np.zeros((80, 100), bool)
    mask[20:50, 30:70] = True
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    settings = InpaintSettings(engine="lama", refine_strength=0.5, steps=4, seed=0)
    inpaint(image, mask, settings, manager=tiny_manager, progress=progress)
    layers = tiny_manager.get("lama").generator.num_layers
    assert events[0].total == layers + 2  # 4 steps at strength 0.5
    messages = [e.message for e in events[1:]]
    assert messages[layers - 1].endswith(f"layer {layers}/{layers + 2}")
    assert messages[-1].endswith(f"layer {layers + 2}/{layers + 2}")


@pytest.mark.parametrize("kind", ["grey", "16-bit", "rgba"])
def test_non_rgb_arrays_are_refused_clearly(tiny_manager, kind):
    arrays = {
        "grey": np.zeros((20, 20), np.uint8),
        "16-bit": np.zeros((20, 20, 3), np.uint16),
        "rgba": np.zeros((20, 20, 4), np.uint8),
    }
    with pytest.raises(BadInput, match="8-bit RGB"):
        inpaint(arrays[kind], np.ones((20, 20), bool), manager=tiny_manager)


def test_lama_computes_in_fp32_even_under_a_bf16_manager():
    from ovpaint.models.manager import ModelManager

    manager = ModelManager(profile="tiny", device="cpu", dtype="bf16")
    with manager.use("lama") as bundle:
        assert bundle.dtype == torch.float32


def test_a_read_only_image_is_filled_without_a_warning(tiny_manager):
    """Images shared with a session or the app's layers are read-only arrays: LaMa copies
    them instead of handing them to torch.from_numpy (which warns on every first use)."""
    import warnings

    from ovpaint.pipelines.inpainting.lama import lama_fill

    image = _image(40, 48)
    image.flags.writeable = False
    hole = np.zeros((40, 48), bool)
    hole[10:20, 12:30] = True
    with tiny_manager.use("lama") as bundle, warnings.catch_warnings():
        warnings.simplefilter("error")
        filled = lama_fill(bundle, image, hole, max_side=1024)
    assert filled.shape == image.shape and filled.dtype == np.uint8
    assert np.array_equal(filled[~hole], image[~hole])
