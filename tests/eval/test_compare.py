"""Several methods in one benchmark run: the same numbers as separate runs, side by side."""

from __future__ import annotations

import json

import pytest

from ovpaint.core.errors import BadInput, Cancelled
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.eval.compare import (
    comparison_paths,
    method_out_path,
    parse_methods,
    run_comparison,
    write_comparison,
)
from ovpaint.eval.runner import run_benchmark
from ovpaint.eval.synthetic import make_synthetic
from tests.eval.test_runner import Segmenter


def test_parse_methods():
    known = ["dense", "refined", "naclip", "naclip-refined"]
    assert parse_methods("dense, naclip,dense", known) == ["dense", "naclip"]
    assert parse_methods(["naclip-refined"], known) == ["naclip-refined"]
    with pytest.raises(BadInput, match="nacl"):
        parse_methods("dense,nacl", known)
    with pytest.raises(BadInput):
        parse_methods(" , ", known)


def test_comparison_equals_separate_runs_and_reports_side_by_side(tmp_path):
    info = make_synthetic("voc", tmp_path / "data", n_images=3)
    segmenters = {
        "good": Segmenter(info.colors),
        "bad": Segmenter(info.colors, wrong=(8, 12)),
    }
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    out = tmp_path / "rep" / "voc.json"
    comparison = run_comparison(
        "voc",
        tmp_path / "data",
        ["good", "bad"],
        out_path=out,
        segment_fns=segmenters,
        progress=progress,
    )
    assert comparison.methods == ["good", "bad"]
    for method, result in zip(comparison.methods, comparison.results, strict=True):
        alone = run_benchmark(
            "voc",
            tmp_path / "data",
            method,
            segment_fn=Segmenter(info.colors, **({"wrong": (8, 12)} if method == "bad" else {})),
        )
        assert (alone.matrix == result.matrix).all()
    # each method segments one image more, untimed and unscored, before its timed run
    assert [segmenters[m].calls for m in comparison.methods] == [4, 4]
    good, bad = comparison.results
    assert good.scores.miou == pytest.approx(1.0) and bad.scores.miou < 0.9
    assert {e.stage for e in events} == {"good (1/2)", "bad (2/2)"}

    paths = write_comparison(comparison, out)
    assert paths == comparison_paths(out)
    data = json.loads(paths["json"].read_text())
    assert data["methods"] == ["good", "bad"]
    rows = {r["method"]: r for r in data["summary"]}
    assert rows["good"]["mIoU"] == pytest.approx(1.0)
    assert rows["bad"]["mIoU"] == pytest.approx(bad.scores.miou, abs=1e-6)
    assert rows["bad"]["mean_boundary_f1"] < rows["good"]["mean_boundary_f1"]
    assert rows["good"]["seconds_per_image"] >= 0
    dog = next(c for c in data["per_class"] if c["name"] == "dog")
    cat = next(c for c in data["per_class"] if c["name"] == "cat")
    assert dog["iou"]["good"] == pytest.approx(1.0) and cat["iou"]["bad"] == 0.0
    md = paths["markdown"].read_text()
    assert "| good | 100.00 |" in md and "| bad |" in md
    for key in ("chart", "per_class"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for method in ("good", "bad"):  # each method's own full report beside it
        own = json.loads(method_out_path(out, method).read_text())
        assert own["method"] == method and len(own["confusion_matrix"]) == 21


def test_an_interrupted_comparison_resumes_method_by_method(tmp_path):
    info = make_synthetic("voc", tmp_path / "data", n_images=3)
    out = tmp_path / "voc.json"
    cancel = CancelToken()
    first = {
        "a": Segmenter(info.colors),
        "b": Segmenter(info.colors, cancel_after=2, cancel=cancel),
    }
    with pytest.raises(Cancelled):
        run_comparison(
            "voc", tmp_path / "data", ["a", "b"], out_path=out, segment_fns=first, cancel=cancel
        )
    # b's second call, its first timed image, cancels: one image done, plus the warm-up
    assert (first["a"].calls, first["b"].calls) == (4, 2)
    second = {"a": Segmenter(info.colors), "b": Segmenter(info.colors)}
    comparison = run_comparison(
        "voc", tmp_path / "data", ["a", "b"], out_path=out, segment_fns=second
    )
    # a has nothing left to do, so no warm-up; b warms up again for its two images left
    assert (second["a"].calls, second["b"].calls) == (0, 3)
    assert [r.resumed_images for r in comparison.results] == [3, 1]
    assert comparison.results[0].scores.as_dict() == comparison.results[1].scores.as_dict()
