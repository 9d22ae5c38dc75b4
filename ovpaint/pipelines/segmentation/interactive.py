"""Click correction (METHOD.md §4): positive/negative clicks and a box on one mask of an image.

Each click runs SAM2's prompt decoder once on the image embedding cached in the
:class:`~ovpaint.pipelines.session.ImageSession` (computed once per image and model, shared with
every other mask and method), with the previous low-resolution logits as ``mask_input``.

A session can start from any mask (a text query's result, a refined map, a loaded PNG): the mask
becomes prompts — positive points at the interior maxima of its distance transform and the mask
itself as low-resolution logits — so the first click edits it instead of starting over.

Edits are local: a click changes only the region connected to it. A negative click removes the
part of the mask that SAM2 drops *and* that contains the click; a positive click adds the part
SAM2 adds that is connected to the click. Without this, SAM2 may redraw the whole mask on any
click (and a negative click on the background could delete a distant object). The first click
on an empty mask takes SAM2's mask as it is.

Bad input: a click outside the image is rejected with :class:`BadInput` (clamping would silently
move a click onto the border, possibly onto another object); a box is clipped to the image and
rejected if nothing of it is left or it has zero area. Any number of clicks is accepted; the
decoder sees the latest ``max_points`` of them (plus the box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.core.limits import MAX_CLICKS, MAX_COORD
from ovpaint.core.masks import component_distance
from ovpaint.models.protocols import Models
from ovpaint.pipelines.session import ImageSession, sam2_autocast

MASK_LOGIT = 10.0  # magnitude of the logits a binary mask is turned into (SAM2 clamps at 32)


@dataclass
class ClickState:
    """One step of the undo stack: what the decoder saw and what the user sees."""

    points: np.ndarray  # K×2 float32, x, y in image pixels
    labels: np.ndarray  # K int32: 1 positive, 0 negative
    box: tuple[float, float, float, float] | None
    logits: np.ndarray | None  # 1×h×w low-res logits fed back as mask_input
    mask: np.ndarray  # H×W bool
    score: float | None = None
    messages: list[str] = field(default_factory=list)


def interior_points(mask: np.ndarray, max_points: int = 3, min_area: int = 16) -> np.ndarray:
    """Positive prompt points inside ``mask``: the distance-transform maximum of each of its
    largest connected components (a centroid can fall outside a non-convex region)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros((0, 2), np.float32)
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    order = sorted(range(1, count), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    points = []
    for i in order[:max_points]:
        if stats[i, cv2.CC_STAT_AREA] < min_area and points:
            break
        x0, y0, dist = component_distance(comp, stats, i)
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        points.append((float(x0 + x), float(y0 + y)))
    return np.asarray(points, np.float32).reshape(-1, 2)


def mask_to_logits(mask: np.ndarray, size: int) -> np.ndarray:
    """A binary mask as SAM2 low-res logits (1×size×size): SAM2 sees the image stretched to a
    square, so the mask is resized the same way; ±MASK_LOGIT with a soft edge."""
    frac = cv2.resize(np.asarray(mask, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return (MASK_LOGIT * (2.0 * frac - 1.0)).astype(np.float32)[None]


def _component_at(region: np.ndarray, x: int, y: int) -> np.ndarray:
    if not region[y, x]:
        return np.zeros_like(region)
    _, comp = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    return comp == comp[y, x]


class ClickSession:
    """Interactive correction of one mask of one image, with an exact undo."""

    def __init__(
        self,
        session: ImageSession,
        manager: Models,
        initial_mask: np.ndarray | None = None,
        initial_logits: np.ndarray | None = None,
        *,
        max_points: int = 32,
        local_edits: bool = True,
    ) -> None:
        self.session = session
        self.manager = manager
        self.max_points = max(1, int(max_points))
        self.local_edits = local_edits
        h, w = session.height, session.width
        if initial_mask is None:
            mask = np.zeros((h, w), bool)
            points = np.zeros((0, 2), np.float32)
        else:
            mask = np.asarray(initial_mask).astype(bool)
            if mask.shape != (h, w):
                raise BadInput(
                    f"The starting mask is {mask.shape[1]}×{mask.shape[0]}; the image is {w}×{h}."
                )
            points = interior_points(mask)
        logits = None
        if initial_logits is not None:
            logits = np.asarray(initial_logits, np.float32)
            logits = logits.reshape((1, *logits.shape[-2:]))
        elif mask.any():
            logits = mask_to_logits(mask, self._low_res_size())
        self._stack: list[ClickState] = [
            ClickState(points, np.ones(len(points), np.int32), None, logits, mask.copy())
        ]

    # ---------------------------------------------------------------- state
    @property
    def state(self) -> ClickState:
        return self._stack[-1]

    @property
    def mask(self) -> np.ndarray:
        return self.state.mask.copy()

    @property
    def points(self) -> np.ndarray:
        return self.state.points.copy()

    @property
    def labels(self) -> np.ndarray:
        return self.state.labels.copy()

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        return self.state.box

    @property
    def can_undo(self) -> bool:
        return len(self._stack) > 1

    def undo(self) -> np.ndarray:
        """Back to the mask before the last click or box, exactly."""
        if not self.can_undo:
            raise BadInput("Nothing to undo.")
        self._stack.pop()
        return self.mask

    def reset(self) -> np.ndarray:
        del self._stack[1:]
        return self.mask

    # ---------------------------------------------------------------- edits
    def add_point(self, x: float, y: float, positive: bool = True) -> np.ndarray:
        px, py = self._check_point(x, y)
        st = self.state
        points = np.concatenate([st.points, np.array([[px, py]], np.float32)])
        labels = np.concatenate([st.labels, np.array([1 if positive else 0], np.int32)])
        return self._run(points, labels, st.box, click=(px, py, positive))

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        box = self._check_box(x0, y0, x1, y1)
        st = self.state
        return self._run(st.points, st.labels, box, click=None)

    # ---------------------------------------------------------------- internals
    def _low_res_size(self) -> int:
        with self.manager.use("sam2") as sam:
            return sam.image_size // 4

    def _check_point(self, x: float, y: float) -> tuple[float, float]:
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"A click needs two numbers, got ({x!r}, {y!r}).") from exc
        w, h = self.session.width, self.session.height
        if not (math.isfinite(x) and math.isfinite(y)) or not (0 <= x < w and 0 <= y < h):
            raise BadInput(f"The click ({x:g}, {y:g}) is outside the {w}×{h} image.")
        return x, y

    def _check_box(self, x0, y0, x1, y1) -> tuple[float, float, float, float]:
        try:
            vals = [float(v) for v in (x0, y0, x1, y1)]
        except (TypeError, ValueError) as exc:
            raise BadInput("A box needs four numbers: x0, y0, x1, y1.") from exc
        if not all(math.isfinite(v) for v in vals):
            raise BadInput("A box needs four finite numbers.")
        x0, y0, x1, y1 = vals
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        w, h = self.session.width, self.session.height
        cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            raise BadInput(f"The box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has zero area.")
        if cx1 - cx0 <= 0 or cy1 - cy0 <= 0:
            raise BadInput(
                f"The box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}×{h} image."
            )
        return cx0, cy0, cx1, cy1

    def _run(self, points: np.ndarray, labels: np.ndarray, box, click) -> np.ndarray:
        import torch

        st = self.state
        sent_pts, sent_lbl = points[-self.max_points :], labels[-self.max_points :]
        with self.manager.use("sam2") as sam:
            predictor = self.session.sam2_predictor(sam)
            first = st.logits is None
            with torch.inference_mode(), sam2_autocast(sam.device):
                masks, scores, low = predictor.predict(
                    point_coords=sent_pts if len(sent_pts) else None,
                    point_labels=sent_lbl if len(sent_pts) else None,
                    box=np.asarray(box, np.float32) if box is not None else None,
                    mask_input=st.logits,
                    multimask_output=first,
                )
        best = int(np.argmax(scores)) if first else 0
        proposed = masks[best] > 0.0
        new_logits = low[best : best + 1].astype(np.float32)
        mask = self._combine(st.mask, proposed, click, box)
        if self.local_edits and not np.array_equal(mask, proposed):
            # the decoder's next mask_input must describe the mask the user sees
            target = mask_to_logits(mask, new_logits.shape[-1])
            disagree = (new_logits > 0) != (target > 0)
            new_logits = np.where(disagree, target, new_logits).astype(np.float32)
        self._stack.append(
            ClickState(points.copy(), labels.copy(), box, new_logits, mask, float(scores[best]))
        )
        return self.mask

    def _combine(self, previous: np.ndarray, proposed: np.ndarray, click, box) -> np.ndarray:
        if not self.local_edits:
            return proposed
        if click is None:
            mask = proposed
        else:
            x, y, positive = click
            ix, iy = min(int(x), previous.shape[1] - 1), min(int(y), previous.shape[0] - 1)
            if positive and not previous.any():
                mask = proposed  # the first click of a new mask takes SAM2's mask
            elif positive:
                union = previous | proposed
                mask = previous | (proposed & _component_at(union, ix, iy))
            else:
                removed = previous & ~proposed
                mask = previous & ~_component_at(removed, ix, iy)
        if box is not None:  # a box bounds the object for as long as it is set
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            inside = np.zeros_like(mask)
            inside[y0:y1, x0:x1] = True
            mask = mask & inside
        return mask


# ------------------------------------------------------------------ batch use (CLI, scripts)

Click = tuple[float, float, bool]


def _coordinates(parts: list[str]) -> tuple[float, ...] | None:
    """The numbers of a point or box, or None when one is not a finite number within
    ±MAX_COORD (NaN, ``inf`` and ``1e30`` included)."""
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        return None
    if not all(math.isfinite(v) and abs(v) <= MAX_COORD for v in values):
        return None
    return values


def parse_points(text: str | None) -> list[Click]:
    """``"x,y,+;x,y,-"`` → [(x, y, positive), ...]. The sign may be omitted (positive).
    At most :data:`MAX_CLICKS` points; coordinates are finite numbers within ±MAX_COORD."""
    if text is None or not text.strip():
        return []
    chunks = [chunk.strip() for chunk in text.split(";") if chunk.strip()]
    if len(chunks) > MAX_CLICKS:
        raise BadInput(f"{len(chunks)} clicks given; at most {MAX_CLICKS} are allowed.")
    clicks: list[Click] = []
    for chunk in chunks:
        parts = [p.strip() for p in chunk.split(",")]
        sign = "+"
        if len(parts) == 3:
            sign = parts.pop()
        if len(parts) != 2 or sign not in ("+", "-", "1", "0", "pos", "neg"):
            raise BadInput(
                f"Cannot read the point '{chunk[:40]}': write x,y,+ or x,y,- "
                "(points separated by ';')."
            )
        xy = _coordinates(parts)
        if xy is None:
            raise BadInput(
                f"Cannot read the point '{chunk[:40]}': x and y must be numbers "
                f"from -{MAX_COORD} to {MAX_COORD}."
            )
        clicks.append((xy[0], xy[1], sign in ("+", "1", "pos")))
    return clicks


def parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    """``"x0,y0,x1,y1"`` → a tuple (checked against the image when used)."""
    if text is None or not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise BadInput(f"Cannot read the box '{text[:60]}': it needs four numbers, x0,y0,x1,y1.")
    values = _coordinates(parts)
    if values is None:
        raise BadInput(
            f"Cannot read the box '{text[:60]}': write x0,y0,x1,y1, numbers "
            f"from -{MAX_COORD} to {MAX_COORD}."
        )
    return values  # type: ignore[return-value]


def check_prompts(width: int, height: int, clicks: list[Click], box=None) -> None:
    """The bad-input checks of :class:`ClickSession`, without a model (fail before loading)."""
    for x, y, _ in clicks:
        if not (math.isfinite(x) and math.isfinite(y)) or not (0 <= x < width and 0 <= y < height):
            raise BadInput(f"The click ({x:g}, {y:g}) is outside the {width}×{height} image.")
    if box is not None:
        x0, y0, x1, y1 = box
        if x1 == x0 or y1 == y0:
            raise BadInput(f"The box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has zero area.")
        if min(x0, x1) >= width or min(y0, y1) >= height or max(x0, x1) <= 0 or max(y0, y1) <= 0:
            raise BadInput(
                f"The box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {width}×{height} image."
            )


def run_clicks(
    session: ImageSession,
    manager: Models,
    clicks: list[Click],
    box: tuple[float, float, float, float] | None = None,
    initial_mask: np.ndarray | None = None,
) -> np.ndarray:
    """The mask after a box (first) and the clicks, in order, from ``initial_mask`` or none."""
    check_prompts(session.width, session.height, clicks, box)
    editor = ClickSession(session, manager, initial_mask=initial_mask)
    if box is not None:
        editor.set_box(*box)
    for x, y, positive in clicks:
        editor.add_point(x, y, positive)
    return editor.mask


def refine_class_with_clicks(
    result,
    session: ImageSession,
    manager: Models,
    clicks: list[Click],
    box=None,
    class_name: str | None = None,
):
    """A copy of ``result`` whose class ``class_name`` (or its only class) is corrected with
    clicks. Pixels the corrected mask drops become background; pixels it adds take the class
    (over any other class)."""
    from ovpaint.pipelines.result import SegmentationResult

    names = result.classes[1:]
    if class_name is None:
        if len(names) != 1:
            raise BadInput(
                "Points and boxes correct one class: name it with --class "
                f"(one of: {', '.join(names)})."
            )
        class_name = names[0]
    matches = [i for i, n in enumerate(result.classes) if i > 0 and n.lower() == class_name.lower()]
    if not matches:
        raise BadInput(
            f"--class '{class_name}' is not in the prompt's classes: {', '.join(names)}."
        )
    index = matches[0]
    before = result.labels == index
    after = run_clicks(session, manager, clicks, box, initial_mask=before)
    labels = result.labels.copy()
    labels[before & ~after] = 0
    labels[after] = index
    messages = list(result.messages) + [
        f"'{result.classes[index]}' corrected with {len(clicks)} click(s)"
        + (" and a box" if box is not None else "")
        + "."
    ]
    return SegmentationResult(
        labels,
        list(result.classes),
        result.scores,
        result.method,
        dict(result.timings),
        messages,
        dict(result.extras),
    )


def segment_from_clicks(
    session: ImageSession, manager, clicks: list[Click], box=None, name: str = "object"
):
    """A one-class result from clicks and/or a box alone (no text prompt)."""
    from ovpaint.pipelines.result import BACKGROUND, SegmentationResult

    if not clicks and box is None:
        raise BadInput("Give a prompt, or points (--points) or a box (--box) to segment.")
    if clicks and box is None and not any(positive for _, _, positive in clicks):
        raise BadInput("Clicks alone need at least one positive point (x,y,+) or a box.")
    mask = run_clicks(session, manager, clicks, box)
    return SegmentationResult(mask.astype(np.int32), [BACKGROUND, name], None, "clicks")
