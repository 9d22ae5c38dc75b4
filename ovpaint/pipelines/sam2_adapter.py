"""The one module that touches sam2's private state.

The fast paths (the batched prompt decoder of the refinement and the automatic masks, the
1024 px feature sizes of a smaller model) need what ``SAM2ImagePredictor`` keeps private: the
cached image features (``_features``), the image size (``_orig_hw``), the coordinate
transforms (``_transforms``), its low-level ``_predict`` and the backbone sizes
(``_bb_feat_sizes``). Everything else calls the functions here, so a sam2 release that moves
them breaks one file, and :func:`check_version` says so when the installed sam2 is not the one
this was written against.
"""

from __future__ import annotations

import copy
import functools
import warnings
from importlib import metadata
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from ovpaint.models.sam2_loader import Sam2Bundle

#: The sam2 release these private names were read from (packaging/constraints.txt pins it).
WRITTEN_FOR = "1.1.0"


def check_version(installed: str | None = None) -> str:
    """Warn once when the installed sam2 is not :data:`WRITTEN_FOR`; returns its version.

    A warning, not an error: a patch release usually keeps the private names, and the AMG
    equality tests would show a change; a release that removes them fails in this module with
    an AttributeError that names the attribute."""
    if installed is None:
        try:
            installed = metadata.version("sam2")
        except metadata.PackageNotFoundError:
            installed = "unknown"
    if installed != WRITTEN_FOR:
        _warn_once(installed)
    return installed


@functools.cache
def _warn_once(installed: str) -> None:
    warnings.warn(
        f"sam2 {installed} is installed; ovpaint's fast SAM2 paths were written against "
        f"sam2 {WRITTEN_FOR} and use its private predictor state. If results look wrong, "
        f"install sam2=={WRITTEN_FOR} (packaging/constraints.txt).",
        RuntimeWarning,
        stacklevel=3,
    )


def fix_feature_sizes(predictor: SAM2ImagePredictor, image_size: int) -> None:
    """sam2 hard-codes the 1024 px backbone sizes; derive them from the model's input size
    (the tiny profile runs at 256 px)."""
    base = image_size // 4
    predictor._bb_feat_sizes = [(base, base), (base // 2, base // 2), (base // 4, base // 4)]


def new_predictor(bundle: Sam2Bundle, **kwargs: Any) -> SAM2ImagePredictor:
    """A fresh ``SAM2ImagePredictor`` of ``bundle`` with no image set.

    sam2 builds its input transforms with ``torch.jit.script``, which takes a second and
    holds the GIL in ~150 ms stretches (the app's UI thread would stall on every new image).
    The transforms are stateless, so one template per settings is built once per bundle and
    each predictor is a shallow copy of it with its own, empty image state."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    check_version()

    def make() -> SAM2ImagePredictor:
        template = SAM2ImagePredictor(bundle.model, **kwargs)
        fix_feature_sizes(template, bundle.image_size)
        return template

    template = bundle.derived.get(("predictor", tuple(sorted(kwargs.items()))), make)
    predictor = copy.copy(template)
    predictor.reset_predictor()
    return predictor


def image_features(predictor: SAM2ImagePredictor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The cached embedding of the image set in ``predictor``: (1×C×h×w image embedding,
    the decoder's high-resolution features, each 1×C×H×W)."""
    feats = predictor._features
    embed = feats["image_embed"][-1].unsqueeze(0)
    return embed, [f[-1].unsqueeze(0) for f in feats["high_res_feats"]]


def image_hw(predictor: SAM2ImagePredictor) -> tuple[int, int]:
    """(height, width) of the image set in ``predictor``."""
    h, w = predictor._orig_hw[-1]
    return int(h), int(w)


def model_coords(
    predictor: SAM2ImagePredictor, points: torch.Tensor, hw: tuple[int, int] | None = None
) -> torch.Tensor:
    """Pixel coordinates (..., 2; x, y) of an image of size ``hw`` (the set image's by
    default) in the model's normalised input frame, as sam2's own predict does."""
    return predictor._transforms.transform_coords(
        points, normalize=True, orig_hw=hw or image_hw(predictor)
    )


def predict_logits(
    predictor: SAM2ImagePredictor, coords: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """sam2's own decoder call on prompts already in model coordinates: (full-size mask
    logits, predicted IoUs, low-resolution logits), three masks per prompt."""
    return predictor._predict(coords, labels, multimask_output=True, return_logits=True)


def decoder_stand_in(device: torch.device) -> Any:
    """SAM 2.1's prompt encoder and mask decoder (its real sizes: 256 channels, a 64×64 image
    embedding, high-resolution features at 256² and 128²) with random weights and a random
    image embedding, shaped as a ``SAM2ImagePredictor`` after ``set_image`` as far as the
    prompt decoder reads it (its private ``_features``): for timing the decoder (the
    calibration's ``decoder`` workload) without building the image encoder."""
    from types import SimpleNamespace

    from sam2.modeling.sam.mask_decoder import MaskDecoder
    from sam2.modeling.sam.prompt_encoder import PromptEncoder
    from sam2.modeling.sam.transformer import TwoWayTransformer

    prompt_encoder = PromptEncoder(
        embed_dim=256,
        image_embedding_size=(64, 64),
        input_image_size=(1024, 1024),
        mask_in_chans=16,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        use_high_res_features=True,
        iou_prediction_use_sigmoid=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        use_multimask_token_for_obj_ptr=True,
    )
    model = SimpleNamespace(
        sam_prompt_encoder=prompt_encoder.eval().to(device),
        sam_mask_decoder=decoder.eval().to(device),
    )
    features = {
        "image_embed": torch.randn(1, 256, 64, 64, device=device),
        "high_res_feats": [
            torch.randn(1, 32, 256, 256, device=device),
            torch.randn(1, 64, 128, 128, device=device),
        ],
    }
    return SimpleNamespace(model=model, _features=features, device=device)
