"""A cheap look at an unfinished diffusion result: latents to RGB by one linear map, no VAE.

Decoding with the VAE costs seconds per call on a CPU; a 4×3 matrix applied to the 64×64
latents costs microseconds and shows colours and layout well enough to cancel a bad run early.
The matrix is the linear fit of Stable Diffusion 1.x/2.x latents to RGB published by Keturn
(2022, "latent space to RGB"), used by many front-ends for the same purpose.
"""

from __future__ import annotations

import numpy as np

# rows: latent channels 0..3; columns: R, G, B (output in about [-1, 1])
SD_LATENT_RGB = np.array(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ],
    dtype=np.float32,
)

PREVIEW_EVERY_STEPS = 2


def latents_to_rgb(latents) -> np.ndarray:
    """One latent image (C×h×w, torch or numpy; a leading batch dim is dropped) as h×w×3
    uint8. Four channels use :data:`SD_LATENT_RGB`; other latent spaces show their first
    three channels, each stretched to its range."""
    array = latents.detach().float().cpu().numpy() if hasattr(latents, "detach") else latents
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4:
        array = array[0]
    channels = array.shape[0]
    hwc = np.moveaxis(array, 0, -1)
    if channels == SD_LATENT_RGB.shape[0]:
        rgb = (hwc @ SD_LATENT_RGB + 1.0) * 127.5
    else:
        part = hwc[..., : min(3, channels)]
        if part.shape[-1] < 3:
            part = np.repeat(part[..., :1], 3, axis=-1)
        low, high = part.min(axis=(0, 1)), part.max(axis=(0, 1))
        rgb = (part - low) / np.maximum(high - low, 1e-6) * 255.0
    return np.clip(np.nan_to_num(rgb), 0, 255).astype(np.uint8)
