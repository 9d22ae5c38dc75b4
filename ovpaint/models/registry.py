"""The model families the product loads and the catalogue of their models: ids, Hugging Face
repos, files, sizes, hashes.

A family is one :class:`ModelFamily` record, registered once (:func:`register_family`): its
role (what pipelines ask the manager for), its loader, its models, its default model per
device and the setting that chooses one. The manager, the downloader, ``ovpaint models`` and
the app's model dialog are generated from the registered families. This module imports no
torch: a loader is imported when its first model loads.

Exact sizes and sha256 are not pinned here for files whose published values we could not read
at build time; for those, the downloader takes size and sha256 from the hub's own metadata
(the LFS object id *is* the file's sha256) and verifies the file against it before use.
Only safetensors and ``weights_only`` checkpoints are listed: never a pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ovpaint.core.errors import BadInput
from ovpaint.core.settings import Setting, register_setting

if TYPE_CHECKING:
    from ovpaint.models.protocols import Loader

MB = 1_000_000


@dataclass(frozen=True)
class ModelFile:
    path: str  # path inside the repository
    size: int | None = None  # exact bytes when pinned
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    id: str
    role: str  # the family's role: "clip", "sam2", "inpaint", "lama", ...
    title: str
    repo: str  # Hugging Face repo id
    approx_bytes: int
    arch: dict = field(default_factory=dict)
    files: tuple[ModelFile, ...] = ()  # explicit files (single-file models)
    allow_patterns: tuple[str, ...] = ()  # folder models: files resolved from the hub listing
    revision: str = "main"
    license: str = ""
    notes: str = ""

    @property
    def is_folder(self) -> bool:
        return bool(self.allow_patterns)


# Diffusers folders: weights as safetensors only (no .bin pickles), configs and tokenizer files.
_DIFFUSERS_FILES = (
    "model_index.json",
    "scheduler/*.json",
    "tokenizer/*",
    "tokenizer_2/*",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "text_encoder_2/config.json",
    "text_encoder_2/model.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
)


@dataclass(frozen=True)
class ModelFamily:
    """A kind of model: everything the product needs to list, fetch, choose and load one.

    ``loader()`` returns the loader (:class:`~ovpaint.models.protocols.Loader`: ``load_real``
    and ``build_tiny``), imported only then. ``cpu_tuning`` names a boolean setting that turns
    on the loader's ``tune_for_cpu`` when models compute on a CPU.
    """

    role: str
    title: str
    models: tuple[ModelSpec, ...]
    default_cpu: str  # model id
    default_gpu: str  # model id on CUDA or MPS
    loader: Callable[[], Loader]
    weight_suffixes: tuple[str, ...] = (".safetensors",)  # single weight files accepted
    cpu_tuning: str | None = None
    purpose: str = ""  # what a user gets from it, for the model assistant (else the title)

    @property
    def setting(self) -> str:
        """The setting that picks this family's model (empty: the default for the device)."""
        return f"{self.role}_model"

    def default_model(self, device_type: str) -> str:
        return self.default_gpu if device_type in ("cuda", "mps") else self.default_cpu


FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a model family: its models join the catalogue and its setting the settings table."""
    ids = {m.id for m in family.models}
    if not family.models or {family.default_cpu, family.default_gpu} - ids:
        raise ValueError(f"family '{family.role}': the defaults must be among its models")
    if any(m.role != family.role for m in family.models):
        raise ValueError(f"family '{family.role}': every model must have role '{family.role}'")
    taken = {m.id for f in FAMILIES.values() if f.role != family.role for m in f.models}
    if ids & taken:
        raise ValueError(f"family '{family.role}': model ids already taken: {ids & taken}")
    if family.default_cpu == family.default_gpu:
        default_help = f"empty = {family.default_cpu}"
    else:
        default_help = f"empty = {family.default_cpu} on a CPU, {family.default_gpu} on a GPU"
    register_setting(Setting(family.setting, "", f"{family.title} model; {default_help}."))
    FAMILIES[family.role] = family
    return family


def family(role: str) -> ModelFamily:
    try:
        return FAMILIES[role]
    except KeyError:
        raise BadInput(f"Unknown model role '{role}'. Known: {', '.join(FAMILIES)}.") from None


def roles() -> tuple[str, ...]:
    return tuple(FAMILIES)


def all_models() -> list[ModelSpec]:
    """Every model of every family, in registration order."""
    return [m for f in FAMILIES.values() for m in f.models]


def get_spec(model_id: str) -> ModelSpec:
    for spec in all_models():
        if spec.id == model_id:
            return spec
    known = ", ".join(m.id for m in all_models())
    raise BadInput(f"Unknown model '{model_id}'. Known models: {known}")


# --------------------------------------------------------------------------- built-in families
def _clip_loader() -> Loader:
    from ovpaint.models import clip_loader

    return clip_loader


def _sam2_loader() -> Loader:
    from ovpaint.models import sam2_loader

    return sam2_loader


def _inpaint_loader() -> Loader:
    from ovpaint.models import inpaint_loader

    return inpaint_loader


def _lama_loader() -> Loader:
    from ovpaint.models import lama_loader

    return lama_loader


register_family(
    ModelFamily(
        "clip",
        "CLIP (text-driven segmentation)",
        (
            ModelSpec(
                id="clip-vit-b16",
                role="clip",
                title="CLIP ViT-B/16 (OpenAI)",
                repo="timm/vit_base_patch16_clip_224.openai",
                files=(ModelFile("open_clip_model.safetensors"),),
                approx_bytes=599 * MB,
                arch={"open_clip_name": "ViT-B-16-quickgelu", "pretrained": "openai"},
                license="MIT",
            ),
            ModelSpec(
                id="clip-vit-l14",
                role="clip",
                title="CLIP ViT-L/14 (OpenAI)",
                repo="timm/vit_large_patch14_clip_224.openai",
                files=(ModelFile("open_clip_model.safetensors"),),
                approx_bytes=1710 * MB,
                arch={"open_clip_name": "ViT-L-14-quickgelu", "pretrained": "openai"},
                license="MIT",
            ),
        ),
        default_cpu="clip-vit-b16",
        default_gpu="clip-vit-b16",
        loader=_clip_loader,
        purpose="Finds what you type (“sky, dog”): Segment",
    )
)
register_family(
    ModelFamily(
        "sam2",
        "SAM2 (masks, refinement, clicks)",
        (
            ModelSpec(
                id="sam2.1-tiny",
                role="sam2",
                title="SAM 2.1 Hiera tiny",
                repo="facebook/sam2.1-hiera-tiny",
                files=(ModelFile("sam2.1_hiera_tiny.pt"),),
                approx_bytes=156 * MB,
                arch={"config": "configs/sam2.1/sam2.1_hiera_t.yaml"},
                license="Apache-2.0",
            ),
            ModelSpec(
                id="sam2.1-small",
                role="sam2",
                title="SAM 2.1 Hiera small",
                repo="facebook/sam2.1-hiera-small",
                files=(ModelFile("sam2.1_hiera_small.pt"),),
                approx_bytes=184 * MB,
                arch={"config": "configs/sam2.1/sam2.1_hiera_s.yaml"},
                license="Apache-2.0",
            ),
            ModelSpec(
                id="sam2.1-base-plus",
                role="sam2",
                title="SAM 2.1 Hiera base+",
                repo="facebook/sam2.1-hiera-base-plus",
                files=(ModelFile("sam2.1_hiera_base_plus.pt"),),
                approx_bytes=324 * MB,
                arch={"config": "configs/sam2.1/sam2.1_hiera_b+.yaml"},
                license="Apache-2.0",
            ),
            ModelSpec(
                id="sam2.1-large",
                role="sam2",
                title="SAM 2.1 Hiera large",
                repo="facebook/sam2.1-hiera-large",
                files=(ModelFile("sam2.1_hiera_large.pt"),),
                approx_bytes=898 * MB,
                arch={"config": "configs/sam2.1/sam2.1_hiera_l.yaml"},
                license="Apache-2.0",
            ),
        ),
        default_cpu="sam2.1-tiny",
        default_gpu="sam2.1-base-plus",
        loader=_sam2_loader,
        weight_suffixes=(".safetensors", ".pt"),  # sam2 checkpoints, read with weights_only,
        purpose="Sharp edges; click and box corrections",
    )
)
register_family(
    ModelFamily(
        "inpaint",
        "Stable Diffusion inpainting",
        (
            ModelSpec(
                id="sd2-inpaint",
                role="inpaint",
                title="Stable Diffusion 2 inpainting",
                repo="sd2-community/stable-diffusion-2-inpainting",
                allow_patterns=_DIFFUSERS_FILES,
                approx_bytes=5200 * MB,
                arch={"pipeline": "sd", "resolution": 512},
                license="CreativeML Open RAIL++-M",
                notes="Community mirror of the removed stabilityai/stable-diffusion-2-inpainting.",
            ),
            ModelSpec(
                id="sd15-inpaint",
                role="inpaint",
                title="Stable Diffusion 1.5 inpainting",
                repo="stable-diffusion-v1-5/stable-diffusion-inpainting",
                allow_patterns=_DIFFUSERS_FILES,
                approx_bytes=4300 * MB,
                arch={"pipeline": "sd", "resolution": 512},
                license="CreativeML Open RAIL-M",
            ),
            ModelSpec(
                id="sdxl-inpaint",
                role="inpaint",
                title="SDXL inpainting 0.1",
                repo="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                allow_patterns=_DIFFUSERS_FILES,
                approx_bytes=13900 * MB,
                arch={"pipeline": "sdxl", "resolution": 1024},
                license="CreativeML Open RAIL++-M",
            ),
        ),
        default_cpu="sd2-inpaint",
        default_gpu="sd2-inpaint",
        loader=_inpaint_loader,
        cpu_tuning="cpu_bf16_unet",
        purpose="Replaces or restyles a region from a prompt: Inpaint",
    )
)
register_family(
    ModelFamily(
        "lama",
        "Object remover (LaMa)",
        (
            ModelSpec(
                id="big-lama",
                role="lama",
                title="LaMa (big-lama) object remover",
                repo="anyisalin/big-lama",
                files=(ModelFile("big-lama.safetensors"),),
                approx_bytes=205 * MB,
                arch={"config": {}},  # big-lama's generator: ngf 64, 18 blocks (LamaConfig's)
                license="Apache-2.0",
                notes="A safetensors conversion of the big-lama generator (advimman/lama, "
                "Places2). Revision and sha256 are not pinned: the hub could not be reached when "
                "this entry was written; the downloader checks the file against the hub's own "
                "LFS sha256.",
            ),
        ),
        default_cpu="big-lama",
        default_gpu="big-lama",
        loader=_lama_loader,
        # LaMa's plain tensor dicts are read with torch.load(weights_only=True)
        weight_suffixes=(".safetensors", ".pt"),
        purpose="Removes objects quickly and cleanly: Inpaint → remove",
    )
)
