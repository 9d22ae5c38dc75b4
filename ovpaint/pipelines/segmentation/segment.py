"""The one segmentation entry point every front-end calls (CLI, batch, benchmark, app).

Methods are the records of :mod:`ovpaint.pipelines.segmentation.methods`; settings are the
nested sections of :mod:`ovpaint.pipelines.segmentation.settings`, parsed (and refused when
unknown) before any model loads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.limits import float_in
from ovpaint.core.prompt import ClassQuery, parse_prompt
from ovpaint.models.protocols import Models
from ovpaint.pipelines.result import SegmentationResult
from ovpaint.pipelines.segmentation.methods import DEFAULT_METHOD, METHODS, Method, get_method
from ovpaint.pipelines.segmentation.settings import SegmentSettings, parse_settings
from ovpaint.pipelines.session import ImageSession


def check_models(method: str | Method, manager: Models) -> None:
    """ModelUnavailable (with how to get it) when a model ``method`` needs is missing."""
    method = method if isinstance(method, Method) else get_method(method)
    for role in method.roles:
        manager.check_available(role)


MAX_ASPECT = 100  # the dense pass needs the short side ≥ one ViT patch at ≤ 2048 px long
DEFAULT_WORKING_MEGAPIXELS = 24


def check_shape(height: int, width: int) -> None:
    """Refuse what no method can segment: sides that differ more than ``MAX_ASPECT``:1
    (a 20000×1 strip leaves less than one patch for the vision transformer)."""
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise BadInput(
            f"The image is {width}×{height} px; segmentation needs the long side at most "
            f"{MAX_ASPECT} times the short one. Crop it into parts first."
        )


def working_pixels(manager: Models) -> int:
    """The most pixels a segmentation works on (the user's setting 'max_segment_megapixels');
    a larger image is segmented at this size and its labels scaled up (see :func:`segment`)."""
    store = getattr(manager, "settings", None)
    value = store.get("max_segment_megapixels") if store is not None else None
    value = DEFAULT_WORKING_MEGAPIXELS if value is None else value
    return int(float_in(value, "max_segment_megapixels", 1, 1000) * 1_000_000)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 from gray, RGB or RGBA uint8 arrays; anything else is refused clearly."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise BadInput(f"Expected an 8-bit image, got {image.dtype}; load it with load_image.")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadInput(f"Expected an RGB image, got an array of shape {image.shape}.")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise BadInput("The image is empty.")
    check_shape(image.shape[0], image.shape[1])
    return np.ascontiguousarray(image)


def segment(
    image: np.ndarray,
    prompt: str | list[ClassQuery],
    *,
    method: str | None = None,
    manager: Models,
    session: ImageSession | None = None,
    settings: Mapping[str, Any] | SegmentSettings | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SegmentationResult:
    """Segment the classes of ``prompt`` in ``image`` (H×W×3 uint8 RGB) with ``method`` (the
    default method when None).

    Pass the image's :class:`ImageSession` to reuse its caches (window features, the SAM2
    embedding) across queries; a session of another image is replaced by a fresh one.
    """
    chosen = get_method(method)
    parsed = parse_settings(settings)
    queries = parse_prompt(prompt) if isinstance(prompt, str) or prompt is None else list(prompt)
    if not queries:
        raise BadInput("The prompt has no class names. Example: 'sky, dog'.")
    check_models(chosen, manager)
    height, width = np.shape(image)[:2]
    check_shape(height, width)
    limit = working_pixels(manager)
    if height * width > limit:
        return _segment_scaled(
            image, queries, chosen, manager, parsed, limit, progress=progress, cancel=cancel
        )
    t0 = time.perf_counter()
    if (
        session is None
        or session.image.shape != np.shape(image)
        or (session.image is not image and not np.array_equal(session.image, image))
    ):
        session = ImageSession(as_rgb(image))
    if cancel:
        cancel.check()
    result = chosen.run(session, queries, manager, parsed, progress=progress, cancel=cancel)
    result.timings.setdefault("total", time.perf_counter() - t0)
    if manager.is_tiny:
        note = "Tiny test models (random weights): the result is meaningless."
        if note not in result.messages:
            result.messages.append(note)
    return result


def _segment_scaled(
    image: np.ndarray,
    queries: list[ClassQuery],
    method: Method,
    manager: Models,
    settings: SegmentSettings,
    limit: int,
    *,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> SegmentationResult:
    """Segment a copy scaled down to ``limit`` pixels and scale its labels back up (nearest):
    memory grows with the working size, not the photo (a 225 MP PNG took 8 GB). The models
    see at most 2048 px of the long side anyway, so only the label edges get coarser."""
    import cv2

    t0 = time.perf_counter()
    height, width = np.shape(image)[:2]
    scale = (limit / (height * width)) ** 0.5
    small_w, small_h = max(1, int(width * scale)), max(1, int(height * scale))
    small = cv2.resize(as_rgb(image), (small_w, small_h), interpolation=cv2.INTER_AREA)
    result = segment(
        small,
        queries,
        method=method.name,
        manager=manager,
        settings=settings,
        progress=progress,
        cancel=cancel,
    )
    rows = (np.arange(height) * small_h // height).astype(np.intp)
    cols = (np.arange(width) * small_w // width).astype(np.intp)
    result.labels = result.labels[rows[:, None], cols[None, :]]
    result.scores = None  # they stay at the working size; nothing full-size needs them
    result.extras["working_size"] = (small_w, small_h)
    result.timings["total"] = time.perf_counter() - t0
    result.messages.insert(
        0,
        f"The image ({width}×{height}, {height * width / 1e6:.0f} MP) was segmented at "
        f"{small_w}×{small_h} ({limit / 1e6:.0f} MP, setting 'max_segment_megapixels') and "
        "the labels scaled up, to bound memory; the class scores were left out.",
    )
    return result


def segment_fn(
    method: str | None, manager: Models, settings: Mapping[str, Any] | None = None
) -> Callable[[np.ndarray, list[ClassQuery]], SegmentationResult]:
    """``segment`` with the method, models and settings fixed: what batch and benchmark run
    per image (each call makes its own session)."""

    get_method(method)  # an unknown method or setting is refused here, before the first image
    parsed = parse_settings(settings)

    def fn(rgb: np.ndarray, queries: list[ClassQuery]) -> SegmentationResult:
        return segment(rgb, queries, method=method, manager=manager, settings=parsed)

    return fn


def model_ids(manager: Models | None, method: str | None = None) -> dict[str, str]:
    """The models ``method`` loads (none for a method that is not registered, e.g. an injected
    segmenter), for a run's report; says when they are the tiny ones."""
    if manager is None:
        return {}
    known = METHODS.get(method or DEFAULT_METHOD)
    out = {}
    for role in known.roles if known else ():
        try:
            out[role] = manager.model_id(role)
        except Exception:  # noqa: BLE001 - a description must not fail a run
            continue
    if manager.is_tiny:
        out["profile"] = "tiny (random weights: results are meaningless)"
    return out
