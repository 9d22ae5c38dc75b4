"""PAMR, pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), as NACLIP applies it to
its dense logits (``fixtures/README_naclip.md``): a fixed number of steps of an edge-aware
averaging whose weights come from the guide image.

For each dilation d, a pixel's neighbours are the 8 pixels at offsets {−d, 0, d}² without the
centre, with replicate padding. The affinity to a neighbour is −|I − I_nb| / (1e-8 + 0.1 σ) per
colour channel, σ being the unbiased standard deviation of the 9 samples (centre included) of
every dilation together; it is averaged over the channels and turned into weights by a softmax
over all neighbours. One step replaces every map value by the weighted sum of its neighbours.

The weights do not depend on the maps, so they are built once as a sparse matrix with one row
per pixel (16 entries for the two default dilations) and every step is one sparse × dense
product over all maps at once, channels last.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ovpaint.pipelines.segmentation.settings import check_pamr


def _offsets(dilations: Sequence[int]) -> list[tuple[int, int]]:
    """The neighbour offsets (dy, dx), sorted: their flat indices in a padded row-major grid
    then increase, as CSR column indices must (the order is otherwise immaterial)."""
    return sorted(
        (dy * d, dx * d)
        for d in dilations
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dy, dx) != (0, 0)
    )


def _shifted(padded: torch.Tensor, pad: int, dy: int, dx: int, h: int, w: int) -> torch.Tensor:
    return padded[..., pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def affinity(guide: torch.Tensor, dilations: Sequence[int] = (8, 16)) -> torch.Tensor:
    """K×H×W neighbour weights (K = 8 per dilation, in :func:`_offsets` order; they sum to 1
    at every pixel) of a C×H×W guide image. Accumulated in place: about 10 guide-sized
    buffers besides the result."""
    guide = guide.float()
    _, h, w = guide.shape
    pad = max(dilations)
    padded = F.pad(guide[None], [pad] * 4, mode="replicate")[0]
    samples = [
        (dy * d, dx * d) for d in dilations for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    ]  # the centre once per dilation, as the reference's standard deviation counts it
    mean = torch.zeros_like(guide)
    for dy, dx in samples:
        mean += _shifted(padded, pad, dy, dx, h, w)
    mean /= len(samples)
    var = torch.zeros_like(guide)
    tmp = torch.empty_like(guide)
    for dy, dx in samples:
        torch.sub(_shifted(padded, pad, dy, dx, h, w), mean, out=tmp)
        var.addcmul_(tmp, tmp)
    del mean
    scale = var.div_(len(samples) - 1).sqrt_().mul_(0.1).add_(1e-8)
    offsets = _offsets(dilations)
    logits = torch.empty((len(offsets), h, w), dtype=torch.float32)
    for i, (dy, dx) in enumerate(offsets):
        torch.sub(guide, _shifted(padded, pad, dy, dx, h, w), out=tmp)
        tmp.abs_().div_(scale)
        torch.mean(tmp, dim=0, out=logits[i])
    logits.neg_()
    return torch.softmax(logits, dim=0)


def operator_bytes_per_pixel(dilations: Sequence[int]) -> int:
    """A bound on the memory per pixel of PAMR beyond its maps: the weights while the step
    matrix is built (4 bytes per neighbour), the matrix (a weight and a column index per
    neighbour and padded pixel, with a margin for the padding), row pointers and temporaries."""
    k = len(_offsets(dilations))
    return 4 * k + 10 * k + 40


#: Rows per sparse block of the step matrix: bounds the temporaries of building it and of
#: each product (sparse × dense allocates its result before copying it out).
BLOCK_ROWS = 1 << 18


def _operator(
    weights: torch.Tensor, dilations: Sequence[int]
) -> list[tuple[int, int, torch.Tensor]]:
    """One step as sparse CSR blocks ``(first row, end row, block)`` of a square matrix over the
    replicate-padded grid (pad = the largest dilation, (H+2p)·(W+2p) rows and columns).

    Row q holds the neighbour weights of pixel clamp(q), 16 per row for two dilations, at
    distinct, increasing columns; a padding row repeats the row of the pixel it copies. So a
    step maps padded maps to padded maps, replicate padding included, with no copy between
    steps."""
    k, h, w = weights.shape
    pad = max(dilations)
    hp, wp = h + 2 * pad, w + 2 * pad
    rows = hp * wp
    step = torch.tensor([dy * wp + dx for dy, dx in _offsets(dilations)])
    index_dtype = torch.int32 if rows + int(step.max()) < 2**31 else torch.long
    flat = weights.reshape(k, h * w)
    blocks = []
    for start in range(0, rows, BLOCK_ROWS):
        q = torch.arange(start, min(start + BLOCK_ROWS, rows))
        y = (q // wp - pad).clamp_(0, h - 1)  # the pixel each padded position copies
        x = (q % wp - pad).clamp_(0, w - 1)
        centre = (y + pad) * wp + x + pad
        cols = (centre.view(-1, 1) + step.view(1, -1)).to(index_dtype).view(-1)
        vals = flat[:, y * w + x].T.contiguous().view(-1)
        crow = torch.arange(0, len(q) * k + 1, k, dtype=index_dtype)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            block = torch.sparse_csr_tensor(
                crow, cols, vals, (len(q), rows), check_invariants=False
            )
        blocks.append((start, start + len(q), block))
    return blocks


@dataclass
class PamrOperator:
    """The fixed part of PAMR for one guide: the step matrix (sparse blocks over the padded
    grid). Keep it to refine more maps of the same image without rebuilding it."""

    blocks: list[tuple[int, int, torch.Tensor]]
    hw: tuple[int, int]
    pad: int

    @property
    def nbytes(self) -> int:
        total = 0
        for _, _, block in self.blocks:
            for part in (block.crow_indices(), block.col_indices(), block.values()):
                total += part.numel() * part.element_size()
        return total

    def apply(self, maps: torch.Tensor, steps: int) -> torch.Tensor:
        """N×H×W maps after ``steps`` steps. Memory besides ``maps``: two padded,
        channels-last copies of them."""
        n_maps, h, w = maps.shape
        if (h, w) != self.hw:
            raise ValueError("PAMR needs the maps and the guide at the same size.")
        if steps == 0 or n_maps == 0:
            return maps
        pad = self.pad
        x = torch.empty((h + 2 * pad, w + 2 * pad, n_maps), dtype=torch.float32)
        x[pad : pad + h, pad : pad + w] = maps.permute(1, 2, 0)
        x[pad : pad + h, :pad] = x[pad : pad + h, pad : pad + 1]
        x[pad : pad + h, pad + w :] = x[pad : pad + h, pad + w - 1 : pad + w]
        x[:pad] = x[pad : pad + 1]
        x[pad + h :] = x[pad + h - 1 : pad + h]
        x = x.view(-1, n_maps)  # channels last, one row per padded pixel
        out = torch.empty_like(x)
        for _ in range(steps):
            for start, end, block in self.blocks:
                torch.mm(block, x, out=out[start:end])
            x, out = out, x
        del out
        x = x.view(h + 2 * pad, w + 2 * pad, n_maps)[pad : pad + h, pad : pad + w]
        return x.permute(2, 0, 1).contiguous()


def pamr_operator(guide: torch.Tensor, dilations: Sequence[int] = (8, 16)) -> PamrOperator:
    """The step matrix of a C×H×W guide image."""
    check_pamr(0, dilations)
    blocks = _operator(affinity(guide, dilations), dilations)
    return PamrOperator(blocks, tuple(guide.shape[-2:]), max(dilations))


def pamr(
    maps: torch.Tensor,
    guide: torch.Tensor,
    steps: int = 10,
    dilations: Sequence[int] = (8, 16),
) -> torch.Tensor:
    """N×H×W maps after ``steps`` PAMR steps guided by the C×H×W ``guide`` (same H×W).

    Memory besides ``maps``: two padded, channels-last copies of them and
    :func:`operator_bytes_per_pixel` per pixel."""
    check_pamr(steps, dilations)
    if tuple(maps.shape[-2:]) != tuple(guide.shape[-2:]):
        raise ValueError("PAMR needs the maps and the guide at the same size.")
    if steps == 0:
        return maps
    return pamr_operator(guide, dilations).apply(maps, steps)


def pamr_reference(
    maps: torch.Tensor,
    guide: torch.Tensor,
    steps: int = 10,
    dilations: Sequence[int] = (8, 16),
) -> torch.Tensor:
    """The same steps written directly (padded shifts, one weighted sum per neighbour): the
    specification :func:`pamr` is tested against."""
    weights = affinity(guide, dilations)
    _, h, w = maps.shape
    pad = max(dilations)
    x = maps.float()
    for _ in range(steps):
        padded = F.pad(x[None], [pad] * 4, mode="replicate")[0]
        x = sum(
            weights[i] * _shifted(padded, pad, dy, dx, h, w)
            for i, (dy, dx) in enumerate(_offsets(dilations))
        )
    return x
