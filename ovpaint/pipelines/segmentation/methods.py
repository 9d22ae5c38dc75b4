"""The segmentation methods: one :class:`Method` record each, registered once.

Everything that lists methods is generated from :data:`METHODS`: the CLI's ``--method``
choices, default and help, the batch and benchmark runs, the app's method lists and their
tooltips. A new method is its own module plus one call::

    register_method(Method("mine", "My method", "what it is good for", DENSE, ("clip",),
                           run=run_mine, settings={"mine": MineSettings}))

``run(session, queries, models, settings, *, progress, cancel) -> SegmentationResult`` gets
the :class:`~ovpaint.pipelines.segmentation.settings.SegmentSettings` of every section and
reads its own. This module stays free of torch (the pipelines are imported when a method
runs), so building the CLI's parser costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ovpaint.core.errors import BadInput
from ovpaint.pipelines.result import SegmentationResult
from ovpaint.pipelines.segmentation.settings import (
    DenseSettings,
    HybridSettings,
    NaclipSettings,
    ProposalSettings,
    RefineSettings,
    SegmentSettings,
    register_section,
)

DENSE, PROPOSAL, COMPOSITE = "dense", "proposal", "composite"
KINDS = (DENSE, PROPOSAL, COMPOSITE)

#: The method the CLI, batch and the app use unless told otherwise.
DEFAULT_METHOD = "refined"
#: The benchmark's default: the plain dense path, comparable to SCLIP's published numbers.
DEFAULT_BENCHMARK_METHOD = "dense"

#: The method whose time per image ``Method.cost`` is relative to.
COST_REFERENCE = "dense"

#: ``run(session, queries, models, settings, *, progress=None, cancel=None)``
MethodRun = Callable[..., SegmentationResult]


@dataclass(frozen=True)
class Method:
    """A segmentation method, as every front-end sees it.

    ``kind``: ``dense`` (a label for every pixel from a dense map; a composite can use it for
    "stuff"), ``proposal`` (masks of objects) or ``composite`` (built from other methods).
    ``roles``: the model roles it loads, checked before any work. ``settings``: the typed
    settings sections it reads, by name (registered with it; shared sections must be the same
    class). ``cost``: expected time per image relative to ``dense``, from ``ovpaint perf``'s
    500×375 scene on a 2-core CPU; a hint for ordering and for the user, not a promise.
    """

    name: str
    title: str
    help: str
    kind: str
    roles: tuple[str, ...]
    run: MethodRun
    settings: Mapping[str, type] = field(default_factory=dict)
    cost: float = 1.0

    def describe(self) -> str:
        """What it is good for and what it costs, for ``--help`` and tooltips."""
        if self.name == COST_REFERENCE:
            return f"{self.help} (the cost reference)"
        return f"{self.help} (≈{self.cost:g}× the time of {COST_REFERENCE})"


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` (and its settings sections); it appears in every list at once."""
    if method.kind not in KINDS:
        raise ValueError(f"method kind must be one of {KINDS}, not {method.kind!r}")
    if not method.name or not method.name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"method name {method.name!r}: letters, digits, '-' and '_' only")
    for section, cls in method.settings.items():
        register_section(section, cls)
    METHODS[method.name] = method
    return method


def get_method(name: str | None) -> Method:
    """The method ``name`` (the default for None); BadInput naming the choices otherwise."""
    method = METHODS.get(name or DEFAULT_METHOD)
    if method is None:
        raise BadInput(f"Unknown method '{name}'. Choose one of: {', '.join(METHODS)}.")
    return method


def method_names() -> list[str]:
    """Registered methods, the default first, then in registration order."""
    return sorted(METHODS, key=lambda n: n != DEFAULT_METHOD)


def dense_method(name: str | None) -> Method:
    """The dense-kind method ``name`` (the default method for None), for composites."""
    method = get_method(name)
    if method.kind != DENSE:
        dense = ", ".join(m.name for m in METHODS.values() if m.kind == DENSE)
        raise BadInput(f"hybrid.dense_method must be a dense method ({dense}), not '{name}'.")
    return method


# --------------------------------------------------------------------------- built-in methods
def _dense_run(section: str, name: str) -> MethodRun:
    """The run of a dense method whose settings are the section ``section``."""

    def run(session, queries, models, settings: SegmentSettings, *, progress=None, cancel=None):
        from ovpaint.pipelines.segmentation.dense import segment_dense

        return segment_dense(
            session,
            queries,
            models,
            settings[section],
            progress=progress,
            cancel=cancel,
            name=name,
        )

    return run


def _refined_run(section: str, name: str) -> MethodRun:
    """The run of the dense map of the section ``section`` refined with SAM2 prompts."""

    def run(session, queries, models, settings: SegmentSettings, *, progress=None, cancel=None):
        from ovpaint.pipelines.segmentation.refine import segment_refined

        return segment_refined(
            session,
            queries,
            models,
            settings[section],
            settings.refine,
            progress=progress,
            cancel=cancel,
            name=name,
        )

    return run


def _run_proposal(
    session, queries, models, settings: SegmentSettings, *, progress=None, cancel=None
):
    from ovpaint.pipelines.segmentation.proposals import segment_proposals

    return segment_proposals(
        session, queries, models, settings.proposal, progress=progress, cancel=cancel
    )


def _run_hybrid(session, queries, models, settings: SegmentSettings, *, progress=None, cancel=None):
    """Stuff through the dense method ``hybrid.dense_method``, things through proposals."""
    from ovpaint.pipelines.segmentation.hybrid import segment_hybrid

    dense = dense_method(settings.hybrid.dense_method)

    def run_dense(qs: list[Any]) -> SegmentationResult:
        return dense.run(session, qs, models, settings, progress=progress, cancel=cancel)

    return segment_hybrid(
        session,
        queries,
        models,
        settings.hybrid,
        settings.proposal,
        dense=run_dense,
        progress=progress,
        cancel=cancel,
    )


# Costs: ovpaint perf on a 2-core AMD EPYC, 500×375, product precision (dense bf16 ≈ 0.7 s).
register_method(
    Method(
        "refined",
        "Refined",
        "dense CLIP map refined with SAM2 (sharp edges)",
        DENSE,
        ("clip", "sam2"),
        _refined_run("dense", "refined"),
        {"dense": DenseSettings, "refine": RefineSettings},
        cost=5.0,
    )
)
register_method(
    Method(
        "hybrid",
        "Hybrid",
        "stuff (sky, grass…) from the dense map, things from SAM2 proposals",
        COMPOSITE,
        ("clip", "sam2"),
        _run_hybrid,
        {"hybrid": HybridSettings, "proposal": ProposalSettings},
        cost=30.0,
    )
)
register_method(
    Method(
        "dense",
        "Dense",
        "dense CLIP map only (fastest, coarse edges)",
        DENSE,
        ("clip",),
        _dense_run("dense", "dense"),
        {"dense": DenseSettings},
        cost=1.0,
    )
)
register_method(
    Method(
        "proposal",
        "Proposals",
        "SAM2 masks scored by CLIP (objects)",
        PROPOSAL,
        ("clip", "sam2"),
        _run_proposal,
        {"proposal": ProposalSettings},
        cost=25.0,
    )
)
# NACLIP (perf, interleaved): its window pass 0.92x of dense's, PAMR on 27 names +22 % of it.
register_method(
    Method(
        "naclip",
        "NACLIP",
        "dense CLIP map with neighbourhood attention, refined by the image's edges (PAMR)",
        DENSE,
        ("clip",),
        _dense_run("naclip", "naclip"),
        {"naclip": NaclipSettings},
        cost=1.2,
    )
)
register_method(
    Method(
        "naclip-refined",
        "NACLIP refined",
        "the NACLIP map refined with SAM2 (sharp edges)",
        DENSE,
        ("clip", "sam2"),
        _refined_run("naclip", "naclip-refined"),
        {"naclip": NaclipSettings, "refine": RefineSettings},
        cost=5.2,
    )
)
