"""Proposal path (METHOD.md §3): SAM2 automatic masks, each scored by CLIP, then selected.

Three parts, each usable alone:

1. :func:`generate_masks` — SAM2 automatic mask generation with the thesis's settings (32×32
   grid, predicted IoU 0.88, stability 0.95, the rest as sam2's ``SAM2AutomaticMaskGenerator``).
   It returns the same masks, boxes and scores as sam2's generator in fp32, several times
   faster, because it

   - reuses the image embedding cached in :class:`~ovpaint.pipelines.session.ImageSession`;
   - computes the prompt-independent half of the decoder's first two-way block once per image
     (the image-side key/value/query projections) instead of once per grid point, and keeps
     the positional encoding in the memory layout the additions want;
   - runs the decoder's upscaling head only for prompts with at least one mask that passes the
     predicted-IoU filter (the IoU head reads the transformer's tokens only, so the filter is
     decided before any mask exists), and upsamples to full size only those masks;
   - decodes in small chunks that stay in the CPU cache, and keeps survivors as bit-packed
     masks instead of RLE lists deep-copied per batch.

   Every per-prompt tensor operation is the one sam2 runs, on tensors of the same memory layout
   (a matrix product's rounding depends on the layout of its input), so the masks, boxes and the
   set and order of kept masks are identical to sam2's, and the float scores equal within 1e-6
   relative. Not bitwise: a CPU's math library may pick another kernel for our chunk size than
   for sam2's batch (seen on an Intel Xeon: the last bit of a predicted IoU moved), and a score
   that close to a threshold could then fall on the other side of it.
   ``tests/pipelines/test_proposals.py`` compares them with sam2's generator.

2. :func:`score_masks` — CLIP similarity of every mask at 224, 336 and 512 px (weights
   0.2/0.5/0.3), crops batched per scale.

3. :func:`select_masks` / :func:`assign_pixels` — background suppression, size filter,
   size-dependent thresholds, same-class mask NMS, or in many-class mode the softmax, adaptive
   class denoising, size penalty and top-K; then each pixel goes to the most confident mask.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
import weakref
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ovpaint.core.errors import BadInput
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.prompt import ClassQuery
from ovpaint.pipelines.result import BACKGROUND, SegmentationResult
from ovpaint.pipelines.session import sam2_autocast

BACKGROUND_WORDS = ("background", "nothing", "empty space")


@dataclass
class ProposalSettings:
    """Every threshold of the proposal path (METHOD.md §3); the defaults are the thesis's."""

    # --- automatic mask generation (names and meaning as in sam2's generator)
    points_per_side: int = 32
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
    low_precision_cpu: bool = True  # bf16 autocast for the CLIP tower on CPUs with fast bf16
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
        if len(self.scales) != len(self.scale_weights):
            raise BadInput("scales and scale_weights must have the same length")
        if self.points_per_side < 1 or self.points_per_batch < 1 or self.decoder_chunk < 1:
            raise BadInput("points_per_side, points_per_batch and decoder_chunk must be ≥ 1")


# =====================================================================================
# 1. Automatic mask generation
# =====================================================================================


@dataclass
class AutoMasks:
    """Masks of one image, in the order sam2's generator returns them (by predicted IoU)."""

    masks: np.ndarray  # N×H×W bool
    boxes: np.ndarray  # N×4 float32, x0, y0, x1, y1 inclusive (sam2's convention)
    predicted_iou: np.ndarray  # N float32
    stability_score: np.ndarray  # N float32
    points: np.ndarray  # N×2 float32, the grid point that produced each mask
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def areas(self) -> np.ndarray:
        return self.masks.reshape(len(self), -1).sum(1) if len(self) else np.zeros(0, np.int64)

    def select(self, keep: np.ndarray) -> AutoMasks:
        return AutoMasks(
            self.masks[keep],
            self.boxes[keep],
            self.predicted_iou[keep],
            self.stability_score[keep],
            self.points[keep],
            dict(self.timings),
        )


_DECODER_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COPIES_LOCK = threading.Lock()


def decoder_copy(decoder: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy of SAM2's mask decoder (a few MB) in ``dtype``, kept while the decoder lives and
    remade when the decoder moved to another device. Its upscaling convolutions use the
    channels-last layout that the decoder's image tokens already have."""
    device = next(decoder.parameters()).device
    with _COPIES_LOCK:
        copies = _DECODER_COPIES.setdefault(decoder, {})
        low = copies.get(dtype)
        if low is None or next(low.parameters()).device != device:
            low = deepcopy(decoder).to(dtype).eval().requires_grad_(False)
            for layer in low.output_upscaling:
                if isinstance(layer, torch.nn.ConvTranspose2d):
                    layer.to(memory_format=torch.channels_last)
            copies[dtype] = low
        return low


def _separate_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def _recombine_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, n, c = x.shape
    return x.transpose(1, 2).reshape(b, n, h * c)


class PromptDecoder:
    """SAM2's mask decoder for many point prompts on one cached image embedding.

    In the model's precision it runs the operations of ``SAM2ImagePredictor._predict`` for
    batches of two or more prompts (sam2 takes another code path for a single prompt, and so
    does :meth:`decode_single`): equal masks, scores equal within float rounding (bitwise on
    most CPUs, not guaranteed where the math library picks a kernel by batch size). In a reduced precision (``dtype``, the refinement's CPU
    mode) it runs a bf16 copy with its cross attentions reassociated (:meth:`_to_image`,
    :meth:`_from_image`) and the upscaling in bands: close to, not equal to, sam2's output.
    """

    def __init__(self, predictor: Any, dtype: torch.dtype | None = None) -> None:
        model = predictor.model
        dec = model.sam_mask_decoder
        if not (dec.use_high_res_features and dec.pred_obj_scores):
            raise ValueError("this SAM2 decoder variant is not supported by the fast path")
        # ``dtype`` (e.g. bf16 on a CPU with native bf16) runs the decoder in a reduced-precision
        # copy; the prompt encoder stays in the model's precision (point coordinates go through
        # Fourier features, which bf16 would blur) and its output is cast.
        self.dtype = dtype or next(dec.parameters()).dtype
        # exact: sam2's own operations, bit-equal to its predictor; otherwise attention over the
        # few prompt tokens is written out (the fused kernel is slow for 8 keys on a CPU)
        self.exact = self.dtype == next(dec.parameters()).dtype
        if not self.exact:
            dec = decoder_copy(dec, self.dtype)
        self.predictor = predictor
        self.model = model
        self.dec = dec
        self.transformer = dec.transformer
        feats = predictor._features
        self.embed = feats["image_embed"][-1].unsqueeze(0).to(self.dtype)
        self.high_res = [f[-1].unsqueeze(0).to(self.dtype) for f in feats["high_res_feats"]]
        if not self.exact:  # the upscaling's layout: adding across layouts is slow
            self.high_res = [f.contiguous(memory_format=torch.channels_last) for f in self.high_res]
        self.image_pe = model.sam_prompt_encoder.get_dense_pe().to(self.dtype)
        c, h, w = self.embed.shape[1:]
        self.embed_hw = (h, w)
        no_mask = model.sam_prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        no_mask = no_mask.to(self.dtype)
        # sam2 repeats the image per prompt; projections of a B ≥ 2 batch laid out as sam2 lays
        # it out give the rounding sam2 gets, so the shared rows are computed on two copies.
        src = torch.repeat_interleave(self.embed, 2, dim=0) + no_mask.expand(2, -1, h, w)
        keys = src.flatten(2).permute(0, 2, 1)
        pe = torch.repeat_interleave(self.image_pe, 2, dim=0).flatten(2).permute(0, 2, 1)
        first = self.transformer.layers[0]
        if not first.skip_first_layer_pe:
            raise ValueError("unexpected SAM2 decoder: first block uses the positional encoding")
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        keys_pe = keys + pe
        self.k0 = _separate_heads(t2i.k_proj(keys_pe), t2i.num_heads)[:1]
        self.v0 = _separate_heads(t2i.v_proj(keys), t2i.num_heads)[:1]
        self.q0 = _separate_heads(i2t.q_proj(keys_pe), i2t.num_heads)[:1]
        # heads × d × tokens, for the reduced-precision image→token attention
        self.q0_t = None if self.exact else self.q0.transpose(-2, -1).contiguous()
        # Elementwise sums give the same values in any layout and their outputs are contiguous
        # either way, so these are kept contiguous (sam2's transposed copies add slowly).
        self.keys = keys[:1].contiguous()
        self.pe = pe[:1].contiguous()

    # -- transformer: everything the IoU head needs
    def _tokens(self, sparse: torch.Tensor) -> torch.Tensor:
        dec = self.dec
        out = torch.cat(
            [dec.obj_score_token.weight, dec.iou_token.weight, dec.mask_tokens.weight], dim=0
        )
        out = out.unsqueeze(0).expand(sparse.size(0), -1, -1)
        return torch.cat((out, sparse), dim=1)

    def _transformer(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = tokens.shape[0]
        first = self.transformer.layers[0]
        queries = first.norm1(self._attend(first.self_attn, tokens, tokens, tokens))
        t2i = first.cross_attn_token_to_image
        q = _separate_heads(t2i.q_proj(queries + tokens), t2i.num_heads)
        out = self._sdpa(q, self.k0.expand(b, -1, -1, -1), self.v0.expand(b, -1, -1, -1))
        queries = first.norm2(queries + t2i.out_proj(_recombine_heads(out)))
        queries = first.norm3(queries + first.mlp(queries))
        i2t = first.cross_attn_image_to_token
        k = _separate_heads(i2t.k_proj(queries + tokens), i2t.num_heads)
        v = _separate_heads(i2t.v_proj(queries), i2t.num_heads)
        if self.exact:
            out = self._sdpa(self.q0.expand(b, -1, -1, -1), k, v)
            out = i2t.out_proj(_recombine_heads(out))
        else:
            out = self._from_image(i2t, None, queries + tokens, queries, q_t=self.q0_t)
        keys = first.norm4(self.keys + out)
        key_pe = self.pe.expand(b, -1, -1)
        for layer in self.transformer.layers[1:]:
            queries, keys = self._block(layer, queries, keys, tokens, key_pe)
        q = queries + tokens
        k = keys + key_pe
        out = self._to_image(self.transformer.final_attn_token_to_image, q, k, keys)
        queries = self.transformer.norm_final_attn(queries + out)
        return queries, keys

    def _block(self, layer, queries, keys, query_pe, key_pe):
        """sam2's TwoWayAttentionBlock, with ``keys + key_pe`` (used twice) computed once."""
        q = queries + query_pe
        queries = layer.norm1(queries + self._attend(layer.self_attn, q, q, queries))
        q = queries + query_pe
        k = keys + key_pe
        queries = layer.norm2(queries + self._to_image(layer.cross_attn_token_to_image, q, k, keys))
        queries = layer.norm3(queries + layer.mlp(queries))
        q = queries + query_pe
        keys = layer.norm4(keys + self._from_image(layer.cross_attn_image_to_token, k, q, queries))
        return queries, keys

    def _sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.exact:
            return F.scaled_dot_product_attention(q, k, v)
        return ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(-1) @ v

    def _attend(self, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """sam2's ``Attention`` module, through :meth:`_sdpa`."""
        if self.exact:
            return attn(q=q, k=k, v=v)
        q = _separate_heads(attn.q_proj(q), attn.num_heads)
        k = _separate_heads(attn.k_proj(k), attn.num_heads)
        v = _separate_heads(attn.v_proj(v), attn.num_heads)
        return attn.out_proj(_recombine_heads(self._sdpa(q, k, v)))

    # The two cross attentions between the few prompt tokens (t) and the image tokens (N = 4096)
    # in reduced precision. Their image-side projections (N × 256 × 128 each, the decoder's
    # largest products) are moved to the token side by reassociation, which halves the work
    # (the same mathematics; the rounding differs, so the exact path keeps sam2's own order).

    def _to_image(
        self, attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """Token→image attention: scores ``(q_h W_k,h) kᵀ`` (``q·b_k`` is constant along a
        softmax row, so it drops out) and values ``(P v) W_vᵀ + b_v`` (rows of P sum to 1)."""
        if self.exact:
            return attn(q=q, k=k, v=v)
        heads = attn.num_heads
        b, t, _ = q.shape
        qh = _separate_heads(attn.q_proj(q), heads)  # b×H×t×d
        d = qh.shape[-1]
        qk = torch.einsum("bhtd,hdc->bhtc", qh, attn.k_proj.weight.view(heads, d, -1))
        p = ((qk.reshape(b, heads * t, -1) @ k.transpose(1, 2)) * d**-0.5).softmax(-1)
        pv = (p @ v).view(b, heads, t, -1)  # b×H×t×C
        out = torch.einsum("bhtc,hdc->bhtd", pv, attn.v_proj.weight.view(heads, d, -1))
        out = out + attn.v_proj.bias.view(heads, 1, d)
        return attn.out_proj(_recombine_heads(out))

    def _from_image(
        self,
        attn: Any,
        q: torch.Tensor | None,
        k: torch.Tensor,
        v: torch.Tensor,
        q_t: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Image→token attention: scores ``q (W_q,hᵀ k_hᵀ) + b_q,h·k_h`` (or from the
        projected queries ``q_t``, H×d×N, when they are shared), softmax over the t tokens,
        output ``Pᵀ (v_h W_o,hᵀ) + b_o``. Computed transposed (t × N) so the softmax runs
        along contiguous memory."""
        if self.exact:
            return attn(q=q, k=k, v=v)
        heads = attn.num_heads
        b, t, _ = k.shape
        kh = _separate_heads(attn.k_proj(k), heads)  # b×H×t×d
        vh = _separate_heads(attn.v_proj(v), heads)
        d = kh.shape[-1]
        if q_t is None:
            kq = torch.einsum("bhtd,hdc->bhtc", kh, attn.q_proj.weight.view(heads, d, -1))
            bias = (kh * attn.q_proj.bias.view(heads, 1, d)).sum(-1).reshape(b, heads * t, 1)
            scores = torch.baddbmm(bias, kq.reshape(b, heads * t, -1), q.transpose(1, 2))
        else:
            scores = (kh @ q_t).reshape(b, heads * t, -1)
        p = (scores * d**-0.5).view(b, heads, t, -1).softmax(-2).view(b, heads * t, -1)
        wo = attn.out_proj.weight.view(-1, heads, d)  # C × H × d
        vo = torch.einsum("bhtd,chd->bhtc", vh, wo).reshape(b, heads * t, -1)
        return torch.baddbmm(attn.out_proj.bias, p.transpose(1, 2), vo)

    def _masks(self, hs: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        dec = self.dec
        b, c = keys.shape[0], keys.shape[2]
        h, w = self.embed_hw
        src = keys.transpose(1, 2).view(b, c, h, w)
        tokens = hs[:, 2 : 2 + dec.num_mask_tokens, :]
        hyper = torch.stack(
            [dec.output_hypernetworks_mlps[i](tokens[:, i, :]) for i in range(dec.num_mask_tokens)],
            dim=1,
        )
        if not self.exact:
            return self._masks_by_band(src, hyper)
        dc1, ln1, act1, dc2, act2 = dec.output_upscaling
        up = act1(ln1(dc1(src) + self.high_res[1]))
        up = act2(dc2(up) + self.high_res[0])
        b, c, h, w = up.shape
        return (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)

    def _masks_by_band(
        self, src: torch.Tensor, hyper: torch.Tensor, rows: int = 16
    ) -> torch.Tensor:
        """The upscaling in bands of ``rows`` embedding rows: its transposed convolutions have
        stride = kernel and everything else is per pixel, so each band is independent, and a
        band's activations stay in the cache (4 prompts on 2 cores: 36 ms → 21 ms, same values).
        """
        dc1, ln1, act1, dc2, act2 = self.dec.output_upscaling
        b, _, h, w = src.shape
        hr1, hr0 = self.high_res[1], self.high_res[0]
        f1, f0 = hr1.shape[-2] // h, hr0.shape[-2] // h  # 2 and 4
        out = torch.empty((b, hyper.shape[1], f0 * h, f0 * w), dtype=hyper.dtype, device=src.device)
        for r in range(0, h, rows):
            up = act1(ln1(dc1(src[:, :, r : r + rows]) + hr1[:, :, f1 * r : f1 * (r + rows)]))
            up = act2(dc2(up) + hr0[:, :, f0 * r : f0 * (r + rows)])
            _, c, bh, bw = up.shape
            flat = up.permute(0, 2, 3, 1).reshape(b, bh * bw, c)  # channels-last: no copy
            out[:, :, f0 * r : f0 * r + bh] = (hyper @ flat.transpose(1, 2)).view(b, -1, bh, bw)
        return out

    def iou_and_state(self, coords: torch.Tensor, labels: torch.Tensor):
        """Predicted IoU of the three multimask outputs (B×3) and what :meth:`masks_for` needs."""
        sparse, _ = self.model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        tokens = self._tokens(sparse.to(self.dtype))
        hs, keys = self._transformer(tokens)
        iou = self.dec.iou_prediction_head(hs[:, 1, :])
        return iou[:, 1:], (hs, keys)

    def masks_for(self, state, index: torch.Tensor) -> torch.Tensor:
        """Low-res logits (n×3×h×w) of the prompts ``index`` of a chunk, unclamped."""
        hs, keys = state
        n = int(index.numel())
        if n == 1:  # keep batches ≥ 2: sam2's rounding is that of batched matrix products
            index = torch.cat([index, index])
        masks = self._masks(hs[index], keys[index])[:, 1:]
        return masks[:n]

    def decode_single(self, coords: torch.Tensor, labels: torch.Tensor):
        """sam2's own path for a batch of one prompt (its rounding differs from batches)."""
        masks, iou, low = self.predictor._predict(
            coords, labels, multimask_output=True, return_logits=True
        )
        return iou, masks, low  # masks: full-size logits from the unclamped low-res ones


def _grid_points(n_per_side: int, h: int, w: int) -> np.ndarray:
    from sam2.utils.amg import build_point_grid

    return build_point_grid(n_per_side) * np.array([[w, h]])


def _warn_no_hole_filling(area: int) -> None:
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        warnings.warn(
            f"min_mask_region_area={area} needs sam2's compiled extension, which this install "
            "lacks; hole filling and small-region removal are skipped (as sam2 does).",
            UserWarning,
            stacklevel=3,
        )
        return
    raise BadInput(
        "min_mask_region_area > 0 with sam2's compiled extension is not supported "
        "by the fast generator; use sam2's generator for it."
    )


def generate_masks(
    predictor: Any,
    settings: ProposalSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    out_hw: tuple[int, int] | None = None,
) -> AutoMasks:
    """Automatic masks of the image set in ``predictor`` (``ImageSession.sam2_predictor``).

    Same output as ``SAM2AutomaticMaskGenerator(model, <same settings>).generate(image)`` with
    ``crop_n_layers=0`` and ``use_m2m=False`` (the thesis's settings). ``out_hw`` makes the
    masks at another size than the image's (same embedding; as if the image had that size).
    """
    from sam2.utils.amg import batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge
    from torchvision.ops.boxes import batched_nms

    s = settings or ProposalSettings()
    if s.min_mask_region_area > 0:
        _warn_no_hole_filling(s.min_mask_region_area)
    t0 = time.perf_counter()
    h, w = out_hw or predictor._orig_hw[-1]
    transforms = predictor._transforms
    device = predictor.device
    grid = _grid_points(s.points_per_side, h, w)
    decoder = PromptDecoder(predictor)
    chunk = max(2, s.decoder_chunk)
    crop_box, orig_box = [0, 0, w, h], [0, 0, w, h]

    kept_bits: list[np.ndarray] = []
    kept_boxes, kept_iou, kept_stab, kept_points = [], [], [], []
    total = len(grid)
    if progress:
        progress.stage("SAM2 points", total=total)

    def finish(
        points: torch.Tensor, iou: torch.Tensor, low: torch.Tensor, full: torch.Tensor | None = None
    ) -> None:
        """sam2's per-batch filtering for masks already known to pass the IoU filter."""
        if iou.shape[0] == 0:
            return
        if full is None:  # upsampled here, only for masks that passed the IoU filter
            logits = F.interpolate(low.float(), (h, w), mode="bilinear", align_corners=False)
        else:
            logits = full
        logits = logits[:, 0]  # N×H×W, as sam2 flattens them
        stab = calculate_stability_score(logits, s.mask_threshold, s.stability_score_offset)
        if s.stability_score_thresh > 0.0:
            ok = stab >= s.stability_score_thresh
            logits, stab, iou, points = logits[ok], stab[ok], iou[ok], points[ok]
        binary = logits > s.mask_threshold
        boxes = batched_mask_to_box(binary)
        ok = ~is_box_near_crop_edge(boxes, crop_box, orig_box)
        if not torch.all(ok):
            binary, boxes, stab, iou, points = binary[ok], boxes[ok], stab[ok], iou[ok], points[ok]
        if binary.shape[0]:
            kept_bits.append(np.packbits(binary.cpu().numpy(), axis=-1))
            kept_boxes.append(boxes)
            kept_iou.append(iou)
            kept_stab.append(stab)
            kept_points.append(points)

    with torch.inference_mode():
        for start in range(0, total, s.points_per_batch):
            batch = grid[start : start + s.points_per_batch]
            points = torch.as_tensor(batch, dtype=torch.float32, device=device)
            coords = transforms.transform_coords(points, normalize=True, orig_hw=(h, w))
            labels = torch.ones(coords.shape[0], dtype=torch.int, device=device)
            coords, labels = coords[:, None, :], labels[:, None]
            if coords.shape[0] == 1:  # sam2 runs a lone prompt differently; so do we
                iou, full, _ = decoder.decode_single(coords, labels)
                _finish_flat(finish, points, iou, full, s.pred_iou_thresh)
                continue
            bounds = list(range(0, coords.shape[0], chunk))
            if coords.shape[0] - bounds[-1] < 2 and len(bounds) > 1:
                bounds.pop()  # no chunk of one: its rounding would differ
            bounds.append(coords.shape[0])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                if cancel:
                    cancel.check()
                iou, state = decoder.iou_and_state(coords[a:b], labels[a:b])
                passing = (
                    iou > s.pred_iou_thresh
                    if s.pred_iou_thresh > 0.0
                    else torch.ones_like(iou, dtype=torch.bool)
                )
                rows = torch.nonzero(passing.any(1)).flatten()
                if rows.numel():
                    low = decoder.masks_for(state, rows)  # n×3×h×w
                    sel = passing[rows]
                    flat_low = low.flatten(0, 1)[sel.flatten()][:, None]
                    flat_iou = iou[rows].flatten()[sel.flatten()]
                    flat_pts = points[a:b][rows].repeat_interleave(3, dim=0)[sel.flatten()]
                    finish(flat_pts, flat_iou, flat_low)
                if progress:
                    progress.update(start + b)
    t_decode = time.perf_counter() - t0

    if not kept_boxes:
        empty = AutoMasks(
            np.zeros((0, h, w), bool),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 2), np.float32),
        )
        empty.timings = {"amg_decode": t_decode, "amg_total": time.perf_counter() - t0}
        return empty
    boxes = torch.cat(kept_boxes)
    iou = torch.cat(kept_iou)
    keep = batched_nms(
        boxes.float(), iou, torch.zeros_like(boxes[:, 0]), iou_threshold=s.box_nms_thresh
    )
    keep_np = keep.cpu().numpy()
    bits = np.concatenate(kept_bits)[keep_np]
    masks = np.unpackbits(bits, axis=-1, count=w).astype(bool)
    result = AutoMasks(
        masks=masks,
        boxes=boxes[keep].float().cpu().numpy(),
        predicted_iou=iou[keep].float().cpu().numpy(),
        stability_score=torch.cat(kept_stab)[keep].float().cpu().numpy(),
        points=torch.cat(kept_points)[keep].float().cpu().numpy(),
    )
    result.timings = {"amg_decode": t_decode, "amg_total": time.perf_counter() - t0}
    return result


def _finish_flat(finish, points, iou, full, thresh) -> None:
    """Filter a lone prompt's three full-size masks by predicted IoU, then ``finish`` them."""
    iou, full = iou.flatten(0, 1), full.flatten(0, 1)
    pts = points.repeat_interleave(full.shape[0] // points.shape[0], dim=0)
    ok = iou > thresh if thresh > 0.0 else torch.ones_like(iou, dtype=torch.bool)
    finish(pts[ok], iou[ok], None, full[ok][:, None])


# =====================================================================================
# 2. CLIP scoring of the masks
# =====================================================================================


def mask_crop(
    image: np.ndarray, mask: np.ndarray, box: np.ndarray, margin: float, fill: np.ndarray
) -> np.ndarray:
    """A square crop around ``mask``: its box plus a margin, pixels outside the mask set to
    ``fill`` (CLIP's mean colour, so they normalise to zero), padded square with ``fill``."""
    h, w = mask.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = margin * max(x1 - x0 + 1, y1 - y0 + 1)
    x0, y0 = max(0, int(math.floor(x0 - pad))), max(0, int(math.floor(y0 - pad)))
    x1, y1 = min(w, int(math.ceil(x1 + 1 + pad))), min(h, int(math.ceil(y1 + 1 + pad)))
    crop = image[y0:y1, x0:x1].copy()
    crop[~mask[y0:y1, x0:x1]] = fill
    ch, cw = crop.shape[:2]
    side = max(ch, cw)
    square = np.empty((side, side, 3), np.uint8)
    square[:] = fill
    oy, ox = (side - ch) // 2, (side - cw) // 2
    square[oy : oy + ch, ox : ox + cw] = crop
    return square


def _resize_square(square: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(square, (size, size), interpolation=interp)


def encode_images(visual: Any, pixels: torch.Tensor) -> torch.Tensor:
    """CLIP image embeddings (L2-normalised) of a batch at any size divisible by the patch.

    open_clip's own forward with the positional embedding interpolated (bicubic, as the dense
    path does) to the input's grid.
    """
    from ovpaint.pipelines.segmentation.dense import _embed

    x, _, _ = _embed(visual, pixels)  # (patch dropout is the identity in eval mode)
    x = visual.transformer(x)
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return F.normalize(pooled.float(), dim=-1)


def _autocast(device: torch.device, dtype: torch.dtype, low_precision_cpu: bool):
    import contextlib

    if device.type == "cpu" and low_precision_cpu:
        from ovpaint.models.device import cpu_has_fast_bf16

        if cpu_has_fast_bf16():
            return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16):
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def mask_features(
    clip_bundle: Any,
    image: np.ndarray,
    masks: AutoMasks | tuple,
    settings: ProposalSettings | None = None,
    *,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> list[np.ndarray]:
    """CLIP embeddings of every mask's crop, one N×D array per scale (text-independent, so a
    session caches them and a new query costs one matrix product).

    ``masks`` is an :class:`AutoMasks` or a ``(masks, boxes)`` pair.
    """
    s = settings or ProposalSettings()
    mask_arr, boxes = (masks.masks, masks.boxes) if isinstance(masks, AutoMasks) else masks
    n = len(mask_arr)
    model = clip_bundle.model
    visual = model.visual
    device = clip_bundle.device
    fill = np.round(np.array(clip_bundle.mean) * 255).astype(np.uint8)
    mean = torch.tensor(clip_bundle.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(clip_bundle.std, device=device).view(1, 3, 1, 1)
    squares = [mask_crop(image, mask_arr[i], boxes[i], s.crop_margin, fill) for i in range(n)]
    out: list[np.ndarray] = []
    if progress:
        progress.stage("scoring", total=n * len(s.scales), unit="masks")
    done = 0
    # no_grad, not inference_mode: autocast caches its low-precision weight copies only
    # outside inference mode (bf16 under inference_mode was 4× slower than fp32 on a CPU)
    with torch.no_grad(), _autocast(device, clip_bundle.dtype, s.low_precision_cpu):
        for size in s.scales:
            feats = []
            step = max(1, s.clip_batch)
            if device.type == "cpu" and s.clip_batch_tokens > 0:
                # big batches of 1,025-token crops thrash the CPU caches (slower than one by one)
                tokens = (size // clip_bundle.patch_size) ** 2 + 1
                step = max(1, min(step, s.clip_batch_tokens // tokens))
            for a in range(0, n, step):
                if cancel:
                    cancel.check()
                batch = np.stack([_resize_square(sq, size) for sq in squares[a : a + step]])
                x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float() / 255.0
                x = ((x - mean) / std).to(clip_bundle.dtype)
                feats.append(encode_images(visual, x).cpu())
                done += len(batch)
                if progress:
                    progress.update(done)
            dim = int(visual.output_dim) if hasattr(visual, "output_dim") else 0
            out.append(torch.cat(feats).numpy() if feats else np.zeros((0, dim), np.float32))
    return out


def combine_scales(
    features: list[np.ndarray], text: np.ndarray, weights: tuple[float, ...]
) -> np.ndarray:
    """score = Σ w_s · cos(image_s, text): N masks × T texts (0.2·s224 + 0.5·s336 + 0.3·s512)."""
    text = np.asarray(text, np.float32)
    total = np.zeros((features[0].shape[0], text.shape[0]), np.float32)
    for feats, weight in zip(features, weights, strict=True):
        total += weight * (feats.astype(np.float32) @ text.T)
    return total


# =====================================================================================
# 3. Selection and pixel assignment
# =====================================================================================


@dataclass
class Instance:
    """One kept mask: its class (index into the result's classes, ≥ 1) and confidence."""

    class_index: int
    mask_index: int
    score: float
    area: int

    def as_dict(self, classes: list[str]) -> dict:
        return {
            "class": classes[self.class_index],
            "mask": self.mask_index,
            "score": round(float(self.score), 4),
            "area": int(self.area),
        }


def size_penalty(ratio: np.ndarray, settings: ProposalSettings | None = None) -> np.ndarray:
    """q = 1 for r ≤ 0.15, then falling linearly to 1 − 0.85 at r ≥ 0.5 (many-class mode)."""
    s = settings or ProposalSettings()
    ratio = np.asarray(ratio, np.float64)
    ramp = np.minimum(np.maximum(ratio - s.size_penalty_start, 0.0) / s.size_penalty_span, 1.0)
    return np.where(ratio <= s.size_penalty_start, 1.0, 1.0 - s.size_penalty_max * ramp)


def mask_iou_matrix(masks: np.ndarray) -> np.ndarray:
    """Pairwise IoU of N boolean masks (one matrix product on the flattened masks)."""
    n = len(masks)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    flat = torch.from_numpy(np.ascontiguousarray(masks).reshape(n, -1)).float()
    inter = flat @ flat.T
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - inter
    return (inter / union.clamp(min=1)).numpy()


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on mask IoU: indices of the kept masks, best first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    if len(order) == 0:
        return order
    iou = mask_iou_matrix(masks[order])
    keep: list[int] = []
    for i in range(len(order)):
        if all(iou[i, j] <= iou_threshold for j in keep):
            keep.append(i)
    return order[keep]


def select_masks(
    class_sims: np.ndarray,
    bg_sims: np.ndarray | None,
    masks: np.ndarray,
    settings: ProposalSettings | None = None,
) -> list[Instance]:
    """Choose which masks become instances of which class (METHOD.md §3.3–3.5).

    ``class_sims``: N masks × C classes (scale-combined cosine, best synonym); ``bg_sims``: N
    (best similarity to the background words) or None. Classes are numbered from 1 in the
    returned instances (0 is the background).
    """
    s = settings or ProposalSettings()
    class_sims = np.asarray(class_sims, np.float64)
    n, c = class_sims.shape if class_sims.ndim == 2 else (0, 0)
    if n == 0 or c == 0:
        return []
    masks = np.asarray(masks, bool)
    areas = masks.reshape(n, -1).sum(1)
    ratio = areas / float(masks.shape[1] * masks.shape[2])
    valid = ratio >= s.min_area_ratio
    if c >= s.many_class_from:
        return _select_many(class_sims, masks, areas, ratio, valid, s)
    adjusted = class_sims - (
        s.background_weight * np.asarray(bg_sims, np.float64)[:, None]
        if bg_sims is not None
        else 0.0
    )
    best = adjusted.argmax(1)
    best_score = adjusted[np.arange(n), best]
    threshold = np.where(ratio < s.small_mask_ratio, s.threshold_small, s.threshold_large)
    candidate = valid & (best_score >= threshold)
    instances: list[Instance] = []
    for k in range(c):
        idx = np.nonzero(candidate & (best == k))[0]
        for i in idx[mask_nms(masks[idx], best_score[idx], s.mask_nms_iou)]:
            instances.append(Instance(k + 1, int(i), float(best_score[i]), int(areas[i])))
    return instances


def _select_many(class_sims, masks, areas, ratio, valid, s: ProposalSettings) -> list[Instance]:
    logits = s.temperature * class_sims
    logits = logits - logits.max(1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(1, keepdims=True)
    if not valid.any():
        return []
    best_per_class = probs[valid].max(0)
    keep_class = best_per_class >= max(float(np.median(best_per_class)), s.denoise_floor)
    penalised = probs * size_penalty(ratio, s)[:, None]
    best = probs.argmax(1)
    instances: list[Instance] = []
    for k in np.nonzero(keep_class)[0]:
        idx = np.nonzero(valid & (best == k))[0]
        scores = penalised[idx, k]
        kept = idx[mask_nms(masks[idx], scores, s.mask_nms_iou)][: s.top_k]
        for i in kept:
            instances.append(Instance(int(k) + 1, int(i), float(penalised[i, k]), int(areas[i])))
    return instances


def assign_pixels(
    instances: list[Instance], masks: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Label map and per-class confidence maps: each pixel goes to the most confident kept
    mask covering it (``n_classes`` counts the background). Background confidence is
    1 − the best class confidence."""
    h, w = masks.shape[1:] if len(masks) else (0, 0)
    labels = np.zeros((h, w), np.int32)
    best = np.full((h, w), -np.inf, np.float32)
    scores = np.zeros((n_classes, h, w), np.float32)
    for inst in sorted(instances, key=lambda x: x.score):
        m = masks[inst.mask_index]
        better = m & (inst.score > best)
        labels[better] = inst.class_index
        best[better] = inst.score
        np.maximum(
            scores[inst.class_index], np.where(m, inst.score, 0.0), out=scores[inst.class_index]
        )
    scores[0] = 1.0 - np.clip(scores[1:].max(0) if n_classes > 1 else 0.0, 0.0, 1.0)
    return labels, scores


# =====================================================================================
# 4. The method: image + classes → SegmentationResult
# =====================================================================================


def work_size(h: int, w: int, s: ProposalSettings) -> tuple[int, int]:
    """The size masks are made and selected at (see ``ProposalSettings.max_side``)."""
    if not s.max_side or max(h, w) <= s.max_side:
        return h, w
    scale = s.max_side / max(h, w)
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def _amg_key(model_id: str, s: ProposalSettings) -> tuple:
    return (
        "proposal_masks",
        model_id,
        s.max_side,
        s.points_per_side,
        s.points_per_batch,
        s.pred_iou_thresh,
        s.stability_score_thresh,
        s.stability_score_offset,
        s.mask_threshold,
        s.box_nms_thresh,
        s.min_mask_region_area,
    )


def session_masks(
    session: Any,
    manager: Any,
    settings: ProposalSettings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> AutoMasks:
    """The image's automatic masks, generated once per image, SAM2 model and AMG settings."""
    with manager.use("sam2") as sam:
        key = _amg_key(sam.model_id, settings)
        cached = session.get(key)
        if cached is not None:
            return cached
        predictor = session.sam2_predictor(sam)
        with sam2_autocast(sam.device):
            masks = generate_masks(
                predictor,
                settings,
                progress=progress,
                cancel=cancel,
                out_hw=work_size(session.height, session.width, settings),
            )
    return session.put(key, masks)


def session_mask_features(
    session: Any,
    manager: Any,
    masks: AutoMasks,
    settings: ProposalSettings,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> list[np.ndarray]:
    """CLIP features of the candidate masks' crops, computed once per image and settings
    (they do not depend on the text, so a new query costs one matrix product)."""
    with manager.use("clip") as clip:
        key = (
            "proposal_features",
            clip.model_id,
            _amg_key(manager.model_id("sam2"), settings),
            settings.scales,
            settings.crop_margin,
            settings.min_area_ratio,
            settings.low_precision_cpu,
            len(masks),
        )
        cached = session.get(key)
        if cached is not None:
            return cached
        image = session.image
        if masks.masks.shape[1:] != image.shape[:2]:  # masks made at the work size
            mh, mw = masks.masks.shape[1:]
            image = cv2.resize(image, (mw, mh), interpolation=cv2.INTER_AREA)
        feats = mask_features(clip, image, masks, settings, progress=progress, cancel=cancel)
    return session.put(key, feats)


def encode_texts(manager: Any, names: list[str], templates: str) -> np.ndarray:
    """L2-normalised text embeddings (N×D) through the shared, cached text encoder."""
    from ovpaint.pipelines.text import text_encoder_for

    encoder = text_encoder_for(manager, templates)
    return np.asarray(encoder.encode(list(names)), np.float32)


def segment_proposals(
    session: Any,
    queries: list[ClassQuery],
    manager: Any,
    settings: ProposalSettings | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SegmentationResult:
    """Segment ``queries`` in the session's image with SAM2 proposals scored by CLIP."""
    s = settings or ProposalSettings()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    auto = session_masks(session, manager, s, progress=progress, cancel=cancel)
    timings["masks"] = time.perf_counter() - t0
    full_hw = (session.height, session.width)
    h, w = work_size(*full_hw, s)
    classes = [BACKGROUND] + [q.name for q in queries]
    # masks under the size floor can never be selected: do not spend CLIP time on them
    big = auto.areas >= s.min_area_ratio * h * w
    candidates = auto.select(np.nonzero(big)[0])
    messages: list[str] = []
    if len(candidates) == 0:
        messages.append(
            f"SAM2 proposed no mask large enough to score ({len(auto)} masks "
            "in all); nothing was segmented. Try the refined method."
        )
        return SegmentationResult(
            np.zeros(full_hw, np.int32),
            classes,
            _empty_scores(len(classes), *full_hw),
            "proposal",
            timings,
            messages,
            {"instances": [], "n_masks": len(auto)},
        )
    if cancel:
        cancel.check()
    t1 = time.perf_counter()
    feats = session_mask_features(session, manager, candidates, s, progress=progress, cancel=cancel)
    timings["scoring"] = time.perf_counter() - t1
    names = [n for q in queries for n in q.synonyms]
    owner = np.array([i for i, q in enumerate(queries) for _ in q.synonyms])
    text = encode_texts(manager, names + list(s.background_words), s.templates)
    sims = combine_scales(feats, text, s.scale_weights)
    name_sims, bg = sims[:, : len(names)], sims[:, len(names) :].max(1)
    class_sims = np.stack([name_sims[:, owner == k].max(1) for k in range(len(queries))], 1)
    instances = select_masks(class_sims, bg, candidates.masks, s)
    labels, scores = assign_pixels(instances, candidates.masks, len(classes))
    if (h, w) != full_hw:
        from ovpaint.pipelines.segmentation.dense import to_full_size

        labels, scores, notes = to_full_size(labels, scores, full_hw, s.max_score_bytes)
        messages += notes
    found = {inst.class_index for inst in instances}
    missing = [classes[k] for k in range(1, len(classes)) if k not in found]
    if not instances:
        messages.append(
            "No mask scored high enough for "
            + ", ".join(missing)
            + "; the result is empty. Try the refined method or a lower threshold."
        )
    elif missing:
        messages.append("No mask scored high enough for: " + ", ".join(missing) + ".")
    timings["total"] = time.perf_counter() - t0
    extras = {
        "instances": [i.as_dict(classes) for i in instances],
        "n_masks": len(auto),
        "n_scored": len(candidates),
    }
    return SegmentationResult(labels, classes, scores, "proposal", timings, messages, extras)


def _empty_scores(n: int, h: int, w: int) -> np.ndarray:
    scores = np.zeros((n, h, w), np.float32)
    scores[0] = 1.0
    return scores


def settings_from_dict(values: dict | None) -> ProposalSettings:
    """Proposal settings from the flat dict every method shares (CLI, batch, benchmark): keys
    prefixed ``proposal_`` (e.g. ``proposal_top_k``) or a ``proposal`` sub-dict. Unprefixed
    keys are not taken: the dict also holds the dense path's ``templates`` and the
    refinement's ``decoder_chunk``, which mean other things here."""
    from dataclasses import fields

    values = dict(values or {})
    picked = dict(values.get("proposal") or {})
    picked.update(
        {k[len("proposal_") :]: v for k, v in values.items() if k.startswith("proposal_")}
    )
    known = {f.name for f in fields(ProposalSettings)}
    unknown = sorted(set(picked) - known)
    if unknown:
        raise BadInput(f"Unknown proposal setting(s): {', '.join(unknown)}.")
    for key in ("scales", "scale_weights", "background_words"):
        if key in picked:
            picked[key] = tuple(picked[key])
    return ProposalSettings(**picked)


def run_method(
    session: Any,
    queries: list[ClassQuery],
    manager: Any,
    settings: dict,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SegmentationResult:
    """``METHODS["proposal"]`` (see ``ovpaint.pipelines.segmentation.segment``)."""
    return segment_proposals(
        session, queries, manager, settings_from_dict(settings), progress=progress, cancel=cancel
    )
