"""Every number and text the command line takes has a range: ``--set`` values of every
segmentation setting, clicks and boxes, class names, inpainting prompts. Out of range is exit 2
with one line naming the option, before any model, image or dataset is touched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

import ovpaint.eval.runner as runner_module
import ovpaint.pipelines.inpainting.inpaint as inpaint_module
import ovpaint.pipelines.segmentation.segment as segment_module
from ovpaint.core.errors import BadInput
from ovpaint.eval.synthetic import make_synthetic
from ovpaint.pipelines.segmentation import settings as seg_settings
from tests.cli.conftest import one_line, run


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(path)
    return path


@pytest.fixture
def started(monkeypatch):
    """Records every segmentation, inpainting and benchmark run that starts (none may)."""
    calls = []

    def refuse(name):
        def fn(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} started although an option was out of range")

        return fn

    monkeypatch.setattr(segment_module, "segment", refuse("segment"))
    monkeypatch.setattr(inpaint_module, "inpaint", refuse("inpaint"))
    monkeypatch.setattr(runner_module, "run_benchmark", refuse("benchmark"))
    return calls


DEEP = "[" * 100_000 + "]" * 100_000

SET_CASES = [
    # (values given to --set, what the one line must name)
    (["dense.short_side=100000", "dense.max_long_side=100000"], "dense.short_side"),
    (["dense.batch_size=100000000000000000000"], "dense.batch_size"),
    (["dense.max_work_pixels=1000000000000"], "dense.max_work_pixels"),
    (["dense.layers=[1, 100000]"], "dense.layers"),
    (["dense.layers=[" + ", ".join(["3"] * 5000) + "]"], "dense.layers"),
    (["dense.layers=" + DEEP], "dense.layers"),
    (["dense.templates=" + "x{}" * 5000], "dense.templates"),
    (["dense.templates=x{}x{}"], "dense.templates"),  # crashed the text encoder
    (["refine.max_points=1000000000"], "refine.max_points"),
    (["refine.opening_px=100000"], "refine.opening_px"),
    (["proposal.temperature=NaN"], "proposal.temperature"),
    (["proposal.pred_iou_thresh=Infinity"], "proposal.pred_iou_thresh"),
    (["proposal.points_per_batch=1000000000"], "proposal.points_per_batch"),
    (["proposal.max_side=1000000000"], "proposal.max_side"),
    (["proposal.scale_weights=[1e308, 1e308, 1e308]"], "proposal.scale_weights"),
    (["proposal.background_words=[" + ", ".join(['"x"'] * 1000) + "]"], "background_words"),
]


@pytest.mark.parametrize("values, named", SET_CASES, ids=[c[1] for c in SET_CASES])
def test_set_values_out_of_range_stop_the_benchmark_before_it_starts(
    tmp_path, capsys, started, values, named
):
    make_synthetic("voc", tmp_path / "voc", n_images=1)
    argv = ["benchmark", "--dataset", "voc", "--root", tmp_path / "voc"]
    argv += ["--out", tmp_path / "r.json", "--quiet"]
    for value in values:
        argv += ["--set", value]
    assert run(*argv) == 2
    line = one_line(capsys)
    assert named in line and len(line) < 400
    assert not started and not list(tmp_path.glob("r.json*"))


@pytest.mark.parametrize("values, named", SET_CASES[:6], ids=[c[1] for c in SET_CASES[:6]])
def test_set_values_out_of_range_stop_segment_and_batch(
    tmp_path, photo, capsys, started, values, named
):
    sets = [arg for value in values for arg in ("--set", value)]
    out = tmp_path / "l.png"
    assert run("segment", photo, "--prompt", "sky", "--out", out, "--quiet", *sets) == 2
    assert named in one_line(capsys)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo.read_bytes())
    rc = run("batch", folder, "--prompt", "sky", "--out", tmp_path / "o", "--quiet", *sets)
    assert rc == 2 and named in one_line(capsys)
    assert not started and not out.exists() and not (tmp_path / "o").exists()


def test_in_range_values_still_pass_and_keep_their_types():
    parsed = seg_settings.parse_settings(
        {
            "dense.short_side": 448,
            "dense.layers": [3, 6, 9, 12],
            "dense.logit_scale": 65,
            "proposal.threshold_small": -0.1,
            "proposal.scales": [224, 336],
            "proposal.scale_weights": [0.5, 0.5],
        }
    )
    assert parsed.dense.short_side == 448 and parsed.dense.layers == (3, 6, 9, 12)
    assert parsed.dense.logit_scale == 65.0 and isinstance(parsed.dense.logit_scale, float)
    assert parsed.proposal.threshold_small == -0.1 and parsed.proposal.scales == (224, 336)
    with pytest.raises(BadInput, match=r"dense\.short_side must be from 16 to 2048"):
        seg_settings.parse_settings({"dense.short_side": 4096})


def _numeric(field) -> bool:
    kind = str(field.type)
    return any(word in kind for word in ("int", "float"))


def test_every_number_of_every_section_has_a_declared_range():
    """A section's numbers come from --set, the benchmark presets and the app: each declares
    its range (``RANGES``), so none falls back to the generic bound by oversight."""
    missing = [
        f"{name}.{f.name}"
        for name, cls in seg_settings.SECTIONS.items()
        for f in dataclasses.fields(cls)
        if _numeric(f) and f.name not in seg_settings.ranges_of(cls)
    ]
    assert missing == []
    # and the defaults lie in their ranges
    for name, cls in seg_settings.SECTIONS.items():
        seg_settings.section_from_dict(name, dataclasses.asdict(cls()))


# ------------------------------------------------------------------ clicks, boxes, names, texts
@pytest.mark.parametrize(
    "extra, named",
    [
        (["--box", "nan,0,10,10"], "box"),
        (["--box", "0,0,inf,10"], "box"),
        (["--box", "0,0,1e30,10"], "box"),
        (["--points", "5,1e400,+"], "point"),
        (["--points", ";".join(["5,5,+"] * 1001)], "clicks"),
        (["--class", "x" * 5000], "--class"),
        (["--class", "sky\nsea"], "--class"),
    ],
    ids=[
        "nan box",
        "inf box",
        "huge box",
        "infinite click",
        "too many clicks",
        "long class",
        "two classes",
    ],
)
def test_clicks_boxes_and_class_names_are_bounded(tmp_path, photo, capsys, started, extra, named):
    out = tmp_path / "l.png"
    assert run("segment", photo, "--out", out, "--quiet", "--points", "5,5,+", *extra) == 2
    assert named in one_line(capsys)
    assert not started and not out.exists()


@pytest.mark.parametrize("option", ["--prompt", "--negative", "--removed-class"])
def test_inpainting_texts_are_bounded(tmp_path, photo, capsys, started, option):
    mask = tmp_path / "m.png"
    Image.fromarray(np.full((40, 50), 255, np.uint8)).save(mask)
    out = tmp_path / "o.png"
    argv = ["inpaint", photo, "--mask", mask, "--out", out, "--mode", "replace", "--quiet"]
    if option != "--prompt":
        argv += ["--prompt", "a cat"]
    assert run(*argv, option, "word " * 1000) == 2
    assert "characters long" in one_line(capsys)
    assert not started and not out.exists()
