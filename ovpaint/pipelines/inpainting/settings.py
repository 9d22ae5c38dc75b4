"""How to inpaint: the typed settings every front-end fills, with the defaults that depend on
the mode and on the device the model computes on."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace

from ovpaint.core.errors import BadInput
from ovpaint.core.limits import (
    MAX_DILATE_PX,
    MAX_PROMPT_CHARS,
    MAX_STEPS,
    MAX_VARIANTS,
    SEED_MAX,
    float_in,
    int_in,
    text_in,
)

MODES = ("remove", "replace", "restyle")
DEFAULT_STRENGTH = {"remove": 1.0, "replace": 1.0, "restyle": 0.7}
SCHEDULERS = ("auto", "default", "ddim", "euler", "euler_a", "dpm++", "pndm")
AUTO_ENGINE = "auto"

# Stable Diffusion on a CPU: DPM-Solver++ (2M) reaches the quality of 50 steps of the models'
# own schedulers in about 20 (diffusers' DPMSolverMultistepScheduler documentation); 25 leaves
# a margin for inpainting at strength 1. A GPU keeps the models' own scheduler and 50 steps.
CPU_STEPS = 25
GPU_STEPS = 50
CPU_SCHEDULER = "dpm++"
# LaMa runs at the crop's own resolution up to this long side (larger crops are scaled down,
# filled, and scaled back): cost grows with the pixels (~4× per doubling of the side) and
# 1024 keeps one fill on a 2-core CPU to seconds; a GPU takes 2048 in well under a second.
CPU_LAMA_MAX_SIDE = 1024
GPU_LAMA_MAX_SIDE = 2048
# What "remove" leaves behind is the object's rim and its shadow: its mask is grown this much
# before the fill (on top of the soft paste band), replace and restyle keep the mask as drawn.
REMOVE_GROW_PX = 6


#: The texts of the settings, as the messages name them (the app shows the same fields).
_TEXTS = (
    ("prompt", "The prompt (--prompt)"),
    ("negative_prompt", "The negative prompt (--negative)"),
    ("removed_class", "The removed class (--removed-class)"),
)


@dataclass
class InpaintSettings:
    """How to inpaint. ``prompt`` is the user's words; when ``negative_prompt`` is None the
    pipeline expands both (see :func:`expand_prompt`). A front-end that shows the expanded
    prompts for editing passes them back with ``negative_prompt`` set, and they are used as
    they are. ``None`` means "the default for this mode / device"."""

    mode: str = "remove"
    prompt: str = ""
    negative_prompt: str | None = None
    removed_class: str | None = None
    engine: str = AUTO_ENGINE  # auto: LaMa for remove when installed, else SD, else OpenCV
    steps: int | None = None  # None: 25 on a CPU, 50 on a GPU
    guidance: float = 7.5
    strength: float | None = None  # None: 1.0 for remove/replace, 0.7 for restyle
    seed: int | None = None  # None: a random seed, reported in the result
    scheduler: str = "auto"  # auto: DPM-Solver++ on a CPU, the model's own on a GPU
    variants: int = 1
    grow_px: int | None = None  # None: REMOVE_GROW_PX for remove, 0 otherwise
    dilate_px: int = 8
    feather_px: int | None = None  # width of the soft edge; None = the dilation (never wider)
    context: float | None = None  # crop margin × the region's size; None: the engine's
    min_context_px: int = 32
    ring_px: int = 16
    color_match: bool = True
    lama_max_side: int | None = None  # None: 1024 on a CPU, 2048 on a GPU
    refine_strength: float = 0.0  # > 0: LaMa's fill refined by SD at this strength (remove)
    allow_fallback: bool = False  # an explicit engine whose model is missing: OpenCV instead

    @classmethod
    def from_dict(cls, values: dict) -> InpaintSettings:
        """Settings from a plain dict (a batch job, a saved preset); unknown keys are refused."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise BadInput(
                f"Unknown inpainting setting(s): {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(names))}."
            )
        return cls(**values)

    def validated(self) -> InpaintSettings:
        from ovpaint.pipelines.inpainting.engines import check_engine

        if self.mode not in MODES:
            raise BadInput(f"Unknown mode '{self.mode}'. Use one of: {', '.join(MODES)}.")
        check_engine(self.engine, self.mode)
        if self.scheduler not in SCHEDULERS:
            raise BadInput(
                f"Unknown scheduler '{self.scheduler}'. Use one of: {', '.join(SCHEDULERS)}."
            )
        steps = None if self.steps is None else int_in(self.steps, "Steps (--steps)", 1, MAX_STEPS)
        variants = int_in(self.variants, "Variants (--variants)", 1, MAX_VARIANTS)
        float_in(self.guidance, "Guidance (--guidance)", 0.0, 50.0)
        strength = DEFAULT_STRENGTH[self.mode] if self.strength is None else self.strength
        strength = float_in(strength, "Strength (--strength)", 0.0, 1.0)
        if strength == 0.0:
            raise BadInput("Strength must be in (0, 1].")
        float_in(self.refine_strength, "The refine strength (0 = no refinement)", 0.0, 1.0)
        for name in ("dilate_px", "feather_px", "grow_px", "ring_px", "min_context_px"):
            value = getattr(self, name)
            if value is not None:
                int_in(value, f"{name.replace('_px', '')} (pixels)", 0, MAX_DILATE_PX)
        if self.context is not None:
            float_in(self.context, "The crop context (× the region's size)", 0.0, 10.0)
        if self.lama_max_side is not None:
            int_in(self.lama_max_side, "LaMa's largest side", 64, 8192)
        if self.seed is not None:
            int_in(self.seed, "The seed (--seed)", 0, SEED_MAX)
        for name, label in _TEXTS:
            text_in(getattr(self, name), label, MAX_PROMPT_CHARS, optional=True)
        if self.mode in ("replace", "restyle") and not self.prompt.strip():
            raise BadInput(f"Mode '{self.mode}' needs a prompt saying what to paint.")
        seed = self.seed if self.seed is not None else random.randrange(2**31)
        grow = self.grow_px
        if grow is None:
            grow = REMOVE_GROW_PX if self.mode == "remove" else 0
        return replace(
            self,
            strength=strength,
            seed=int(seed),
            steps=steps,
            variants=variants,
            grow_px=int(grow),
        )

    def for_device(self, device_type: str) -> InpaintSettings:
        """The device-dependent defaults filled in for a model computing on ``device_type``."""
        on_cpu = device_type == "cpu"
        return replace(
            self,
            steps=self.steps or (CPU_STEPS if on_cpu else GPU_STEPS),
            scheduler=(CPU_SCHEDULER if on_cpu else "default")
            if self.scheduler == "auto"
            else self.scheduler,
            lama_max_side=self.lama_max_side
            or (CPU_LAMA_MAX_SIDE if on_cpu else GPU_LAMA_MAX_SIDE),
        )
