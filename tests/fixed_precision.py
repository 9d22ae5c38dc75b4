"""A calibrator whose answer is injected: what some machine measured (for the wiring tests)."""

from __future__ import annotations


class FixedCalibrator:
    def __init__(self, choice: str) -> None:
        self.choice_of = choice
        self.asked: list[str] = []
        self.allow_int8 = False
        self.announce = None

    def choice(self, workload, device, **kwargs) -> str:
        self.asked.append(workload)
        return self.choice_of

    def stored(self, device):
        return None  # nothing measured on that machine before

    def valid_result(self, calibration, workload, device):
        return None


def manager_measuring(choice: str, **values):
    """A tiny-profile manager on a machine where ``choice`` was measured fastest."""
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    return ModelManager(
        profile="tiny",
        device="cpu",
        settings=Settings(values=values),
        calibrator=FixedCalibrator(choice),
    )


def stored_calibrator(path, choices: dict[str, str], monkeypatch, *, allow_int8: bool = False):
    """A real Calibrator whose file holds a measurement of this machine (the CPU) in which each
    workload of ``choices`` was fastest in its precision (twice as fast as the others). bf16 is
    made a candidate whatever the CPU's flags; any new measurement fails the test
    (``measured`` lists what was asked)."""
    import time

    import torch

    from ovpaint.models import calibration as C
    from ovpaint.models import device as devices

    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)

    class StoredOnly(C.Calibrator):
        def calibrate(self, device, names=None, **kwargs):
            self.measured.append(list(names or []))
            raise AssertionError(f"measured {names} instead of reading the stored choice")

    cpu = torch.device("cpu")
    calibrator = StoredOnly(path, allow_int8=allow_int8)
    calibrator.measured = []
    results = {}
    for name, choice in choices.items():
        candidates = C.candidates(C.get_workload(name), cpu, allow_int8)
        assert choice in candidates, (choice, candidates)
        times = {p: 1.0 if p == choice else 2.0 for p in candidates}
        results[name] = C.WorkloadResult(name, C.choose(times), times, candidates)
    signature = C.machine_signature(cpu)
    stored = C.MachineCalibration(signature, results, 1.5, time.time())
    C.write_file(path, {C.signature_key(signature): stored})
    return calibrator
