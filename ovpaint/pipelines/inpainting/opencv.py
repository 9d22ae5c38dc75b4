"""The instant model-free fills (OpenCV's Telea fast marching and Navier-Stokes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from ovpaint.pipelines.inpainting.filler import SessionContext

RADIUS_PX = 5
_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class OpenCvFiller:
    units = 1
    unit_name = "region"
    uses_seed = False

    def __init__(self, method: str, radius: int = RADIUS_PX) -> None:
        self.flags = _FLAGS[method]
        self.radius = radius

    def fill(
        self, rgb: np.ndarray, hole: np.ndarray, seed: int, on_unit: Callable[[int], None]
    ) -> np.ndarray:
        filled = cv2.inpaint(
            np.ascontiguousarray(rgb), hole.astype(np.uint8) * 255, self.radius, self.flags
        )
        on_unit(1)
        return filled


def session(method: str):
    @contextmanager
    def open_session(ctx: SessionContext) -> Iterator[OpenCvFiller]:
        yield OpenCvFiller(method)

    return open_session
