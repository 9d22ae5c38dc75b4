"""Stable Diffusion inpainting pipelines (diffusers): real weights or the tiny offline model.

Real: a diffusers folder (the registry's sd2/sd15/sdxl inpainting repos, or any local one) or a
single ``.safetensors`` checkpoint; safetensors only, never pickles; fp16 on CUDA.
Tiny: the same pipeline class with a seeded miniature UNet (9 input channels: 4 latent + 1 mask +
4 masked-image latent), a 4-level VAE (downsampling 8, as the real one), a 2-layer CLIP text
encoder and the real CLIP BPE tokenizer built from the vocabulary open_clip ships.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ovpaint.core.errors import ModelUnavailable
from ovpaint.core.paths import cache_dir
from ovpaint.models.protocols import Derived

TINY_RESOLUTION = 128


@dataclass
class InpaintBundle:
    pipe: Any  # diffusers StableDiffusion(XL)InpaintPipeline
    model_id: str
    kind: str  # "sd" | "sdxl"
    resolution: int  # native training resolution (512 for SD1/2, 1024 for SDXL)
    unet_bf16: bool = False  # the UNet computes in bf16 on the CPU (see tune_for_cpu)
    weights_dtype: torch.dtype | None = None  # as loaded (the manager's dtype)
    default_scheduler: Any = None  # the model's own scheduler, restored for "default"
    derived: Derived = field(default_factory=Derived, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.weights_dtype = self.weights_dtype or self.pipe.unet.dtype
        self.default_scheduler = self.default_scheduler or self.pipe.scheduler

    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.unet.dtype

    def to_device(self, device: torch.device) -> None:
        """Move the pipeline, back in its loaded dtype: the out-of-memory fallback computes on
        the CPU in fp32, and the next placement must not put an fp32 UNet on the GPU."""
        if self.unet_bf16:
            self.pipe.to(device)  # CPU-tuned: the UNet's bf16 is deliberate
        else:
            self.pipe.to(device, self.weights_dtype)

    def modules(self) -> list[torch.nn.Module]:
        names = ("unet", "vae", "text_encoder", "text_encoder_2")
        return [m for m in (getattr(self.pipe, n, None) for n in names) if m is not None]

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for m in self.modules() for p in m.parameters())


_UNET_FLOAT_INPUTS = ("sample", "encoder_hidden_states")


def _to_unet_dtype(unet: torch.nn.Module, value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != unet.dtype:
        value = value.to(unet.dtype)
        if value.ndim == 4:
            value = value.contiguous(memory_format=torch.channels_last)
    return value


def _cast_unet_inputs(unet, args, kwargs):
    # Only the activations: timesteps stay as given (bf16 cannot hold 999 exactly) and the
    # UNet casts its time embedding to the sample's dtype itself; SDXL's time ids likewise.
    args = tuple(_to_unet_dtype(unet, a) if i in (0, 2) else a for i, a in enumerate(args))
    for name in _UNET_FLOAT_INPUTS:
        if name in kwargs:
            kwargs[name] = _to_unet_dtype(unet, kwargs[name])
    added = kwargs.get("added_cond_kwargs")
    if added and "text_embeds" in added:
        kwargs["added_cond_kwargs"] = {
            **added,
            "text_embeds": _to_unet_dtype(unet, added["text_embeds"]),
        }
    return args, kwargs


def _cast_unet_output(unet, args, kwargs, output):
    def back(t):
        return (
            t.float().contiguous()
            if isinstance(t, torch.Tensor) and t.dtype != torch.float32
            else t
        )

    if isinstance(output, tuple):
        return tuple(back(t) for t in output)
    if hasattr(output, "sample"):
        output.sample = back(output.sample)
    return output


@contextmanager
def _deliberate_cast():
    """diffusers warns on every ``.to(dtype)`` of a model it did not load itself; our casts
    (the tiny models, the CPU tuning) are deliberate and complete, so the warning is noise."""
    log = logging.getLogger("diffusers.models.modeling_utils")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def tune_for_cpu(bundle: InpaintBundle, precision: str) -> bool:
    """Run the UNet in bf16 with channels-last memory when ``precision`` (the ``unet``
    workload's measured choice, see ``models/calibration.py``) is bf16. The text encoder and
    VAE stay fp32; hooks cast the UNet's inputs in and its noise prediction back to fp32, so the
    pipeline around it is unchanged. Returns whether the UNet is tuned."""
    if bundle.unet_bf16:
        return True
    if bundle.device.type != "cpu" or precision != "bf16":
        return False
    make_bf16_unet(bundle.pipe.unet)
    bundle.unet_bf16 = True
    return True


def make_bf16_unet(unet: Any) -> Any:
    """Convert a UNet in place to bf16 weights and channels-last memory, behind hooks that
    cast its floating inputs to bf16 and its noise prediction back to fp32."""
    with _deliberate_cast():
        unet.to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    unet.register_forward_pre_hook(_cast_unet_inputs, with_kwargs=True)
    unet.register_forward_hook(_cast_unet_output, with_kwargs=True)
    return unet


def unet_block_probe(device: torch.device, precision: str):
    """Calibration probe: the first down block of the SD2-inpainting UNet (one ResNet and one
    cross-attention transformer over the 64×64 latent, 320 channels, 5 heads, text 77×1024)
    for one classifier-free-guidance half (the product runs both halves as one batch of the
    same per-sample shapes; one half keeps the calibration within its budget); in bf16 on a CPU
    as :func:`make_bf16_unet` runs it (bf16 weights and channels-last activations)."""
    from diffusers.models.unets.unet_2d_blocks import CrossAttnDownBlock2D

    from ovpaint.models.device import DTYPES

    dtype = DTYPES[precision]
    block = CrossAttnDownBlock2D(
        in_channels=320,
        out_channels=320,
        temb_channels=1280,
        num_layers=1,
        num_attention_heads=5,
        cross_attention_dim=1024,
        use_linear_projection=True,
        add_downsample=False,
    ).eval()
    sample = torch.randn(1, 320, 64, 64)
    temb = torch.randn(1, 1280)
    text = torch.randn(1, 77, 1024)
    layout = torch.channels_last if device.type == "cpu" and dtype != torch.float32 else None
    with _deliberate_cast():
        block.to(device=device, dtype=dtype, memory_format=layout or torch.contiguous_format)
    sample = sample.to(device, dtype).contiguous(memory_format=layout or torch.contiguous_format)
    temb, text = temb.to(device, dtype), text.to(device, dtype)

    def run():
        with torch.no_grad():
            return block(sample, temb, encoder_hidden_states=text)

    return run


def clip_tokenizer_files() -> Path:
    """vocab.json + merges.txt of the CLIP BPE, written once from open_clip's bundled vocabulary."""
    from open_clip.tokenizer import SimpleTokenizer

    folder = cache_dir() / "clip-tokenizer"
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    if vocab.is_file() and merges.is_file():
        return folder
    from ovpaint.core.fileio import atomic_write_text

    simple = SimpleTokenizer()
    ranked = sorted(simple.bpe_ranks.items(), key=lambda item: item[1])
    # open_clip names the special tokens <start_of_text>/<end_of_text>; the Hugging Face CLIP
    # tokenizer (and every SD checkpoint) calls the same ids <|startoftext|>/<|endoftext|>.
    renamed = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    encoder = {renamed.get(token, token): index for token, index in simple.encoder.items()}
    atomic_write_text(vocab, json.dumps(encoder, ensure_ascii=False))
    atomic_write_text(
        merges, "#version: 0.2\n" + "\n".join(f"{a} {b}" for (a, b), _ in ranked) + "\n"
    )
    return folder


def clip_tokenizer(max_length: int = 77) -> Any:
    from transformers import CLIPTokenizer

    folder = clip_tokenizer_files()
    return CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        model_max_length=max_length,
        pad_token="<|endoftext|>",
    )


def scheduler_config() -> dict:
    return {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "prediction_type": "epsilon",
    }


def build_tiny(
    seed: int = 0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> InpaintBundle:
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=TINY_RESOLUTION // 8,
            in_channels=9,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 16, 16, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=TINY_RESOLUTION,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                bos_token_id=49406,
                eos_token_id=49407,
                pad_token_id=49407,
            )
        )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        unet=unet,
        scheduler=DDIMScheduler(**scheduler_config()),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    with _deliberate_cast():
        pipe.to(device=device, dtype=dtype)
    return InpaintBundle(pipe, "tiny-inpaint", "sd", TINY_RESOLUTION)


def load_real(spec, path: Path, device: torch.device, dtype: torch.dtype) -> InpaintBundle:
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

    kind = spec.arch.get("pipeline", "sd")
    cls = StableDiffusionXLInpaintPipeline if kind == "sdxl" else StableDiffusionInpaintPipeline
    # The manager loads on the CPU and places the model afterwards, so ``device`` is where the
    # weights land first, not where they compute: keep the manager's dtype (fp16 only ever comes
    # with a CUDA compute device), so a 5 GB SD2 lands on the GPU as 2.6 GB of fp16.
    torch_dtype = dtype
    extra = {} if kind == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    path = Path(path)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise ModelUnavailable(
                f"{path.name}: only .safetensors checkpoints are loaded "
                "(other formats can run code when opened)."
            )
        pipe = cls.from_single_file(str(path), torch_dtype=torch_dtype, **extra)
    else:
        if not (path / "model_index.json").is_file():
            raise ModelUnavailable(
                f"{path} is not a diffusers pipeline folder (model_index.json is missing)."
            )
        pipe = cls.from_pretrained(
            str(path), torch_dtype=torch_dtype, use_safetensors=True, local_files_only=True, **extra
        )
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    return InpaintBundle(pipe, spec.id, kind, int(spec.arch.get("resolution", 512)))
