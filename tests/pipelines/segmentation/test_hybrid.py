"""Hybrid routing (lists, head nouns, plurals, embedding nearest neighbour) and the merge rule
on crafted dense/proposal results."""

from __future__ import annotations

import numpy as np
import pytest

from ovpaint.core.prompt import parse_prompt
from ovpaint.pipelines.result import SegmentationResult
from ovpaint.pipelines.segmentation.hybrid import (
    STUFF,
    THING,
    coco_prototypes,
    merge_results,
    route_classes,
    stuff_words,
)


def _kinds(prompt: str, **kwargs) -> dict[str, str]:
    return {r.name: r.kind for r in route_classes(parse_prompt(prompt), **kwargs)}


def test_known_stuff_words_and_their_variants_go_dense():
    prompt = (
        "sky, grass, road, wall, water, sea, floor, ceiling, skies, walls, green grass, "
        "wooden floor, snow, river, mountain, sand"
    )
    assert set(_kinds(prompt).values()) == {STUFF}


def test_known_things_go_to_proposals_even_with_a_stuff_word_in_the_phrase():
    kinds = _kinds("dog, person, cars, zebra, person in field, dog on grass, cat | kitten")
    assert set(kinds.values()) == {THING}


def test_synonyms_route_by_their_best_match():
    assert _kinds("meadow | blah")["meadow"] == STUFF


def test_unknown_words_are_routed_by_text_embedding_nearest_prototype():
    stuff, things = coco_prototypes()
    assert len(stuff) == 91 and len(things) == 80 and "sky" in stuff and "dog" in things
    rng = np.random.default_rng(0)
    table = {
        name: v / np.linalg.norm(v)
        for name, v in zip(stuff + things, rng.normal(size=(171, 16)), strict=True)
    }
    # "lava" sits next to the stuff prototype "rock"; "teapot" next to the thing "cup"
    table["lava"] = table["rock"] * 0.9 + table["cup"] * 0.1
    table["teapot"] = table["cup"] * 0.9 + table["rock"] * 0.1
    calls = []

    def embed(names):
        calls.append(list(names))
        out = np.stack([table[n] for n in names])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    routes = route_classes(parse_prompt("lava, teapot, sky"), embed=embed)
    assert [(r.name, r.kind) for r in routes] == [
        ("lava", STUFF),
        ("teapot", THING),
        ("sky", STUFF),
    ]
    assert routes[0].reason.startswith("text embedding")
    assert routes[2].reason.startswith("stuff list")
    # a margin larger than the gap flips the decision to "thing"
    assert route_classes(parse_prompt("lava"), embed=embed, margin=2.0)[0].kind == THING
    # without a text model an unknown word is a thing (proposals handle objects)
    assert _kinds("lava")["lava"] == THING


def test_stuff_list_file_is_maintained_and_lower_case():
    words = stuff_words()
    assert {"sky", "grass", "road", "wall", "water", "sea", "floor", "ceiling"} <= words
    assert all(w == w.lower() for w in words)
    assert "dog" not in words and "person" not in words


def test_merge_things_in_front_of_stuff():
    h, w = 20, 30
    classes = ["sky", "dog", "grass"]  # global 1, 2, 3
    kinds = [STUFF, THING, STUFF]
    dense_labels = np.zeros((h, w), np.int32)
    dense_labels[:8] = 1  # sky
    dense_labels[8:] = 3  # grass
    dense_labels[10:15, 5:10] = 2  # the dense path also saw a dog here: not used
    dense_scores = np.random.default_rng(0).random((4, h, w)).astype(np.float32)
    dense = SegmentationResult(dense_labels, ["background", *classes], dense_scores, "refined")
    thing_labels = np.zeros((h, w), np.int32)
    thing_labels[5:12, 20:28] = 1  # the proposal dog, overlapping sky and grass
    thing_scores = np.zeros((2, h, w), np.float32)
    thing_scores[1][thing_labels == 1] = 0.4
    things = SegmentationResult(thing_labels, ["background", "dog"], thing_scores, "proposal")
    labels, scores = merge_results(classes, kinds, dense, things, [2], (h, w))
    assert (labels[5:12, 20:28] == 2).all()  # the thing wins over sky and grass
    assert (labels[10:15, 5:10] == 0).all()  # dense "dog" pixels without a proposal: background
    assert (labels[:5] == 1).all() and (labels[15:] == 3).all()
    np.testing.assert_array_equal(scores[1], dense_scores[1])
    np.testing.assert_array_equal(scores[3], dense_scores[3])
    assert scores[2][6, 21] == pytest.approx(0.4) and scores[2][0, 0] == 0
    assert scores.shape == (4, h, w)


def test_merge_with_only_one_side():
    h, w = 6, 6
    dense = SegmentationResult(np.ones((h, w), np.int32), ["background", "sky"], None, "dense")
    labels, _ = merge_results(["sky"], [STUFF], dense, None, [], (h, w))
    assert (labels == 1).all()
    things = SegmentationResult(np.eye(6, dtype=np.int32), ["background", "dog"], None, "p")
    labels, scores = merge_results(["dog"], [THING], None, things, [1], (h, w))
    np.testing.assert_array_equal(labels, np.eye(6, dtype=np.int32))
    assert (scores[0] == 1).all()


@pytest.mark.slow
def test_segment_hybrid_runs_dense_on_all_classes_and_proposals_on_things(
    tiny_manager, monkeypatch
):
    import zlib

    from ovpaint.pipelines.segmentation import hybrid, proposals
    from ovpaint.pipelines.session import ImageSession

    def encode(manager, names, templates):
        out = []
        for n in names:
            v = np.random.default_rng(zlib.crc32(n.encode())).normal(size=64)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, np.float32)

    monkeypatch.setattr(proposals, "encode_texts", encode)
    monkeypatch.setattr(hybrid, "encode_texts", encode)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (12, 16, 3)).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    session = ImageSession(image)
    seen = {}

    def dense(queries):
        seen["dense"] = [q.name for q in queries]
        labels = np.zeros((96, 128), np.int32)
        labels[:40] = 1  # sky
        labels[40:] = 2  # the dense path's "dog": must not survive the merge
        return SegmentationResult(labels, ["background", "sky", "dog"], None, "refined")

    proposal = proposals.ProposalSettings(
        points_per_side=6,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        threshold_large=-2.0,
        threshold_small=-2.0,
        scales=(224,),
        scale_weights=(1.0,),
    )
    result = hybrid.segment_hybrid(
        session,
        parse_prompt("sky, dog"),
        tiny_manager,
        hybrid.HybridSettings(),
        proposal,
        dense=dense,
    )
    assert seen["dense"] == ["sky", "dog"]  # the dense path sees every class
    assert result.method == "hybrid" and result.classes == ["background", "sky", "dog"]
    assert [r["kind"] for r in result.extras["routes"]] == [STUFF, THING]
    dog_from_proposals = result.labels == 2
    assert dog_from_proposals.any()
    # every dog pixel comes from a kept proposal mask; sky pixels elsewhere stay sky
    assert ((result.labels == 1) <= (np.arange(96)[:, None] < 40)).all()
    assert (result.labels[:40][~dog_from_proposals[:40]] == 1).all()
    assert set(np.unique(result.labels[40:])) <= {0, 2}  # dense "dog" pixels are not kept


def test_methods_registered_and_run_through_segment(tiny_manager):
    from ovpaint.core.errors import BadInput
    from ovpaint.pipelines.segmentation.methods import METHODS
    from ovpaint.pipelines.segmentation.segment import segment

    assert {"proposal", "hybrid"} <= set(METHODS) and "refined" in METHODS
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (12, 16, 3)).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    settings = {
        "proposal": {"points_per_side": 4, "scales": [224], "scale_weights": [1.0]},
        "dense": {"templates": "openai80"},
        "hybrid": {"dense_method": "dense"},
    }
    hybrid_result = segment(
        image, "sky, dog", method="hybrid", manager=tiny_manager, settings=settings
    )
    assert hybrid_result.method == "hybrid"
    assert hybrid_result.classes == ["background", "sky", "dog"]
    assert hybrid_result.labels.shape == (96, 128)
    proposal_result = segment(
        image, "dog", method="proposal", manager=tiny_manager, settings=settings
    )
    assert proposal_result.method == "proposal"
    # an empty result says why (beyond the note every tiny-model result carries)
    reasons = [m for m in proposal_result.messages if "Tiny test models" not in m]
    assert proposal_result.labels.any() or any("nothing was segmented" in m for m in reasons)
    with pytest.raises(BadInput, match="proposal.no_such_thing"):
        segment(
            image,
            "dog",
            method="proposal",
            manager=tiny_manager,
            settings={"proposal": {"no_such_thing": 1}},
        )
    with pytest.raises(BadInput, match="dense method"):
        segment(
            image,
            "sky",
            method="hybrid",
            manager=tiny_manager,
            settings={"hybrid.dense_method": "hybrid"},
        )


def test_hybrid_runs_its_dense_method_from_the_registry(tiny_manager, monkeypatch):
    """hybrid.dense_method picks the registered dense-kind method that segments stuff; the
    default is the default method."""
    from ovpaint.pipelines.segmentation import methods
    from ovpaint.pipelines.segmentation.segment import segment

    ran = []

    def fake(name):
        def run(session, queries, models, settings, *, progress=None, cancel=None):
            ran.append(name)
            labels = np.ones((session.height, session.width), np.int32)
            return SegmentationResult(labels, ["background"] + [q.name for q in queries])

        return run

    for name in ("dense", "refined"):
        monkeypatch.setitem(methods.METHODS, name, replace_run(methods.METHODS[name], fake(name)))
    image = np.zeros((32, 48, 3), np.uint8)
    segment(image, "sky", method="hybrid", manager=tiny_manager)
    segment(
        image,
        "sky",
        method="hybrid",
        manager=tiny_manager,
        settings={"hybrid.dense_method": "dense"},
    )
    assert ran == [methods.DEFAULT_METHOD, "dense"]


def replace_run(method, run):
    import dataclasses

    return dataclasses.replace(method, run=run)
