"""The catalogue of models the product knows: ids, Hugging Face repos, files, sizes, hashes.

Exact sizes and sha256 are not pinned here for files whose published values we could not read
at build time; for those, the downloader takes size and sha256 from the hub's own metadata
(the LFS object id *is* the file's sha256) and verifies the file against it before use.
Only safetensors and ``weights_only`` checkpoints are listed: never a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MB = 1_000_000


@dataclass(frozen=True)
class ModelFile:
    path: str  # path inside the repository
    size: int | None = None  # exact bytes when pinned
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    id: str
    role: str  # "clip" | "sam2" | "inpaint" | "lama"
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

MODELS: tuple[ModelSpec, ...] = (
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
    ModelSpec(
        id="big-lama",
        role="lama",
        title="LaMa (big-lama) object remover",
        repo="anyisalin/big-lama",
        files=(ModelFile("big-lama.safetensors"),),
        approx_bytes=205 * MB,
        arch={"config": {}},  # big-lama's generator: ngf 64, 18 blocks (the LamaConfig defaults)
        license="Apache-2.0",
        notes="A safetensors conversion of the big-lama generator (advimman/lama, Places2). "
        "Revision and sha256 are not pinned: the hub could not be reached when this entry was "
        "written; the downloader checks the file against the hub's own LFS sha256.",
    ),
)

MODELS_BY_ID = {m.id: m for m in MODELS}
ROLES = ("clip", "sam2", "inpaint", "lama")


def get_spec(model_id: str) -> ModelSpec:
    try:
        return MODELS_BY_ID[model_id]
    except KeyError:
        known = ", ".join(MODELS_BY_ID)
        from ovpaint.core.errors import BadInput

        raise BadInput(f"Unknown model '{model_id}'. Known models: {known}") from None


def models_for(role: str) -> list[ModelSpec]:
    return [m for m in MODELS if m.role == role]


def default_model_id(role: str, device_type: str) -> str:
    """Defaults by device: the light models on CPU, the better ones where a GPU has room."""
    on_gpu = device_type in ("cuda", "mps")
    if role == "clip":
        return "clip-vit-b16"
    if role == "sam2":
        return "sam2.1-base-plus" if on_gpu else "sam2.1-tiny"
    if role == "inpaint":
        return "sd2-inpaint"
    if role == "lama":
        return "big-lama"
    raise KeyError(role)
