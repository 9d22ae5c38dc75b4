"""Inpainting engines: one typed record each, registered once. The CLI's ``--engine`` choices,
the batch options and the app's engine list are generated from :data:`ENGINES`.

An engine opens a *session* (its models held for the whole job) that yields a :class:`Filler`:
``fill(rgb, hole, seed, on_unit)`` returns the crop with the hole filled, calling ``on_unit``
after each unit of work (a denoising step, a network layer) so progress and cancel reach into
long calls. Crops, colour matching and the paste back are the pipeline's, the same for all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ovpaint.core.errors import BadInput, ModelUnavailable
from ovpaint.pipelines.inpainting.filler import Filler, SessionContext

Session = Callable[[SessionContext], AbstractContextManager[Filler]]


@dataclass(frozen=True)
class InpaintEngine:
    name: str
    title: str
    help: str
    modes: tuple[str, ...]
    model_role: str | None  # the model it needs from the manager (None: no model)
    session: Session
    uses_prompt: bool = False  # prompt, negative prompt, steps, guidance, strength apply
    context: float = 0.4  # default crop margin as a fraction of the region's size
    auto_rank: int | None = None  # order of preference for engine "auto" (None: never)


ENGINES: dict[str, InpaintEngine] = {}


def register_engine(engine: InpaintEngine) -> InpaintEngine:
    if engine.name in ENGINES or engine.name == "auto":
        raise ValueError(f"An inpainting engine named '{engine.name}' exists already.")
    ENGINES[engine.name] = engine
    return engine


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINES)


def get_engine(name: str) -> InpaintEngine:
    try:
        return ENGINES[name]
    except KeyError:
        raise BadInput(
            f"Unknown engine '{name}'. Use one of: auto, {', '.join(ENGINES)}."
        ) from None


def engines_for(mode: str) -> list[InpaintEngine]:
    return [e for e in ENGINES.values() if mode in e.modes]


def check_engine(name: str, mode: str) -> None:
    """Raise :class:`BadInput` unless ``name`` is auto or a registered engine that can
    do ``mode``."""
    if name == "auto":
        return
    engine = get_engine(name)
    if mode not in engine.modes:
        able = ", ".join(e.name for e in engines_for(mode))
        raise BadInput(f"The {engine.title} engine cannot {mode}; for {mode} use: {able}.")


def _missing(engine: InpaintEngine, manager: Any) -> ModelUnavailable | None:
    if engine.model_role is None:
        return None
    if manager is None:
        return ModelUnavailable(f"No model manager was given for {engine.title}.")
    try:
        manager.check_available(engine.model_role)
    except ModelUnavailable as exc:
        return exc
    return None


def choose_engine(settings: Any, manager: Any) -> tuple[InpaintEngine, list[str]]:
    """The engine that runs, and what to tell the user about the choice. ``auto`` takes the
    best installed engine for the mode (for remove: LaMa, else Stable Diffusion, else the
    OpenCV fill) and says which ran; an explicit engine whose model is missing raises, or
    gives way to the OpenCV fill when ``allow_fallback`` is set."""
    if settings.engine != "auto":
        check_engine(settings.engine, settings.mode)
        engine = ENGINES[settings.engine]
        missing = _missing(engine, manager)
        if missing is None:
            return engine, []
        if not settings.allow_fallback:
            raise missing
        return ENGINES["telea"], [f"{missing} Used the instant model-free fill instead."]
    ranked = sorted(
        (e for e in engines_for(settings.mode) if e.auto_rank is not None),
        key=lambda e: e.auto_rank,
    )
    skipped: list[tuple[InpaintEngine, ModelUnavailable]] = []
    for engine in ranked:
        missing = _missing(engine, manager)
        if missing is None:
            return engine, [_ran_message(settings.mode, engine, [e for e, _ in skipped])]
        skipped.append((engine, missing))
    if skipped:
        raise skipped[0][1]
    raise BadInput(f"No inpainting engine can {settings.mode}.")


def _ran_message(mode: str, engine: InpaintEngine, skipped: list[InpaintEngine]) -> str:
    verb = {"remove": "Removed", "replace": "Replaced", "restyle": "Restyled"}.get(mode, "Done")
    text = f"{verb} with {engine.title}."
    if skipped:
        names = " and ".join(e.title for e in skipped)
        text += f" ({names} {'is' if len(skipped) == 1 else 'are'} not installed: see Models.)"
    return text


def _builtin_engines() -> Iterator[InpaintEngine]:
    from ovpaint.pipelines.inpainting import diffusion, lama, opencv

    yield InpaintEngine(
        "lama",
        "LaMa",
        "Fills the masked region from its surroundings (big-lama, a Fourier-convolution "
        "network): the remover to use. Seconds on a CPU; no prompt, one result.",
        ("remove",),
        "lama",
        lama.session,
        auto_rank=0,
        # LaMa computes at the crop's own resolution, so context costs time (quadratically);
        # its Fourier units see the whole crop, and a quarter of the region's size around it
        # keeps a region of up to a third of the crop, within what it was trained to fill.
        context=0.25,
    )
    yield InpaintEngine(
        "sd",
        "Stable Diffusion",
        "Paints the region from a prompt (replace, restyle); for remove it may invent new "
        "things. Minutes on a CPU.",
        ("remove", "replace", "restyle"),
        "inpaint",
        diffusion.session,
        uses_prompt=True,
        auto_rank=1,
    )
    yield InpaintEngine(
        "telea",
        "OpenCV Telea",
        "Instant model-free fill (fast marching); good for thin scratches and small spots.",
        ("remove",),
        None,
        opencv.session("telea"),
        auto_rank=2,
    )
    yield InpaintEngine(
        "ns",
        "OpenCV Navier-Stokes",
        "Instant model-free fill (fluid dynamics); an alternative to Telea for small spots.",
        ("remove",),
        None,
        opencv.session("ns"),
    )


for _engine in _builtin_engines():
    register_engine(_engine)
