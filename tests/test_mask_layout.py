"""The CLI, batch and the app write one mask layout (:mod:`ovpaint.core.mask_export`)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

CLASSES = ["background", "sky", "red car", "dog / puppy"]


def _labels() -> np.ndarray:
    labels = np.zeros((6, 8), np.uint8)
    labels[:2] = 1
    labels[4:, 4:] = 3
    return labels


def test_cli_batch_and_app_write_the_same_layout(tmp_path, qtbot):
    """The same labels through the three front-ends give the same files."""
    pytest.importorskip("PySide6")
    from types import SimpleNamespace

    from ovpaint import batch
    from ovpaint.app.files import export_masks_job
    from ovpaint.cli.segment import write_outputs
    from ovpaint.core.jobs import CancelToken, Progress
    from ovpaint.pipelines.result import SegmentationResult

    labels = _labels()
    result = SegmentationResult(labels.astype(np.int32), CLASSES)
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(image)
    write_outputs(result, tmp_path / "cli" / "photo.labels.png", tmp_path / "cli", image)
    batch._write_outputs(tmp_path / "batch", "photo", image, result, None, None)
    masks = [(name, labels == i) for i, name in enumerate(CLASSES) if i > 0]
    job = SimpleNamespace(progress=Progress(), cancel=CancelToken())
    export_masks_job(
        masks, labels.shape, masks, str(tmp_path / "app"), "photo", "layers", **vars(job)
    )
    export_masks_job(
        masks, labels.shape, masks, str(tmp_path / "app"), "photo", "labels", **vars(job)
    )

    def files(folder):
        return {p.name: p.read_bytes() for p in (tmp_path / folder).iterdir()}

    cli, app = files("cli"), files("app")
    assert cli == app
    assert files("batch") == {k: v for k, v in cli.items() if "mask-02" not in k}  # found only
