"""Measured compute precision: each workload runs in the precision that was fastest on this
machine, timed on it, not inferred from CPU flags.

Why: the same flags (AVX512-BF16) come with bf16 matrix products 2.4× faster than fp32 on one
CPU and 0.6× on another, so a rule on flags makes the product slower than plain fp32 there.

A :class:`Workload` is one registered record: a name, a title and a ``probe(device,
precision)`` that builds the workload's real shapes (e.g. the CLIP ViT blocks of the dense
pass, SAM2's prompt decoder, one UNet down block at 64×64 latents) and returns a callable
doing one unit of it, through the product's own kernel, in that precision. The probe lives
beside that kernel and is named here as ``"module:function"`` (imported only when measured,
as the manager names its loaders), so a new workload is one :func:`register_workload` record
in the table at the end of this module, and every command sees every workload.

:class:`Calibrator` times every candidate precision of a workload alternately (so a load change
on a shared machine hits all of them), keeps the lower precision only when it is at least
``MARGIN`` faster, and stores the result as JSON in the cache folder, keyed by the machine
signature (CPU model, core count, torch version, thread count; the GPU for CUDA). A changed
signature, a new candidate set or a corrupt file means a new measurement, never a crash.
Flags only decide which candidates are worth timing (bf16 is not timed on an x86 CPU without
bf16 instructions).

The whole calibration (probes' construction and timing) is bounded by ``BUDGET_S``: each
workload's timing ends at its share of the budget, a round that would not fit is not started,
and rounds stop as soon as the choice is settled (it would stand if any candidate's time moved
by ``DOUBT``). What is not in the bound is importing the code the probes run (open_clip,
diffusers, sam2: ``Workload.code``), which a pipeline has done before it uses a workload; it is
timed apart (``MachineCalibration.load_seconds``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ovpaint.core.jobs import CancelToken, Progress

log = logging.getLogger(__name__)

# bumped whenever a probe changes: times stored for other probes are measured again
SCHEMA = 2
FILE_NAME = "precision-calibration.json"
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# a precision's rank: lower ranks are more exact; a higher rank must win by MARGIN over the best
# lower one to be chosen
RANK = {"fp32": 0, "fp16": 1, "bf16": 1, "int8": 2}
MARGIN = 1.10
# a choice is settled when it would stand with the margin this much stricter or looser: the
# best of two runs still varies by up to ~15 % on a shared 2-core machine; a first run alone
# carries one-off costs (first calls were up to 50 % slower on a 2-core AMD EPYC)
DOUBT, FIRST_RUN_DOUBT = 1.25, 1.6
BUDGET_S = 3.0  # all workloads together, probes' construction included (imports apart)
# rounds run even over the budget while the choice is not settled, and rounds at most
MIN_ROUNDS, MAX_ROUNDS = 2, 7
MAX_FILE_BYTES = 256_000
MAX_MACHINES = 16  # signatures kept in the file (thread counts, torch versions, devices)
MAX_SECONDS = 600.0  # a stored time above this is not a measurement of these probes
CLOCK = time.perf_counter  # what a Calibrator times with unless given a clock

Probe = Callable[[torch.device, str], Callable[[], Any]]


@dataclass(frozen=True)
class Workload:
    """One workload whose precision is measured.

    ``probe(device, precision)`` builds the workload's real shapes in ``precision`` (weight
    conversion included, untimed) and returns a callable doing one unit of work; given as the
    function or as ``"module:function"``. ``int8``:
    int8 is a candidate on a CPU (when the ``int8_vit`` setting allows it). ``share``: its
    part of the time budget. ``role``: the model whose storage precision this workload
    decides on a GPU (``clip``, ``sam2``, ``inpaint``), or ``""``. ``code``: the modules its
    probe runs (imported before the timing starts, outside the budget). ``gpu_follows``: on
    a GPU this workload computes in the weights' precision, which workload ``gpu_follows``
    decides: it is not measured there, and its choice is that workload's."""

    name: str
    title: str
    probe: Probe | str
    int8: bool = False
    share: float = 1.0
    role: str = ""
    code: tuple[str, ...] = ()
    gpu_follows: str = ""

    def probe_function(self) -> Probe:
        if not isinstance(self.probe, str):
            return self.probe
        import importlib

        module, _, attr = self.probe.partition(":")
        return getattr(importlib.import_module(module), attr)

    def load_code(self) -> None:
        """Import the probe and what it runs (outside the timing budget)."""
        import importlib

        for module in self.code:
            importlib.import_module(module)
        self.probe_function()


_WORKLOADS: dict[str, Workload] = {}
_REGISTRY_LOCK = threading.Lock()
# one measurement at a time in a process: two at once would spoil each other's timings
_MEASURE_LOCK = threading.Lock()


def register_workload(workload: Workload) -> Workload:
    """Register (or replace, on a module reload) a workload; returns it."""
    if workload.name in PRECISIONS or not workload.name.replace("-", "").isalnum():
        raise ValueError(f"bad workload name {workload.name!r}")
    with _REGISTRY_LOCK:
        _WORKLOADS[workload.name] = workload
    return workload


def workloads() -> dict[str, Workload]:
    with _REGISTRY_LOCK:
        return dict(_WORKLOADS)


def get_workload(name: str) -> Workload:
    found = workloads().get(name)
    if found is None:
        raise KeyError(f"no workload {name!r} is registered (its module was not imported)")
    return found


# --------------------------------------------------------------------------- the machine
@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            text = fh.read(200_000)
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()[:200]
    except OSError:
        pass
    return (platform.processor() or platform.machine() or "unknown")[:200]


def core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_signature(device: torch.device) -> dict[str, Any]:
    """What a calibration is valid for: a change of any of these measures again."""
    sig: dict[str, Any] = {
        "device": device.type,
        "cpu": cpu_model(),
        "cores": core_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        sig["gpu"] = torch.cuda.get_device_name(index)
        sig["capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
        sig["cuda"] = torch.version.cuda
    return sig


def signature_key(signature: dict[str, Any]) -> str:
    text = json.dumps(signature, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def candidates(workload: Workload, device: torch.device, allow_int8: bool) -> tuple[str, ...]:
    """The precisions worth timing for a workload on a device (fp32 first, the reference)."""
    from ovpaint.models.device import cpu_has_fast_bf16, cpu_is_x86

    if device.type == "cpu":
        out = ["fp32"]
        if cpu_has_fast_bf16() or not cpu_is_x86():  # an x86 CPU without bf16 emulates it
            out.append("bf16")
        if allow_int8 and workload.int8:
            out.append("int8")
        return tuple(out)
    if device.type == "cuda":
        out = ["fp32", "fp16"]
        if torch.cuda.is_bf16_supported(including_emulation=False):
            out.append("bf16")
        return tuple(out)
    return ("fp32",)  # MPS and others: the storage precision the manager chose


# --------------------------------------------------------------------------- deciding
def choose(times: dict[str, float], margin: float = MARGIN) -> str:
    """The precision to use from measured times: starting at fp32, a less exact precision is
    taken only when it is at least ``margin`` faster than the one chosen so far (at equal
    rank, the faster one)."""
    if "fp32" not in times:
        raise ValueError("fp32 must be among the timed precisions")
    chosen = "fp32"
    for rank in sorted({RANK[p] for p in times if p != "fp32"}):
        best = min((p for p in times if RANK[p] == rank), key=lambda p: times[p])
        if times[best] * margin <= times[chosen]:
            chosen = best
    return chosen


def settled(times: dict[str, float], margin: float = MARGIN, doubt: float = DOUBT) -> bool:
    """Whether the choice from ``times`` would stand if the times compared moved by a factor
    ``doubt`` either way (the margin ``doubt`` times stricter or looser): more rounds could
    only confirm it."""
    return choose(times, margin * doubt) == choose(times, margin / doubt)


def ratio_text(ratios: dict[str, float]) -> str:
    """``{"bf16": 1.9}`` as "bf16 1.90×" (speeds relative to fp32), "" for none."""
    return ", ".join(f"{p} {r:.2f}×" for p, r in ratios.items())


@dataclass
class WorkloadResult:
    name: str
    choice: str
    times: dict[str, float]  # best seconds of one probe call per precision
    candidates: tuple[str, ...]

    def ratios(self) -> dict[str, float]:
        """Speed of each precision relative to fp32 (>1 = faster)."""
        base = self.times.get("fp32")
        if not base:
            return {}
        return {p: base / t for p, t in self.times.items() if p != "fp32" and t > 0}

    def describe(self) -> str:
        parts = ratio_text(self.ratios())
        return f"{self.choice} ({parts} fp32)" if parts else f"{self.choice} (nothing else to time)"

    def as_json(self) -> dict:
        return {
            "choice": self.choice,
            "times": dict(self.times),  # unrounded: the stored choice is checked against them
            "candidates": list(self.candidates),
        }


@dataclass
class MachineCalibration:
    signature: dict[str, Any]
    results: dict[str, WorkloadResult] = field(default_factory=dict)
    seconds: float = 0.0  # time the last measurement took, probes' construction included
    measured_at: float = 0.0
    load_seconds: float = 0.0  # importing the probes' code before it (not stored)

    def as_json(self) -> dict:
        return {
            "signature": self.signature,
            "seconds": round(self.seconds, 3),
            "measured_at": self.measured_at,
            "workloads": {name: r.as_json() for name, r in sorted(self.results.items())},
        }


# --------------------------------------------------------------------------- reading
def _is_time(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_SECONDS
    )


def _parse_result(name: str, data: Any) -> WorkloadResult | None:
    """A stored workload result, or None when any field is out of range."""
    if not isinstance(data, dict) or not isinstance(name, str) or len(name) > 64:
        return None
    times, cands, choice = data.get("times"), data.get("candidates"), data.get("choice")
    if not isinstance(times, dict) or not isinstance(cands, list) or not 1 <= len(cands) <= 4:
        return None
    if not all(isinstance(p, str) and p in PRECISIONS for p in cands) or len(set(cands)) != len(
        cands
    ):
        return None
    if len(cands) == 1 and not times and choice == cands[0]:  # a lone candidate is not timed
        return WorkloadResult(name, choice, {}, tuple(cands))
    if set(times) != set(cands) or not all(_is_time(times[p]) for p in cands):
        return None
    if "fp32" not in times or choice not in cands or choice != choose(times):
        return None
    return WorkloadResult(name, choice, {p: float(times[p]) for p in cands}, tuple(cands))


def _parse_machine(data: Any) -> MachineCalibration | None:
    if not isinstance(data, dict) or not isinstance(data.get("signature"), dict):
        return None
    seconds, when = data.get("seconds", 0.0), data.get("measured_at", 0.0)
    if not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_SECONDS:
        return None
    if not isinstance(when, (int, float)) or not 0 <= when < 1e11:
        return None
    results = {}
    raw = data.get("workloads")
    if not isinstance(raw, dict) or len(raw) > 64:
        return None
    for name, item in raw.items():
        result = _parse_result(name, item)
        if result is not None:  # one bad entry is measured again; the others are kept
            results[name] = result
    return MachineCalibration(data["signature"], results, float(seconds), float(when))


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when missing, unreadable or over the cap (logged)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("precision calibration %s unreadable (%s); measuring again", path, exc)
        return None
    if len(raw) > MAX_FILE_BYTES:
        log.warning("precision calibration %s is over %d bytes; ignored", path, MAX_FILE_BYTES)
        return None
    return raw


def _parse_file(raw: bytes | None, path: Path) -> dict[str, MachineCalibration]:
    if raw is None:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        log.warning("precision calibration %s is corrupt; measuring again", path)
        return {}
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return {}
    machines = data.get("machines")
    if not isinstance(machines, dict):
        return {}
    out = {}
    for key, item in list(machines.items())[:MAX_MACHINES]:
        parsed = _parse_machine(item)
        if isinstance(key, str) and parsed is not None and signature_key(parsed.signature) == key:
            out[key] = parsed
    return out


def read_file(path: Path) -> dict[str, MachineCalibration]:
    """The stored calibrations by signature key; {} for a missing, oversized or corrupt file
    (it is then measured again and rewritten)."""
    return _parse_file(_read_bytes(path), path)


_READS: dict[Path, tuple[bytes, dict[str, MachineCalibration]]] = {}
_READS_LOCK = threading.Lock()


def read_file_cached(path: Path) -> dict[str, MachineCalibration]:
    """:func:`read_file`, parsed again only when the file's bytes changed: every pipeline stage
    asks for its precision, and that costs a read of a few kB, not a parse and a check of
    every field. The calibrations returned are shared: do not change them."""
    raw = _read_bytes(path)
    if raw is None:
        return {}
    with _READS_LOCK:
        hit = _READS.get(path)
        if hit is not None and hit[0] == raw:
            return dict(hit[1])
    machines = _parse_file(raw, path)
    with _READS_LOCK:
        if len(_READS) >= 8:
            _READS.clear()
        _READS[path] = (raw, machines)
    return dict(machines)


def write_file(path: Path, machines: dict[str, MachineCalibration]) -> None:
    from ovpaint.core.fileio import atomic_write_text

    newest = sorted(machines.items(), key=lambda kv: kv[1].measured_at)[-MAX_MACHINES:]
    data = {"schema": SCHEMA, "machines": {key: m.as_json() for key, m in newest}}
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


# --------------------------------------------------------------------------- measuring
def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_candidates(
    runs: dict[str, Callable[[], Any]],
    budget_s: float,
    *,
    device: torch.device | None = None,
    clock: Callable[[], float] = time.perf_counter,
    cancel: CancelToken | None = None,
    settle: bool = True,
) -> dict[str, float]:
    """Best time per candidate: rounds in which every candidate runs once (the order rotates)
    until the choice is :func:`settled` (unless ``settle`` is False): after one round with
    ``FIRST_RUN_DOUBT``, after more with ``DOUBT``. Unsettled, at least ``MIN_ROUNDS`` run,
    and more while the next round, costed at the best times so far, fits in ``budget_s``.
    The fastest run, not the median: a first run's one-off costs (weight copies, kernel
    set-up) and other programs only ever add time, so the minimum is the closest to what the
    candidate costs, and no run is spent on a separate warm-up."""
    device = device or torch.device("cpu")
    names = list(runs)
    start = clock()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(MAX_ROUNDS):
        if round_index:
            best = {name: min(values) for name, values in samples.items()}
            doubt = FIRST_RUN_DOUBT if round_index == 1 else DOUBT
            if settle and "fp32" in best and settled(best, doubt=doubt):
                break
            if round_index >= MIN_ROUNDS and clock() - start + sum(best.values()) > budget_s:
                break
        if cancel:
            cancel.check()
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = clock()
            runs[name]()
            _synchronize(device)
            samples[name].append(max(clock() - t0, 1e-9))
    return {name: min(values) for name, values in samples.items()}


def measure_workload(
    workload: Workload,
    device: torch.device,
    precisions: Sequence[str],
    budget_s: float,
    *,
    clock: Callable[[], float] = time.perf_counter,
    cancel: CancelToken | None = None,
) -> WorkloadResult:
    """Build the workload's probe in each precision and time them; the probes' construction
    is part of ``budget_s``."""
    if len(precisions) == 1:  # nothing to compare: not timed
        return WorkloadResult(workload.name, precisions[0], {}, tuple(precisions))
    started = clock()
    runs = {}
    probe = workload.probe_function()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for precision in precisions:
            runs[precision] = probe(device, precision)
    left = budget_s - (clock() - started)
    times = time_candidates(runs, left, device=device, clock=clock, cancel=cancel)
    return WorkloadResult(workload.name, choose(times), times, tuple(precisions))


class Calibrator:
    """Measured precision choices of this machine, stored in ``path`` (the cache folder's
    ``precision-calibration.json`` by default).

    ``announce`` is called with one line before a measurement starts (the CLI prints it on
    stderr); ``allow_int8`` adds int8 to the candidates of the workloads that support it."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        allow_int8: bool = False,
        budget_s: float = BUDGET_S,
        announce: Callable[[str], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._path = path
        self.allow_int8 = allow_int8
        self.budget_s = budget_s
        self.announce = announce
        self.clock = clock or CLOCK
        self._announced = False

    @property
    def path(self) -> Path:
        if self._path is None:
            from ovpaint.core.paths import cache_dir

            self._path = cache_dir() / FILE_NAME
        return self._path

    def stored(self, device: torch.device) -> MachineCalibration | None:
        """This machine's stored calibration (without measuring), or None."""
        return read_file_cached(self.path).get(signature_key(machine_signature(device)))

    @staticmethod
    def measured_as(workload: Workload, device: torch.device) -> Workload:
        """The workload whose measurement decides ``workload`` on ``device``: itself, or on a
        GPU the one it follows."""
        if device.type != "cpu" and workload.gpu_follows:
            return get_workload(workload.gpu_follows)
        return workload

    def valid_result(
        self, calibration: MachineCalibration | None, workload: Workload, device: torch.device
    ) -> WorkloadResult | None:
        if calibration is None:
            return None
        workload = self.measured_as(workload, device)
        result = calibration.results.get(workload.name)
        wanted = candidates(workload, device, self.allow_int8)
        if result is None or not set(wanted) <= set(result.candidates):
            return None
        if result.candidates == wanted:
            return result
        # fewer candidates than were timed (int8 switched off): choose among their times
        times = {p: result.times[p] for p in wanted if p in result.times}
        if set(times) != set(wanted):
            return None
        return WorkloadResult(workload.name, choose(times), times, wanted)

    def choice(
        self,
        name: str,
        device: torch.device,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        """The precision for workload ``name`` on ``device``, measured first if needed."""
        workload = self.measured_as(get_workload(name), device)
        found = self.valid_result(self.stored(device), workload, device)
        if found is None:
            calibration = self.calibrate(device, [workload.name], progress=progress, cancel=cancel)
            found = calibration.results[workload.name]
        return found.choice

    def calibrate(
        self,
        device: torch.device,
        names: Iterable[str] | None = None,
        *,
        force: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> MachineCalibration:
        """Measure the named workloads (every registered one by default) that have no valid
        stored result, or all of them with ``force``; store and return the calibration.

        The budget is shared by every workload measured on this device in proportion to its
        ``share``: a workload has its share, less any time the ones before it took over
        theirs (it must be done by the start plus the shares up to it); measuring some
        workloads alone takes their shares only."""
        registered = workloads()
        chosen: list[Workload] = []
        for name in names if names is not None else sorted(registered):
            workload = self.measured_as(registered[name], device)
            if workload not in chosen:
                chosen.append(workload)
        total_share = (
            sum(w.share for w in registered.values() if self.measured_as(w, device) is w) or 1.0
        )
        with _MEASURE_LOCK:
            machines = read_file(self.path)  # fresh objects: the cached ones are not changed
            signature = machine_signature(device)
            key = signature_key(signature)
            calibration = machines.get(key) or MachineCalibration(signature)
            todo = [w for w in chosen if force or self.valid_result(calibration, w, device) is None]
            if not todo:
                return calibration
            self._say(len(todo))
            if progress:
                progress.stage("loading the code to measure", total=len(todo))
            loading = self.clock()
            for index, workload in enumerate(todo):
                workload.load_code()
                if progress:
                    progress.update(index + 1)
            calibration.load_seconds = self.clock() - loading
            if progress:
                progress.stage("measuring the fastest precision (once)", total=len(todo))
            started = self.clock()
            share_done = 0.0
            for index, workload in enumerate(todo):
                if cancel:
                    cancel.check()
                share_done += workload.share
                deadline = started + self.budget_s * share_done / total_share
                own = self.budget_s * workload.share / total_share
                calibration.results[workload.name] = measure_workload(
                    workload,
                    device,
                    candidates(workload, device, self.allow_int8),
                    min(own, deadline - self.clock()),
                    clock=self.clock,
                    cancel=cancel,
                )
                if progress:
                    progress.update(index + 1, message=workload.title)
            calibration.seconds = self.clock() - started
            calibration.measured_at = time.time()
            machines[key] = calibration
            try:
                write_file(self.path, machines)
            except Exception as exc:  # noqa: BLE001 - a read-only cache costs a re-measure only
                log.warning("could not store the precision calibration in %s: %s", self.path, exc)
            return calibration

    def _say(self, count: int) -> None:
        if self.announce is not None and not self._announced:
            self._announced = True
            what = "workload" if count == 1 else f"{count} workloads"
            self.announce(
                f"measuring which precision is fastest on this machine ({what}; once, "
                f"a few seconds)…"
            )


# --------------------------------------------------------------------------- the workloads
register_workload(
    Workload(
        "dense",
        "CLIP ViT-B/16 block, dense pass (6 windows × 197 tokens)",
        "ovpaint.pipelines.segmentation.dense:dense_probe",
        int8=True,
        role="clip",
        code=("open_clip.transformer",),
    )
)
register_workload(
    Workload(
        "scoring",
        "CLIP ViT-B/16 block, mask scoring (a 512 px crop, 1025 tokens)",
        "ovpaint.pipelines.segmentation.proposals.scoring:scoring_probe",
        int8=True,
        code=("open_clip.transformer",),
        gpu_follows="dense",  # on a GPU, scoring runs in the CLIP weights' precision
    )
)
register_workload(
    Workload(
        "decoder",
        "SAM2 prompt decoder, one call of point prompts",
        "ovpaint.pipelines.segmentation.refine:decoder_probe",
        code=("sam2.modeling.sam.mask_decoder",),
    )
)
register_workload(
    Workload(
        "unet",
        "SD UNet, first down block at 64×64 latents, one CFG half",
        "ovpaint.models.inpaint_loader:unet_block_probe",
        share=1.5,
        role="inpaint",
        code=("diffusers.models.unets.unet_2d_blocks",),
    )
)
