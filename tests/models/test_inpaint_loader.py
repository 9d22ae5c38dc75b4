"""The tiny SD inpainting pipeline and the real loader's refusals."""

from __future__ import annotations

import pytest
import torch

from ovpaint.core.errors import ModelUnavailable
from ovpaint.models import inpaint_loader
from ovpaint.models.registry import get_spec


def test_tokenizer_matches_open_clip():
    from open_clip.tokenizer import SimpleTokenizer

    simple, tokenizer = SimpleTokenizer(), inpaint_loader.clip_tokenizer()
    for text in ("a photo of a dog", "Ünïcödé 東京, sky!!", "person in red | man"):
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == simple.sot_token_id and ids[-1] == simple.eot_token_id
        assert ids[1:-1] == simple.encode(text)


def test_tiny_pipeline_is_faithful_and_seeded():
    a = inpaint_loader.build_tiny(0)
    b = inpaint_loader.build_tiny(0)
    assert a.pipe.unet.config.in_channels == 9  # latent + mask + masked-image latent
    assert a.pipe.vae_scale_factor == 8
    assert a.resolution % 8 == 0 and a.nbytes() > 0
    for (name, pa), (_, pb) in zip(a.pipe.unet.state_dict().items(),
                                   b.pipe.unet.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name


def test_real_loader_refuses_pickles_and_non_pipelines(tmp_path):
    spec = get_spec("sd2-inpaint")
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not really")
    with pytest.raises(ModelUnavailable, match="safetensors"):
        inpaint_loader.load_real(spec, ckpt, torch.device("cpu"), torch.float32)
    with pytest.raises(ModelUnavailable, match="model_index.json"):
        inpaint_loader.load_real(spec, tmp_path, torch.device("cpu"), torch.float32)


def test_real_loader_reads_a_local_diffusers_folder(tmp_path):
    """A saved pipeline folder (safetensors) loads through the real path, offline."""
    tiny = inpaint_loader.build_tiny(0)
    tiny.pipe.save_pretrained(tmp_path / "pipe", safe_serialization=True)
    bundle = inpaint_loader.load_real(get_spec("sd2-inpaint"), tmp_path / "pipe",
                                      torch.device("cpu"), torch.float32)
    assert bundle.pipe.unet.config.in_channels == 9
    assert torch.equal(bundle.pipe.unet.conv_in.weight, tiny.pipe.unet.conv_in.weight)
