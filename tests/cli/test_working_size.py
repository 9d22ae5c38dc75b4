"""Segmentation's working set is bounded by megapixels: a larger image is segmented at the
bound and its labels scaled up to the full size, and the user is told."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from PIL import Image

from ovpaint.cli import main
from ovpaint.core.masks import load_label_png
from ovpaint.pipelines.segmentation.methods import METHODS


def _spy_on_dense(monkeypatch) -> list:
    """The dense method, recording the size of each image it is given."""
    seen = []
    dense = METHODS["dense"]

    def run(session, *a, **k):
        seen.append(session.image.shape)
        return dense.run(session, *a, **k)

    monkeypatch.setitem(METHODS, "dense", dataclasses.replace(dense, run=run))
    return seen


def test_large_image_is_segmented_at_the_bound(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({"max_segment_megapixels": 1}))
    monkeypatch.setenv("OVPAINT_CONFIG_DIR", str(config))
    seen = _spy_on_dense(monkeypatch)
    image = np.zeros((1000, 1600, 3), np.uint8)
    image[:, 800:] = 255  # two halves: the scaled-up labels keep the split where it was
    path = tmp_path / "wide.png"
    Image.fromarray(image).save(path)
    out = tmp_path / "labels.png"
    argv = ["--models", "tiny", "segment", str(path), "--prompt", "a, b", "--method", "dense"]
    assert main([*argv, "--out", str(out), "--quiet", "--json"]) == 0
    assert len(seen) == 1 and seen[0][0] * seen[0][1] <= 1_000_000
    labels = load_label_png(out)
    assert labels.shape == (1000, 1600)
    summary = json.loads(capsys.readouterr().out)
    assert "segmented at" in " ".join(summary["messages"])
    assert sum(c["pixels"] for c in summary["classes"]) == int((labels > 0).sum())


def test_image_under_the_bound_is_segmented_as_it_is(tmp_path, monkeypatch):
    seen = _spy_on_dense(monkeypatch)
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(path)
    argv = ["--models", "tiny", "segment", str(path), "--prompt", "a", "--method", "dense"]
    assert main([*argv, "--out", str(tmp_path / "l.png"), "--quiet"]) == 0
    assert seen == [(60, 80, 3)]
