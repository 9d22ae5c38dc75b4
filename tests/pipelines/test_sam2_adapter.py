"""sam2's private predictor state is reached through one module, which says when the installed
sam2 is not the release it was written against."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ovpaint.pipelines import sam2_adapter

PACKAGE = Path(sam2_adapter.__file__).resolve().parents[1]
PRIVATE = re.compile(r"\._(features|orig_hw|transforms|predict|bb_feat_sizes|is_image_set)\b")


def test_only_the_adapter_touches_sam2_private_state():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{n}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "sam2_adapter.py"
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if PRIVATE.search(line) and "self._predict" not in line  # the app's own method
    ]
    assert offenders == []


def test_another_sam2_release_is_reported_once():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sam2_adapter.check_version(sam2_adapter.WRITTEN_FOR) == sam2_adapter.WRITTEN_FOR
    with pytest.warns(RuntimeWarning, match=r"sam2 9\.9\.9 is installed.*sam2==1\.1\.0"):
        sam2_adapter.check_version("9.9.9")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sam2_adapter.check_version("9.9.9")  # said once is enough


def test_the_installed_sam2_is_the_one_written_for():
    assert sam2_adapter.check_version() == sam2_adapter.WRITTEN_FOR


def test_adapter_reads_the_set_image(tiny_manager):
    image = np.zeros((60, 90, 3), np.uint8)
    with tiny_manager.use("sam2") as sam, torch.inference_mode():
        predictor = sam2_adapter.new_predictor(sam)
        assert predictor is not sam2_adapter.new_predictor(sam)  # each its own image state
        predictor.set_image(image)
        assert sam2_adapter.image_hw(predictor) == (60, 90)
        embed, high_res = sam2_adapter.image_features(predictor)
        side = sam.image_size // 16
        assert embed.shape[0] == 1 and embed.shape[-2:] == (side, side)
        assert [f.shape[-1] for f in high_res] == [4 * side, 2 * side]
        corner = sam2_adapter.model_coords(predictor, torch.tensor([[90.0, 60.0]]))
        assert torch.allclose(corner, torch.tensor([[float(sam.image_size)] * 2]))
