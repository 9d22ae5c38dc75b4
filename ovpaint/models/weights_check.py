"""Checking a weights file before it is accepted (``ovpaint models import``, the model
dialog): the file is what its name says and matches the model it is imported for.

- ``.safetensors``: the header is parsed within limits (its length, its JSON), every tensor's
  dtype, shape and byte range are consistent, and the ranges cover the file exactly, so a
  pickle or a zip renamed ``.safetensors`` and a truncated download are refused at once;
- ``.pt`` (SAM2 only): a zip-format checkpoint read with ``torch.load(weights_only=True)``
  (which runs no code) and memory-mapped, so only its names and shapes are looked at;
- names and shapes are compared with the architecture the spec names, built without weights
  (CLIP on the meta device, SAM2 from its yaml); a diffusers folder's components are header
  checked and its UNet must take the 9 input channels of an inpainting model.

Nothing here loads weights onto a device; a few seconds at import save a failure at first use.
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from pathlib import Path

from ovpaint.core.errors import BadInput
from ovpaint.core.safeio import load_json, read_regular

MAX_HEADER_BYTES = 100 << 20
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
Shapes = dict[str, tuple[int, ...]]


def _regular_size(path: Path) -> int:
    try:
        info = path.stat()
    except OSError as exc:
        raise BadInput(f"Cannot read {path}: {exc.strerror}.") from exc
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path} is not a regular file.")
    return info.st_size


def safetensors_shapes(path: str | os.PathLike) -> Shapes:
    """Tensor name → shape from a safetensors header, after checking the file is one."""
    path = Path(path)
    size = _regular_size(path)
    not_one = f"{path.name} is not a safetensors file"
    if size < 8:
        raise BadInput(f"{not_one} (it is {size} bytes).")
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise BadInput(f"{not_one} (no valid header; a pickle or another format renamed?).")
        raw = fh.read(length)
    if not raw.lstrip().startswith(b"{"):
        raise BadInput(f"{not_one} (no valid header; a pickle or another format renamed?).")
    header = load_json(raw, f"the header of {path.name}", max_bytes=MAX_HEADER_BYTES, max_depth=4)
    if not isinstance(header, dict):
        raise BadInput(f"{not_one} (its header is not a JSON object).")
    data_bytes = size - 8 - length
    shapes: Shapes = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            numel = 1
            for dim in shape:
                if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
                    raise ValueError
                numel *= dim
            if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end):
                raise ValueError
            if end - begin != numel * DTYPE_BYTES[dtype]:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise BadInput(f"{path.name}: the entry for tensor {name[:80]!r} is damaged.") from None
        shapes[name] = tuple(shape)
        spans.append((begin, end))
    end_of_data = max((end for _, end in spans), default=0)
    if end_of_data > data_bytes:
        raise BadInput(
            f"{path.name} is truncated: its tensors need {end_of_data + 8 + length} bytes, the "
            f"file has {size}. Download or copy it again."
        )
    if end_of_data < data_bytes:
        raise BadInput(f"{path.name} has {data_bytes - end_of_data} bytes no tensor describes.")
    return shapes


def checkpoint_shapes(path: str | os.PathLike) -> Shapes:
    """Name → shape of a SAM2 ``.pt`` checkpoint (zip format, no code run, memory-mapped)."""
    import torch

    path = Path(path)
    _regular_size(path)
    if not zipfile.is_zipfile(path):
        raise BadInput(
            f"{path.name} is not a zip-format PyTorch checkpoint; older pickle checkpoints can "
            "run code when opened and are refused."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise BadInput(f"{path.name} could not be read as weights only: {str(exc)[:200]}") from exc
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(f"{path.name} holds no state dict of tensors.")
    return {str(k): tuple(v.shape) for k, v in state.items()}


def expected_shapes(spec) -> Shapes | None:
    """Name → shape of the architecture ``spec`` names, without any weights (None when the
    role has no single-file architecture to compare with)."""
    import torch

    if spec.role == "clip" and spec.arch.get("openai_config"):
        from ovpaint.models.clip_loader import build_clip_from_openai_config

        with torch.device("meta"):
            model = build_clip_from_openai_config(spec.arch["openai_config"])
    elif spec.role == "clip" and spec.arch.get("open_clip_name"):
        import open_clip

        model = open_clip.create_model(spec.arch["open_clip_name"], pretrained=None, device="meta")
    elif spec.role == "sam2" and spec.arch.get("config"):
        from ovpaint.models.sam2_loader import _build

        # built on the CPU: hiera's init reads values (meta tensors have none)
        model = _build(spec.arch["config"], spec.arch.get("image_size"), torch.device("cpu"))
    else:
        return None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# open_clip adapts these on load (position ids dropped, logit scale reshaped, position
# embeddings resized), so they may differ in a file it loads
_CLIP_ADAPTED = ("text.transformer.embeddings.position_ids", "logit_bias")
_CLIP_RESHAPED = ("logit_scale", "positional_embedding", "visual.positional_embedding")


def compare_shapes(found: Shapes, expected: Shapes, spec, name: str) -> None:
    lenient = spec.role == "clip"
    missing = [k for k in expected if k not in found and not (lenient and k in _CLIP_ADAPTED)]
    unexpected = [k for k in found if k not in expected and not (lenient and k in _CLIP_ADAPTED)]
    wrong = [
        k
        for k in expected
        if k in found and found[k] != expected[k] and not (lenient and k in _CLIP_RESHAPED)
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("of another shape", wrong),
        ):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0][:60]})")
        raise BadInput(
            f"{name} does not match '{spec.title}': tensors {', '.join(parts)}. "
            "Is it the right model and size?"
        )


def check_weights(spec, path: Path) -> None:
    """Refuse a weights file or folder that is not a usable copy of ``spec`` (BadInput)."""
    path = Path(path)
    if path.is_dir():
        _check_diffusers_folder(path)
        return
    if spec.role == "lama":
        _check_lama(spec, path)
        return
    found = checkpoint_shapes(path) if path.suffix.lower() == ".pt" else safetensors_shapes(path)
    if not found:
        raise BadInput(f"{path.name} holds no tensors.")
    if spec.role == "inpaint":
        return  # a single-file SD checkpoint: its layout is converted by diffusers on load
    expected = expected_shapes(spec)
    if expected is not None:
        compare_shapes(found, expected, spec, path.name)


def _check_lama(spec, path: Path) -> None:
    """LaMa's loader checks its files itself (names, prefixes, shapes, dtypes): run that."""
    from ovpaint.core.errors import ModelUnavailable
    from ovpaint.models.lama import LamaConfig, LamaGenerator
    from ovpaint.models.lama_loader import check_state, generator_state, read_tensors

    if path.suffix.lower() == ".safetensors":
        safetensors_shapes(path)  # a renamed pickle or a truncated file, said as such
    try:
        generator = LamaGenerator(LamaConfig(**spec.arch.get("config", {})))
        check_state(generator, generator_state(read_tensors(path), path), path)
    except ModelUnavailable as exc:
        raise BadInput(str(exc)) from exc


def _check_diffusers_folder(path: Path) -> None:
    index = load_json(
        read_regular(path / "model_index.json", 1 << 20, "model_index.json"), "model_index.json"
    )
    if not isinstance(index, dict):
        raise BadInput(f"{path}/model_index.json is not a JSON object.")
    for component in ("unet", "vae", "text_encoder"):
        weights = sorted((path / component).glob("*.safetensors"))
        if not weights:
            raise BadInput(f"{path} has no {component}/*.safetensors weights.")
        shapes: Shapes = {}
        for file in weights:
            shapes.update(safetensors_shapes(file))
        if component == "unet":
            config = load_json(
                read_regular(path / "unet" / "config.json", 1 << 20, "unet/config.json"),
                "unet/config.json",
            )
            channels = config.get("in_channels") if isinstance(config, dict) else None
            conv = shapes.get("conv_in.weight")
            if channels != 9 or conv is None or len(conv) != 4 or conv[1] != 9:
                raise BadInput(
                    f"{path} is not an inpainting model: its UNet takes {channels} input "
                    "channels (an inpainting UNet takes 9: latents, mask, masked image)."
                )
