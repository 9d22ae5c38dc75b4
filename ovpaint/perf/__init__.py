"""``ovpaint perf``: the project's benchmark.

Stages time the real code paths with full-size architectures and random weights (speed does
not depend on weight values), or the tiny profile with ``--models tiny``. Each stage module in
``STAGE_MODULES`` exposes ``stages(ctx) -> list[Stage]``, built from small named functions
per part (a bench object holds the inputs they share, built on first use); a new row is one
``Stage`` in one of them, a new group one module in ``STAGE_MODULES``. A stage may name a
``baseline`` stage; the report then gives the speed-up ratio measured in the same run.

It ships with the product on purpose: ``ovpaint perf`` is how a user (or a bug report)
measures the machine the program actually runs on, which is where speed choices are made.
"""

from __future__ import annotations

import importlib
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovpaint.core.errors import BadInput

STAGE_MODULES = (
    "ovpaint.perf.machine",
    "ovpaint.perf.foundation",
    "ovpaint.perf.dense",
    "ovpaint.perf.proposals",
    "ovpaint.perf.inpaint",
    "ovpaint.perf.lama",
    "ovpaint.perf.batch",
    "ovpaint.perf.ui",
)


@dataclass
class Stage:
    group: str
    name: str
    run: Callable[[], Any]
    repeats: int = 3
    warmup: int = 1
    baseline: str | None = None  # name of the stage this one is compared against
    note: str = ""
    setup: Callable[[], Any] | None = None  # untimed, once before the warm-up
    # timed alternately with its baseline (baseline, stage, baseline, ...) and compared with
    # those baseline runs: load changes on a shared machine then hit both sides alike
    paired: bool = False
    # run() returns the seconds to record (e.g. the longest UI stall it measured inside)
    # instead of being timed itself
    measured: bool = False


@dataclass
class StageResult:
    group: str
    name: str
    median_s: float
    times_s: list[float]
    baseline: str | None = None
    speedup: float | None = None
    note: str = ""
    error: str | None = None
    paired_baseline_s: float | None = None  # median of the baseline runs interleaved with it


@dataclass
class PerfContext:
    """What a stage module needs: the device choice and the profile (real archs or tiny)."""

    device: Any  # torch.device
    dtype: Any  # torch.dtype
    tiny: bool = False
    quick: bool = False  # fewer repeats and smaller inputs (used by the test suite)
    cache: dict = field(default_factory=dict)  # shared between stage modules (built models)
    calibrator: Any = None  # models.calibration.Calibrator: the product's precision choices
    _temp: Any = None

    def repeats(self, n: int) -> int:
        return 1 if self.quick else n

    def product_calibrator(self) -> Any:
        """The calibrator the product uses here (the user's settings decide int8)."""
        if self.calibrator is None:
            from ovpaint.core.settings import Settings
            from ovpaint.models.calibration import Calibrator

            self.calibrator = Calibrator(allow_int8=bool(Settings.load()["int8_vit"]))
        return self.calibrator

    def precision(self, workload: str, **kwargs: Any) -> str:
        """The precision the product chooses for ``workload`` here (measured if it never was,
        or by the ``machine`` stage's fresh calibration earlier in the run)."""
        return self.product_calibrator().choice(workload, self.device, **kwargs)

    def temp_dir(self, name: str) -> Path:
        """A folder for a stage's files, under one temporary folder that :meth:`close`
        removes (every ``ovpaint perf`` run leaves the temp folder as it found it)."""
        if self._temp is None:
            self._temp = tempfile.TemporaryDirectory(prefix="ovpaint-perf-")
        path = Path(self._temp.name) / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None


class FixedModels:
    """The pipelines' ``Models`` with fixed bundles by role, built on first use by the given
    functions, always available; precision as the product chooses it (``ctx.precision``)
    when a context is given."""

    is_tiny = False

    def __init__(self, ctx: PerfContext | None = None, **bundle_of: Callable[[], Any]) -> None:
        self._ctx = ctx
        self._bundle_of = bundle_of

    def check_available(self, role: str) -> None:
        return None

    def precision(self, workload: str, **kwargs: Any) -> str:
        if self._ctx is None:
            raise RuntimeError("FixedModels needs a PerfContext to choose a precision")
        return self._ctx.precision(workload, **kwargs)

    @contextmanager
    def use(self, role: str):
        yield self._bundle_of[role]()

    def get(self, role: str) -> Any:
        return self._bundle_of[role]()

    def model_id(self, role: str) -> str:
        return self._bundle_of[role]().model_id


def product_default(
    ctx: PerfContext, group: str, name: str, workload: str, run_in: Callable[[str], Any], **kw
) -> Stage:
    """The stage of the product's default path: ``run_in(precision)`` with the precision the
    product resolves ``auto`` to for ``workload`` on this machine; its note says which."""
    stage = Stage(group, name, lambda: None, **kw)

    def run() -> Any:
        precision = ctx.precision(workload)
        stage.note = f"measured choice: {precision}" + (f"; {kw['note']}" if kw.get("note") else "")
        return run_in(precision)

    stage.run = run
    return stage


INT8_NOTE = "dynamic int8 ViT blocks (setting int8_vit; off by default)"


def precision_modes(
    ctx: PerfContext,
    group: str,
    workload: str,
    run_in: Callable[[str], Any],
    modes: dict[str, str],
    name_of: Callable[[str], str],
    **kw,
) -> list[Stage]:
    """One stage per precision mode (``modes``: precision → note; named ``name_of(precision)``)
    and then the product default's (``name_of("product default")``), all sharing ``kw``
    (repeats, baseline, pairing): the table shows the product's choice next to the modes it
    chose among."""
    stages = [
        Stage(group, name_of(p), lambda p=p: run_in(p), note=note, **kw)
        for p, note in modes.items()
    ]
    return [
        *stages,
        product_default(ctx, group, name_of("product default"), workload, run_in, **kw),
    ]


def collect(ctx: PerfContext, only: str | None = None) -> list[Stage]:
    stages: list[Stage] = []
    for name in STAGE_MODULES:
        module = importlib.import_module(name)
        stages.extend(module.stages(ctx))
    if only:
        keys = [k.strip().lower() for k in only.split(",") if k.strip()]
        unknown = [
            k for k in keys if not any(k in s.group.lower() or k in s.name.lower() for s in stages)
        ]
        if unknown or not keys:
            names = ", ".join(sorted({s.group for s in stages}))
            raise BadInput(
                f"--only {only!r} matches no stage ({', '.join(unknown) or 'empty'}); "
                f"groups: {names}. See `ovpaint perf --list`."
            )
        groups = {s.group.lower() for s in stages}

        def wanted(s: Stage) -> bool:
            # a word that names a group selects that group ("ui" is not "build tiny CLIP")
            return any(
                s.group.lower() == k if k in groups else k in s.group.lower() + s.name.lower()
                for k in keys
            )

        stages = [
            s
            for s in stages
            if wanted(s) or any(wanted(s2) for s2 in stages if s2.baseline == s.name)
        ]
    return stages


Clock = Callable[[], float]


def time_stage(stage: Stage, clock: Clock = time.perf_counter) -> StageResult:
    try:
        if stage.setup is not None:
            stage.setup()
        for _ in range(stage.warmup):
            stage.run()
        times = []
        for _ in range(max(1, stage.repeats)):
            t0 = clock()
            value = stage.run()
            times.append(float(value) if stage.measured else clock() - t0)
        return StageResult(
            stage.group,
            stage.name,
            statistics.median(times),
            times,
            stage.baseline,
            note=stage.note,
        )
    except Exception as exc:  # noqa: BLE001 - one failing stage must not hide the others
        return StageResult(
            stage.group,
            stage.name,
            float("nan"),
            [],
            stage.baseline,
            note=stage.note,
            error=f"{type(exc).__name__}: {exc}",
        )


def time_paired(stage: Stage, baseline: Stage, clock: Clock = time.perf_counter) -> StageResult:
    """Time ``stage`` alternately with ``baseline``; the result carries both medians."""
    try:
        for part in (baseline, stage):
            if part.setup is not None:
                part.setup()
        for _ in range(stage.warmup):
            stage.run()
        times, base_times = [], []
        for _ in range(max(1, stage.repeats)):
            for part, out in ((baseline, base_times), (stage, times)):
                t0 = clock()
                part.run()
                out.append(clock() - t0)
        result = StageResult(
            stage.group,
            stage.name,
            statistics.median(times),
            times,
            stage.baseline,
            note=stage.note,
        )
        result.paired_baseline_s = statistics.median(base_times)
        return result
    except Exception as exc:  # noqa: BLE001 - one failing stage must not hide the others
        return StageResult(
            stage.group,
            stage.name,
            float("nan"),
            [],
            stage.baseline,
            note=stage.note,
            error=f"{type(exc).__name__}: {exc}",
        )


def run(
    stages: list[Stage],
    on_result: Callable[[StageResult], None] | None = None,
    clock: Clock = time.perf_counter,
) -> list[StageResult]:
    results = []
    by_name: dict[str, StageResult] = {}
    stage_of = {stage.name: stage for stage in stages}
    for stage in stages:
        baseline = stage_of.get(stage.baseline) if stage.paired and stage.baseline else None
        result = time_paired(stage, baseline, clock) if baseline else time_stage(stage, clock)
        by_name[stage.name] = result
        results.append(result)
        if on_result:
            on_result(result)
    for result in results:
        base = by_name.get(result.baseline) if result.baseline else None
        base_s = result.paired_baseline_s or (base.median_s if base else None)
        if base_s and base_s > 0 and result.median_s > 0:
            result.speedup = base_s / result.median_s
    return results


def machine_info(ctx: PerfContext) -> dict:
    import os

    import torch

    info = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(ctx.device),
        "dtype": str(ctx.dtype).replace("torch.", ""),
        "profile": "tiny" if ctx.tiny else "real architectures, random weights",
    }
    if ctx.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(ctx.device)
    return info


def format_table(results: list[StageResult]) -> str:
    rows = [("group", "stage", "median", "speed-up", "note")]
    for r in results:
        median = "error" if r.error else _fmt_seconds(r.median_s)
        speed = f"{r.speedup:.2f}× vs {r.baseline}" if r.speedup else ""
        if r.speedup and r.paired_baseline_s:
            speed += f" (interleaved, baseline {_fmt_seconds(r.paired_baseline_s)})"
        rows.append((r.group, r.name, median, speed, r.error or r.note))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        lines.append(
            "  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    return "\n".join(lines)


def _fmt_seconds(s: float) -> str:
    if s != s:  # nan
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"
