"""SAM2 loading: a real SAM 2.1 checkpoint (``weights_only``, strict keys) or the tiny model.

The tiny profile is SAM 2.1 hiera-t built from its own yaml, with random weights and a 256 px
input instead of 1024 px, so ``set_image`` takes a fraction of a second on a CPU.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ovpaint.core.errors import ModelUnavailable
from ovpaint.models.fixes import unavailable
from ovpaint.models.protocols import Derived


class _DropSam2Info(logging.Filter):
    """sam2 logs through the root logger at INFO on every ``set_image`` ("Computing image
    embeddings…"); those records are dropped, its warnings and everyone else's records kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or record.name != "root":
            return True
        return f"{os.sep}sam2{os.sep}" not in record.pathname


_SAM2_INFO_FILTER = _DropSam2Info()


def quiet_sam2() -> None:
    """Silence sam2's noise users see on every run: its per-call INFO lines and the
    ``torch.jit.script`` FutureWarning its input transforms raise (idempotent). Our own
    warnings and logs are untouched: the warning filter matches that message in torch's
    module only, the log filter sam2's own root-logger records below WARNING."""
    warnings.filterwarnings(
        "ignore",
        message=r"`torch\.jit\.script` is deprecated",
        category=FutureWarning,
        module=r"torch\.jit\._script",
    )
    root = logging.getLogger()
    if _SAM2_INFO_FILTER not in root.filters:
        root.addFilter(_SAM2_INFO_FILTER)


quiet_sam2()

TINY_SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
TINY_SAM2_IMAGE_SIZE = 256


def _size_overrides(image_size: int) -> list[str]:
    feat = image_size // 16
    return [
        f"++model.image_size={image_size}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{feat},{feat}]",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{feat},{feat}]",
    ]


@dataclass
class Sam2Bundle:
    model: Any  # sam2.modeling.sam2_base.SAM2Base
    model_id: str
    derived: Derived = field(default_factory=Derived, init=False, repr=False, compare=False)

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to_device(self, device: torch.device) -> None:
        self.model.to(device)

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


def _build(config: str, image_size: int | None, device: torch.device) -> Any:
    from sam2.build_sam import build_sam2

    overrides = _size_overrides(image_size) if image_size else []
    return build_sam2(config, None, device=str(device), hydra_overrides_extra=overrides)


def build_tiny(seed: int = 0, device: torch.device | str = "cpu") -> Sam2Bundle:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build(TINY_SAM2_CONFIG, TINY_SAM2_IMAGE_SIZE, torch.device("cpu"))
    return Sam2Bundle(model.to(device).eval(), "tiny-sam2")


def load_real(spec, weights: Path, device: torch.device, dtype: torch.dtype) -> Sam2Bundle:
    model = _build(spec.arch["config"], None, torch.device("cpu"))
    try:
        checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        detail = str(exc).replace("$", "$$")
        raise unavailable(
            f"The SAM2 checkpoint {weights} could not be read ({detail}). It may be corrupt: "
            "$verify.",
            spec.id,
        ) from exc
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ModelUnavailable(f"{weights} is not a SAM2 checkpoint.")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelUnavailable(
            f"{weights} does not match {spec.title}: {len(missing)} missing and "
            f"{len(unexpected)} unexpected weights. Is it the right SAM2 size?"
        )
    # SAM2 keeps fp32 weights; pipelines run it under autocast on GPUs.
    return Sam2Bundle(model.to(device).eval(), spec.id)
