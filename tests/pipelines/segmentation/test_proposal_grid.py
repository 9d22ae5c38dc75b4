"""On a CPU the proposal method samples a 16×16 grid unless told otherwise, and says so; the
benchmark's presets keep the thesis's 32×32."""

from __future__ import annotations

import numpy as np

from ovpaint.eval.datasets import DATASETS
from ovpaint.pipelines.segmentation.settings import (
    CPU_GRID,
    THESIS_GRID,
    ProposalSettings,
    parse_settings,
)


def test_grid_by_device_and_explicit_choice():
    assert ProposalSettings().grid("cpu") == CPU_GRID == 16
    assert ProposalSettings().grid("cuda") == THESIS_GRID == 32
    assert ProposalSettings(points_per_side=32).grid("cpu") == 32
    assert parse_settings({"proposal.points_per_side": 24}).proposal.grid("cpu") == 24


def test_benchmark_presets_keep_the_thesis_grid():
    for spec in DATASETS.values():
        for method in ("proposal", "hybrid"):
            assert spec.preset(method)["proposal"]["points_per_side"] == THESIS_GRID


def test_cpu_run_uses_the_small_grid_and_says_so(tiny_manager):
    from ovpaint.pipelines.segmentation.segment import segment

    rng = np.random.default_rng(0)
    image = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    cheap = {"scales": [224], "scale_weights": [1.0], "background_words": ["wall"]}
    result = segment(
        image, "cat", method="proposal", manager=tiny_manager, settings={"proposal": cheap}
    )
    note = [m for m in result.messages if "16×16 point grid" in m]
    assert note and "32×32" in note[0]


def test_grid_the_masks_were_made_from(tiny_manager):
    from ovpaint.pipelines.segmentation.proposals import session_masks
    from ovpaint.pipelines.session import ImageSession

    image = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    session = ImageSession(image)
    assert session_masks(session, tiny_manager, ProposalSettings()).grid == CPU_GRID
    told = ProposalSettings(points_per_side=8)
    assert session_masks(session, tiny_manager, told).grid == 8  # not the cached 16×16 ones
