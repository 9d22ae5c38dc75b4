"""Hybrid method (METHOD.md §3.6): "stuff" classes from the dense path, "things" from proposals.

Routing of each class (the first rule that decides wins):

1. A name on the maintained stuff list ``resources/classes/stuff_words.txt`` (COCO-Stuff's stuff
   classes and common synonyms) → stuff. Names are compared lower-cased, with a plural ``s`` /
   ``es`` dropped, and by their head noun ("green grass" → grass, "person in red" → person).
2. A name among COCO's 80 thing classes (the first 80 lines of ``cocostuff171.txt``) → thing.
3. Otherwise the text embedding decides: the class goes to the side (stuff or thing prototypes,
   the same two COCO-Stuff lists) holding its nearest neighbour, i.e. stuff when
   ``max cos(query, stuff) − max cos(query, things) > margin``. Several synonyms: the best one.

Merge rule ("things in front of stuff"): the dense path runs on *all* classes, so an object's
pixels are not absorbed into a stuff class; a pixel whose dense label is a stuff class keeps
it, a pixel the dense path gave to a thing class becomes background; then every pixel covered
by a kept proposal mask takes that thing's label, because objects occlude the surfaces behind
them. Scores: stuff classes keep their dense scores, thing classes their proposal confidences,
background is 1 − the best class score.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.paths import read_list, resource
from ovpaint.core.prompt import ClassQuery
from ovpaint.models.protocols import Models
from ovpaint.pipelines.result import BACKGROUND, SegmentationResult
from ovpaint.pipelines.segmentation.proposals import encode_texts, segment_proposals
from ovpaint.pipelines.segmentation.settings import HybridSettings, ProposalSettings
from ovpaint.pipelines.session import ImageSession

STUFF, THING = "stuff", "thing"
_PREPOSITIONS = re.compile(r"\s+(?:on|in|with|of|near|at|under|behind|by|from|wearing)\s+")


@dataclass(frozen=True)
class Route:
    name: str
    kind: str  # STUFF or THING
    reason: str  # "stuff list", "thing list" or "text embedding (margin ±x.xxx)"


@lru_cache(maxsize=4)
def stuff_words(path: str | None = None) -> frozenset[str]:
    file = Path(path) if path else resource("classes", "stuff_words.txt")
    return frozenset(n.lower() for n in read_list(file))


@lru_cache(maxsize=1)
def coco_prototypes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(stuff names, thing names) of COCO-Stuff-171: ids 0–79 are things, 80–170 stuff."""
    names = []
    for entry in read_list(resource("classes", "cocostuff171.txt")):
        label, _, synonyms = entry.partition(":")
        names.append((synonyms or label).split("|")[0].strip().lower())
    return tuple(names[80:]), tuple(names[:80])


def _forms(word: str) -> list[str]:
    out = [word]
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.append(word[:-2])
    if word.endswith("s") and len(word) > 2:
        out.append(word[:-1])
    return out


def _variants(name: str) -> tuple[list[str], list[str]]:
    """The forms a name is looked up by: (the whole name and its singulars, its head noun and
    its singulars). The head is the last word before a preposition: "person in red" → person,
    "green grass" → grass."""
    name = " ".join(name.lower().split())
    head = _PREPOSITIONS.split(name)[0].split(" ")[-1] if name else name
    return _forms(name), _forms(head)


def route_classes(
    queries: list[ClassQuery],
    *,
    words: frozenset[str] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    margin: float = 0.0,
) -> list[Route]:
    """Stuff or thing for every class (module docstring). ``embed(names) -> N×D`` normalised
    text embeddings; without it, a class on neither list counts as a thing."""
    words = stuff_words() if words is None else words
    stuff_protos, thing_protos = coco_prototypes()
    things = frozenset(thing_protos)
    routes: list[Route | None] = []
    undecided: list[int] = []
    for i, q in enumerate(queries):
        full = [f for name in q.synonyms for f in _variants(name)[0]]
        heads = [f for name in q.synonyms for f in _variants(name)[1]]
        route = None
        for forms, how in ((full, "name"), (heads, "head noun")):
            if any(f in things for f in forms):
                route = Route(q.name, THING, f"thing list ({how})")
            elif any(f in words for f in forms):
                route = Route(q.name, STUFF, f"stuff list ({how})")
            if route:
                break
        routes.append(route)
        if route is None:
            undecided.append(i)
    if undecided and embed is not None:
        protos = embed(list(stuff_protos) + list(thing_protos))
        ps, pt = protos[: len(stuff_protos)], protos[len(stuff_protos) :]
        for i in undecided:
            q = queries[i]
            e = embed(list(q.synonyms))
            diff = float((e @ ps.T).max() - (e @ pt.T).max())
            kind = STUFF if diff > margin else THING
            routes[i] = Route(q.name, kind, f"text embedding (margin {diff:+.3f})")
    return [
        r or Route(queries[i].name, THING, "default (no text model)") for i, r in enumerate(routes)
    ]


def merge_results(
    classes: list[str],
    kinds: list[str],
    dense: SegmentationResult | None,
    things: SegmentationResult | None,
    thing_index: list[int],
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Label map and scores by the merge rule in the module docstring.

    ``classes``/``kinds`` cover the non-background classes in the user's order; ``dense`` was
    run on all of them (same order), ``things`` on the thing classes only, whose result class
    k (≥ 1) is global class ``thing_index[k - 1]``.
    """
    h, w = shape
    n = len(classes) + 1
    labels = np.zeros((h, w), np.int32)
    scores = np.zeros((n, h, w), np.float32)
    if dense is not None:
        stuff_ids = [i + 1 for i, k in enumerate(kinds) if k == STUFF]
        is_stuff = np.isin(dense.labels, stuff_ids)
        labels[is_stuff] = dense.labels[is_stuff]
        if dense.scores is not None:
            for c in stuff_ids:
                scores[c] = dense.scores[c]
    if things is not None:
        lut = np.array([0] + list(thing_index), np.int32)
        covered = things.labels > 0
        labels[covered] = lut[things.labels[covered]]
        if things.scores is not None:
            for k, c in enumerate(thing_index, start=1):
                scores[c] = things.scores[k]
    scores[0] = 1.0 - np.clip(scores[1:].max(0) if n > 1 else 0.0, 0.0, 1.0)
    return labels, scores


def segment_hybrid(
    session: ImageSession,
    queries: list[ClassQuery],
    manager: Models,
    settings: HybridSettings | None = None,
    proposal: ProposalSettings | None = None,
    *,
    dense: Callable[..., SegmentationResult],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SegmentationResult:
    """Route, run each path on its classes, merge. ``dense(queries)`` runs the dense method on
    the session's image (the caller binds the method, session, models and settings, so this
    module never looks methods up); things go through the proposal path with ``proposal``."""
    s = settings or HybridSettings()
    t0 = time.perf_counter()

    def embed(names: list[str]) -> np.ndarray:
        return encode_texts(manager, names, s.prototype_templates)

    routes = route_classes(queries, embed=embed, margin=s.embedding_margin)
    kinds = [r.kind for r in routes]
    thing_queries = [q for q, k in zip(queries, kinds, strict=True) if k == THING]
    thing_index = [i + 1 for i, k in enumerate(kinds) if k == THING]
    messages: list[str] = []
    timings: dict[str, float] = {"routing": time.perf_counter() - t0}
    dense_result = None
    if STUFF in kinds:
        t1 = time.perf_counter()
        dense_result = dense(queries)
        timings["dense"] = time.perf_counter() - t1
        messages += dense_result.messages
    if cancel:
        cancel.check()
    thing_result = None
    if thing_queries:
        t1 = time.perf_counter()
        thing_result = segment_proposals(
            session,
            thing_queries,
            manager,
            proposal or ProposalSettings(),
            progress=progress,
            cancel=cancel,
        )
        timings["proposal"] = time.perf_counter() - t1
        messages += thing_result.messages
    labels, scores = merge_results(
        [q.name for q in queries],
        kinds,
        dense_result,
        thing_result,
        thing_index,
        (session.height, session.width),
    )
    timings["total"] = time.perf_counter() - t0
    extras = {"routes": [r.__dict__ for r in routes]}
    if thing_result is not None:
        extras["instances"] = thing_result.extras.get("instances", [])
    return SegmentationResult(
        labels,
        [BACKGROUND] + [q.name for q in queries],
        scores,
        "hybrid",
        timings,
        messages,
        extras,
    )
