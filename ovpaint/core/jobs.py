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
class ProgressEvent:
    stage: str
    done: float
    total: float | None
    message: str = ""
    elapsed: float = 0.0

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


Listener = Callable[[ProgressEvent], None]


@dataclass
class Progress:
    """Progress of one job, split into named stages. Listeners receive every update."""

    listeners: list[Listener] = field(default_factory=list)
    _stage_start: float = field(default_factory=time.perf_counter)
    _stage: str = ""
    _total: float | None = None

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def stage(self, name: str, total: float | None = None, message: str = "") -> None:
        self._stage = name
        self._total = total
        self._stage_start = time.perf_counter()
        self._emit(ProgressEvent(name, 0.0, total, message, 0.0))

    def update(self, done: float, total: float | None = None, message: str = "") -> None:
        """Report ``done`` units; ``total`` defaults to the one the stage was started with."""
        if total is not None:
            self._total = total
        self._emit(
            ProgressEvent(
                self._stage, done, self._total, message, time.perf_counter() - self._stage_start
            )
        )

    def _emit(self, event: ProgressEvent) -> None:
        for listener in list(self.listeners):
            listener(event)
