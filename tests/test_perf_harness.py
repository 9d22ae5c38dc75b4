"""The perf harness: a paired stage is timed alternately with its baseline and its speed-up
comes from those interleaved baseline runs."""

from __future__ import annotations

import time

from ovpaint.perf import Stage, format_table, run


def test_paired_stage_interleaves_with_its_baseline():
    log: list[str] = []
    slow = {"factor": 1.0}

    def baseline():
        log.append("b")
        time.sleep(0.02 * slow["factor"])

    def candidate():
        log.append("s")
        time.sleep(0.01 * slow["factor"])
        slow["factor"] *= 3  # the machine gets busier while the stages run

    stages = [
        Stage("g", "base", baseline, repeats=3, warmup=0),
        Stage("g", "fast", candidate, repeats=3, warmup=0, baseline="base", paired=True),
    ]
    base, fast = run(stages)
    assert log == ["b", "b", "b"] + ["b", "s"] * 3
    assert fast.paired_baseline_s is not None and base.paired_baseline_s is None
    # against its own interleaved baseline runs the ratio stays near 2 despite the drift;
    # against the baseline's earlier, quiet runs it would look like ~1/4
    assert 1.3 < fast.speedup < 3.0
    assert "interleaved" in format_table([base, fast])


def test_unpaired_stage_uses_the_baseline_row():
    stages = [
        Stage("g", "base", lambda: time.sleep(0.003), repeats=1, warmup=0),
        Stage("g", "other", lambda: None, repeats=1, warmup=0, baseline="base"),
    ]
    base, other = run(stages)
    assert other.paired_baseline_s is None and other.speedup > 1


def test_measured_stage_records_what_it_returns():
    values = iter([0.5, 0.1, 0.3])
    stage = Stage("ui", "stall", lambda: next(values), repeats=3, warmup=0, measured=True)
    (result,) = run([stage])
    assert result.times_s == [0.5, 0.1, 0.3] and result.median_s == 0.3


def test_only_a_group_name_selects_that_group():
    import torch

    from ovpaint.perf import PerfContext, collect

    ctx = PerfContext(device=torch.device("cpu"), dtype=torch.float32, tiny=True, quick=True)
    names = [(s.group, s.name) for s in collect(ctx, "ui")]
    assert names and all(group == "ui" for group, _ in names)  # not "build tiny CLIP"
    assert {n.split(": ")[1].rsplit(",", 1)[0] for _, n in names} == {
        "open",
        "segment apply",
        "click",
        "brush",
        "feather",
        "inpaint apply",
        "undo",
    }
