"""Click sessions on the tiny SAM2: accumulation, exact undo, logits fed back, one embedding per
image, edits that start from a text mask, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from ovpaint.core.errors import BadInput
from ovpaint.pipelines.segmentation.interactive import (
    ClickSession,
    interior_points,
    mask_to_logits,
)
from ovpaint.pipelines.session import ImageSession


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (12, 16, 3)).astype(np.uint8).repeat(8, 0).repeat(8, 1)


@pytest.fixture()
def spy(monkeypatch):
    """Counts set_image calls and records every decoder call's prompts."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    record = {"set_image": 0, "calls": []}
    original_set, original_predict = SAM2ImagePredictor.set_image, SAM2ImagePredictor.predict

    def set_image(self, image):
        record["set_image"] += 1
        return original_set(self, image)

    def predict(self, *args, **kwargs):
        record["calls"].append(kwargs)
        return original_predict(self, *args, **kwargs)

    monkeypatch.setattr(SAM2ImagePredictor, "set_image", set_image)
    monkeypatch.setattr(SAM2ImagePredictor, "predict", predict)
    return record


def test_points_accumulate_undo_is_exact_and_logits_are_fed_back(tiny_manager, spy):
    session = ImageSession(_image())
    clicks = ClickSession(session, tiny_manager)
    m1 = clicks.add_point(40, 30, True)
    s1 = clicks.state
    m2 = clicks.add_point(100, 60, False)
    m3 = clicks.add_point(20, 80, True)
    assert clicks.points.tolist() == [[40, 30], [100, 60], [20, 80]]
    assert clicks.labels.tolist() == [1, 0, 1]
    calls = spy["calls"]
    assert len(calls) == 3
    assert calls[0]["mask_input"] is None and calls[0]["multimask_output"] is True
    # each later call received the previous step's low-res logits
    np.testing.assert_array_equal(calls[1]["mask_input"], s1.logits)
    assert calls[2]["mask_input"] is not None and calls[2]["multimask_output"] is False
    assert len(calls[2]["point_coords"]) == 3
    assert clicks.undo().tobytes() == m2.tobytes()
    assert clicks.undo().tobytes() == m1.tobytes()
    np.testing.assert_array_equal(clicks.state.logits, s1.logits)
    clicks.undo()
    assert not clicks.mask.any() and not clicks.can_undo
    with pytest.raises(BadInput):
        clicks.undo()
    assert m3.shape == (96, 128) and m3.dtype == bool
    # one image embedding for every click (and for a second mask of the same image)
    ClickSession(session, tiny_manager).add_point(10, 10)
    assert spy["set_image"] == 1


def test_negative_click_far_away_edits_a_text_mask_instead_of_replacing_it(tiny_manager, spy):
    session = ImageSession(_image(1))
    text_mask = np.zeros((96, 128), bool)
    text_mask[20:60, 30:80] = True
    clicks = ClickSession(session, tiny_manager, initial_mask=text_mask)
    start_points = clicks.points
    assert len(start_points) == 1 and text_mask[int(start_points[0, 1]), int(start_points[0, 0])]
    after = clicks.add_point(120, 90, positive=False)
    call = spy["calls"][-1]
    assert call["mask_input"] is not None and call["multimask_output"] is False
    assert call["point_labels"].tolist() == [1, 0]  # interior point + the click
    kept = (after & text_mask).sum() / text_mask.sum()
    assert kept >= 0.9
    assert clicks.undo().tobytes() == text_mask.tobytes()


def test_negative_click_inside_removes_only_the_part_sam_drops_around_it(tiny_manager):
    session = ImageSession(_image(2))
    mask = np.zeros((96, 128), bool)
    mask[10:90, 10:120] = True
    clicks = ClickSession(session, tiny_manager, initial_mask=mask)
    out = clicks.add_point(60, 50, positive=False)
    assert not (out & ~mask).any()  # a negative click never adds pixels
    positive = clicks.add_point(5, 5, positive=True)
    assert (positive | ~out).all()  # a positive click never removes pixels


def test_bad_input(tiny_manager, spy):
    session = ImageSession(_image(3))
    clicks = ClickSession(session, tiny_manager)
    for x, y in [(-1, 5), (128, 5), (5, 96), (float("nan"), 3)]:
        with pytest.raises(BadInput, match="outside"):
            clicks.add_point(x, y)
    with pytest.raises(BadInput, match="zero area"):
        clicks.set_box(10, 10, 10, 50)
    with pytest.raises(BadInput, match="outside"):
        clicks.set_box(200, 200, 300, 300)
    assert spy["calls"] == []  # rejected before any model work
    # a negative click on an empty mask is valid and removes nothing
    assert not clicks.add_point(50, 50, positive=False).any()
    # a box partly outside the image is clipped; the mask stays inside it
    boxed = clicks.set_box(-20, -20, 60, 40)
    assert clicks.box == (0.0, 0.0, 60.0, 40.0)
    assert not boxed[40:, :].any() and not boxed[:, 60:].any()


@pytest.mark.slow  # hundreds of decoder calls
def test_hundreds_of_clicks_are_capped_for_the_decoder(tiny_manager, spy):
    session = ImageSession(_image(4))
    clicks = ClickSession(session, tiny_manager, max_points=8)
    rng = np.random.default_rng(0)
    for x, y in rng.integers(0, 90, (60, 2)):
        clicks.add_point(float(x), float(y), bool(x % 2))
    assert len(clicks.points) == 60
    assert max(len(c["point_coords"]) for c in spy["calls"]) == 8
    np.testing.assert_array_equal(spy["calls"][-1]["point_coords"], clicks.points[-8:])


def test_prompt_conversion_helpers():
    mask = np.zeros((50, 60), bool)
    mask[5:15, 5:55] = True  # a bar
    mask[30:45, 20:35] = True  # a square
    pts = interior_points(mask, max_points=3)
    assert len(pts) == 2
    for x, y in pts:
        assert mask[int(y), int(x)]
    assert interior_points(np.zeros((5, 5), bool)).shape == (0, 2)
    # a ring: its centroid is outside, the interior point is not
    ring = np.zeros((41, 41), bool)
    yy, xx = np.mgrid[:41, :41]
    r = np.hypot(yy - 20, xx - 20)
    ring[(r > 10) & (r < 18)] = True
    ((x, y),) = interior_points(ring, max_points=1)
    assert ring[int(y), int(x)]
    logits = mask_to_logits(mask, 16)
    assert logits.shape == (1, 16, 16) and logits.max() > 0 > logits.min()


def test_starting_mask_of_wrong_size_is_bad_input(tiny_manager):
    session = ImageSession(_image())
    with pytest.raises(BadInput):
        ClickSession(session, tiny_manager, initial_mask=np.zeros((10, 10), bool))


def test_parse_points_and_box():
    from ovpaint.pipelines.segmentation.interactive import parse_box, parse_points

    assert parse_points("10,20,+; 30.5,4,-;7,8") == [(10, 20, True), (30.5, 4, False), (7, 8, True)]
    assert parse_points("") == [] and parse_points(None) == []
    for bad in ("10", "a,b,+", "1,2,?", "1,2,3,4"):
        with pytest.raises(BadInput):
            parse_points(bad)
    assert parse_box("1, 2,30,40") == (1.0, 2.0, 30.0, 40.0)
    assert parse_box(None) is None
    for bad in ("1,2,3", "1,2,3,x"):
        with pytest.raises(BadInput):
            parse_box(bad)


def test_refine_one_class_of_a_result_and_segment_from_clicks(tiny_manager):
    from ovpaint.pipelines.result import SegmentationResult
    from ovpaint.pipelines.segmentation.interactive import (
        refine_class_with_clicks,
        segment_from_clicks,
    )

    session = ImageSession(_image(5))
    labels = np.zeros((96, 128), np.int32)
    labels[10:50, 10:60] = 1
    labels[60:90, 70:120] = 2
    result = SegmentationResult(labels, ["background", "dog", "sky"], None, "refined")
    with pytest.raises(BadInput, match="--class"):
        refine_class_with_clicks(result, session, tiny_manager, [(5, 5, False)])
    with pytest.raises(BadInput, match="not in"):
        refine_class_with_clicks(result, session, tiny_manager, [(5, 5, False)], class_name="cat")
    out = refine_class_with_clicks(
        result, session, tiny_manager, [(120, 5, False)], class_name="dog"
    )
    # a negative click far away keeps the dog, and the other class is untouched
    assert ((out.labels == 1) & (labels == 1)).sum() >= 0.9 * (labels == 1).sum()
    assert (out.labels[labels == 2] != 0).all()
    assert out.classes == result.classes and "corrected" in out.messages[-1]
    alone = segment_from_clicks(session, tiny_manager, [(30, 30, True)], box=(0, 0, 80, 60))
    assert alone.classes == ["background", "object"]
    assert not alone.labels[60:, :].any() and not alone.labels[:, 80:].any()
    with pytest.raises(BadInput):
        segment_from_clicks(session, tiny_manager, [])
    with pytest.raises(BadInput, match="positive"):
        segment_from_clicks(session, tiny_manager, [(3, 3, False)])
