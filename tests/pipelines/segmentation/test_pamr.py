"""PAMR: the sparse-step implementation against the direct one, and its invariants."""

from __future__ import annotations

import pytest
import torch

from ovpaint.core.errors import BadInput
from ovpaint.pipelines.segmentation.pamr import affinity, pamr, pamr_reference


def _random(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, h, w, generator=g), torch.randn(3, h, w, generator=g)


@pytest.mark.parametrize(
    "shape,dilations",
    [
        ((4, 37, 53), (8, 16)),
        ((2, 7, 10), (8, 16)),  # smaller than the padding: replicate everywhere
        ((3, 1, 40), (2,)),
        ((5, 64, 48), (1, 3, 5)),
    ],
)
def test_sparse_steps_equal_direct_steps(shape, dilations):
    maps, guide = _random(*shape)
    got = pamr(maps, guide, 10, dilations)
    want = pamr_reference(maps, guide, 10, dilations)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)


def test_weights_are_a_convex_combination():
    _, guide = _random(1, 30, 40)
    weights = affinity(guide, (8, 16))
    assert weights.shape == (16, 30, 40)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(0), torch.ones(30, 40))


def test_constant_maps_stay_and_values_stay_in_range():
    maps, guide = _random(3, 40, 50, seed=1)
    flat = torch.full((2, 40, 50), 0.25)
    torch.testing.assert_close(pamr(flat, guide), flat)
    out = pamr(maps, guide)
    assert out.min() >= maps.min() - 1e-6 and out.max() <= maps.max() + 1e-6


def test_edges_of_the_guide_stop_the_averaging():
    """A map whose edge lies on an edge of the guide stays sharp; with a flat guide the same
    map is blurred across it."""
    h, w = 48, 64
    maps = torch.zeros(1, h, w)
    maps[:, :, 32:] = 1.0
    edged = torch.zeros(3, h, w)
    edged[:, :, 32:] = 3.0
    out = pamr(maps, edged, 10, (2, 4))[0]
    assert out[:, :32].max() < 0.01 and out[:, 32:].min() > 0.99
    flat = pamr(maps, torch.zeros(3, h, w), 10, (2, 4))[0]
    assert flat[:, 28:32].max() > 0.2 and flat[:, 32:36].min() < 0.8


def test_zero_steps_is_identity_and_bad_settings_are_refused():
    maps, guide = _random(2, 10, 12)
    assert pamr(maps, guide, 0) is maps
    with pytest.raises(BadInput):
        pamr(maps, guide, -1)
    with pytest.raises(BadInput):
        pamr(maps, guide, 10, ())
    with pytest.raises(BadInput):
        pamr(maps, guide, 10, (0, 8))
    with pytest.raises(BadInput):
        pamr(maps, guide, 10, (8, 8))
    with pytest.raises(ValueError):
        pamr(maps, guide[:, :5], 10)
