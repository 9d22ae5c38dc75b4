"""The real paths that cannot run offline on a CPU: real weights (``real_weights``, given
OVPAINT_REAL_MODEL_DIR) and a CUDA device (``gpu``). Skipped here, saying why."""

from __future__ import annotations

import numpy as np
import pytest

from ovpaint.pipelines.segmentation.methods import METHODS
from ovpaint.pipelines.segmentation.segment import segment


def _sky_and_grass(h: int = 240, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2] = (110, 160, 230)
    image[h // 2 :] = (60, 140, 50)
    return np.clip(image.astype(int) + rng.integers(-10, 11, image.shape), 0, 255).astype(np.uint8)


@pytest.mark.real_weights
@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_real_models_find_sky_above_grass(real_manager, method):
    image = _sky_and_grass()
    result = segment(image, "sky, grass", method=method, manager=real_manager)
    sky, grass = result.labels == 1, result.labels == 2
    h = image.shape[0]
    assert sky[: h // 2].mean() > 0.6 and grass[h // 2 :].mean() > 0.6, result.summary()


@pytest.mark.gpu
def test_tiny_models_run_on_cuda_and_agree_with_the_cpu():
    import torch

    from ovpaint.models.manager import ModelManager

    image = _sky_and_grass(96, 128)
    settings = {"dense": {"compute_dtype": "fp32"}, "refine": {"compute_dtype": "fp32"}}
    cpu = ModelManager(profile="tiny", device="cpu")
    gpu = ModelManager(profile="tiny", device="cuda", dtype="fp32")
    for method in ("dense", "refined"):
        a = segment(image, "sky, grass", method=method, manager=cpu, settings=settings)
        b = segment(image, "sky, grass", method=method, manager=gpu, settings=settings)
        assert (a.labels == b.labels).mean() > 0.99, method
    with gpu.use("clip") as clip:
        assert clip.device.type == "cuda"
    gpu.offload()
    assert gpu.get("clip").device.type == "cpu"
    assert torch.cuda.memory_allocated() < 2**30
