"""The model catalogue: unique ids, valid roles, device defaults, no pickle downloads."""

from __future__ import annotations

from importlib import resources

import pytest

from ovpaint.core.errors import BadInput
from ovpaint.models.registry import FAMILIES, all_models, family, get_spec, roles

MODELS = all_models()
ROLES = roles()


def test_ids_unique_and_roles_valid():
    ids = [m.id for m in MODELS]
    assert len(ids) == len(set(ids))
    assert {m.role for m in MODELS} == set(ROLES) == {"clip", "sam2", "inpaint"} | set(FAMILIES)
    for m in MODELS:
        assert m.repo.count("/") == 1 and m.approx_bytes > 0 and m.title
        assert bool(m.files) != bool(m.allow_patterns), m.id  # single file xor folder


def test_defaults_follow_the_device():
    sam2 = family("sam2")
    assert sam2.default_model("cpu") == "sam2.1-tiny"
    assert sam2.default_model("cuda") == sam2.default_model("mps") == "sam2.1-base-plus"
    for role in ROLES:
        for device in ("cpu", "cuda", "mps"):
            assert get_spec(family(role).default_model(device)).role == role
    with pytest.raises(BadInput, match="upscaler"):
        family("upscaler")


def test_no_pickle_only_files():
    for m in MODELS:
        for f in m.files:
            assert f.path.endswith(".safetensors") or (m.role == "sam2" and f.path.endswith(".pt"))
        for pattern in m.allow_patterns:
            assert not pattern.endswith((".bin", ".ckpt", ".pth", ".pkl"))
        if m.is_folder:
            assert "model_index.json" in m.allow_patterns
            weights = [
                p for p in m.allow_patterns if "diffusion_pytorch_model" in p or "model." in p
            ]
            assert weights and all(p.endswith(".safetensors") for p in weights)


def test_architectures_named_as_method_says():
    clip = {m.arch["open_clip_name"] for m in family("clip").models}
    assert clip == {"ViT-B-16-quickgelu", "ViT-L-14-quickgelu"}
    assert all(m.arch["pretrained"] == "openai" for m in family("clip").models)
    assert len(family("sam2").models) == 4
    for m in family("sam2").models:  # each config ships with the installed sam2 package
        assert resources.files("sam2").joinpath(m.arch["config"]).is_file(), m.arch["config"]


def test_unknown_id_lists_known_ones():
    with pytest.raises(BadInput) as err:
        get_spec("sam3")
    assert "sam3" in str(err.value) and "sam2.1-tiny" in str(err.value)
