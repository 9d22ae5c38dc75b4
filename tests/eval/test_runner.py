"""The benchmark runner end to end on synthetic data, with a known segmenter injected."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ovpaint.core.errors import BadInput, Cancelled
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.masks import load_label_png
from ovpaint.eval.datasets import open_dataset
from ovpaint.eval.metrics import ConfusionAccumulator
from ovpaint.eval.report import write_report
from ovpaint.eval.runner import run_benchmark, select_samples, state_path_for
from ovpaint.eval.synthetic import color_oracle, make_synthetic
from ovpaint.pipelines.result import SegmentationResult


class Segmenter:
    """Colour-lookup segmenter in the shape of the product's segment(): classes[0] is the
    background, classes[1:] the queries in order. ``wrong`` relabels one class as another."""

    def __init__(
        self,
        colors,
        wrong: tuple[int, int] | None = None,
        cancel_after=None,
        cancel: CancelToken | None = None,
    ):
        self.oracle = color_oracle(colors)
        self.wrong = wrong
        self.calls = 0
        self.cancel_after = cancel_after
        self.cancel = cancel

    def __call__(self, rgb, queries):
        self.calls += 1
        if self.cancel_after is not None and self.calls >= self.cancel_after:
            self.cancel.cancel()
        ids = self.oracle(rgb)
        if self.wrong:
            ids = np.where(ids == self.wrong[0], self.wrong[1], ids)
        return SegmentationResult(
            ids + 1,
            ["background"] + [q.name for q in queries],
            method="oracle",
            timings={"dense": 0.01},
        )


def _expected(ds, segmenter, ids=None):
    acc = ConfusionAccumulator(ds.num_classes)
    for sample in ds.samples:
        if ids is not None and sample.id not in ids:
            continue
        loaded = ds.load(sample)
        pred = segmenter(loaded.image.rgb, ds.class_queries()).labels - 1
        pred[pred < 0] = 255
        acc.update(loaded.gt, pred)
    return acc


@pytest.mark.parametrize("layout", ["voc", "cocostuff", "ade20k"])
def test_run_matches_independent_count_in_each_layout(tmp_path, layout):
    info = make_synthetic(layout, tmp_path / "data", n_images=3)
    ds = open_dataset(layout, tmp_path / "data")
    # Mislabel one shape class as the background class: known damage to two classes.
    seg = Segmenter(info.colors, wrong=(info.class_ids[1], info.class_ids[0]))
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    result = run_benchmark(ds, None, "oracle", segment_fn=seg, progress=progress)
    expected = _expected(ds, Segmenter(info.colors, wrong=(info.class_ids[1], info.class_ids[0])))
    assert (result.matrix == expected.matrix).all()
    assert result.scores.miou == pytest.approx(expected.scores().miou)
    assert result.scores.iou[info.class_ids[1]] == 0.0
    assert 0.3 < result.scores.miou < 0.9
    assert events[-1].done == 3 and "mIoU" in events[-1].message
    assert result.seconds_per_image["dense"] == pytest.approx(0.01)
    assert {"load", "segment", "total"} <= set(result.seconds_per_image)


def test_resume_after_cancel_gives_the_same_matrix(tmp_path):
    info = make_synthetic("voc", tmp_path / "data", n_images=5)
    out = tmp_path / "report.json"
    cancel = CancelToken()
    first = Segmenter(info.colors, wrong=(8, 12), cancel_after=2, cancel=cancel)
    with pytest.raises(Cancelled):
        run_benchmark(
            "voc",
            tmp_path / "data",
            "oracle",
            segment_fn=first,
            out_path=out,
            cancel=cancel,
            save_predictions_dir=tmp_path / "pred",
        )
    assert first.calls == 2
    assert len(state_path_for(out).read_text().splitlines()) == 1 + 2
    second = Segmenter(info.colors, wrong=(8, 12))
    resumed = run_benchmark(
        "voc",
        tmp_path / "data",
        "oracle",
        segment_fn=second,
        out_path=out,
        save_predictions_dir=tmp_path / "pred",
    )
    assert second.calls == 3 and resumed.resumed_images == 2
    whole = run_benchmark(
        "voc", tmp_path / "data", "oracle", segment_fn=Segmenter(info.colors, wrong=(8, 12))
    )
    assert (resumed.matrix == whole.matrix).all()
    assert resumed.scores.as_dict() == whole.scores.as_dict()
    # A restart ignores the state; a rerun with other settings refuses to mix states.
    third = Segmenter(info.colors, wrong=(8, 12))
    run_benchmark("voc", tmp_path / "data", "oracle", segment_fn=third, out_path=out, resume=False)
    assert third.calls == 5
    with pytest.raises(BadInput, match="other settings"):
        run_benchmark(
            "voc",
            tmp_path / "data",
            "oracle",
            segment_fn=third,
            out_path=out,
            settings={"dense": {"logit_scale": 10.0}},
        )


def test_limit_and_seed_pick_a_reproducible_subset(tmp_path):
    make_synthetic("ade20k", tmp_path, n_images=6)
    ds = open_dataset("ade20k", tmp_path)
    a = [s.id for s in select_samples(ds, 3, seed=1)]
    assert a == [s.id for s in select_samples(ds, 3, seed=1)]
    assert len(set(a)) == 3 and a == sorted(a)
    assert any([s.id for s in select_samples(ds, 3, seed=s)] != a for s in range(2, 8))
    assert len(select_samples(ds, 100, seed=0)) == 6
    with pytest.raises(BadInput):
        select_samples(ds, 0, seed=0)


def test_saved_predictions_use_dataset_ids_and_rescore_identically(tmp_path):
    info = make_synthetic("ade20k", tmp_path / "data", n_images=3)
    ds = open_dataset("ade20k", tmp_path / "data")
    result = run_benchmark(
        ds,
        None,
        "oracle",
        segment_fn=Segmenter(info.colors, wrong=(4, 2)),
        save_predictions_dir=tmp_path / "pred",
    )
    acc = ConfusionAccumulator(ds.num_classes)
    for sample in ds.samples:
        saved = load_label_png(tmp_path / "pred" / f"{sample.id}.png").astype(np.int32)
        assert saved.min() >= 1  # ADE's own values: class c saved as c + 1
        acc.update(ds.load(sample).gt, saved - 1)
    assert (acc.matrix == result.matrix).all()


def test_unknown_class_from_segmenter_is_refused(tmp_path):
    make_synthetic("voc", tmp_path, n_images=1)

    def seg(rgb, queries):
        return SegmentationResult(np.zeros(rgb.shape[:2]), ["background", "unicorn"])

    with pytest.raises(BadInput, match="unicorn"):
        run_benchmark("voc", tmp_path, "x", segment_fn=seg)


def test_report_files(tmp_path):
    info = make_synthetic("voc", tmp_path / "data", n_images=2)
    result = run_benchmark(
        "voc", tmp_path / "data", "oracle", segment_fn=Segmenter(info.colors, wrong=(8, 12))
    )
    paths = write_report(result, tmp_path / "out" / "voc.json")
    data = json.loads(paths["json"].read_text())
    assert data["metrics"]["mIoU"] == pytest.approx(result.scores.miou, abs=1e-6)
    dense = data["settings"]["dense"]  # the VOC preset
    assert dense["logit_scale"] == 65.0 and dense["prob_thd"] == 0.1
    refs = {r["source"]: r for r in data["references"]}
    assert refs["SCLIP README (ViT-B/16, real weights)"]["mIoU"] == 59.63
    assert refs["thesis: proposal path (SAM2 masks scored by CLIP)"]["kind"] == "unverified claim"
    assert len(data["confusion_matrix"]) == 21
    md = paths["markdown"].read_text()
    assert "References (NOT measured here)" in md and "| mIoU |" in md
    for key in ("confusion", "iou"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
