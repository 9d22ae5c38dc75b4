"""Parity with the reference LaMa generator on small random-weight models (shared fixture), and
the full big-lama layout against its state-dict manifest.

The fixture path comes from ``LAMA_PARITY_FIXTURE`` (default: ``../shared/fixtures`` beside the
repository); every generator setting, the tolerances and the expected keys are read from the
``.json`` beside it, so the same test runs unchanged on another fixture of this format.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ovpaint.models.lama import (
    LamaConfig,
    LamaGenerator,
    count_parameters,
    pad_symmetric,
    predict,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures"
FIXTURE = Path(os.environ.get("LAMA_PARITY_FIXTURE", FIXTURES / "lama_parity_tiny.npz"))
MANIFEST = Path(os.environ.get("LAMA_MANIFEST", FIXTURES / "big_lama_state_dict_manifest.json"))

needs_fixture = pytest.mark.skipif(
    not FIXTURE.exists(), reason=f"LaMa parity fixture not found at {FIXTURE}"
)
needs_manifest = pytest.mark.skipif(
    not MANIFEST.exists(), reason=f"big-lama state-dict manifest not found at {MANIFEST}"
)


@pytest.fixture(scope="module")
def fx():
    z = np.load(FIXTURE, allow_pickle=False)
    meta = json.loads(FIXTURE.with_suffix(".json").read_text("utf-8"))
    generator = LamaGenerator(LamaConfig.from_reference_kwargs(meta["generator_kwargs"]))
    prefix = meta["state_dict"]["npz_prefix"]
    state = {k[len(prefix) :]: torch.from_numpy(z[k]) for k in z.files if k.startswith(prefix)}
    generator.load_state_dict(state, strict=True)
    arrays = {k: z[k] for k in z.files if not k.startswith(prefix)}
    return meta, generator.eval(), arrays


@needs_fixture
def test_state_dict_layout_matches_the_fixture(fx):
    meta, generator, _ = fx
    expected = {k: list(v) for k, v in meta["state_dict"]["keys_and_shapes"].items()}
    got = {k: list(v.shape) for k, v in generator.state_dict().items()}
    assert got == expected
    assert count_parameters(generator) == meta["state_dict"]["num_parameters"]


@needs_fixture
@pytest.mark.parametrize("prepared", [False, True], ids=["plain", "prepared"])
@pytest.mark.parametrize("case", ["", "_odd"])
def test_forward_matches_the_reference(fx, case, prepared):
    """The plain module and the product's inference layout (channels-last decoder, layer
    callbacks) both reproduce the reference."""
    meta, generator, a = fx
    tolerance = meta["tolerance"]
    if prepared:
        generator = copy.deepcopy(generator).prepare_for_inference()
    layers = []
    with torch.no_grad():
        result = predict(
            generator,
            torch.from_numpy(a[f"image{case}"]),
            torch.from_numpy(a[f"mask{case}"]),
            layers.append if prepared else None,
        )
    if prepared:
        assert layers == list(range(1, generator.num_layers + 1))
    np.testing.assert_allclose(
        result.generator_input.numpy(), a[f"generator_input{case}"], atol=1e-7, rtol=0
    )
    for name, value in (
        ("generator_output", result.generator_output),
        ("inpainted", result.inpainted),
    ):
        key = f"{name}{case}"
        assert tuple(value.shape) == a[key].shape
        np.testing.assert_allclose(value.numpy(), a[key], atol=float(tolerance[key]), rtol=0)


@needs_fixture
def test_the_fixture_detects_torch_reflect_padding(fx):
    """The odd case must tell numpy 'symmetric' from torch 'reflect' padding."""
    _, generator, a = fx
    image, mask = torch.from_numpy(a["image_odd"]), torch.from_numpy(a["mask_odd"])
    height, width = image.shape[-2:]
    pad = (0, -width % 8, 0, -height % 8)
    wrong_image = torch.nn.functional.pad(image, pad, mode="reflect")
    wrong_mask = (torch.nn.functional.pad(mask, pad, mode="reflect") > 0).float()
    with torch.no_grad():
        out = generator(torch.cat([wrong_image * (1 - wrong_mask), wrong_mask], 1))
    wrong = (wrong_mask * out + (1 - wrong_mask) * wrong_image)[..., :height, :width]
    assert np.abs(wrong.numpy() - a["inpainted_odd"]).max() > 1e-2


@pytest.mark.parametrize("size,modulo", [(1, 8), (3, 8), (5, 8), (8, 8), (13, 8), (17, 16)])
def test_symmetric_padding_is_numpys(size, modulo):
    x = torch.arange(2 * size * (size + 1), dtype=torch.float32).reshape(1, 2, size, size + 1)
    got = pad_symmetric(x, modulo).numpy()
    ph, pw = -size % modulo, -(size + 1) % modulo
    want = np.pad(x.numpy(), ((0, 0), (0, 0), (0, ph), (0, pw)), mode="symmetric")
    assert np.array_equal(got, want)


@needs_manifest
def test_full_big_lama_has_the_released_layout():
    manifest = json.loads(MANIFEST.read_text("utf-8"))
    generator = LamaGenerator(LamaConfig.from_reference_kwargs(manifest["generator_kwargs"]))
    expected = [(e["key"], list(e["shape"]), e["dtype"]) for e in manifest["state_dict"]]
    got = [
        (k, list(v.shape), str(v.dtype).replace("torch.", ""))
        for k, v in generator.state_dict().items()
    ]
    assert got == expected
    assert count_parameters(generator) == manifest["total_parameters"] == 50_975_875
    assert LamaConfig.from_reference_kwargs(manifest["generator_kwargs"]) == LamaConfig()


def test_unsupported_reference_settings_are_refused():
    from ovpaint.core.errors import BadInput

    with pytest.raises(BadInput, match="enable_lfu"):
        LamaConfig.from_reference_kwargs(
            {"resnet_conv_kwargs": {"ratio_gin": 0.75, "enable_lfu": True}}
        )
    with pytest.raises(BadInput, match="spatial_transform_layers"):
        LamaConfig.from_reference_kwargs({"spatial_transform_layers": [1]})
    with pytest.raises(BadInput, match="sigmoid"):
        LamaConfig.from_reference_kwargs({"add_out_act": "tanh"})
