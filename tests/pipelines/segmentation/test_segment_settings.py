"""The nested, typed segmentation settings and their one parser."""

from __future__ import annotations

import pytest

from ovpaint.core.errors import BadInput
from ovpaint.pipelines.segmentation.settings import (
    SECTIONS,
    DenseSettings,
    ProposalSettings,
    RefineSettings,
    merge_settings,
    parse_settings,
)


def test_every_section_is_typed_with_defaults_where_nothing_was_given():
    s = parse_settings(None)
    assert set(SECTIONS) >= {"dense", "refine", "proposal", "hybrid"}
    assert s.dense == DenseSettings() and s.refine == RefineSettings()
    assert s.proposal == ProposalSettings() and s.given == {}


def test_nested_and_dotted_forms_agree_and_json_lists_become_tuples():
    nested = parse_settings({"dense": {"layers": [3, 6], "logit_scale": 65}})
    dotted = parse_settings({"dense.layers": [3, 6], "dense.logit_scale": 65})
    assert nested.sections == dotted.sections
    assert nested.dense.layers == (3, 6) and nested.dense.logit_scale == 65.0
    assert isinstance(nested.dense.logit_scale, float)
    assert parse_settings(
        {"proposal": {"scales": [224], "scale_weights": [1]}}
    ).proposal.scales == (224,)


def test_each_stage_has_its_own_precision():
    s = parse_settings({"dense.compute_dtype": "fp32"})
    assert s.dense.compute_dtype == "fp32" and s.refine.compute_dtype == "auto"
    s = parse_settings({"refine": {"compute_dtype": "bf16"}})
    assert s.dense.compute_dtype == "auto" and s.refine.compute_dtype == "bf16"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"dense": {"prob_thd": 0.1, "probthd": 1}}, "dense.probthd.*prob_thd"),
        ({"dnese": {"prob_thd": 0.1}}, "dnese.*dense"),
        ({"compute_dtype": "fp32"}, "dense.compute_dtype or refine.compute_dtype"),
        ({"dense": {"short_side": "big"}}, "dense.short_side must be of type int"),
        ({"dense": {"short_side": True}}, "dense.short_side"),
        ({"dense": {"layers": 3}}, "dense.layers must be a list"),
        ({"dense": {"logit_scale": None}}, "dense.logit_scale cannot be null"),
        ({"refine": {"vote_threshold": 2.0}}, "refine.vote_threshold must be from 0 to 1"),
        ({"proposal": {"scales": [224, 336]}}, "same length"),
        ({"dense.": 1}, "no key"),
    ],
)
def test_unknown_keys_sections_and_bad_values_are_refused_by_name(values, message):
    with pytest.raises(BadInput, match=message):
        parse_settings(values)


def test_merge_lets_later_layers_win_key_by_key():
    merged = merge_settings(
        {"dense": {"logit_scale": 65.0, "prob_thd": 0.1}}, None, {"dense.prob_thd": 0.3}
    )
    assert merged == {"dense": {"logit_scale": 65.0, "prob_thd": 0.3}}
    assert parse_settings(merged).given == merged
