"""SAM2 loading: a real SAM 2.1 checkpoint (``weights_only``, strict keys) or the tiny model.

The tiny profile is SAM 2.1 hiera-t built from its own yaml, with random weights and a 256 px
input instead of 1024 px, so ``set_image`` takes a fraction of a second on a CPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ovpaint.core.errors import ModelUnavailable
from ovpaint.models.fixes import unavailable

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

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    _templates: dict = field(default_factory=dict, repr=False)

    def predictor(self, **kwargs) -> Any:
        """A fresh SAM2ImagePredictor whose feature sizes follow the model's input size.

        sam2 builds its input transforms with ``torch.jit.script``, which takes a second and
        holds the GIL in ~150 ms stretches (the app's UI thread would stall on every new
        image). The transforms are stateless, so one template per settings is built once and
        each predictor is a shallow copy of it with its own, empty image state.
        """
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        key = tuple(sorted(kwargs.items()))
        template = self._templates.get(key)
        if template is None:
            template = SAM2ImagePredictor(self.model, **kwargs)
            fix_feature_sizes(template, self.image_size)
            self._templates[key] = template
        predictor = copy.copy(template)
        predictor.reset_predictor()
        return predictor

    def to_device(self, device: torch.device) -> None:
        self.model.to(device)

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


def fix_feature_sizes(predictor: Any, image_size: int) -> None:
    """sam2 hard-codes the 1024 px backbone sizes; derive them from the real input size."""
    base = image_size // 4
    predictor._bb_feat_sizes = [(base, base), (base // 2, base // 2), (base // 4, base // 4)]


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
