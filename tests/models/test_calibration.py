"""Measured precision: the decision rule on injected timings (an AMD-like and an Intel-like
machine), the interleaved timing loop on an injected clock, the store keyed by the machine
signature (re-measured when it changes, corrupt or out-of-range files re-measured, never a
crash), and the real probes running in every candidate precision."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ovpaint.models import calibration as C

CPU = torch.device("cpu")


# --------------------------------------------------------------------------- the decision
@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"fp32": 1.0, "bf16": 0.42}, "bf16"),  # bf16 2.4× (the AMD EPYC)
        ({"fp32": 1.0, "bf16": 1.64}, "fp32"),  # bf16 0.61× (the Intel Xeon)
        ({"fp32": 1.0, "bf16": 0.95}, "fp32"),  # 5 % faster: under the margin
        ({"fp32": 1.0, "bf16": 0.90}, "bf16"),  # 11 % faster: over it
        ({"fp32": 1.0, "bf16": 0.5, "int8": 0.47}, "bf16"),  # int8 must beat bf16 by 10 %
        ({"fp32": 1.0, "bf16": 0.5, "int8": 0.3}, "int8"),
        ({"fp32": 1.0, "bf16": 1.6, "int8": 0.5}, "int8"),  # a slow bf16 does not block int8
        ({"fp32": 1.0, "fp16": 0.3, "bf16": 0.35}, "fp16"),  # equal rank: the faster
        ({"fp32": 1.0}, "fp32"),
    ],
)
def test_choose_keeps_the_lower_precision_only_when_it_is_10_percent_faster(times, expected):
    assert C.choose(times) == expected


def test_choose_needs_the_fp32_reference():
    with pytest.raises(ValueError):
        C.choose({"bf16": 1.0})


class FakeClock:
    """A clock advanced only by the fake workloads: timings are exact, whatever the load."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_workload(name: str, cost: dict[str, float], clock: FakeClock, calls: list, **kw):
    def probe(device, precision):
        calls.append(("build", name, precision))

        def run():
            calls.append(("run", name, precision))
            clock.now += cost[precision]

        return run

    return C.Workload(name, f"fake {name}", probe, **kw)


def _costing(order: list, clock: FakeClock, costs: dict[str, float]) -> dict:
    def run_of(p, cost):
        def run():
            order.append(p)
            clock.now += cost

        return run

    return {p: run_of(p, cost) for p, cost in costs.items()}


def test_time_candidates_interleaves_and_never_starts_a_round_that_would_not_fit():
    clock, order = FakeClock(), []
    runs = _costing(order, clock, {"fp32": 0.3, "bf16": 0.1})
    times = C.time_candidates(runs, budget_s=1.5, clock=clock, settle=False)
    assert times == {"fp32": pytest.approx(0.3), "bf16": pytest.approx(0.1)}
    # rounds with the order rotating (no separate warm-up); a fourth round (0.4 s after 1.2)
    # would end past the budget, so it is not started
    assert order == ["fp32", "bf16", "bf16", "fp32", "fp32", "bf16"]
    assert clock.now == pytest.approx(1.2) and clock.now <= 1.5


@pytest.mark.parametrize(
    ("costs", "rounds"),
    [
        # 3× faster or slower: settled by the first round, even were a first run 60 % slow
        ({"fp32": 0.3, "bf16": 0.1}, 1),
        ({"fp32": 0.1, "bf16": 0.3}, 1),
        ({"fp32": 0.15, "bf16": 0.1}, C.MIN_ROUNDS),  # 1.5×: a second round settles it
        ({"fp32": 0.1, "bf16": 0.09}, 7),  # 1.11×, on the margin: rounds until the budget
    ],
)
def test_time_candidates_stop_when_the_choice_is_settled(costs, rounds):
    clock, order = FakeClock(), []
    C.time_candidates(_costing(order, clock, costs), budget_s=10.0, clock=clock)
    assert len(order) == 2 * rounds


@pytest.mark.parametrize(
    ("times", "is_settled"),
    [
        ({"fp32": 1.0, "bf16": 0.42}, True),  # 2.4×
        ({"fp32": 1.0, "bf16": 1.64}, True),  # 0.61×
        ({"fp32": 1.0, "bf16": 0.70}, True),  # 1.43×: bf16 even with a margin 25 % stricter
        ({"fp32": 1.0, "bf16": 0.85}, False),  # 1.18×: a 10 % change of one time flips it
        ({"fp32": 1.0, "bf16": 1.05}, False),
        ({"fp32": 1.0, "bf16": 0.5, "int8": 0.47}, False),  # int8 vs bf16 undecided
        ({"fp32": 1.0}, True),
    ],
)
def test_settled_means_a_change_of_doubt_in_the_times_would_not_change_the_choice(
    times, is_settled
):
    assert C.settled(times) is is_settled


def test_time_candidates_keep_each_candidates_fastest_run():
    """A first run's set-up and other programs only add time: a candidate slowed in most
    rounds is judged by its undisturbed run (its median would make bf16 look slower here)."""
    clock = FakeClock()
    disturbed = iter([2.0, 2.0, 0.0, 2.0, 2.0, 2.0, 2.0])

    def fp32():
        clock.now += 1.0

    def bf16():
        clock.now += 0.4 + next(disturbed)

    runs = {"fp32": fp32, "bf16": bf16}
    times = C.time_candidates(runs, budget_s=100.0, clock=clock, settle=False)
    assert times == {"fp32": pytest.approx(1.0), "bf16": pytest.approx(0.4)}
    assert C.choose(times) == "bf16"


def test_an_unsettled_choice_gets_the_minimum_rounds_even_over_budget():
    clock = FakeClock()
    counts = {"fp32": 0, "bf16": 0}

    def run_of(p):
        def run():
            counts[p] += 1
            clock.now += 5.0

        return run

    C.time_candidates({p: run_of(p) for p in counts}, budget_s=0.1, clock=clock)
    assert counts == {"fp32": C.MIN_ROUNDS, "bf16": C.MIN_ROUNDS} and C.MIN_ROUNDS >= 2


# --------------------------------------------------------------------------- the store
@pytest.fixture
def fake_registry(monkeypatch):
    """Two fake workloads instead of the real ones (the registry is restored afterwards)."""
    clock, calls = FakeClock(), []
    registry = {
        "alpha": fake_workload("alpha", {"fp32": 1.0, "bf16": 0.4, "int8": 0.2}, clock, calls),
        "beta": fake_workload(
            "beta", {"fp32": 1.0, "bf16": 1.6, "int8": 0.1}, clock, calls, int8=True
        ),
    }
    monkeypatch.setattr(C, "_WORKLOADS", registry)
    monkeypatch.setattr(C, "CLOCK", clock)  # for calibrators made without a clock (the CLI)
    monkeypatch.setattr("ovpaint.models.device.cpu_has_fast_bf16", lambda: True)
    return clock, calls


def measured(calls) -> set:
    return {(name, p) for kind, name, p in calls if kind == "build"}


def test_calibrate_stores_by_signature_and_measures_once(tmp_path, fake_registry):
    clock, calls = fake_registry
    path = tmp_path / "cal.json"
    announced = []
    cal = C.Calibrator(path, clock=clock, announce=announced.append)
    assert cal.choice("alpha", CPU) == "bf16"  # int8 is not a candidate of alpha
    assert measured(calls) == {("alpha", "fp32"), ("alpha", "bf16")}
    assert len(announced) == 1 and "once" in announced[0]
    assert cal.choice("beta", CPU) == "fp32"  # bf16 slower; int8 off by default
    calls.clear()
    again = C.Calibrator(path, clock=clock)  # a new process reads the file
    assert again.choice("alpha", CPU) == "bf16" and again.choice("beta", CPU) == "fp32"
    assert not calls
    data = json.loads(path.read_text())
    [(key, entry)] = data["machines"].items()
    assert key == C.signature_key(C.machine_signature(CPU))
    assert entry["signature"]["threads"] == torch.get_num_threads()
    assert entry["workloads"]["beta"]["times"] == pytest.approx({"fp32": 1.0, "bf16": 1.6})


def test_allowing_int8_measures_again_only_the_workloads_it_changes(tmp_path, fake_registry):
    clock, calls = fake_registry
    path = tmp_path / "cal.json"
    C.Calibrator(path, clock=clock).calibrate(CPU)
    calls.clear()
    with_int8 = C.Calibrator(path, clock=clock, allow_int8=True)
    assert with_int8.choice("alpha", CPU) == "bf16"  # unchanged candidates: not measured
    assert with_int8.choice("beta", CPU) == "int8"
    assert measured(calls) == {("beta", "fp32"), ("beta", "bf16"), ("beta", "int8")}
    calls.clear()  # int8 off again: the times of fp32 and bf16 are still there
    assert C.Calibrator(path, clock=clock).choice("beta", CPU) == "fp32"
    assert measured(calls) == set()


@pytest.mark.parametrize("change", ["cpu", "threads", "torch", "cores"])
def test_a_changed_machine_signature_measures_again(tmp_path, fake_registry, monkeypatch, change):
    clock, calls = fake_registry
    path = tmp_path / "cal.json"
    C.Calibrator(path, clock=clock).calibrate(CPU)
    calls.clear()
    if change == "cpu":
        monkeypatch.setattr(C, "cpu_model", lambda: "Intel(R) Xeon(R) Platinum")
    elif change == "cores":
        monkeypatch.setattr(C, "core_count", lambda: 64)
    elif change == "torch":
        monkeypatch.setattr(torch, "__version__", "9.9.9")
    else:
        threads = torch.get_num_threads()
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    C.Calibrator(path, clock=clock).choice("alpha", CPU)
    assert ("alpha", "fp32") in measured(calls)
    assert len(json.loads(path.read_text())["machines"]) == 2  # the other machine is kept


def _valid_file(tmp_path, clock) -> tuple:
    path = tmp_path / "cal.json"
    C.Calibrator(path, clock=clock).calibrate(CPU)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: b"\x00\xff not json",
        lambda data: b"{" + b" " * (C.MAX_FILE_BYTES + 10) + b"}",  # over the byte cap
        lambda data: json.dumps([1, 2, 3]).encode(),
        lambda data: json.dumps({**data, "schema": 99}).encode(),
    ],
)
def test_a_corrupt_file_is_measured_again_not_a_crash(tmp_path, fake_registry, corrupt):
    clock, calls = fake_registry
    path, data = _valid_file(tmp_path, clock)
    path.write_bytes(corrupt(data))
    calls.clear()
    assert C.Calibrator(path, clock=clock).choice("alpha", CPU) == "bf16"
    assert ("alpha", "fp32") in measured(calls)
    assert C.read_file(path)  # rewritten whole


@pytest.mark.parametrize(
    "field_value",
    [
        ("times", {"fp32": -1.0, "bf16": 0.4}),
        ("times", {"fp32": math.inf, "bf16": 0.4}),
        ("times", {"fp32": 1e9, "bf16": 0.4}),
        ("times", {"fp32": 1.0, "bf16": "fast"}),
        ("times", {"fp32": 1.0, "bf16": True}),
        ("candidates", ["fp32", "bf16", "fp64"]),
        ("choice", "fp32"),  # not what the times say
        ("choice", "int4"),
    ],
)
def test_out_of_range_entries_are_dropped_and_measured_again(tmp_path, fake_registry, field_value):
    clock, calls = fake_registry
    path, data = _valid_file(tmp_path, clock)
    [entry] = data["machines"].values()
    field, value = field_value
    entry["workloads"]["alpha"][field] = value
    path.write_text(json.dumps(data))
    calls.clear()
    cal = C.Calibrator(path, clock=clock)
    assert cal.choice("alpha", CPU) == "bf16"
    assert cal.choice("beta", CPU) == "fp32"
    assert measured(calls) == {("alpha", "fp32"), ("alpha", "bf16")}  # beta's entry kept


def test_a_signature_that_does_not_match_its_key_is_ignored(tmp_path, fake_registry):
    clock, _ = fake_registry
    path, data = _valid_file(tmp_path, clock)
    [entry] = data["machines"].values()
    entry["signature"]["cpu"] = "something else"
    path.write_text(json.dumps(data))
    assert C.read_file(path) == {}


def test_an_unwritable_cache_costs_a_measurement_not_an_error(tmp_path, fake_registry):
    clock, _ = fake_registry
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cal = C.Calibrator(blocker / "cal.json", clock=clock)  # its folder is a file
    assert cal.choice("alpha", CPU) == "bf16"


def test_microsecond_times_keep_their_choice_through_the_file(tmp_path):
    """A fast workload's times survive the JSON unrounded: rounded to microseconds, 1.1 µs
    against 1.23 µs would read as a tie, contradict the stored bf16 and be dropped."""
    times = {"fp32": 1.234567e-6, "bf16": 1.1e-6}
    result = C.WorkloadResult("fast", C.choose(times), times, ("fp32", "bf16"))
    assert result.choice == "bf16"
    signature = C.machine_signature(CPU)
    machine = C.MachineCalibration(signature, {"fast": result}, 0.1, 1.0)
    path = tmp_path / "c.json"
    C.write_file(path, {C.signature_key(signature): machine})
    [read] = C.read_file(path).values()
    assert read.results["fast"].choice == "bf16" and read.results["fast"].times == times


def test_probe_construction_is_part_of_the_budget():
    """A probe that takes most of the budget to build leaves time for the minimum rounds only."""
    clock = FakeClock()
    costs = {"fp32": 0.1, "bf16": 0.099}  # unsettled: would run until the budget

    def probe(device, precision):
        clock.now += 0.8  # building it (weights, low-precision copies)
        return lambda: setattr(clock, "now", clock.now + costs[precision])

    workload = C.Workload("slowbuild", "slow to build", probe)
    C.measure_workload(workload, CPU, ("fp32", "bf16"), budget_s=2.0, clock=clock)
    # 1.6 s building, 2 rounds (0.4 s): a third round would end past 2.0 s
    assert clock.now == pytest.approx(1.6 + 2 * 0.199)


def test_calibrate_shares_one_budget_and_keeps_imports_out_of_it(
    tmp_path, fake_registry, monkeypatch
):
    """Each workload must end by its share of the budget, counted from the common start: an
    undecided first workload uses its share only, and the code the probes run is loaded
    before the clock starts (timed apart)."""
    clock, calls = fake_registry
    imported = []

    def fake_import(name):
        imported.append((name, clock.now))
        clock.now += 2.0  # a slow first import
        return json

    monkeypatch.setattr("importlib.import_module", fake_import)
    registry = {
        "alpha": fake_workload("alpha", {"fp32": 0.1, "bf16": 0.095}, clock, calls, code=("m",)),
        "beta": fake_workload("beta", {"fp32": 0.1, "bf16": 0.095}, clock, calls, share=2.0),
    }
    monkeypatch.setattr(C, "_WORKLOADS", registry)
    calibration = C.Calibrator(tmp_path / "c.json", clock=clock, budget_s=3.0).calibrate(CPU)
    assert imported == [("m", 0.0)] and calibration.load_seconds == pytest.approx(2.0)
    assert calibration.seconds <= 3.0 + 1e-9  # the imports are not in it
    rounds = {
        name: sum(1 for c in calls if c[0] == "run" and c[1] == name) // 2 for name in registry
    }
    # alpha: its third of 3 s holds 5 rounds of 0.195 s (0.975 s), beta its two thirds: 10,
    # capped at MAX_ROUNDS (the time alpha left is not passed on)
    assert rounds == {"alpha": 5, "beta": C.MAX_ROUNDS}
    assert calibration.seconds == pytest.approx((5 + C.MAX_ROUNDS) * 0.195)


def test_a_workload_over_its_share_shortens_the_next_ones(tmp_path, fake_registry, monkeypatch):
    clock, calls = fake_registry
    registry = {
        "alpha": fake_workload("alpha", {"fp32": 0.5, "bf16": 0.49}, clock, calls),  # 2 s
        "beta": fake_workload("beta", {"fp32": 0.1, "bf16": 0.099}, clock, calls),
        "gamma": fake_workload("gamma", {"fp32": 0.1, "bf16": 0.099}, clock, calls),
    }
    monkeypatch.setattr(C, "_WORKLOADS", registry)
    C.Calibrator(tmp_path / "c.json", clock=clock, budget_s=3.0).calibrate(CPU)
    rounds = {n: sum(1 for c in calls if c[0] == "run" and c[1] == n) // 2 for n in registry}
    # alpha took 2 s of its 1 s share; beta must end by 2 s (past already): minimum rounds;
    # gamma by 3 s: 1 s less the 0.4 s beta took
    assert rounds == {"alpha": C.MIN_ROUNDS, "beta": C.MIN_ROUNDS, "gamma": 3}


def test_a_workload_that_follows_another_on_a_gpu_is_not_measured_there(
    tmp_path, fake_registry, monkeypatch
):
    clock, calls = fake_registry
    registry = {
        "alpha": fake_workload("alpha", {"fp32": 1.0, "bf16": 0.4}, clock, calls),
        "beta": fake_workload(
            "beta", {"fp32": 1.0, "bf16": 2.0}, clock, calls, gpu_follows="alpha"
        ),
    }
    monkeypatch.setattr(C, "_WORKLOADS", registry)
    monkeypatch.setattr(C, "candidates", lambda workload, device, allow: ("fp32", "bf16"))
    gpu = torch.device("meta")  # any device other than the CPU
    cal = C.Calibrator(tmp_path / "c.json", clock=clock)
    assert cal.choice("beta", gpu) == "bf16"  # alpha's measured choice
    assert measured(calls) == {("alpha", "fp32"), ("alpha", "bf16")}
    calibration = cal.calibrate(gpu, force=True)
    assert set(calibration.results) == {"alpha"}
    assert cal.valid_result(calibration, registry["beta"], gpu).choice == "bf16"
    calls.clear()
    assert cal.choice("beta", CPU) == "fp32"  # on the CPU it is measured itself
    assert measured(calls) == {("beta", "fp32"), ("beta", "bf16")}


def test_cached_reads_parse_again_exactly_when_the_bytes_change(
    tmp_path, fake_registry, monkeypatch
):
    clock, _ = fake_registry
    path, data = _valid_file(tmp_path, clock)
    parses = []
    original = C._parse_machine
    monkeypatch.setattr(C, "_parse_machine", lambda item: parses.append(1) or original(item))
    first = C.read_file_cached(path)
    assert first and len(parses) == 1
    assert C.read_file_cached(path) == first and len(parses) == 1  # unchanged: not parsed
    [entry] = data["machines"].values()
    entry["workloads"]["alpha"]["times"]["fp32"] = 1.5  # same length, other bytes
    text = json.dumps(data, indent=1, sort_keys=True)
    assert len(text) == len(path.read_text())
    path.write_text(text)
    [changed] = C.read_file_cached(path).values()
    assert len(parses) == 2 and changed.results["alpha"].times["fp32"] == 1.5
    path.unlink()
    assert C.read_file_cached(path) == {}


def test_one_candidate_is_not_timed(tmp_path, fake_registry, monkeypatch):
    clock, calls = fake_registry
    monkeypatch.setattr("ovpaint.models.device.cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr("ovpaint.models.device.cpu_is_x86", lambda: True)
    cal = C.Calibrator(tmp_path / "cal.json", clock=clock)
    assert cal.choice("alpha", CPU) == "fp32"  # an x86 CPU without bf16 instructions
    assert not calls
    assert C.Calibrator(tmp_path / "cal.json", clock=clock).choice("alpha", CPU) == "fp32"


def test_every_real_workload_is_registered_with_an_importable_probe():
    names = set(C.workloads())
    assert {"dense", "scoring", "decoder", "unet"} <= names
    for workload in C.workloads().values():
        assert callable(workload.probe_function())
    assert {w.role for w in C.workloads().values()} >= {"clip", "inpaint"}


@pytest.mark.parametrize("name", ["dense", "scoring", "decoder", "unet"])
def test_real_probes_run_in_every_cpu_candidate_and_agree_with_fp32(name):
    """Each probe runs the product's kernel; a lower precision computes the same thing."""
    workload = C.get_workload(name)
    probe = workload.probe_function()
    outputs = {}
    for precision in ("fp32", "bf16") + (("int8",) if workload.int8 else ()):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            out = probe(CPU, precision)()
        out = out[0] if isinstance(out, tuple) else out
        outputs[precision] = out.float()
    reference = outputs.pop("fp32")
    for precision, out in outputs.items():
        assert out.shape == reference.shape
        err = (out - reference).norm() / reference.norm()
        # close to fp32, yet not fp32 itself: the probe computed in the precision it was given
        assert 0 < err < 0.1, (precision, float(err))


def test_models_calibrate_and_list_show_the_choice_and_ratios(fake_registry, capsys):
    from ovpaint.cli import main

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "alpha    not measured yet" in out
    assert main(["models", "calibrate", "--json"]) == 0
    captured = capsys.readouterr()
    assert "measuring" in captured.err
    data = json.loads(captured.out)
    alpha = data["workloads"]["alpha"]
    assert alpha["choice"] == "bf16" and alpha["speed_vs_fp32"]["bf16"] > 1.0
    assert data["signature"]["cores"] == C.core_count()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "alpha    bf16" in out and "beta     fp32" in out
    assert "the speed of fp32" in out


def test_models_calibrate_shows_what_it_measured_when_it_cannot_store_it(
    fake_registry, capsys, tmp_path, monkeypatch
):
    from ovpaint.cli import main

    monkeypatch.setenv("OVPAINT_CACHE_DIR", str(tmp_path))
    (tmp_path / C.FILE_NAME).mkdir()  # the file's place is taken: nothing can be stored
    assert main(["models", "calibrate", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workloads"]["alpha"]["choice"] == "bf16"
