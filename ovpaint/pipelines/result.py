"""The result every segmentation method returns, so CLI, batch, eval and app treat them alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BACKGROUND = "background"


@dataclass
class SegmentationResult:
    """``labels[y, x] = i`` means pixel (x, y) belongs to ``classes[i]``; ``classes[0]`` is the
    background (nothing the user asked for)."""

    labels: np.ndarray  # H×W int32
    classes: list[str]  # classes[0] == BACKGROUND
    scores: np.ndarray | None = None  # len(classes)×H×W float32: probabilities or scores
    method: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)  # things the user should know
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int32)
        if self.scores is not None and self.scores.shape[0] != len(self.classes):
            raise ValueError("scores must have one map per class")

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape  # type: ignore[return-value]

    def mask(self, index: int) -> np.ndarray:
        return self.labels == index

    def masks(self) -> dict[str, np.ndarray]:
        """Binary masks of every non-background class, by name (empty masks included)."""
        return {name: self.labels == i for i, name in enumerate(self.classes) if i > 0}

    def areas(self) -> dict[str, int]:
        counts = np.bincount(self.labels.ravel(), minlength=len(self.classes))
        return {name: int(counts[i]) for i, name in enumerate(self.classes) if i > 0}

    def summary(self) -> dict:
        total = int(self.labels.size)
        return {
            "method": self.method,
            "size": [int(self.labels.shape[1]), int(self.labels.shape[0])],
            "classes": [
                {"index": i, "name": name, "pixels": px, "fraction": px / total if total else 0.0}
                for i, (name, px) in enumerate(self.areas().items(), start=1)
            ],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "messages": list(self.messages),
        }
