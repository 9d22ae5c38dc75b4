"""Weight files in the real formats for tests, from the tiny architectures (no download):
a safetensors CLIP, a zip-format SAM2 checkpoint and a minimal diffusers inpainting folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ovpaint.models.registry import get_spec


def tiny_clip_spec():
    """clip-vit-b16 with the tiny profile's architecture (what a file made below matches)."""
    from ovpaint.models.clip_loader import TINY_CLIP_CONFIG

    return dataclasses.replace(get_spec("clip-vit-b16"), arch={"openai_config": TINY_CLIP_CONFIG})


def tiny_sam2_spec():
    from ovpaint.models.sam2_loader import TINY_SAM2_CONFIG, TINY_SAM2_IMAGE_SIZE

    arch = {"config": TINY_SAM2_CONFIG, "image_size": TINY_SAM2_IMAGE_SIZE}
    return dataclasses.replace(get_spec("sam2.1-tiny"), arch=arch)


def tiny_clip_file(path: Path) -> Path:
    from safetensors.torch import save_file

    from ovpaint.models.clip_loader import build_tiny

    state = {k: v.detach().contiguous().clone() for k, v in build_tiny().model.state_dict().items()}
    save_file(state, str(path))
    return path


def tiny_sam2_file(path: Path) -> Path:
    """A SAM2 hiera-t checkpoint in fp16 (78 MB instead of 156; shapes are what count)."""
    from ovpaint.models.sam2_loader import build_tiny

    state = {k: v.half() for k, v in build_tiny().model.state_dict().items()}
    torch.save({"model": state}, path)
    return path


def inpaint_folder(path: Path, unet_channels: int = 9) -> Path:
    """The layout and headers of a diffusers inpainting folder (small tensors)."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionInpaintPipeline"})
    )
    parts = {
        "unet": {"conv_in.weight": torch.zeros(4, unet_channels, 3, 3)},
        "vae": {"encoder.conv_in.weight": torch.zeros(4, 3, 3, 3)},
        "text_encoder": {"text_model.embeddings.token_embedding.weight": torch.zeros(8, 4)},
    }
    for name, tensors in parts.items():
        (path / name).mkdir(exist_ok=True)
        save_file(
            tensors,
            str(
                path
                / name
                / (
                    "model.safetensors"
                    if name == "text_encoder"
                    else "diffusion_pytorch_model.safetensors"
                )
            ),
        )
        (path / name / "config.json").write_text(json.dumps({"in_channels": unet_channels}))
    return path


def tiny_lama_spec():
    from dataclasses import asdict

    from ovpaint.models.lama_loader import TINY_CONFIG

    return dataclasses.replace(get_spec("big-lama"), arch={"config": asdict(TINY_CONFIG)})


def tiny_lama_file(path: Path) -> Path:
    from safetensors.torch import save_file

    from ovpaint.models.lama_loader import build_tiny

    state = build_tiny().generator.state_dict()
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(path))
    return path
