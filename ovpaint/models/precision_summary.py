"""What the product says about compute precision: the stored measurement of this machine as
rows (the models list and the model assistant show the same ones), and a summary of the device
and each workload's precision for status bars, banners and reports.

Reading only: nothing here measures. On a CPU the weights stay fp32 while each workload
computes in the precision measured fastest (``models/calibration.py``), so "cpu / fp32" would
misreport a run in bf16; the summary names the precision per workload instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ovpaint.models.calibration import machine_signature, ratio_text, workloads

FIRST_USE = "measured per workload on first use"
AS_COMPUTED = "as computed"  # weights stored in their workload's precision (a GPU with auto)


@dataclass(frozen=True)
class PrecisionRow:
    """One workload's stored measurement; ``choice`` is None while it was not measured here
    (or only with other candidates, which is measured again on use)."""

    name: str
    title: str
    choice: str | None = None
    seconds: dict[str, float] | None = None
    speed_vs_fp32: dict[str, float] | None = None

    def speed_text(self) -> str:
        """ "bf16 1.90×" (speeds relative to fp32), "" when nothing else was timed."""
        return ratio_text(self.speed_vs_fp32 or {})

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "choice": self.choice,
            "seconds": self.seconds,
            "speed_vs_fp32": self.speed_vs_fp32,
        }


@dataclass(frozen=True)
class StoredPrecision:
    """This machine's stored measurement, one row per registered workload."""

    signature: dict[str, Any]
    measured_in_s: float | None  # None: nothing stored for this machine
    rows: tuple[PrecisionRow, ...]

    def where(self) -> str:
        """The machine the measurement is for, in words (the GPU, else the CPU and threads)."""
        sig = self.signature
        return sig.get("gpu") or f"{sig['cpu']}, {sig['cores']} cores, {sig['threads']} threads"

    def choices(self) -> dict[str, str]:
        return {row.name: row.choice for row in self.rows if row.choice is not None}


def stored_precision(calibrator, device: torch.device, calibration=None) -> StoredPrecision:
    """The rows of ``calibration`` (default: what ``calibrator`` stored for this machine) for
    every registered workload, as ``calibrator`` would use them (its int8 choice included).
    Reads the calibration file when no ``calibration`` is given; never measures."""
    if calibration is None:
        calibration = calibrator.stored(device)
    rows = []
    for name, workload in sorted(workloads().items()):
        result = calibrator.valid_result(calibration, workload, device)
        rows.append(
            PrecisionRow(name, workload.title)
            if result is None
            else PrecisionRow(
                name, workload.title, result.choice, dict(result.times), result.ratios()
            )
        )
    seconds = round(calibration.seconds, 2) if calibration is not None else None
    return StoredPrecision(machine_signature(device), seconds, tuple(rows))


@dataclass(frozen=True)
class ComputeSummary:
    """Where and in which precision the models compute: the device, the weights' storage
    dtype and each workload's compute precision as far as it is known. ``forced`` is the
    ``--dtype``/dtype setting when it decides every workload (then ``precisions`` holds it for
    each); else ``precisions`` holds the workloads measured so far."""

    device: str  # "cpu", "mps" or the GPU's name
    weights: str  # the weights' dtype ("fp32" on a CPU), or AS_COMPUTED
    precisions: dict[str, str] = field(default_factory=dict)
    forced: str | None = None
    note: str = ""  # why a present GPU is not used, when it is not
    tiny: bool = False

    def with_precisions(self, precisions: dict[str, str]) -> ComputeSummary:
        """This summary with ``precisions`` (e.g. what just ran) replacing the known ones."""
        if self.forced is not None:
            return self
        merged = {**self.precisions, **precisions}
        return ComputeSummary(self.device, self.weights, merged, None, self.note, self.tiny)

    def precision_text(self, *, short: bool = False) -> str:
        """ "dense bf16, decoder fp32 (others measured on first use)", "fp32 (set)"; ``short``
        leaves out the workloads not measured yet (a status bar's room)."""
        if self.forced is not None:
            return f"{self.forced} (set)"
        if not self.precisions:
            return f"precision {FIRST_USE}"
        known = ", ".join(f"{name} {p}" for name, p in sorted(self.precisions.items()))
        rest = set(workloads()) - set(self.precisions)
        return known + (" (others measured on first use)" if rest and not short else "")

    def device_text(self) -> str:
        """The device in plain words, with the reason a present GPU is not used."""
        return self.device + (f" — {self.note}" if self.note else "")

    def text(self) -> str:
        """One line: "cpu · weights fp32 · compute dense bf16, decoder fp32"."""
        parts = []
        if self.tiny:
            parts.append("TINY TEST MODELS (random weights: results are meaningless)")
        parts.append(f"{self.device} · weights {self.weights} · compute {self.precision_text()}")
        return " · ".join(parts) + (f" — {self.note}" if self.note else "")

    def short_text(self) -> str:
        """For a status bar: "cpu · dense bf16, decoder fp32" (what is known; at 1200 px the
        job bar shares the line), or "cpu · bf16 for every workload" when all were measured
        alike (the rest is in :meth:`text`, the tooltip)."""
        found = set(self.precisions.values())
        if self.forced is None and len(found) == 1 and set(workloads()) <= set(self.precisions):
            precision = f"{found.pop()} for every workload"
        else:
            precision = self.precision_text(short=True)
        return ("tiny test models · " if self.tiny else "") + f"{self.device} · {precision}"

    def report_fields(self) -> dict[str, Any]:
        """What a report records: ``device`` (plain words), the weights' dtype and
        ``precision`` ({workload: precision}) with where it came from."""
        return {
            "device": self.device_text(),
            "weights_dtype": self.weights,
            "precision": dict(sorted(self.precisions.items())),
            "precision_source": "dtype setting" if self.forced is not None else "measured",
        }
