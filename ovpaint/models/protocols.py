"""What the layers above rely on from the model layer, as structural types.

Pipelines take a :class:`Models` (the :class:`~ovpaint.models.manager.ModelManager`, or a
stand-in such as perf's fixed bundles); the manager holds :class:`Bundle` objects built by a
family's :class:`Loader`. Anything derived from a bundle's model (low-precision weight copies,
text encoders) lives in the bundle's :class:`Derived` cache and is dropped with the bundle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import torch

    from ovpaint.models.registry import ModelSpec

T = TypeVar("T")


class Derived:
    """Values computed once from a bundle's model and kept as long as the bundle."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value for ``key``, made by ``make()`` the first time (outside the lock: making
        may take long; if two threads race, the first value stored wins)."""
        with self._lock:
            if key in self._values:
                return self._values[key]
        value = make()
        with self._lock:
            return self._values.setdefault(key, value)

    def __len__(self) -> int:
        return len(self._values)


class Bundle(Protocol):
    """A loaded model with what it needs to run (tokenizer, transforms, ...)."""

    model_id: str
    derived: Derived

    @property
    def device(self) -> torch.device: ...

    def to_device(self, device: torch.device) -> None: ...

    def nbytes(self) -> int: ...


class Loader(Protocol):
    """Builds a family's bundles: from weights on disk, or the tiny offline model."""

    def load_real(
        self, spec: ModelSpec, weights: Path, device: torch.device, dtype: torch.dtype
    ) -> Bundle: ...

    def build_tiny(self, seed: int = 0) -> Bundle: ...


class Models(Protocol):
    """The models a pipeline runs, by role ("clip", "sam2", "inpaint", ...)."""

    @property
    def is_tiny(self) -> bool: ...

    def use(self, role: str) -> AbstractContextManager[Any]:
        """The bundle of ``role``, placed on the compute device and held for the block."""
        ...

    def get(self, role: str) -> Any:
        """The bundle of ``role``, loaded but neither placed nor held (for its caches)."""
        ...

    def model_id(self, role: str) -> str: ...

    def check_available(self, role: str) -> None:
        """ModelUnavailable, saying how to get it, when ``role``'s model cannot be loaded."""
        ...
