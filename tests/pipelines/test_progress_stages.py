"""The pipelines report stages with counts (text names, windows, SAM2 points, denoising steps)
and inpainting a preview of its unfinished result, on the tiny models."""

from __future__ import annotations

import numpy as np

from ovpaint.core.jobs import Progress


def _recorder():
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    return progress, events


def _check_counts(events, stage):
    mine = [e for e in events if e.stage == stage]
    assert mine, f"no '{stage}' stage in {sorted({e.stage for e in events})}"
    done = [e.done for e in mine]
    assert done == sorted(done) and done[-1] == mine[0].total > 0
    return mine


def test_refined_reports_text_windows_and_sam2_points(tiny_manager):
    from ovpaint.pipelines.segmentation.segment import segment

    rng = np.random.default_rng(1)
    image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    progress, events = _recorder()
    segment(image, "cat, bluebird", method="refined", manager=tiny_manager, progress=progress)
    text = _check_counts(events, "text")
    assert text[0].unit == "names" and text[0].describe().startswith("text 0/")
    _check_counts(events, "windows")
    stages = [e.stage for e in events]
    if "SAM2 points" in stages:  # the dense map gave the refinement points to decode
        _check_counts(events, "SAM2 points")
        assert stages.index("SAM2 image embedding") < stages.index("SAM2 points")


def test_inpaint_reports_steps_with_previews(tiny_manager):
    from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, inpaint

    rng = np.random.default_rng(2)
    image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[30:60, 40:90] = True
    progress, events = _recorder()
    settings = InpaintSettings(mode="replace", prompt="a ball", steps=6, seed=3)
    inpaint(image, mask, settings, manager=tiny_manager, progress=progress)
    steps = _check_counts(events, "step")
    previews = [e.preview for e in steps if e.preview is not None]
    assert len(previews) >= 2  # every few steps, not only at the end
    for preview in previews:
        assert preview.rgb.dtype == np.uint8 and preview.rgb.ndim == 3
        x0, y0, x1, y1 = preview.box
        assert 0 <= x0 <= 40 and 0 <= y0 <= 30 and 90 <= x1 <= 128 and 60 <= y1 <= 96
        assert preview.alpha.shape == preview.rgb.shape[:2]
        assert preview.alpha.max() == 255 and preview.alpha.min() == 0  # mask, and not


def test_latents_to_rgb():
    from ovpaint.pipelines.inpainting.preview import SD_LATENT_RGB, latents_to_rgb

    latents = np.zeros((1, 4, 2, 3), np.float32)
    latents[0, :, 0, 0] = 1.0
    rgb = latents_to_rgb(latents)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    expected = np.clip((SD_LATENT_RGB.sum(0) + 1) * 127.5, 0, 255).astype(np.uint8)
    assert np.array_equal(rgb[0, 0], expected)
    assert np.array_equal(rgb[1, 2], [127, 127, 127])  # zero latents: mid grey
    other = latents_to_rgb(np.arange(16, dtype=np.float32).reshape(16, 1, 1).repeat(2, 1))
    assert other.shape == (2, 1, 3)  # another latent space: its first channels, stretched
