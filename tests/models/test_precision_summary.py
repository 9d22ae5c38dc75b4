"""Reports, banners and status texts say the precision each workload computed in (weights stay
fp32 on a CPU while a workload may run in bf16), read from what ran and what is stored, and
writing them never measures."""

from __future__ import annotations

import json

from ovpaint.models.calibration import workloads
from ovpaint.models.manager import ModelManager
from tests.fixed_precision import FixedCalibrator, manager_measuring, stored_calibrator

MEASURED = {"dense": "bf16", "decoder": "fp32", "scoring": "bf16", "unet": "bf16"}


def test_a_benchmark_report_records_the_precision_that_ran(tmp_path):
    from ovpaint.eval.report import write_report
    from ovpaint.eval.runner import run_benchmark
    from ovpaint.eval.synthetic import make_synthetic

    make_synthetic("voc", tmp_path / "data", n_images=1)
    manager = manager_measuring("bf16")
    result = run_benchmark("voc", tmp_path / "data", "dense", manager=manager)
    assert manager.calibrator.asked == ["dense"]
    paths = write_report(result, tmp_path / "out" / "voc.json", manager=manager)
    data = json.loads(paths["json"].read_text())
    assert data["precision"] == {"dense": "bf16"}  # nothing stored for the others
    assert data["precision_source"] == "measured"
    assert data["device"] == "cpu" and data["weights_dtype"] == "fp32"
    assert manager.calibrator.asked == ["dense"]  # the report measured nothing
    assert "Compute: cpu; precision (measured): dense bf16" in paths["markdown"].read_text()


def test_a_comparison_records_it_in_each_run_and_the_whole(tmp_path):
    from ovpaint.eval.compare import comparison_dict, run_comparison
    from ovpaint.eval.synthetic import make_synthetic

    make_synthetic("voc", tmp_path / "data", n_images=1)
    manager = manager_measuring("bf16")
    comparison = run_comparison("voc", tmp_path / "data", ["dense"], manager=manager)
    data = comparison_dict(comparison, manager=manager)
    assert data["precision"] == {"dense": "bf16"} and data["device"] == "cpu"
    assert data["runs"]["dense"]["precision"] == {"dense": "bf16"}
    assert manager.calibrator.asked.count("dense") >= 1
    assert set(manager.calibrator.asked) == {"dense"}


def test_stored_choices_are_read_and_never_measured(tmp_path, monkeypatch):
    calibrator = stored_calibrator(tmp_path / "precision.json", MEASURED, monkeypatch)
    manager = ModelManager(profile="tiny", device="cpu", calibrator=calibrator)
    assert manager.known_precisions(stored=False) == {}  # nothing ran, no file read
    assert manager.known_precisions() == MEASURED
    banner = manager.banner()
    assert "cpu · weights fp32 · compute decoder fp32, dense bf16, scoring bf16, unet bf16" in (
        banner
    )
    assert banner.startswith("TINY TEST MODELS")
    fields = manager.compute_summary().report_fields()
    assert fields == {
        "device": "cpu",
        "weights_dtype": "fp32",
        "precision": MEASURED,
        "precision_source": "measured",
    }
    assert manager.precision("dense") == "bf16"  # read from the file, not measured
    assert manager.known_precisions(stored=False) == {"dense": "bf16"}
    assert calibrator.measured == []


def test_what_ran_wins_over_an_older_stored_choice(tmp_path, monkeypatch):
    calibrator = stored_calibrator(tmp_path / "precision.json", MEASURED, monkeypatch)
    manager = ModelManager(profile="tiny", device="cpu", calibrator=calibrator)
    assert manager.precision("decoder") == "fp32"
    # measured again since (another machine's load, an int8 switch): the file says bf16 now
    stored_calibrator(tmp_path / "precision.json", {**MEASURED, "decoder": "bf16"}, monkeypatch)
    assert manager.known_precisions()["decoder"] == "fp32"
    assert manager.known_precisions()["dense"] == "bf16"


def test_a_named_dtype_is_reported_for_every_workload_without_asking():
    calibrator = FixedCalibrator("fp32")
    manager = ModelManager(profile="tiny", device="cpu", dtype="bf16", calibrator=calibrator)
    assert manager.known_precisions() == {name: "bf16" for name in sorted(workloads())}
    summary = manager.compute_summary()
    assert summary.report_fields()["precision_source"] == "dtype setting"
    assert "weights bf16 · compute bf16 (set)" in manager.banner()
    assert summary.short_text() == "tiny test models · cpu · bf16 (set)"
    assert calibrator.asked == []


def test_before_anything_ran_the_banner_says_when_it_is_measured():
    manager = manager_measuring("bf16")
    assert manager.banner().endswith(
        "cpu · weights fp32 · compute precision measured per workload on first use"
    )
    assert manager.precision("unet") == "bf16"
    assert manager.banner().endswith("compute unet bf16 (others measured on first use)")
    assert manager.calibrator.asked == ["unet"]


def test_the_selftest_report_names_device_and_precision(tiny_manager):
    from ovpaint.selftest import runtime_info

    info = runtime_info(tiny_manager)  # the self-test's models compute in fp32, as set
    assert info["device"] == "cpu"
    assert info["precision"] == {name: "fp32" for name in sorted(workloads())}
    assert info["precision_source"] == "dtype setting"


def test_the_status_text_is_short_when_every_workload_was_measured_alike(tmp_path, monkeypatch):
    alike = dict.fromkeys(MEASURED, "bf16")
    calibrator = stored_calibrator(tmp_path / "precision.json", alike, monkeypatch)
    manager = ModelManager(profile="tiny", device="cpu", calibrator=calibrator)
    assert (
        manager.compute_summary().short_text() == "tiny test models · cpu · bf16 for every workload"
    )
    assert "compute decoder bf16, dense bf16, scoring bf16, unet bf16" in manager.banner()
    mixed = ModelManager(profile="tiny", device="cpu", calibrator=calibrator)
    stored_calibrator(tmp_path / "precision.json", {"dense": "bf16"}, monkeypatch)
    assert mixed.compute_summary().short_text() == "tiny test models · cpu · dense bf16"
