"""Dense open-vocabulary segmentation on CLIP: SCLIP (Correlative Self-Attention, METHOD.md §1)
and NACLIP (``fixtures/README_naclip.md``) share this pipeline and differ only in the rewritten
last vision block (:class:`LastBlock`), the positional-embedding interpolation, the
post-processing and PAMR (:class:`NaclipSettings` holds NACLIP's values).

The image features do not depend on the text, so they are computed once per image and settings
and kept in the :class:`ImageSession`, in two stages: the tokens entering the last block (all
other blocks, nearly all the work, the same for both methods) and the per-window patch features
after it. A new query then costs a matrix product, the window averaging and a resize (and PAMR
where it is on); the other method on the same image costs one block.

Memory: the resized network input is small (short side 336), but the class maps at the
original size are ``names × H × W`` floats. Maps, probabilities and labels are computed at a
working size of at most ``max_work_pixels`` (4 MP by default, fewer when many names are
queried, so that ``names × pixels`` stays under ``max_map_bytes``); the label map is scaled to
the original size by nearest neighbour and the per-class scores are scaled up only when they
fit ``max_score_bytes``; otherwise the result carries no scores and says so in its messages. A
12,000 × 9,000 photo therefore never allocates a full-size ``C × H × W`` float map.

PAMR refines the logits at the working size, or below it: at most ``pamr_max_pixels`` (1 MP),
and small enough that its three maps and its step matrix stay under ``max_map_bytes``; its
guide (the network input, which holds no detail beyond the 336 px short side) and dilations are
scaled with it and the refined logits are resized to the working size. Every benchmark image
(VOC, COCO, ADE20K: under 0.5 MP) is refined at its own size, as the reference does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ovpaint.core.errors import BadInput
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.paths import read_list, resource
from ovpaint.core.prompt import ClassQuery
from ovpaint.models import device as devices
from ovpaint.models.clip_loader import ClipBundle
from ovpaint.models.protocols import Models
from ovpaint.pipelines.result import BACKGROUND, SegmentationResult
from ovpaint.pipelines.segmentation.settings import DenseSettings
from ovpaint.pipelines.session import ImageSession

BACKGROUND_FILE = ("classes", "background_stuff.txt")


# --------------------------------------------------------------------------- preprocessing
#: The smallest side the network input may have: one patch. segment() refuses strips past
#: 1:100; a caller below it with one past 1:128 would otherwise get under a patch once the
#: long side is capped.
MIN_INPUT_SIDE = 16


def resized_size(height: int, width: int, short_side: int, max_long_side: int) -> tuple[int, int]:
    """(h, w) with the short side ``short_side`` and the long side at most ``max_long_side``,
    rounded as mmcv's keep-ratio rescale does (the reference pipeline's); no side under
    :data:`MIN_INPUT_SIDE` (an extreme strip is stretched across, not refused)."""
    scale = min(max_long_side / max(height, width), short_side / min(height, width))
    return (
        max(MIN_INPUT_SIDE, int(height * scale + 0.5)),
        max(MIN_INPUT_SIDE, int(width * scale + 0.5)),
    )


def preprocess(
    image: np.ndarray,
    short_side: int = 336,
    max_long_side: int = 2048,
    mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
    std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711),
) -> torch.Tensor:
    """1×3×h×w float32: resized (bilinear, align_corners=False, no antialias, as the reference)
    and normalised. Shrinking by more than 2× first area-averages on the uint8 image, so a
    huge photo is neither aliased nor turned into a full-size float tensor."""
    h, w = resized_size(image.shape[0], image.shape[1], short_side, max_long_side)
    if image.shape[0] > 2 * h and image.shape[1] > 2 * w:
        image = cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float()
    if (h, w) != tuple(x.shape[-2:]):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return (x - m) / s


def window_boxes(
    height: int, width: int, crop: int = 224, stride: int = 112
) -> list[tuple[int, int, int, int]]:
    """Sliding windows (y1, y2, x1, x2); a window crossing the border is shifted back inside,
    an image smaller than ``crop`` is one window of its own size."""
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y1, x1 = r * stride, c * stride
            y2, x2 = min(y1 + crop, height), min(x1 + crop, width)
            boxes.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return boxes


# --------------------------------------------------------------------------- the network
def _positional_embedding(visual: Any, gh: int, gw: int, interp: str = "size") -> torch.Tensor:
    """The positional embedding for a gh×gw patch grid: the checkpoint's own when the grid is
    its square, else bicubic (align_corners=False) from it. ``size`` samples at the exact
    grid; ``offset`` is the DINO variant NACLIP uses (scale factors ``(g + 0.1) / g0`` kept as
    given, which samples slightly differently)."""
    pos = visual.positional_embedding
    n = pos.shape[0] - 1
    side = int(round(math.sqrt(n)))
    if (gh, gw) == (side, side):
        return pos
    grid = pos[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    if interp == "offset":
        grid = F.interpolate(
            grid,
            scale_factor=((gh + 0.1) / side, (gw + 0.1) / side),
            mode="bicubic",
            align_corners=False,
            recompute_scale_factor=False,
        )
    else:
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(gh * gw, -1).to(pos.dtype)
    return torch.cat([pos[:1], grid])


def _embed(visual: Any, x: torch.Tensor, interp: str = "size") -> tuple[torch.Tensor, int, int]:
    x = visual.conv1(x)
    gh, gw = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + _positional_embedding(visual, gh, gw, interp).to(x.dtype)
    return visual.ln_pre(x), int(gh), int(gw)


def low_weights(clip: ClipBundle, dtype: torch.dtype) -> dict:
    """The low-precision weights of a CLIP bundle's vision tower, for :func:`_linear`: converted
    once per bundle and dropped with it (converting ViT-B/16's 85 M weights took 64 ms, 9 % of
    a dense pass, on 2 cores; the copy holds 170 MB in bf16, 85 MB in int8)."""
    return clip.derived.get(("low_weights", dtype), lambda: {"dtype": dtype})


def _low_copy(weight: torch.Tensor, dtype: torch.dtype) -> tuple:
    if dtype != torch.int8:
        return (weight.to(dtype),)
    # int8 per output channel, stored in×out for torch._int_mm
    scale = weight.float().abs().amax(dim=1).clamp_min(1e-12) / 127.0
    quantised = torch.round(weight.float() / scale[:, None]).to(torch.int8)
    return quantised.t().contiguous(), scale


def _int8_product(y: torch.Tensor, weight_t: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Dynamic int8 ``y @ Wᵀ``: each row of ``y`` quantised with its own scale, the product
    in int32, then scaled back by the row and the weight's per-channel scales."""
    flat = y.reshape(-1, y.shape[-1]).float()
    row_scale = flat.abs().amax(dim=1, keepdim=True).clamp_min_(1e-12).div_(127.0)
    quantised = torch.round(flat / row_scale).to(torch.int8)
    out = torch._int_mm(quantised, weight_t).float().mul_(row_scale).mul_(scale)
    return out.view(*y.shape[:-1], -1)


def _linear(
    layer_w: torch.Tensor, layer_b: torch.Tensor | None, y: torch.Tensor, low: dict | None
) -> torch.Tensor:
    """``F.linear``; with ``low`` (a cache of low-precision weights) the product runs in that
    precision (bf16/fp16, or dynamic int8) and its result returns to the stream's dtype."""
    if low is None:
        return F.linear(y, layer_w, layer_b)
    stamp = (layer_w._version, layer_w.device)  # a weight changed in place or moved: remade
    entry = low.get(id(layer_w))
    if entry is None or entry[0] != stamp:
        entry = low[id(layer_w)] = (stamp, *_low_copy(layer_w, low["dtype"]))
    if low["dtype"] == torch.int8:
        out = _int8_product(y, entry[1], entry[2]).to(y.dtype)
    else:
        w = entry[1]
        out = F.linear(y.to(w.dtype), w).to(y.dtype)
    return out + layer_b if layer_b is not None else out


def _heads(block: Any, x: torch.Tensor, low: dict | None) -> tuple[torch.Tensor, ...]:
    """q, k, v (B×heads×N×head_dim each) of a block's attention on ``ln_1(x)``."""
    attn = block.attn
    y = block.ln_1(x)
    b, n, width = y.shape
    qkv = _linear(attn.in_proj_weight, attn.in_proj_bias, y, low)
    return qkv.view(b, n, 3, attn.num_heads, width // attn.num_heads).permute(2, 0, 3, 1, 4)


def _merge_heads(out: torch.Tensor) -> torch.Tensor:
    b, heads, n, dim = out.shape
    return out.transpose(1, 2).reshape(b, n, heads * dim)


def _mlp_residual(block: Any, x: torch.Tensor, attended: torch.Tensor, low: dict | None):
    attn = block.attn
    x = x + block.ls_1(_linear(attn.out_proj.weight, attn.out_proj.bias, attended, low))
    y = block.ln_2(x)
    y = block.mlp.gelu(_linear(block.mlp.c_fc.weight, block.mlp.c_fc.bias, y, low))
    y = _linear(block.mlp.c_proj.weight, block.mlp.c_proj.bias, y, low)
    return x + block.ls_2(y)


def vit_block(
    block: Any, x: torch.Tensor, csa: bool = False, low: dict | None = None
) -> torch.Tensor:
    """One residual block. With ``csa`` its attention is Correlative Self-Attention:
    ``(softmax(q qᵀ s) + softmax(k kᵀ s)) v`` (a sum of two softmaxes); residual and MLP kept.

    Low precision (``low``) applies to every matrix product except the CSA block's q, k, v,
    and the attention stays in the stream's precision: CSA's two self-softmaxes amplify the
    rounding of q and k. On the parity fixture (bf16): everything 0.13 % of the labels flipped,
    all but the CSA block's q/k/v 0.07 %, all but every block's q/k/v 0.04 %; on ViT-B/16 on 2
    cores the ordinary blocks' q/k/v in fp32 were 30 % of the dense pass."""
    q, k, v = _heads(block, x, None if csa else low)
    if csa:
        out = F.scaled_dot_product_attention(q, q, v) + F.scaled_dot_product_attention(k, k, v)
    else:
        out = F.scaled_dot_product_attention(q, k, v)
    return _mlp_residual(block, x, _merge_heads(out), low)


def neighbourhood_bias(
    gh: int, gw: int, std: float, device: Any = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """NACLIP's additive attention bias over the CLS token and a gh×gw patch grid:
    ``exp(-((i-k)² + (j-l)²) / (2 std²))`` between patches (i, j) and (k, l), unnormalised
    (1 on the diagonal), and 0 in the CLS row and column."""
    ys = torch.arange(gh, dtype=torch.float64).repeat_interleave(gw)
    xs = torch.arange(gw, dtype=torch.float64).repeat(gh)
    d2 = (ys[:, None] - ys[None]) ** 2 + (xs[:, None] - xs[None]) ** 2
    bias = torch.zeros((1 + gh * gw, 1 + gh * gw), dtype=torch.float64)
    bias[1:, 1:] = torch.exp(-d2 / (2.0 * float(std) ** 2))
    return bias.to(device=device, dtype=dtype)


def naclip_block(
    block: Any, x: torch.Tensor, bias: torch.Tensor, low: dict | None = None
) -> torch.Tensor:
    """NACLIP's reduced last block: ``out_proj(softmax(k kᵀ s + bias) v)`` on ``ln_1(x)``,
    with no residual and no MLP (q is not used). q/k/v and the attention stay in the stream's
    precision, as in the CSA block; only ``out_proj`` may run in ``low``."""
    _, k, v = _heads(block, x, None)
    out = F.scaled_dot_product_attention(k, k, v, attn_mask=bias.to(k.dtype))
    attn = block.attn
    return _linear(attn.out_proj.weight, attn.out_proj.bias, _merge_heads(out), low)


@dataclass(frozen=True)
class LastBlock:
    """How the final vision block is rewritten: what tells the dense methods apart.

    ``csa``: SCLIP's Correlative Self-Attention with residual and MLP (METHOD.md §1.3);
    ``naclip``: NACLIP's reduced block with the Gaussian neighbourhood bias
    (``fixtures/README_naclip.md``)."""

    kind: str = "csa"
    gaussian_std: float = 5.0

    def __call__(
        self, block: Any, x: torch.Tensor, grid: tuple[int, int], low: dict | None
    ) -> torch.Tensor:
        if self.kind == "naclip":
            bias = neighbourhood_bias(*grid, self.gaussian_std, x.device, x.dtype)
            return naclip_block(block, x, bias, low)
        return vit_block(block, x, csa=True, low=low)


def _tap_stops(layers: Sequence[int] | None, depth: int) -> list[int]:
    """Blocks run before the rewritten last block, per requested layer (the depth itself: the
    plain path, all but the last block)."""
    return sorted({min(max(int(n), 0), depth - 1) for n in (layers or [depth])})


def trunk_embeddings(
    visual: Any,
    x: torch.Tensor,
    layers: Sequence[int] | None = None,
    low: dict | None = None,
    interp: str = "size",
) -> tuple[dict[int, torch.Tensor], int, int]:
    """The token sequences that enter the last block: ``{blocks run: tokens}`` (one entry
    per requested layer) and the patch grid. This is nearly all of a dense pass, and it does
    not depend on how the last block is rewritten."""
    blocks = visual.transformer.resblocks
    if not getattr(visual.transformer, "batch_first", True):
        raise BadInput("This CLIP build runs its transformer sequence-first; not supported.")
    x, gh, gw = _embed(visual, x, interp)
    stops = _tap_stops(layers, len(blocks))
    taps: dict[int, torch.Tensor] = {}
    for i in range(stops[-1]):
        if i in stops:
            taps[i] = x
        x = vit_block(blocks[i], x, low=low)
    taps[stops[-1]] = x
    return taps, gh, gw


def head_embeddings(
    visual: Any,
    taps: dict[int, torch.Tensor],
    grid: tuple[int, int],
    layers: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    low: dict | None = None,
    last: LastBlock = LastBlock(),
) -> torch.Tensor:
    """All tokens after the rewritten last block, ``ln_post`` and ``proj`` (before
    normalisation); with ``layers`` the L2-normalised outputs of each tap, averaged."""
    blocks = visual.transformer.resblocks
    depth = len(blocks)
    if layers is None:
        out = last(blocks[-1], taps[depth - 1], grid, low)
        return visual.ln_post(out) @ visual.proj
    weights = [1.0] * len(layers) if weights is None else list(weights)
    wsum = float(sum(weights))
    total = None
    for n, wgt in zip(layers, weights, strict=True):
        out = last(blocks[-1], taps[min(max(int(n), 0), depth - 1)], grid, low)
        feat = F.normalize((visual.ln_post(out) @ visual.proj).float(), dim=-1)
        feat = feat * (float(wgt) / wsum)
        total = feat if total is None else total + feat
    return total


def dense_embeddings(
    visual: Any,
    x: torch.Tensor,
    layers: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    low: dict | None = None,
    last: LastBlock = LastBlock(),
    interp: str = "size",
) -> tuple[torch.Tensor, int, int]:
    """All tokens (B×(1+gh·gw)×D, CLS first) after the rewritten last block (SCLIP's CSA by
    default), ``ln_post`` and ``proj``, before normalisation, and the patch grid. With
    ``layers`` (numbers of blocks run before the last block; the depth itself is the plain
    path) the L2-normalised outputs are averaged."""
    taps, gh, gw = trunk_embeddings(visual, x, layers, low, interp)
    return head_embeddings(visual, taps, (gh, gw), layers, weights, low, last), gh, gw


_DTYPE_OF = {**devices.DTYPES, "int8": torch.int8}  # the storage precisions and int8 products


def compute_dtype(
    name: str, device: torch.device, model_dtype: torch.dtype, workload: str = "dense"
) -> torch.dtype:
    """The dtype a setting names. ``auto`` on a CPU is the precision measured fastest for
    ``workload`` on this machine (callers holding a manager resolve it through the manager
    first, so ``--dtype`` applies); on a GPU it is the model's (chosen there by measurement
    when the manager loaded it)."""
    if name == "auto":
        if device.type != "cpu":
            return model_dtype
        from ovpaint.models.calibration import Calibrator

        name = Calibrator().choice(workload, device)
    if name == "fp16":
        return torch.float16 if device.type != "cpu" else torch.bfloat16
    if name == "int8" and device.type != "cpu":
        return model_dtype  # int8 products are a CPU mode
    return _DTYPE_OF[name]


def resolve_precision(
    name: str,
    manager: Any,
    workload: str,
    *,
    device: torch.device | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> str:
    """A setting's precision with ``auto`` replaced by the manager's choice for ``workload``
    (``--dtype``, else the measurement), so caches keyed on it change with the choice. Without
    a manager, a CPU ``device`` gets the measured choice; otherwise ``auto`` stays."""
    if name != "auto":
        return name
    choose = getattr(manager, "precision", None)
    if choose is not None:
        return choose(workload, progress=progress, cancel=cancel)
    if device is not None and device.type == "cpu":
        from ovpaint.models.calibration import Calibrator

        return Calibrator().choice(workload, device, progress=progress, cancel=cancel)
    return name


VIT_B16 = {"width": 768, "heads": 12}


def vit_block_probe(batch: int, tokens: int, kernel=None):
    """A calibration probe: one ordinary ViT-B/16 block (width 768, 12 heads, quick GELU) on
    ``batch`` × ``tokens``, through ``kernel(block, x, precision, low)`` (default:
    :func:`vit_block`) with ``low`` the low-precision weight copies the dense pass keeps on a
    CPU (None for fp32, and on a GPU, where the block's weights hold the precision)."""

    def probe(device: torch.device, precision: str):
        from open_clip.transformer import QuickGELU, ResidualAttentionBlock

        width = VIT_B16["width"]
        block = ResidualAttentionBlock(width, VIT_B16["heads"], act_layer=QuickGELU)
        block = block.eval().requires_grad_(False)
        x = torch.randn(batch, tokens, width)
        if device.type != "cpu":
            block.to(device, devices.DTYPES[precision])
            x = x.to(device, devices.DTYPES[precision])
            precision = "fp32"  # the weights already hold the precision
        low = None if precision == "fp32" else {"dtype": _DTYPE_OF[precision]}
        if kernel is not None:
            return lambda: kernel(block, x, precision, low)

        def run():
            with torch.no_grad():
                return vit_block(block, x, low=low)

        return run

    return probe


# the dense pass: one batch of 6 windows (a 336×448 input) of 197 tokens
dense_probe = vit_block_probe(6, 197)


@dataclass
class WindowFeatures:
    """Per-window L2-normalised patch features of one image: the text-independent part."""

    features: torch.Tensor  # windows × D × gh × gw, float32
    boxes: list[tuple[int, int, int, int]]
    input_hw: tuple[int, int]  # resized network input size
    crop_hw: tuple[int, int]
    operators: dict = field(default_factory=dict)  # resize operators per output size


@dataclass
class TrunkTokens:
    """The tokens entering the last block for every window of one image: the expensive,
    method-independent part of a dense pass (SCLIP and NACLIP differ only after it)."""

    taps: dict[int, torch.Tensor]  # blocks run → windows × tokens × width, on the CPU
    grid: tuple[int, int]  # patch grid of a window
    boxes: list[tuple[int, int, int, int]]
    input_hw: tuple[int, int]  # resized network input size
    crop_hw: tuple[int, int]


def _precision(
    clip: ClipBundle, settings: DenseSettings
) -> tuple[Any, torch.device, torch.dtype, Any]:
    """(visual tower, device, model dtype, low-precision weight cache or None).

    Low precision goes to the matrix products that tolerate it (see vit_block); on a GPU the
    model already holds its weights in the chosen half precision."""
    visual = clip.model.visual
    device = next(visual.parameters()).device
    model_dtype = next(visual.parameters()).dtype
    dtype = compute_dtype(settings.compute_dtype, device, model_dtype, "dense")
    low = low_weights(clip, dtype) if dtype != model_dtype and device.type == "cpu" else None
    return visual, device, model_dtype, low


def dense_boxes(h: int, w: int, settings: DenseSettings) -> list[tuple[int, int, int, int]]:
    """The windows of a resized input: the sliding windows, or the whole input as one."""
    if settings.whole_image:
        return [(0, h, 0, w)]
    return window_boxes(h, w, settings.crop, settings.stride)


def trunk_tokens(
    clip: ClipBundle,
    x: torch.Tensor,
    settings: DenseSettings,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> TrunkTokens:
    """Run every window through all blocks but the last, in batches."""
    visual, device, model_dtype, low = _precision(clip, settings)
    h, w = x.shape[-2:]
    boxes = dense_boxes(int(h), int(w), settings)
    crops = torch.cat([x[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
    parts: dict[int, list[torch.Tensor]] = {}
    grid = (0, 0)
    if progress:
        progress.stage("windows", len(boxes))
    with torch.no_grad():
        for start in range(0, len(boxes), settings.batch_size):
            if cancel:
                cancel.check()
            batch = crops[start : start + settings.batch_size].to(device, model_dtype)
            taps, gh, gw = trunk_embeddings(
                visual, batch, settings.layers, low, settings.pos_interp
            )
            grid = (gh, gw)
            for stop, tokens in taps.items():
                parts.setdefault(stop, []).append(tokens.cpu())
            if progress:
                progress.update(min(start + settings.batch_size, len(boxes)))
    crop_hw = (boxes[0][1] - boxes[0][0], boxes[0][3] - boxes[0][2])
    taps = {stop: torch.cat(chunks) for stop, chunks in parts.items()}
    return TrunkTokens(taps, grid, boxes, (int(h), int(w)), crop_hw)


def head_features(
    clip: ClipBundle, trunk: TrunkTokens, settings: DenseSettings, cancel: CancelToken | None = None
) -> WindowFeatures:
    """The method's last block on cached trunk tokens → per-window normalised patch features."""
    visual, device, model_dtype, low = _precision(clip, settings)
    n = len(trunk.boxes)
    gh, gw = trunk.grid
    out = []
    with torch.no_grad():
        for start in range(0, n, settings.batch_size):
            if cancel:
                cancel.check()
            taps = {
                stop: t[start : start + settings.batch_size].to(device, model_dtype)
                for stop, t in trunk.taps.items()
            }
            tokens = head_embeddings(
                visual,
                taps,
                trunk.grid,
                settings.layers,
                settings.layer_weights,
                low,
                LastBlock(settings.last_block, settings.gaussian_std),
            )
            feat = F.normalize(tokens[:, 1:].float(), dim=-1)
            out.append(feat.transpose(1, 2).reshape(len(feat), -1, gh, gw).cpu())
    return WindowFeatures(torch.cat(out), trunk.boxes, trunk.input_hw, trunk.crop_hw)


def window_features(
    clip: ClipBundle,
    x: torch.Tensor,
    settings: DenseSettings,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> WindowFeatures:
    """Every window through the method's modified vision tower (trunk, then last block)."""
    trunk = trunk_tokens(clip, x, settings, cancel=cancel, progress=progress)
    return head_features(clip, trunk, settings, cancel=cancel)


def slide_logits(feats: WindowFeatures, text: torch.Tensor) -> torch.Tensor:
    """names×h×w cosine logits at the network input size: each window's patch map upsampled
    (bilinear) to the window, overlaps averaged."""
    text = text.to(torch.float32)
    h, w = feats.input_hw
    n = text.shape[0]
    total = torch.zeros((n, h, w), dtype=torch.float32)
    count = torch.zeros((1, h, w), dtype=torch.float32)
    patch = torch.einsum("bdhw,nd->bnhw", feats.features, text)
    up = F.interpolate(patch, size=feats.crop_hw, mode="bilinear", align_corners=False)
    for (y1, y2, x1, x2), logits in zip(feats.boxes, up, strict=True):
        total[:, y1:y2, x1:x2] += logits
        count[:, y1:y2, x1:x2] += 1
    return total / count


def _interp_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out × n_in) matrix of 1-D linear interpolation, align_corners=False, as used by
    ``F.interpolate(mode="bilinear")`` along one axis (bilinear is separable)."""
    if n_in == n_out:
        return torch.eye(n_in)
    eye = torch.eye(n_in)[None]
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T


def _axis_operator(
    intervals: list[tuple[int, int]], n_patch: int, crop: int, n_input: int, n_out: int
) -> torch.Tensor:
    """(n_out × len(intervals)·n_patch): patch values of every window along one axis → the
    output axis (upsample to the window, average overlaps, resize to ``n_out``)."""
    up = _interp_matrix(n_patch, crop)
    place = torch.zeros((n_input, len(intervals) * n_patch))
    count = torch.zeros(n_input)
    for i, (a, b) in enumerate(intervals):
        place[a:b, i * n_patch : (i + 1) * n_patch] = up
        count[a:b] += 1
    return _interp_matrix(n_input, n_out) @ (place / count[:, None])


def fast_final_logits(
    feats: WindowFeatures, text: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """``final_logits(slide_logits(feats, text), size)`` in two matrix products per name.

    Windows form a grid of row and column intervals, and upsampling, overlap averaging and the
    final resize are separable linear maps, so the whole chain is ``Y · P · Xᵀ`` with ``P``
    the names' patch logits of all windows tiled as one block matrix."""
    rows = sorted({(b[0], b[1]) for b in feats.boxes})
    cols = sorted({(b[2], b[3]) for b in feats.boxes})
    n_win, _, gh, gw = feats.features.shape
    if len(rows) * len(cols) != n_win:  # not a grid: the generic path
        return final_logits(slide_logits(feats, text), size)
    key = (tuple(rows), tuple(cols), gh, gw, feats.crop_hw, feats.input_hw, tuple(size))
    ops = feats.operators.get(key)
    if ops is None:
        ops = (
            _axis_operator(rows, gh, feats.crop_hw[0], feats.input_hw[0], size[0]),
            _axis_operator(cols, gw, feats.crop_hw[1], feats.input_hw[1], size[1]),
        )
        feats.operators[key] = ops
    y_op, x_op = ops
    order = {(b[0], b[1], b[2], b[3]): i for i, b in enumerate(feats.boxes)}
    idx = [order[(r[0], r[1], c[0], c[1])] for r in rows for c in cols]
    f = feats.features[idx].flatten(2)  # windows × D × gh·gw
    patch = torch.matmul(text.to(torch.float32), f)  # windows × names × gh·gw
    n = patch.shape[1]
    block = patch.view(len(rows), len(cols), n, gh, gw).permute(2, 0, 3, 1, 4)
    block = block.reshape(n, len(rows) * gh, len(cols) * gw)
    return torch.matmul(torch.matmul(y_op, block), x_op.T)


def final_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of names×h×w logits to ``size``."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]


def postprocess(
    logits: torch.Tensor,
    name_class: Sequence[int] | torch.Tensor,
    logit_scale: float,
    prob_thd: float = 0.0,
    area_thd: float | None = None,
    *,
    consume: bool = False,
    renormalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(probs classes×H×W, labels H×W): scale, softmax over all names, max over each class's
    names, optional area threshold on non-background classes, argmax, ``prob_thd`` → class 0;
    with ``renormalize`` the class probabilities are then divided by their sum (NACLIP).
    ``consume`` lets it overwrite ``logits`` (a temporary of the caller) to save a copy."""
    owner = torch.as_tensor(name_class, dtype=torch.long)
    n_classes = int(owner.max().item()) + 1
    if logit_scale != 1.0:
        scaled = logits.float() * logit_scale
    else:
        scaled = logits.float() if consume else logits.float().clone()
    # max over a class's names of the softmax == exp(max scaled logit − logsumexp(all names))
    best = torch.full((n_classes, *logits.shape[1:]), float("-inf"))
    for c in range(n_classes):
        idx = torch.nonzero(owner == c).flatten()
        if len(idx) == 0:
            continue
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        group = scaled[lo:hi] if hi - lo == len(idx) else scaled[idx]
        best[c] = group[0] if len(group) == 1 else group.amax(dim=0)
    top = best.amax(dim=0)
    lse = scaled.sub_(top).exp_().sum(dim=0).log_().add_(top)
    probs = best.sub_(lse).exp_()
    if area_thd is not None and n_classes > 1:
        pred = probs.argmax(dim=0)
        area = torch.bincount(pred.flatten(), minlength=n_classes)[1:].float()
        keep = (area > area_thd * area.sum()).float()
        probs[1:] *= keep.view(-1, 1, 1)
    best, labels = probs.max(dim=0)
    labels[best < prob_thd] = 0
    if renormalize:
        probs /= probs.sum(dim=0, keepdim=True).clamp_min_(torch.finfo(probs.dtype).tiny)
    return probs, labels


# --------------------------------------------------------------------------- the method
def background_words() -> tuple[str, ...]:
    """The implicit background list a lone query is scored against (METHOD.md §1.7)."""
    return read_list(resource(*BACKGROUND_FILE))


def class_names(
    queries: Sequence[ClassQuery], implicit_background: bool = True
) -> tuple[list[str], list[int], list[str]]:
    """(names, name → class index, class display names with class 0 = background).

    A first query named "background" is the background with its own names (benchmarks); else
    the implicit background words, minus any the user asked for, are class 0."""
    queries = list(queries)
    names: list[str] = []
    owner: list[int] = []
    if queries and queries[0].name.lower() == BACKGROUND:
        bg = list(queries.pop(0).synonyms)
    elif implicit_background:
        asked = {n.lower() for q in queries for n in q.synonyms}
        bg = [w for w in background_words() if w.lower() not in asked]
    else:
        bg = []
    names += bg
    owner += [0] * len(bg)
    for i, q in enumerate(queries, start=1):
        names += list(q.synonyms)
        owner += [i] * len(q.synonyms)
    return names, owner, [BACKGROUND] + [q.name for q in queries]


def _capped(height: int, width: int, cap: int) -> tuple[int, int]:
    if height * width <= cap:
        return height, width
    scale = math.sqrt(cap / (height * width))
    return max(1, int(height * scale)), max(1, int(width * scale))


def work_size(height: int, width: int, n_names: int, settings: DenseSettings) -> tuple[int, int]:
    """The size at which class maps are computed: the original size unless that exceeds the
    pixel cap or the map-bytes cap (see the module docstring)."""
    cap = min(settings.max_work_pixels, settings.max_map_bytes // (4 * max(n_names, 1)))
    return _capped(height, width, cap)


def pamr_size(work_hw: tuple[int, int], n_names: int, settings: DenseSettings) -> tuple[int, int]:
    """The size PAMR runs at: the work size unless that exceeds ``pamr_max_pixels`` or PAMR's
    maps (its input and two step buffers, a float per name each) and step matrix would exceed
    ``max_map_bytes``; then its refined logits are resized (bilinear) to the work size."""
    from ovpaint.pipelines.segmentation.pamr import operator_bytes_per_pixel

    per_pixel = 12 * max(n_names, 1) + operator_bytes_per_pixel(settings.pamr_dilations)
    return _capped(*work_hw, min(settings.pamr_max_pixels, settings.max_map_bytes // per_pixel))


def _image_key(clip: ClipBundle, settings: DenseSettings) -> tuple:
    return (clip.model_id, settings.short_side, settings.max_long_side)


def session_input(session: ImageSession, clip: ClipBundle, settings: DenseSettings) -> torch.Tensor:
    """The session's image resized and normalised for the network (1×3×h×w), kept."""
    key = ("dense_input", *_image_key(clip, settings))
    cached = session.get(key)
    if cached is not None:
        return cached
    x = preprocess(session.image, settings.short_side, settings.max_long_side, clip.mean, clip.std)
    return session.put(key, x)


def _interpolates(session: ImageSession, clip: ClipBundle, settings: DenseSettings) -> bool:
    """Whether the windows' patch grid differs from the checkpoint's (only then does the
    positional-embedding interpolation, and so ``pos_interp``, matter)."""
    h, w = resized_size(session.height, session.width, settings.short_side, settings.max_long_side)
    y1, y2, x1, x2 = dense_boxes(h, w, settings)[0]
    patch = clip.patch_size
    side = int(round(math.sqrt(clip.model.visual.positional_embedding.shape[0] - 1)))
    return ((y2 - y1) // patch, (x2 - x1) // patch) != (side, side)


def _feature_keys(
    session: ImageSession, clip: ClipBundle, settings: DenseSettings
) -> tuple[tuple, tuple]:
    """Session keys of the trunk tokens and of the method's window features."""
    windows = None if settings.whole_image else (settings.crop, settings.stride)
    trunk_key = (
        "dense_trunk",
        *_image_key(clip, settings),
        windows,
        settings.layers,
        settings.pos_interp if _interpolates(session, clip, settings) else None,
        settings.compute_dtype,
        str(clip.device),
        str(clip.dtype),
    )
    last = (settings.last_block, settings.gaussian_std if settings.last_block == "naclip" else None)
    return trunk_key, ("dense_windows", *trunk_key[1:], last, settings.layer_weights)


def session_window_features(
    session: ImageSession,
    clip: ClipBundle,
    settings: DenseSettings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> WindowFeatures:
    """Window features of the session's image, computed once per model and settings.

    The trunk tokens (all blocks but the last) are kept too, so another method on the same
    image (SCLIP after NACLIP, or the reverse) runs only its own last block."""
    trunk_key, key = _feature_keys(session, clip, settings)
    cached = session.get(key)
    if cached is not None:
        return cached
    trunk = session.get(trunk_key)
    if trunk is None:
        x = session_input(session, clip, settings)
        trunk = trunk_tokens(clip, x, settings, cancel=cancel, progress=progress)
        session.put(trunk_key, trunk)
    feats = head_features(clip, trunk, settings, cancel=cancel)
    return session.put(key, feats)


def _pamr_geometry(
    work_hw: tuple[int, int], original_hw: tuple[int, int], s: DenseSettings
) -> tuple[int, ...]:
    """PAMR's dilations at the work size: scaled with it, so they span the same image area
    as at the original size."""
    scale = min(work_hw[0] / original_hw[0], work_hw[1] / original_hw[1])
    return tuple(sorted({max(1, int(round(d * scale))) for d in s.pamr_dilations}))


def _pamr_guide(guide_input: torch.Tensor, work_hw: tuple[int, int]) -> torch.Tensor:
    """The guide: the network input resized (bilinear) to the work size, as the reference
    resizes it to the original size."""
    guide = F.interpolate(guide_input.float(), size=work_hw, mode="bilinear", align_corners=False)
    return guide[0]


@dataclass
class PamrCache:
    """PAMR's results for one image, feature set and work size: its step matrix and each
    name's refined logits. PAMR is linear and refines each map on its own, so a re-query
    refines only the names it has not seen (the implicit background words never again)."""

    operator: Any = None
    maps: dict[tuple, torch.Tensor] = field(default_factory=dict)
    nbytes: int = 0


def pamr_logits(
    session: ImageSession,
    feats_key: tuple,
    feats: WindowFeatures,
    text: torch.Tensor,
    names: Sequence[str],
    work_hw: tuple[int, int],
    guide_input: torch.Tensor,
    s: DenseSettings,
) -> torch.Tensor:
    """names×h×w PAMR-refined logits (``text`` already scaled) at the work size, reusing and
    filling the session's :class:`PamrCache` within ``pamr_cache_bytes``. PAMR runs at
    :func:`pamr_size`, its guide and dilations scaled with it."""
    from ovpaint.pipelines.segmentation.pamr import pamr_operator

    hw = pamr_size(work_hw, len(names), s)
    dilations = _pamr_geometry(hw, (session.height, session.width), s)
    key = ("pamr", feats_key, hw, s.pamr_steps, dilations)
    cache = session.get(key) or session.put(key, PamrCache())
    ids = [(name, s.templates, float(s.logit_scale)) for name in names]
    todo = [i for i, name_id in enumerate(ids) if name_id not in cache.maps]
    fresh = None
    if todo:
        operator = cache.operator or pamr_operator(_pamr_guide(guide_input, hw), dilations)
        if cache.operator is None and cache.nbytes + operator.nbytes <= s.pamr_cache_bytes:
            cache.operator = operator
            cache.nbytes += operator.nbytes
        fresh = operator.apply(fast_final_logits(feats, text[todo], hw), s.pamr_steps)
        for row, i in enumerate(todo):
            size = fresh[row].numel() * 4
            if ids[i] not in cache.maps and cache.nbytes + size <= s.pamr_cache_bytes:
                cache.maps[ids[i]] = fresh[row].clone()
                cache.nbytes += size
    if len(todo) == len(ids):
        out = fresh
    else:
        out = torch.empty((len(ids), *hw), dtype=torch.float32)
        position = {i: row for row, i in enumerate(todo)}
        for i, name_id in enumerate(ids):
            out[i] = fresh[position[i]] if i in position else cache.maps[name_id]
    return final_logits(out, work_hw)


def dense_probabilities(
    session: ImageSession,
    queries: Sequence[ClassQuery],
    manager: Models,
    settings: DenseSettings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    timings: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """(probs classes×h×w, labels h×w at the work size, class names, messages)."""
    from ovpaint.pipelines.text import text_encoder_for

    timings = {} if timings is None else timings
    messages: list[str] = []
    names, owner, classes = class_names(queries, settings.implicit_background)
    if not names:
        raise BadInput("Nothing to segment: no class names were given.")
    precision = resolve_precision(
        settings.compute_dtype, manager, "dense", progress=progress, cancel=cancel
    )
    settings = replace(settings, compute_dtype=precision)
    t0 = time.perf_counter()
    text = text_encoder_for(manager, settings.templates).encode(names, progress=progress)
    timings["text"] = time.perf_counter() - t0
    if cancel:
        cancel.check()
    t0 = time.perf_counter()
    use_pamr = settings.pamr and settings.pamr_steps > 0
    with manager.use("clip") as clip:
        feats = session_window_features(session, clip, settings, progress=progress, cancel=cancel)
        guide = session_input(session, clip, settings) if use_pamr else None
        feats_key = _feature_keys(session, clip, settings)[1]
    timings["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    h, w = work_size(session.height, session.width, len(names), settings)
    if (h, w) != (session.height, session.width):
        messages.append(
            f"The {session.width}×{session.height} image was segmented at "
            f"{w}×{h} (working-size cap max_work_pixels={settings.max_work_pixels}, "
            f"max_map_bytes={settings.max_map_bytes}) and the labels scaled up."
        )
    # the logit scale is folded into the text embeddings: one pass less over the maps (PAMR is
    # linear, so it commutes with the scale)
    scaled = text * settings.logit_scale
    if use_pamr:
        if cancel:
            cancel.check()
        t1 = time.perf_counter()
        logits = pamr_logits(session, feats_key, feats, scaled, names, (h, w), guide, settings)
        timings["pamr"] = time.perf_counter() - t1
        ph, pw = pamr_size((h, w), len(names), settings)
        if (ph, pw) != (h, w):
            messages.append(
                f"PAMR refined the class maps at {pw}×{ph} (pamr_max_pixels="
                f"{settings.pamr_max_pixels}, max_map_bytes={settings.max_map_bytes}), its guide "
                f"image downscaled with them, and the result was resized to {w}×{h}."
            )
    else:
        logits = fast_final_logits(feats, scaled, (h, w))
    probs, labels = postprocess(
        logits,
        owner,
        1.0,
        settings.prob_thd,
        settings.area_thd,
        consume=True,
        renormalize=settings.renormalize,
    )
    timings["query"] = time.perf_counter() - t0
    return probs, labels, classes, messages


def to_full_size(
    labels: np.ndarray, probs: np.ndarray | None, hw: tuple[int, int], max_score_bytes: int
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Labels (nearest) and, when they fit ``max_score_bytes``, scores (bilinear) at ``hw``."""
    messages: list[str] = []
    h, w = hw
    if labels.shape != hw:
        labels = cv2.resize(labels.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    if probs is not None and probs.shape[1:] != hw:
        if probs.shape[0] * h * w * 4 > max_score_bytes:
            messages.append(
                "Per-class scores were left out: at full size they would need "
                f"{probs.shape[0] * h * w * 4 / 1e9:.1f} GB."
            )
            probs = None
        else:
            probs = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in probs])
    return labels, probs, messages


def segment_dense(
    session: ImageSession,
    queries: Sequence[ClassQuery],
    manager: Models,
    settings: DenseSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    name: str = "dense",
) -> SegmentationResult:
    """A dense method (SCLIP, or NACLIP with :class:`NaclipSettings`; ``name`` is what the
    result says): labels and per-class probabilities."""
    s = settings or DenseSettings()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    probs, labels, classes, messages = dense_probabilities(
        session, queries, manager, s, progress=progress, cancel=cancel, timings=timings
    )
    full_labels, scores, more = to_full_size(
        labels.numpy(), probs.numpy(), (session.height, session.width), s.max_score_bytes
    )
    timings["total"] = time.perf_counter() - t0
    return SegmentationResult(full_labels, classes, scores, name, timings, messages + more)
