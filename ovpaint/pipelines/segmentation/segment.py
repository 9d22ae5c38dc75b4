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
