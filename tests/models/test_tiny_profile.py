"""The tiny profile builds every model offline, seeded, with the real architectures; and the
real SAM2 loader reads a checkpoint (written here from random weights) with strict keys."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from ovpaint.core.errors import ModelUnavailable
from ovpaint.core.settings import Settings
from ovpaint.models import clip_loader, sam2_loader
from ovpaint.models.manager import ModelManager
from ovpaint.models.registry import get_spec
from ovpaint.models.store import ModelStore


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_tiny_clip_shapes_and_seed(tiny_manager):
    bundle = tiny_manager.get("clip")
    model = bundle.model
    assert bundle.patch_size == 16 and bundle.model_id == "tiny-clip"
    tokens = bundle.tokenizer(["a photo of a dog", "sky"])
    assert tokens.shape == (2, 77) and tokens.dtype == torch.long
    assert int(tokens[0, 0]) == 49406  # the real BPE vocabulary's start token
    with torch.no_grad():
        img = model.encode_image(torch.zeros(2, 3, 224, 224))
        txt = model.encode_text(tokens)
    assert img.shape == (2, 64) and txt.shape == (2, 64)
    assert torch.isfinite(img).all() and torch.isfinite(txt).all()
    assert _same_weights(model, clip_loader.build_tiny(0).model)
    assert not _same_weights(model, clip_loader.build_tiny(1).model)
    # seeding is local: building does not disturb the caller's random stream
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clip_loader.build_tiny(0)
    assert torch.equal(torch.rand(3), expected)


def test_tiny_sam2_predicts_on_a_small_image(tiny_manager):
    bundle = tiny_manager.get("sam2")
    assert bundle.image_size == sam2_loader.TINY_SAM2_IMAGE_SIZE
    assert _same_weights(bundle.model, sam2_loader.build_tiny(0).model)
    from ovpaint.pipelines.sam2_adapter import new_predictor

    predictor = new_predictor(bundle)
    image = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    with tiny_manager.use("sam2"), torch.inference_mode():
        predictor.set_image(image)
        masks, scores, logits = predictor.predict(
            point_coords=np.array([[45, 30]]), point_labels=np.array([1]), multimask_output=True
        )
        box_masks, _, _ = predictor.predict(box=np.array([10, 10, 60, 50]), multimask_output=False)
    assert masks.shape == (3, 60, 90) and scores.shape == (3,)
    assert logits.shape == (3, 256 // 4, 256 // 4)
    assert box_masks.shape == (1, 60, 90)


def test_tiny_inpaint_pipeline_when_present():
    if importlib.util.find_spec("ovpaint.models.inpaint_loader") is None:
        pytest.skip("ovpaint.models.inpaint_loader is not part of this build yet")
    from ovpaint.models import inpaint_loader

    a = inpaint_loader.build_tiny(0, device="cpu", dtype=torch.float32)
    b = inpaint_loader.build_tiny(0, device="cpu", dtype=torch.float32)
    modules_a = (
        {k: v for k, v in vars(a.pipe).items() if isinstance(v, torch.nn.Module)}
        if hasattr(a, "pipe")
        else {}
    )
    if not modules_a:
        modules_a = {k: v for k, v in vars(a).items() if isinstance(v, torch.nn.Module)}
    assert modules_a, "the tiny inpaint bundle exposes no torch modules"
    src_b = b.pipe if hasattr(b, "pipe") else b
    for name, module in modules_a.items():
        assert _same_weights(module, getattr(src_b, name)), name
    unet = modules_a.get("unet") or getattr(getattr(a, "pipe", a), "unet", None)
    assert unet is not None and unet.config.in_channels == 9  # latents + mask + masked image
    assert a.nbytes() > 0


def test_manager_builds_every_tiny_role(tiny_manager):
    for role in ("clip", "sam2"):
        with tiny_manager.use(role) as bundle:
            assert bundle.device.type == "cpu" and bundle.nbytes() > 0
    states = {s.role: s for s in tiny_manager.states()}
    assert states["clip"].state == "loaded" and states["clip"].dtype == "fp32"
    assert states["inpaint"].model_id == "tiny-inpaint"


@pytest.fixture(scope="module")
def sam2_tiny_checkpoint(tmp_path_factory):
    """A SAM 2.1 hiera-t checkpoint in the published layout ({"model": state_dict})."""
    spec = get_spec("sam2.1-tiny")
    torch.manual_seed(7)
    model = sam2_loader._build(spec.arch["config"], None, torch.device("cpu"))
    path = tmp_path_factory.mktemp("sam") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path, model


def test_real_sam2_loader_reads_checkpoint_strictly(sam2_tiny_checkpoint, tmp_path):
    path, reference = sam2_tiny_checkpoint
    settings = Settings(values={"local_model_paths": {"sam2.1-tiny": str(path)}})
    manager = ModelManager(
        profile="real",
        device="cpu",
        settings=settings,
        store=ModelStore(tmp_path, settings["local_model_paths"]),
    )
    with manager.use("sam2") as bundle:
        assert bundle.model_id == "sam2.1-tiny" and bundle.image_size == 1024
        assert _same_weights(bundle.model, reference)


def test_wrong_or_corrupt_sam2_checkpoint_is_model_unavailable(sam2_tiny_checkpoint, tmp_path):
    path, reference = sam2_tiny_checkpoint
    state = dict(reference.state_dict())
    state.pop(next(iter(state)))
    partial = tmp_path / "partial.pt"
    torch.save({"model": state}, partial)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    spec = get_spec("sam2.1-tiny")
    with pytest.raises(ModelUnavailable, match="1 missing"):
        sam2_loader.load_real(spec, partial, torch.device("cpu"), torch.float32)
    with pytest.raises(ModelUnavailable, match="could not be read"):
        sam2_loader.load_real(spec, garbage, torch.device("cpu"), torch.float32)
    # a pickle that would run code is refused by weights_only, and the code never runs
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Evil(tmp_path / "pwned")}, evil)
    with pytest.raises(ModelUnavailable, match="could not be read"):
        sam2_loader.load_real(spec, evil, torch.device("cpu"), torch.float32)
    assert not (tmp_path / "pwned").exists()


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (self.target,))
