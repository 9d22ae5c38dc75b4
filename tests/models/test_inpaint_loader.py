"""The tiny SD inpainting pipeline and the real loader's refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixed_precision import FixedCalibrator, manager_measuring

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
    for (name, pa), (_, pb) in zip(
        a.pipe.unet.state_dict().items(), b.pipe.unet.state_dict().items(), strict=True
    ):
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
    bundle = inpaint_loader.load_real(
        get_spec("sd2-inpaint"), tmp_path / "pipe", torch.device("cpu"), torch.float32
    )
    assert bundle.pipe.unet.config.in_channels == 9
    assert torch.equal(bundle.pipe.unet.conv_in.weight, tiny.pipe.unet.conv_in.weight)


def _unet_call(bundle, seed=0):
    g = torch.Generator().manual_seed(seed)
    unet = bundle.pipe.unet
    sample = torch.randn(2, unet.config.in_channels, 16, 16, generator=g)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        return unet(sample, torch.tensor(999), encoder_hidden_states=text).sample, unet(
            sample, 999, text, return_dict=False
        )[0]


def test_cpu_tuning_runs_the_unet_in_bf16_behind_fp32_inputs_and_outputs():
    reference = inpaint_loader.build_tiny(0)
    tuned = inpaint_loader.build_tiny(0)
    assert inpaint_loader.tune_for_cpu(tuned, "bf16") and tuned.unet_bf16
    assert inpaint_loader.tune_for_cpu(tuned, "bf16")  # idempotent: no second set of hooks
    assert tuned.pipe.unet.dtype == torch.bfloat16
    assert tuned.pipe.text_encoder.dtype == torch.float32 and tuned.pipe.vae.dtype == torch.float32
    want, _ = _unet_call(reference)
    got, got_tuple = _unet_call(tuned)
    assert got.dtype == torch.float32 and got_tuple.dtype == torch.float32
    assert torch.equal(got, got_tuple)  # keyword and positional calls are cast alike
    err = (got - want).abs().mean() / want.abs().mean()
    assert err < 0.05, float(err)  # bf16 rounding, not a different computation


def test_manager_tunes_the_unet_where_bf16_was_measured_faster_and_allowed():
    fast = manager_measuring("bf16")  # e.g. the AMD EPYC: bf16 2.4× fp32
    slow = manager_measuring("fp32")  # e.g. the Intel Xeon: bf16 0.6× fp32
    off = manager_measuring("bf16", cpu_bf16_unet=False)
    assert fast.get("inpaint").unet_bf16 and fast.get("inpaint").pipe.unet.dtype == torch.bfloat16
    assert fast.calibrator.asked == ["unet"]
    assert not slow.get("inpaint").unet_bf16
    assert slow.get("inpaint").pipe.unet.dtype == torch.float32
    assert not off.get("inpaint").unet_bf16 and off.calibrator.asked == []
    state = {s.role: s for s in fast.states()}["inpaint"]
    assert "UNet bf16" in state.dtype


def test_inpainting_measures_the_unet_only_when_its_load_will_use_it(tmp_path):
    from ovpaint.pipelines.inpainting import inpaint

    image = np.full((64, 64, 3), 120, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    for allowed in (True, False):
        manager = manager_measuring("bf16", cpu_bf16_unet=allowed)
        inpaint.inpaint(
            image, mask, manager=manager, settings=inpaint.InpaintSettings(engine="sd", steps=2)
        )
        assert set(manager.calibrator.asked) == ({"unet"} if allowed else set())


def test_an_explicit_dtype_overrides_the_measurement():
    from ovpaint.models.manager import ModelManager

    forced = ModelManager(profile="tiny", device="cpu", dtype="fp32")
    forced.calibrator = FixedCalibrator("bf16")
    assert forced.precision("unet") == "fp32" and forced.calibrator.asked == []
    assert not forced.get("inpaint").unet_bf16


def test_cpu_tuning_is_skipped_when_fp32_was_measured_faster():
    bundle = inpaint_loader.build_tiny(0)
    assert not inpaint_loader.tune_for_cpu(bundle, "fp32")
    assert bundle.pipe.unet.dtype == torch.float32


def test_placement_restores_the_loaded_dtype_after_a_cpu_fallback():
    bundle = inpaint_loader.build_tiny(0)
    assert bundle.weights_dtype == torch.float32
    bundle.pipe.to(torch.device("cpu"), torch.bfloat16)  # e.g. what a fallback left behind
    bundle.to_device(torch.device("cpu"))
    assert bundle.pipe.unet.dtype == torch.float32 and bundle.pipe.vae.dtype == torch.float32
