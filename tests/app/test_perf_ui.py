"""The 'ui' perf stage's measurement drives every action it names through the real window
(here on a small image; `ovpaint perf --only ui` uses 24 MP) and reports a stall for each."""

from __future__ import annotations

from ovpaint.app import perf_ui


def test_every_action_runs_and_is_measured(qtbot, monkeypatch):
    from ovpaint.pipelines.segmentation.methods import METHODS

    monkeypatch.setattr(perf_ui, "SIZE", (240, 360))
    results = perf_ui.run(1)
    assert list(results) == list(perf_ui.ACTIONS)
    for action, values in results.items():
        assert len(values) == 1 and 0 < values[0] < 60, action
    assert "perf-fixed" not in METHODS  # registered only while it measures
