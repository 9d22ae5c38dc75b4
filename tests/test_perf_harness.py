"""The perf harness: a paired stage is timed alternately with its baseline and its speed-up
comes from those interleaved baseline runs; the product-default rows and the temporary files.

Timings come from an injected clock advanced by the stages themselves, so the ratios are exact
whatever else the machine is doing."""

from __future__ import annotations

import tempfile

import pytest

from ovpaint.perf import (
    PerfContext,
    Stage,
    format_table,
    precision_modes,
    product_default,
    run,
)


class StageClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_paired_stage_interleaves_with_its_baseline():
    clock = StageClock()
    log: list[str] = []
    load = {"factor": 1.0}

    def baseline():
        log.append("b")
        clock.now += 2.0 * load["factor"]

    def candidate():
        log.append("s")
        clock.now += 1.0 * load["factor"]
        load["factor"] *= 3  # the machine gets busier while the stages run

    stages = [
        Stage("g", "base", baseline, repeats=3, warmup=0),
        Stage("g", "fast", candidate, repeats=3, warmup=0, baseline="base", paired=True),
    ]
    base, fast = run(stages, clock=clock)
    assert log == ["b", "b", "b"] + ["b", "s"] * 3
    assert base.times_s == [2.0, 2.0, 2.0] and base.paired_baseline_s is None
    # each candidate run is half the baseline run just before it: exactly 2× against the
    # interleaved runs (median 6 vs 3), though the quiet baseline row alone says 2 / 3
    assert fast.times_s == [1.0, 3.0, 9.0] and fast.paired_baseline_s == 6.0
    assert fast.speedup == pytest.approx(2.0)
    assert "interleaved" in format_table([base, fast])


def test_unpaired_stage_uses_the_baseline_row():
    clock = StageClock()

    def cost(seconds):
        def go():
            clock.now += seconds

        return go

    stages = [
        Stage("g", "base", cost(3.0), repeats=1, warmup=0),
        Stage("g", "other", cost(1.0), repeats=1, warmup=0, baseline="base"),
    ]
    base, other = run(stages, clock=clock)
    assert other.paired_baseline_s is None and other.speedup == pytest.approx(3.0)


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


def test_a_failing_stage_is_reported_and_the_others_still_run():
    def broken():
        raise RuntimeError("no model")

    stages = [Stage("g", "bad", broken, repeats=1, warmup=0), Stage("g", "ok", lambda: None)]
    bad, ok = run(stages, clock=StageClock())
    assert bad.error == "RuntimeError: no model" and ok.error is None


class FixedChoice:
    def __init__(self, choice: str) -> None:
        self.choice_of = choice
        self.asked: list[str] = []

    def choice(self, workload, device, **kwargs):
        self.asked.append(workload)
        return self.choice_of


def test_product_default_runs_the_precision_the_product_chooses():
    import torch

    ctx = PerfContext(torch.device("cpu"), torch.float32, calibrator=FixedChoice("bf16"))
    ran: list[str] = []
    stage = product_default(ctx, "g", "default", "dense", ran.append, repeats=2, warmup=1)
    [result] = run([stage], clock=StageClock())
    assert ran == ["bf16"] * 3 and ctx.calibrator.asked == ["dense"] * 3
    assert result.note.startswith("measured choice: bf16")


def test_perf_context_removes_its_temporary_folder(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ctx = PerfContext(torch.device("cpu"), torch.float32)
    folder = ctx.temp_dir("stage")
    (folder / "file.bin").write_bytes(b"x")
    assert folder.parent.name.startswith("ovpaint-perf-")
    ctx.close()
    assert not folder.parent.exists()


def test_ovpaint_perf_leaves_no_temporary_folder(tmp_path, monkeypatch, capsys):
    from ovpaint.cli import main

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["perf", "--quick", "--only", "JPEG"]) == 0
    assert "JPEG" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ovpaint-perf-")]


def test_precision_modes_put_the_product_default_beside_the_modes_it_chose_among():
    import torch

    ctx = PerfContext(torch.device("cpu"), torch.float32, calibrator=FixedChoice("int8"))
    ran: list[str] = []
    stages = precision_modes(
        ctx, "g", "dense", ran.append, {"fp32": "", "int8": "n"}, "mode {}".format, baseline="b"
    )
    assert [s.name for s in stages] == ["mode fp32", "mode int8", "mode product default"]
    assert {s.baseline for s in stages} == {"b"} and stages[1].note == "n"
    for stage in stages:
        stage.run()
    assert ran == ["fp32", "int8", "int8"]


def test_every_measured_workload_has_a_product_default_row_in_perf():
    import torch

    from ovpaint.models.calibration import workloads
    from ovpaint.perf import collect

    ctx = PerfContext(torch.device("cpu"), torch.float32, calibrator=FixedChoice("bf16"))
    stages = collect(ctx, "dense,proposals,inpaint")
    defaults = [s for s in stages if "product default" in s.name]
    assert {d.name.split(",")[0].split(":")[0] for d in defaults} == {
        "dense 500×375",
        "refine",
        "score 100 masks × 3 scales",
        "UNet step 512² CFG",
    }
    assert len(defaults) == len(workloads())
    for default in defaults:
        others = [s for s in stages if s.baseline == default.baseline and s is not default]
        assert any("bf16" in s.name for s in others), default.name


def test_every_baseline_names_a_stage():
    import torch

    from ovpaint.perf import collect

    stages = collect(PerfContext(torch.device("cpu"), torch.float32))
    names = {s.name for s in stages}
    assert {s.baseline for s in stages if s.baseline} - names == set()
