"""The typed settings of the segmentation stages and the one parser that reads them.

Settings come nested by stage, ``{"dense": {...}, "refine": {...}, "proposal": {...},
"hybrid": {...}}`` (or as dotted keys, ``{"dense.prob_thd": 0.2}``, as ``--set`` gives them).
Each stage's section is a dataclass; :func:`parse_settings` fills every registered section,
defaults where nothing was given, and refuses an unknown section, an unknown key or a value
of the wrong type with a message that names it. A stage's precision is its own setting
(``dense.compute_dtype``, ``refine.compute_dtype``, ``proposal.low_precision_cpu``): no
value drives two stages. ``auto`` is the precision measured fastest for that stage's workload
on this machine (``models/calibration.py``), unless ``--dtype`` names one.

The four stages' sections are registered here; a method with settings of its own brings its
section when it is registered (:func:`ovpaint.pipelines.segmentation.methods.register_method`).
This module imports
neither torch nor the pipelines, so the CLI's parser and the app's lists stay quick to build.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from ovpaint.core.errors import BadInput
from ovpaint.core.limits import MAX_CLICKS, MAX_DILATE_PX, MAX_SHORT_SIDE, float_in, int_in, text_in

COMPUTE_DTYPES = ("auto", "fp32", "bf16", "fp16", "int8")


def check_compute_dtype(name: str, section: str = "") -> None:
    """A stage's ``compute_dtype`` value: one of :data:`COMPUTE_DTYPES`."""
    if name not in COMPUTE_DTYPES:
        where = f"{section}.compute_dtype" if section else "compute_dtype"
        raise BadInput(f"{where} must be one of {', '.join(COMPUTE_DTYPES)}, not '{name}'.")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise BadInput(message)


#: SCLIP's post-processing for PASCAL VOC's 21-class scenes (METHOD.md §1.6): the one
#: definition the ``--preset voc`` option and the VOC benchmark preset use.
VOC_DENSE = {"logit_scale": 65.0, "prob_thd": 0.1, "area_thd": 0.1}


#: NACLIP's preset for PASCAL VOC (its ``cfg_voc21``): the whole image in one pass, PAMR,
#: prob_thd 0.1, no area threshold, scale 40 (``fixtures/README_naclip.md``).
VOC_NACLIP = {"whole_image": True, "prob_thd": 0.1}

LAST_BLOCKS = ("csa", "naclip")  # SCLIP's Correlative Self-Attention, NACLIP's reduced block
POS_INTERPOLATIONS = ("size", "offset")  # exact grid; NACLIP's "+0.1" scale factors
MAX_PAMR_STEPS = 100
MAX_PAMR_DILATION = 512


def check_pamr(steps: int, dilations: tuple[int, ...], section: str = "") -> None:
    """PAMR's step count and dilations: in range, the dilations distinct."""
    where = f"{section}." if section else ""
    _require(
        0 <= int(steps) <= MAX_PAMR_STEPS,
        f"{where}pamr_steps must be between 0 and {MAX_PAMR_STEPS}.",
    )
    _require(
        bool(dilations)
        and all(1 <= int(d) <= MAX_PAMR_DILATION for d in dilations)
        and len(set(dilations)) == len(dilations),
        f"{where}pamr_dilations must be one or more distinct integers from 1 to "
        f"{MAX_PAMR_DILATION}.",
    )


@dataclass
class DenseSettings:
    """Every parameter of the dense path (METHOD.md §1); defaults are SCLIP's.

    The same pipeline runs NACLIP (:class:`NaclipSettings`): ``whole_image`` to
    ``pamr_cache_bytes`` are where the two methods differ."""

    SECTION: ClassVar[str] = "dense"

    short_side: int = 336  # 448 for stuff-heavy scenes (COCO-Stuff, ADE20K)
    max_long_side: int = 2048
    crop: int = 224
    stride: int = 112
    logit_scale: float = 40.0  # 65 for VOC-style 21-class scenes
    prob_thd: float = 0.0
    area_thd: float | None = None
    batch_size: int = 32  # windows per forward pass
    compute_dtype: str = "auto"  # auto (measured) | fp32 | bf16 | fp16 | int8, dense pass only
    layers: tuple[int, ...] | None = None  # multi-layer aggregation, e.g. (3, 6, 9, 12)
    layer_weights: tuple[float, ...] | None = None  # equal when None
    templates: str = "openai80"
    implicit_background: bool = True  # score a lone "dog" against background stuff words
    max_work_pixels: int = 4_000_000  # cap on the size at which class maps are computed
    max_map_bytes: int = 1_000_000_000  # cap on names × work pixels × 4 bytes
    max_score_bytes: int = 768_000_000  # full-size scores returned only under this
    whole_image: bool = False  # one pass over the whole resized image instead of windows
    last_block: str = "csa"  # csa (SCLIP) | naclip (reduced block, neighbourhood bias)
    gaussian_std: float = 5.0  # of NACLIP's neighbourhood bias, in patches
    pos_interp: str = "size"  # positional embedding off its grid: size | offset (NACLIP)
    renormalize: bool = False  # class probabilities divided by their sum (NACLIP)
    pamr: bool = False  # edge-aware refinement of the logits by the image (NACLIP)
    pamr_steps: int = 10
    pamr_dilations: tuple[int, ...] = (8, 16)  # in original-image pixels
    pamr_max_pixels: int = 1_000_000  # PAMR runs at most at this size, then is resized up
    pamr_cache_bytes: int = 256_000_000  # per image: PAMR's step matrix and refined maps kept

    @classmethod
    def voc(cls, **overrides: Any) -> DenseSettings:
        """SCLIP's PASCAL VOC (21 classes with background) preset."""
        return cls(**{**VOC_DENSE, **overrides})

    def __post_init__(self) -> None:
        s = self.SECTION
        _require(
            self.short_side >= 16 and self.max_long_side >= self.short_side,
            f"{s}.short_side must be ≥ 16 and {s}.max_long_side ≥ short_side.",
        )
        _require(
            self.short_side <= MAX_SHORT_SIDE and self.max_long_side <= 16384,
            f"{s}.short_side must be ≤ {MAX_SHORT_SIDE} and {s}.max_long_side ≤ 16384.",
        )
        _require(
            self.crop >= 16 and 0 < self.stride <= self.crop,
            f"{s}.crop must be ≥ 16 and 0 < {s}.stride ≤ crop.",
        )
        check_compute_dtype(self.compute_dtype, s)
        _require(
            self.layer_weights is None
            or self.layers is None
            or len(self.layer_weights) == len(self.layers),
            f"{s}.layer_weights needs one weight per entry of {s}.layers.",
        )
        _require(
            self.batch_size >= 1 and self.max_work_pixels >= 1,
            f"{s}.batch_size and {s}.max_work_pixels must be positive.",
        )
        _require(0.0 < self.logit_scale <= 1000.0, f"{s}.logit_scale must be in (0, 1000].")
        _require(0.0 <= self.prob_thd <= 1.0, f"{s}.prob_thd must be in [0, 1].")
        _require(
            self.area_thd is None or 0.0 <= self.area_thd <= 1.0,
            f"{s}.area_thd must be in [0, 1] or null.",
        )
        _require(
            self.last_block in LAST_BLOCKS,
            f"{s}.last_block must be one of {', '.join(LAST_BLOCKS)}.",
        )
        _require(
            self.pos_interp in POS_INTERPOLATIONS,
            f"{s}.pos_interp must be one of {', '.join(POS_INTERPOLATIONS)}.",
        )
        _require(
            0.1 <= self.gaussian_std <= 1000.0,
            f"{s}.gaussian_std must be in [0.1, 1000] (patches).",
        )
        check_pamr(self.pamr_steps, self.pamr_dilations, s)
        _require(
            self.pamr_max_pixels >= 1 and self.pamr_cache_bytes >= 0,
            f"{s}.pamr_max_pixels must be ≥ 1 and {s}.pamr_cache_bytes ≥ 0.",
        )


@dataclass
class NaclipSettings(DenseSettings):
    """NACLIP (Hajimiri et al., WACV 2025) on the dense pipeline: the reduced last block with
    key-key attention and a Gaussian neighbourhood bias, the "+0.1" positional-embedding
    interpolation, renormalised class probabilities and PAMR on the logits; every parameter as
    in ``fixtures/README_naclip.md``. No area threshold and scale 40 everywhere; its VOC preset
    (:data:`VOC_NACLIP`) runs the whole image; the stuff datasets keep short side 336."""

    SECTION: ClassVar[str] = "naclip"

    last_block: str = "naclip"
    pos_interp: str = "offset"
    renormalize: bool = True
    pamr: bool = True

    @classmethod
    def voc(cls, **overrides: Any) -> NaclipSettings:
        """NACLIP's PASCAL VOC (``cfg_voc21``) preset."""
        return cls(**{**VOC_NACLIP, **overrides})


@dataclass
class RefineSettings:
    """The SAM2 refinement of the dense map (METHOD.md §2)."""

    opening_px: int = 5  # kernel of the morphological opening before components
    min_area_frac: float = 0.001  # components under this share of the image are dropped
    min_area_px: int = 64
    min_point_distance: int = 20  # px in the original image
    large_area_frac: float = 0.05  # a component gets one more point per this share of image
    max_points_per_class: int = 10
    max_points: int = 60
    vote_threshold: float = 0.6
    refine_background: bool = True  # class 0 also gets prompts (trims over-grown classes)
    decoder_chunk: int = 16  # points whose masks are upsampled at once (memory bound)
    # the mask decoder's precision, for the refinement only: auto = the one measured fastest on
    # this machine (see refine.decoder_dtype); fp32 = sam2's exact operations
    compute_dtype: str = "auto"

    def __post_init__(self) -> None:
        check_compute_dtype(self.compute_dtype, "refine")
        _require(0.0 <= self.vote_threshold <= 1.0, "refine.vote_threshold must be in [0, 1].")
        _require(
            self.max_points >= 0 and self.max_points_per_class >= 0,
            "refine.max_points and refine.max_points_per_class must be ≥ 0.",
        )
        _require(
            self.decoder_chunk >= 1 and self.opening_px >= 0,
            "refine.decoder_chunk must be ≥ 1 and refine.opening_px ≥ 0.",
        )
        _require(
            0.0 < self.large_area_frac <= 1.0 and 0.0 <= self.min_area_frac <= 1.0,
            "refine.large_area_frac must be in (0, 1] and refine.min_area_frac in [0, 1].",
        )


BACKGROUND_WORDS = ("background", "nothing", "empty space")


#: Points per side of the proposal grid: the thesis's 32×32 (what the benchmark always uses),
#: and the default on a CPU, 16×16: a quarter of the decoder calls (CorrCLIP's demo does the
#: same), the difference between about two minutes and half a minute on two cores.
THESIS_GRID = 32
CPU_GRID = 16


@dataclass
class ProposalSettings:
    """Every threshold of the proposal path (METHOD.md §3); the defaults are the thesis's,
    except the point grid on a CPU (see :data:`CPU_GRID`)."""

    # --- automatic mask generation (names and meaning as in sam2's generator)
    points_per_side: int | None = None  # None: THESIS_GRID on a GPU, CPU_GRID on a CPU
    points_per_batch: int = 64  # sam2's batching; the fast path decodes in smaller chunks
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0  # needs sam2's compiled extension; skipped with a warning
    decoder_chunk: int = 8  # prompts per decoder call in the fast path (cache-sized)
    # Masks of larger images are made and selected at this long side (SAM2 sees 1024 px
    # anyway; N full-size masks of a 12 MP photo would take gigabytes), then the label map is
    # scaled back to full size. 0 = always full size.
    max_side: int = 1536
    max_score_bytes: int = 768_000_000  # full-size score maps returned only under this
    # --- CLIP scoring
    scales: tuple[int, ...] = (224, 336, 512)
    scale_weights: tuple[float, ...] = (0.2, 0.5, 0.3)
    crop_margin: float = 0.1  # of the box's longer side, on each side
    clip_batch: int = 16  # crops per CLIP call
    # On a CPU, also at most this many ViT tokens per call: batching saves nothing there and
    # large batches lose the caches (2 cores, ms per crop fp32 at batch 1/2/4/8: 224 px
    # 224/239/260/218, 336 px 520/485/598/623, 512 px 1548/1688/2044/1984): 6, 2 and 1.
    clip_batch_tokens: int = 1200
    templates: str = "four"  # the thesis found 4 templates better than 80 for this path
    # the CLIP tower in the precision measured fastest here (workload "scoring"); False: fp32
    low_precision_cpu: bool = True
    # --- selection
    background_words: tuple[str, ...] = BACKGROUND_WORDS
    background_weight: float = 0.3
    min_area_ratio: float = 0.001  # masks under 0.1 % of the image are dropped
    small_mask_ratio: float = 0.01  # below this share of the image a mask counts as small
    threshold_large: float = 0.15
    threshold_small: float = 0.20
    mask_nms_iou: float = 0.7
    many_class_from: int = 5  # this many classes or more: many-class mode
    temperature: float = 100.0
    denoise_floor: float = 0.12
    size_penalty_start: float = 0.15
    size_penalty_span: float = 0.35
    size_penalty_max: float = 0.85
    top_k: int = 2

    def __post_init__(self) -> None:
        _require(
            len(self.scales) == len(self.scale_weights),
            "proposal.scales and proposal.scale_weights must have the same length.",
        )
        grid = THESIS_GRID if self.points_per_side is None else self.points_per_side
        _require(
            grid >= 1 and self.points_per_batch >= 1 and self.decoder_chunk >= 1,
            "proposal.points_per_side, points_per_batch and decoder_chunk must be ≥ 1.",
        )
        _require(grid <= 256, "proposal.points_per_side must be at most 256.")
        _require(
            all(16 <= s <= 2048 for s in self.scales),
            "proposal.scales must be crop sizes between 16 and 2048 px.",
        )
        _require(self.size_penalty_span > 0, "proposal.size_penalty_span must be positive.")
        _require(self.top_k >= 1, "proposal.top_k must be ≥ 1.")

    def grid(self, device_type: str) -> int:
        """Points per side on a device of this type ("cpu", "cuda", ...)."""
        if self.points_per_side is not None:
            return self.points_per_side
        return CPU_GRID if device_type == "cpu" else THESIS_GRID


@dataclass
class HybridSettings:
    """The hybrid method's routing (METHOD.md §3.6); its proposal path reads ``proposal``."""

    dense_method: str | None = None  # the dense-kind method for stuff; None: the default method
    embedding_margin: float = 0.0
    prototype_templates: str = "four"

    def __post_init__(self) -> None:
        _require(
            -2.0 <= self.embedding_margin <= 2.0, "hybrid.embedding_margin must be in [-2, 2]."
        )


# --------------------------------------------------------------------------- ranges
#: The named prompt-template sets (``templates`` settings); anything else is one template.
TEMPLATE_SETS = ("openai80", "four")


def check_templates(value: str, where: str = "templates", *, named: bool = True) -> None:
    """A ``templates`` value: a named set (when ``named``), or one template with one ``{}``
    where the class name goes (``"a photo of a {}."``) that formats with a name alone."""
    if named and value in TEMPLATE_SETS:
        return
    try:
        ok = value.count("{}") == 1 and bool(value.format("x"))
    except (IndexError, KeyError, ValueError):
        ok = False
    if not ok:
        raise BadInput(
            f"{where} must be {' or '.join(TEMPLATE_SETS) + ', or ' if named else ''}one "
            f"template with one '{{}}' where the class name goes (got {_shown(value)})."
        )


#: Most entries of a list setting, and characters of a text setting (a template, a word).
MAX_SETTING_ITEMS = 64
MAX_SETTING_TEXT = 300
#: The bound of a number whose section declares no range (a method's section added later).
_ANY_NUMBER = (-(2**31), 2**31 - 1)
_GIB = 1 << 30

#: Section class → field → (lo, hi): the range of each number (each entry, for lists).
_RANGES: dict[type, dict[str, tuple[float, float]]] = {}


def declare_ranges(cls: type, **ranges: tuple[float, float]) -> None:
    """The range of each number of section ``cls``; a subclass inherits its base's ranges.
    A method bringing its own section declares them next to it."""
    _RANGES.setdefault(cls, {}).update(ranges)


def ranges_of(cls: type) -> dict[str, tuple[float, float]]:
    """Field → (lo, hi) for every number ``cls`` (or one of its bases) declares."""
    merged: dict[str, tuple[float, float]] = {}
    for klass in reversed(cls.__mro__):
        merged.update(_RANGES.get(klass, {}))
    return merged


declare_ranges(
    DenseSettings,
    short_side=(16, MAX_SHORT_SIDE),
    max_long_side=(16, 16384),
    crop=(16, MAX_SHORT_SIDE),
    stride=(1, MAX_SHORT_SIDE),
    logit_scale=(0.0, 1000.0),
    prob_thd=(0.0, 1.0),
    area_thd=(0.0, 1.0),
    batch_size=(1, 1024),
    layers=(0, 64),  # transformer blocks: ViT-L/14 has 24
    layer_weights=(0.0, 1000.0),
    max_work_pixels=(1, 256_000_000),
    max_map_bytes=(1, 64 * _GIB),
    max_score_bytes=(0, 64 * _GIB),
    gaussian_std=(0.1, 1000.0),
    pamr_steps=(0, MAX_PAMR_STEPS),
    pamr_dilations=(1, MAX_PAMR_DILATION),
    pamr_max_pixels=(1, 256_000_000),
    pamr_cache_bytes=(0, 64 * _GIB),
)
declare_ranges(
    RefineSettings,
    opening_px=(0, MAX_DILATE_PX),
    min_area_frac=(0.0, 1.0),
    min_area_px=(0, 1_000_000_000),
    min_point_distance=(0, 1 << 20),
    large_area_frac=(0.0, 1.0),
    max_points_per_class=(0, MAX_CLICKS),
    max_points=(0, MAX_CLICKS),  # each point is one run of the mask decoder
    vote_threshold=(0.0, 1.0),
    decoder_chunk=(1, 1024),
)
declare_ranges(
    ProposalSettings,
    points_per_side=(1, 256),
    points_per_batch=(1, 4096),
    pred_iou_thresh=(0.0, 1.0),
    stability_score_thresh=(0.0, 1.0),
    stability_score_offset=(0.0, 100.0),
    mask_threshold=(-100.0, 100.0),
    box_nms_thresh=(0.0, 1.0),
    min_mask_region_area=(0, 1_000_000_000),
    decoder_chunk=(1, 4096),
    max_side=(0, 16384),
    max_score_bytes=(0, 64 * _GIB),
    scales=(16, MAX_SHORT_SIDE),
    scale_weights=(0.0, 1000.0),
    crop_margin=(0.0, 10.0),
    clip_batch=(1, 1024),
    clip_batch_tokens=(1, 1_000_000),
    background_weight=(0.0, 100.0),
    min_area_ratio=(0.0, 1.0),
    small_mask_ratio=(0.0, 1.0),
    threshold_large=(-1.0, 1.0),
    threshold_small=(-1.0, 1.0),
    mask_nms_iou=(0.0, 1.0),
    many_class_from=(1, 1000),
    temperature=(0.0, 1000.0),
    denoise_floor=(0.0, 1.0),
    size_penalty_start=(0.0, 1.0),
    size_penalty_span=(0.0, 1.0),
    size_penalty_max=(0.0, 1.0),
    top_k=(1, 1000),
)
declare_ranges(HybridSettings, embedding_margin=(-2.0, 2.0))


# --------------------------------------------------------------------------- the registry
#: Section name → its settings dataclass: the stages below, and those a registered method
#: brings (``register_method``).
SECTIONS: dict[str, type] = {}


def register_section(name: str, cls: type) -> None:
    """Make ``cls`` (a dataclass with defaults for every field) the section ``name``."""
    if not is_dataclass(cls):
        raise TypeError(f"settings section '{name}' must be a dataclass, got {cls!r}")
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise TypeError(f"settings section '{name}' needs defaults for: {', '.join(missing)}")
    known = SECTIONS.get(name)
    if known is not None and known is not cls:
        raise ValueError(f"settings section '{name}' is already {known.__name__}")
    SECTIONS[name] = cls


for _name, _cls in (
    ("dense", DenseSettings),
    ("refine", RefineSettings),
    ("proposal", ProposalSettings),
    ("hybrid", HybridSettings),
):
    register_section(_name, _cls)


@dataclass(frozen=True)
class SegmentSettings:
    """One typed settings object per registered section; ``given`` is what the caller set
    (nested, as parsed), kept for reports and resume checks."""

    sections: dict[str, Any]
    given: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        try:
            return self.sections[name]
        except KeyError:
            raise BadInput(
                f"No settings section '{name}'. Known: {', '.join(self.sections)}."
            ) from None

    @property
    def dense(self) -> DenseSettings:
        return self.sections["dense"]

    @property
    def refine(self) -> RefineSettings:
        return self.sections["refine"]

    @property
    def proposal(self) -> ProposalSettings:
        return self.sections["proposal"]

    @property
    def hybrid(self) -> HybridSettings:
        return self.sections["hybrid"]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Every value of every section (lists for tuples), e.g. for a report."""
        return {name: asdict(value) for name, value in self.sections.items()}


def _nest(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"dense": {...}}`` and ``{"dense.key": v}`` alike as section → {key: value}."""
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, dot, name = str(key).partition(".")
        if dot:
            if not name:
                raise BadInput(f"Setting '{key}' names no key after the section.")
            nested.setdefault(section, {})[name] = value
        elif isinstance(value, Mapping):
            nested.setdefault(section, {}).update(value)
        else:
            holders = [s for s, cls in SECTIONS.items() if key in {f.name for f in fields(cls)}]
            hint = (
                " Use " + " or ".join(f"{s}.{key}" for s in holders) + "."
                if holders
                else f" Sections: {', '.join(SECTIONS)}."
            )
            raise BadInput(f"Setting '{key}' needs its section, e.g. dense.prob_thd.{hint}")
    return nested


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


def _coerce(section: str, f: Any, value: Any, bounds: tuple[float, float] | None = None) -> Any:
    """``value`` as field ``f`` wants it, in its range (``bounds``; each entry's for a list):
    JSON lists become tuples, ints are floats where a float is wanted; a value of another
    type, out of range, too long or with too many entries is refused with its name."""
    kind = str(f.type).replace(" ", "")
    optional = kind.endswith("|None")
    base = kind[: -len("|None")] if optional else kind
    where = f"{section}.{f.name}"
    if value is None:
        if optional:
            return None
        raise BadInput(f"{where} cannot be null.")
    if base.startswith("tuple["):
        if not isinstance(value, (list, tuple)):
            raise BadInput(f"{where} must be a list, got {_shown(value)}.")
        if len(value) > MAX_SETTING_ITEMS:
            raise BadInput(
                f"{where} has {len(value)} entries; at most {MAX_SETTING_ITEMS} are allowed."
            )
        item = base[len("tuple[") :].split(",")[0].rstrip("]")
        return tuple(_coerce(section, _Item(f.name, item), v, bounds) for v in value)
    want = _SCALARS.get(base)
    if want is None:
        return value
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is float and numeric:
        return float_in(value, where, *(bounds or _ANY_NUMBER))
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise BadInput(f"{where} must be of type {base}, got {_shown(value)}.")
    if want is int:
        return int_in(value, where, *(bounds or _ANY_NUMBER))
    if want is str:
        text_in(value, where, MAX_SETTING_TEXT)
        if f.name == "templates":
            check_templates(value, where)
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + "…"


@dataclass(frozen=True)
class _Item:
    name: str
    type: str


def section_from_dict(name: str, values: Mapping[str, Any] | None) -> Any:
    """The typed section ``name`` from a plain dict; unknown keys and wrong types refused."""
    if name not in SECTIONS:
        raise BadInput(
            f"Unknown settings section '{name}'.{_suggest(name, list(SECTIONS))} "
            f"Sections: {', '.join(SECTIONS)}."
        )
    cls = SECTIONS[name]
    by_name = {f.name: f for f in fields(cls)}
    ranges = ranges_of(cls)
    picked = {}
    for key, value in (values or {}).items():
        f = by_name.get(key)
        if f is None:
            raise BadInput(
                f"Unknown setting '{name}.{key}'.{_suggest(key, list(by_name))} "
                f"The {name} settings are: {', '.join(by_name)}."
            )
        picked[key] = _coerce(name, f, value, ranges.get(key))
    return cls(**picked)


def parse_settings(values: Mapping[str, Any] | SegmentSettings | None) -> SegmentSettings:
    """Every registered section, typed; see the module docstring for the accepted forms."""
    if isinstance(values, SegmentSettings):
        return values
    nested = _nest(values or {})
    sections = {name: section_from_dict(name, nested.get(name)) for name in SECTIONS}
    for name in nested:
        if name not in SECTIONS:
            section_from_dict(name, nested[name])  # raises with the known sections
    given = {name: dict(nested[name]) for name in nested}
    return SegmentSettings(sections, given)


def merge_settings(*layers: Mapping[str, Any] | SegmentSettings | None) -> dict[str, dict]:
    """Nested settings from ``layers`` (nested or dotted), a later layer winning key by key:
    a preset, then the user's values."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, SegmentSettings):
            layer = layer.given
        for section, values in _nest(layer).items():
            out.setdefault(section, {}).update(values)
    return out
