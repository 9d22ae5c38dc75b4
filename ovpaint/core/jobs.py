"""Progress reporting and cooperative cancellation, shared by the CLI, batch and the app.

A job is a plain function ``run(inputs, *, progress, cancel) -> result``. ``progress`` is a
:class:`Progress` (Qt-free, napari style: a widget or tqdm renders it) and ``cancel`` a
:class:`CancelToken` checked at safe points.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ovpaint.core.errors import Cancelled


class CancelToken:
    """Thread-safe cancel flag. ``check()`` raises :class:`Cancelled` once set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class Preview:
    """A look at an unfinished result: ``rgb`` (h×w×3 uint8, any size) to be shown stretched
    over ``box`` (x0, y0, x1, y1 in image pixels), through ``alpha`` (h×w uint8) when given."""

    rgb: Any
    box: tuple[int, int, int, int]
    alpha: Any = None


@dataclass(frozen=True)
class ProgressEvent:
    """One update: ``done`` of ``total`` ``unit`` in the named ``stage`` ("windows 5/9"),
    ``elapsed`` seconds since the stage began, and optionally a :class:`Preview`."""

    stage: str
    done: float
    total: float | None
    message: str = ""
    elapsed: float = 0.0
    unit: str = ""
    preview: Preview | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    @property
    def rate(self) -> float | None:
        """Units per second since the stage began."""
        return self.done / self.elapsed if self.elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if not rate or self.total is None:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def describe(self) -> str:
        """The line a person reads: "SAM2 points 12/60", "step 14/50 · 0:41 left"."""
        text = self.stage
        if self.total:
            count = f"{_count(self.done)}/{_count(self.total)}"
            text = f"{text} {count}" if text else count
            if self.unit:
                text += f" {self.unit}"
            eta = self.eta
            if eta is not None and self.elapsed >= ETA_AFTER_S and 0 < self.done < self.total:
                text += f" · {clock(eta)} left"
        return text


ETA_AFTER_S = 1.0  # a time left from less than a second of a stage would jump around


def _count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def clock(seconds: float) -> str:
    """0:41, 12:05, 1:02:03."""
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


Listener = Callable[[ProgressEvent], None]


@dataclass
class Progress:
    """Progress of one job, split into named stages. Listeners receive every update."""

    listeners: list[Listener] = field(default_factory=list)
    _stage_start: float = field(default_factory=time.perf_counter)
    _stage: str = ""
    _total: float | None = None
    _unit: str = ""

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def stage(
        self, name: str, total: float | None = None, message: str = "", unit: str = ""
    ) -> None:
        """Begin a stage of ``total`` ``unit`` (e.g. ``stage("windows", 9)``, ``stage("text",
        4, unit="names")``); None = no count known."""
        self._stage = name
        self._total = total
        self._unit = unit
        self._stage_start = time.perf_counter()
        self._emit(ProgressEvent(name, 0.0, total, message, 0.0, unit))

    def update(
        self,
        done: float,
        total: float | None = None,
        message: str = "",
        preview: Preview | None = None,
    ) -> None:
        """Report ``done`` units; ``total`` defaults to the one the stage was started with."""
        if total is not None:
            self._total = total
        self._emit(
            ProgressEvent(
                self._stage,
                done,
                self._total,
                message,
                time.perf_counter() - self._stage_start,
                self._unit,
                preview,
            )
        )

    def _emit(self, event: ProgressEvent) -> None:
        for listener in list(self.listeners):
            listener(event)
