"""Per-image caches shared by every method and every click on one image.

Image features do not depend on the text: the dense CLIP window features, the SAM2 image
embedding and anything else expensive are computed once per image and model and kept here,
so a new query costs a matrix product and a click costs one decoder call.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from ovpaint.pipelines import sam2_adapter

if TYPE_CHECKING:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from ovpaint.models.sam2_loader import Sam2Bundle


class ImageSession:
    """Holds one RGB image (H×W×3 uint8) and the caches computed from it."""

    def __init__(self, image: np.ndarray) -> None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("ImageSession expects an H×W×3 uint8 RGB image")
        self.image = np.ascontiguousarray(image)
        self._cache: dict[Any, Any] = {}
        self._lock = threading.RLock()

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]

    def get(self, key: Any) -> Any:
        return self._cache.get(key)

    def put(self, key: Any, value: Any) -> Any:
        with self._lock:
            self._cache[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def sam2_predictor(self, sam_bundle: Sam2Bundle) -> SAM2ImagePredictor:
        """A SAM2ImagePredictor with this image set, computed once per image and SAM2 model.

        Call it inside ``manager.use("sam2")`` so the model is placed and locked.
        """
        key = ("sam2_predictor", sam_bundle.model_id)
        with self._lock:
            predictor = self._cache.get(key)
            if predictor is None:
                import torch

                predictor = sam2_adapter.new_predictor(sam_bundle)
                # a writable copy: the image may be a read-only view (torch warns on those)
                image = self.image if self.image.flags.writeable else self.image.copy()
                with torch.inference_mode():
                    predictor.set_image(image)
                self._cache[key] = predictor
            return predictor


def sam2_autocast(device: Any):
    """The precision SAM2's decoder runs in: bf16 autocast on CUDA (as sam2's own examples),
    the model's dtype elsewhere."""
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
