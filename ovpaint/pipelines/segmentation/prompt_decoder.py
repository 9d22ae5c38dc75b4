"""SAM2's mask decoder for many point prompts on one cached image embedding: what the
refinement (60 points) and the automatic masks (1,024 grid points) both run.

The image side of the decoder's first two-way block does not depend on the prompt, so it is
computed once per image; the exact mode runs sam2's own operations on tensors of sam2's memory
layout (the same masks as ``SAM2ImagePredictor``), the reduced-precision mode a bf16 copy with
the cross attentions reassociated. sam2's private predictor state is read through
:mod:`ovpaint.pipelines.sam2_adapter`.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import torch
import torch.nn.functional as F

from ovpaint.models.protocols import Derived
from ovpaint.pipelines import sam2_adapter


def decoder_copy(decoder: torch.nn.Module, dtype: torch.dtype, derived: Derived) -> torch.nn.Module:
    """A copy of SAM2's mask decoder (a few MB) in ``dtype``, kept in the SAM2 bundle's
    ``derived`` cache and remade when the decoder moved to another device. Its upscaling
    convolutions use the channels-last layout that the decoder's image tokens already have."""
    device = next(decoder.parameters()).device

    def make() -> torch.nn.Module:
        low = deepcopy(decoder).to(dtype).eval().requires_grad_(False)
        for layer in low.output_upscaling:
            if isinstance(layer, torch.nn.ConvTranspose2d):
                layer.to(memory_format=torch.channels_last)
        return low

    return derived.get(("decoder_copy", dtype, str(device)), make)


def _separate_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def _recombine_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, n, c = x.shape
    return x.transpose(1, 2).reshape(b, n, h * c)


class PromptDecoder:
    """SAM2's mask decoder for many point prompts on one cached image embedding.

    In the model's precision it runs the operations of sam2's image predictor for batches of
    two or more prompts (sam2 takes another code path for a single prompt, and so does
    :meth:`decode_single`): equal masks, scores equal within float rounding (bitwise on most
    CPUs, not guaranteed where the math library picks a kernel by batch size). In a reduced
    precision (``dtype``, the refinement's CPU mode) it runs a bf16 copy with its cross
    attentions reassociated (:meth:`_to_image`, :meth:`_from_image`) and the upscaling in
    bands: close to, not equal to, sam2's output.
    """

    def __init__(
        self, predictor: Any, dtype: torch.dtype | None = None, derived: Derived | None = None
    ) -> None:
        model = predictor.model
        dec = model.sam_mask_decoder
        if not (dec.use_high_res_features and dec.pred_obj_scores):
            raise ValueError("this SAM2 decoder variant is not supported by the fast path")
        # ``dtype`` (e.g. bf16 where it was measured faster) runs the decoder in a reduced-precision
        # copy; the prompt encoder stays in the model's precision (point coordinates go through
        # Fourier features, which bf16 would blur) and its output is cast.
        self.dtype = dtype or next(dec.parameters()).dtype
        # exact: sam2's own operations, bit-equal to its predictor; otherwise attention over the
        # few prompt tokens is written out (the fused kernel is slow for 8 keys on a CPU)
        self.exact = self.dtype == next(dec.parameters()).dtype
        if not self.exact:  # kept in the bundle's cache when given one
            dec = decoder_copy(dec, self.dtype, derived or Derived())
        self.predictor = predictor
        self.model = model
        self.dec = dec
        self.transformer = dec.transformer
        embed, high_res = sam2_adapter.image_features(predictor)
        self.embed = embed.to(self.dtype)
        self.high_res = [f.to(self.dtype) for f in high_res]
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
        masks, iou, low = sam2_adapter.predict_logits(self.predictor, coords, labels)
        return iou, masks, low  # masks: full-size logits from the unclamped low-res ones
