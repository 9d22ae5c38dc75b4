"""What an inpainting engine provides: a session holding its models, yielding a filler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ovpaint.core.jobs import Progress


class Filler(Protocol):
    """``fill`` calls ``on_unit(unit)`` after each unit of work; a diffusion filler passes
    its latents too, ``on_unit(step, latents)``, for a preview of the unfinished result."""

    units: int  # progress units per fill call
    unit_name: str  # "step", "layer", ...
    uses_seed: bool  # whether seeds (and so variants) change the result

    def fill(
        self, rgb: np.ndarray, hole: np.ndarray, seed: int, on_unit: Callable[[int], None]
    ) -> np.ndarray: ...


@dataclass
class SessionContext:
    """What an engine's session gets: the models, the settings and prompts, and where to say
    things (messages for the user, progress for retries)."""

    manager: Any
    settings: Any  # InpaintSettings, validated
    prompt: str
    negative: str
    messages: list[str] = field(default_factory=list)
    progress: Progress | None = None
