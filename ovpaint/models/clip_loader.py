"""CLIP (open_clip) loading: real OpenAI weights from safetensors, or the tiny offline model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ovpaint.models.protocols import Derived

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# A miniature OpenAI-style CLIP: ViT with patch 16, a causal text transformer with the real
# 49,408-token BPE vocabulary and 77-token context. Matches the parity fixture's architecture.
TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "image_resolution": 224,
    "vision_layers": 3,
    "vision_width": 128,
    "vision_patch_size": 16,
    "context_length": 77,
    "vocab_size": 49408,
    "transformer_width": 64,
    "transformer_heads": 1,
    "transformer_layers": 2,
}


@dataclass
class ClipBundle:
    model: Any  # open_clip.model.CLIP
    tokenizer: Any  # open_clip SimpleTokenizer (callable: list[str] -> LongTensor N×77)
    model_id: str
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    derived: Derived = field(default_factory=Derived, init=False, repr=False, compare=False)

    @property
    def patch_size(self) -> int:
        ps = self.model.visual.patch_size
        return int(ps[0] if isinstance(ps, (tuple, list)) else ps)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def to_device(self, device: torch.device) -> None:
        self.model.to(device)

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


def build_clip_from_openai_config(cfg: dict) -> Any:
    """Build an open_clip CLIP from an OpenAI-style config dict (as in the parity fixture)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(
        layers=cfg["vision_layers"],
        width=cfg["vision_width"],
        patch_size=cfg["vision_patch_size"],
        image_size=cfg["image_resolution"],
        head_width=64,
    )
    text = CLIPTextCfg(
        context_length=cfg["context_length"],
        vocab_size=cfg["vocab_size"],
        width=cfg["transformer_width"],
        heads=cfg["transformer_heads"],
        layers=cfg["transformer_layers"],
    )
    return CLIP(cfg["embed_dim"], vision, text, quick_gelu=True)


def tokenizer(context_length: int = 77) -> Any:
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def build_tiny(
    seed: int = 0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> ClipBundle:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_clip_from_openai_config(TINY_CLIP_CONFIG)
    model = model.to(device=device, dtype=dtype).eval()
    return ClipBundle(model, tokenizer(TINY_CLIP_CONFIG["context_length"]), "tiny-clip")


def load_real(spec, weights: Path, device: torch.device, dtype: torch.dtype) -> ClipBundle:
    import open_clip

    if weights.suffix not in (".safetensors",):
        # open_clip would fall back to torch.load; allow only weights_only checkpoints.
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = open_clip.create_model(spec.arch["open_clip_name"], pretrained=None)
        model.load_state_dict(state.get("state_dict", state), strict=True)
    else:
        model = open_clip.create_model(
            spec.arch["open_clip_name"], pretrained=str(weights), weights_only=True
        )
    model = model.to(device=device, dtype=dtype).eval()
    return ClipBundle(model, open_clip.get_tokenizer(spec.arch["open_clip_name"]), spec.id)
